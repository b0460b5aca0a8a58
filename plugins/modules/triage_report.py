#!/usr/bin/python
# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: triage_report
short_description: Write one cluster's triage reports in one pass
version_added: 0.1.0
description:
  - Runs on the controller. Writes, for every release of one cluster, C(<dir>/<cluster>/<namespace>__<release>.json)
    (the triage row and every fact) and C(<dir>/<cluster>/<namespace>__<release>.md) (the report a person reads,
    rendered from the triage role's C(release.md.j2)), in one task instead of one task per file.
  - Returns the cluster's counts by state and lock verdict, the releases that need a person (most urgent first) and
    the console lines; M(helmops.recovery.fleet_report) turns the summaries of every cluster into the fleet's reports.
  - C(changed) is always false, because the reports are the output of a read-only look (a second triage changes nothing);
    C(files) lists the files written.
  - Files are written atomically with mode 0600 (directories 0700), and only when their content differs.
  - Used by the R(helmops.recovery.triage role,ansible_collections.helmops.recovery.triage_role); it looks up its
    templates in the role running it.
author:
  - helmops.recovery contributors (@helmops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - helmops.recovery.report
attributes:
  check_mode:
    description:
      - Writes nothing and reports which files would be written. The triage role writes its reports in
        check mode too, with C(check_mode) set to false on the task (the cluster is never written to).
    support: full
  diff_mode:
    description: No diff; the reports are the output of a read-only look.
    support: none
options:
  cluster:
    description: The cluster's name (the inventory host), the directory its reports go in.
    type: str
    required: true
  rows:
    description: One C(helmops.recovery.triage_row) per release, in the order of O(releases).
    type: list
    elements: dict
    default: []
  releases:
    description: The entries of C(helm_releases) the rows were made from.
    type: list
    elements: dict
    default: []
  scope_errors:
    description: Errors of releases that could not be read (C(helm_release_errors)).
    type: list
    elements: str
    default: []
  error:
    description: Why the cluster could not be read, if it could not.
    type: str
    default: ""
  dir:
    description: The report root; empty writes no file (the counts and the console lines are still returned).
    type: path
    default: ""
seealso:
  - module: helmops.recovery.fleet_report
  - module: helmops.recovery.helm_release_facts
"""

EXAMPLES = r"""
- name: Reports of every release of this cluster
  helmops.recovery.triage_report:
    cluster: "{{ inventory_hostname }}"
    rows: "{{ ansible_facts.helm_releases | map('helmops.recovery.triage_row') | list }}"
    releases: "{{ ansible_facts.helm_releases }}"
    dir: ./helm-triage-reports
  check_mode: false
  register: triage_written
"""

RETURN = r"""
files:
  description: The report files written (in check mode, those that would be).
  returned: always
  type: list
  elements: str
unchanged:
  description: How many report files already had the same content.
  returned: always
  type: int
summary:
  description:
    - C(cluster), C(error), C(scope_errors), C(releases) (count), C(by_state) and C(by_lock) (counts),
      C(needing_attention) (triage rows, most urgent first) and C(healthy) (the other rows).
  returned: always
  type: dict
console:
  description: A counts line, then each release that needs attention with its next step.
  returned: always
  type: list
  elements: str
"""
