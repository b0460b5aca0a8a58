#!/usr/bin/python
# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_report
short_description: Write the fleet's triage summary, as Markdown, HTML, JSON and Prometheus metrics
version_added: 0.1.0
description:
  - Runs on the controller, once per play. From the C(summary) that M(helmops.recovery.triage_report) returned for
    each cluster, writes C(fleet-summary.md), C(fleet-summary.html) (counts by state per cluster at the top, releases
    that need a person first, healthy ones collapsed, links to the per-release reports), C(fleet-summary.json) (its
    schema is C(docs/fleet-summary.schema.json)) and C(helm-releases.prom).
  - The metrics file is in the Prometheus text format, which node_exporter's textfile collector and the Pushgateway
    read; it is written with C(prometheus_client) and skipped, with a warning, when that library is missing.
  - C(changed) is always false, because the reports are the output of a read-only look (a second triage changes nothing);
    C(files) lists the files written.
  - Files are written atomically with mode 0600, and only when their content differs.
author:
  - helmops.recovery contributors (@helmops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - helmops.recovery.report
attributes:
  check_mode:
    description:
      - Writes nothing and reports which files would be written (the triage role runs it with
        C(check_mode) set to false).
    support: full
  diff_mode:
    description: No diff; the reports are the output of a read-only look.
    support: none
options:
  clusters:
    description: The C(summary) of every cluster (M(helmops.recovery.triage_report)'s result).
    type: list
    elements: dict
    required: true
  dir:
    description: The report root.
    type: path
    required: true
  metrics:
    description: Also write C(helm-releases.prom).
    type: bool
    default: true
requirements:
  - prometheus-client (on the controller, for the metrics file)
seealso:
  - module: helmops.recovery.triage_report
"""

EXAMPLES = r"""
- name: The fleet's summary, once, from every cluster's triage
  helmops.recovery.fleet_report:
    clusters: "{{ ansible_play_hosts_all | map('extract', hostvars, 'triage_written') | map(attribute='summary') }}"
    dir: ./helm-triage-reports
  run_once: true
  check_mode: false
  register: fleet

- name: Hand the counts to the next node of an AWX workflow
  ansible.builtin.set_stats:
    data:
      helmops_triage: "{{ fleet.stats }}"
  run_once: true
"""

RETURN = r"""
files:
  description: The files written (in check mode, those that would be).
  returned: always
  type: list
  elements: str
fleet:
  description: The content of C(fleet-summary.json)
    (C(generated_at), C(totals) and, per cluster, its counts and every release that needs a person with its next step).
  returned: always
  type: dict
stats:
  description: The totals and, per cluster, the releases that need a person (what the triage role hands to
    C(set_stats) as C(helmops_triage)).
  returned: always
  type: dict
"""
