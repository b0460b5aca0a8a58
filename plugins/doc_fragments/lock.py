# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # How the lock verdict tells a live Helm client from a stale lock. Kept in step with
    # plugins/module_utils/_module.py LOCK_ARGUMENT_SPEC by a unit test.
    DOCUMENTATION = r"""
options:
  stale_after:
    description:
      - Seconds after which a pending record with no sign of a running operation counts as a stale lock.
      - A younger record always counts as a possibly running operation.
    type: int
    default: 600
  client_timeout:
    description:
      - The longest C(--timeout), in seconds, that any Helm client (CI pipelines, people, controllers) uses against
        these releases. Helm's default is 300; set it to what your pipelines pass.
      - A client may wait up to that long for pre-hooks, again for the resources and again for post-hooks, so for
        C(3 * client_timeout + 60) seconds after it wrote the pending record an object C(helm --wait) would still wait
        on (not ready, a claim not bound, a load balancer without an address, a Deployment past its progress deadline,
        as Helm 3's C(--wait) does not stop there) counts as a sign of a running operation.
      - Can be set per playbook run or per inventory host (C(client_timeout) host variable) in the playbooks.
    type: int
    default: 900
"""
