#!/usr/bin/python
# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: helm_release_map_apis
short_description: Map a release's stored manifests to the API versions the cluster serves, so Helm can act again
version_added: 0.1.0
description:
  - After a Kubernetes upgrade removed an API version (C(policy/v1beta1) PodDisruptionBudget, C(autoscaling/v2beta2)
    HorizontalPodAutoscaler) or a CRD stopped serving one (cert-manager's C(v1alpha2)), every C(helm upgrade),
    C(helm rollback) and C(helm uninstall) of a release whose stored manifest names it fails with
    C(resource mapping not found ... no matches for kind), although its objects are still there. This module rewrites
    the stored manifests so Helm can build the objects again.
  - Rewrites exactly the revisions Helm reads next - the newest (a rollback's current release, an uninstall), the one
    C(helm upgrade) diffs against (the newest deployed), and the rollback target of a failed or pending release - and
    those named in O(revisions). Other revisions are left as they are.
  - Each unserved object gets the version the API serves its kind at (discovery of the same group, preferred version
    first, then Kubernetes' built-in removals, for kinds that moved group). Only the top-level C(apiVersion) value of
    those documents changes, in the manifest and in the hooks' manifests; every other byte of the manifest and every
    other field of the record stays, status and description included, so C(helm history) shows the same revisions
    with the same statuses. A pending or failed revision stays pending or failed.
  - A rewritten document is read again and must equal the original with only its C(apiVersion) changed; a document
    it cannot rewrite that way (flow style, a repeated key), or a kind the API serves at no version (PodSecurityPolicy,
    a CRD not installed) in a manifest, refuses the whole mapping before any write. Such a kind in a hook is left as
    it is, with a warning (Helm builds a hook only when it runs it).
  - The status label of a rewritten record is kept as it is (C(helm upgrade) finds the deployed revision by it).
  - The guards of M(helmops.recovery.helm_release_unlock) - when the newest revision holds the lock (pending or
    uninstalling), only a stale lock; every write carries the record's resourceVersion; the records are saved to
    O(backup_dir) before any write (restore them with M(helmops.recovery.helm_release_restore)); a Kubernetes Event
    on the release namespace says what was mapped.
  - Idempotent - a second run finds nothing unserved and reports no change.
author:
  - helmops.recovery contributors (@helmops)
extends_documentation_fragment:
  - helmops.recovery.connection
  - helmops.recovery.connection.attributes
  - helmops.recovery.release
  - helmops.recovery.lock
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    description: Reports exactly which objects of which revisions it would map, and writes nothing (no record, no
      backup file, no Event).
    support: full
  diff_mode:
    description: Each mapped object's apiVersion before and after, per revision; never a manifest (it may hold
      Secrets).
    support: full
  idempotent:
    description: A second run finds every manifest served and reports no change.
    support: full
options:
  revisions:
    description:
      - More revisions to map besides the ones Helm reads next, for a C(helm rollback) to an older revision.
    type: list
    elements: int
  force:
    description:
      - Map even if there are signs of a running operation on a pending newest revision, and a record whose status
        label disagrees with its payload. Never overrides the other guards. The result lists what was overridden.
    type: bool
    default: false
  backup_dir:
    description:
      - Where the records are saved before any write, as C(<backup_dir>/<namespace>/<release>/<object>.<time>.json).
      - The directories are created with mode 0700, the files with mode 0600.
    type: path
    default: ~/.helmops-recovery/backups
seealso:
  - module: helmops.recovery.helm_release_facts
  - module: helmops.recovery.helm_release_restore
"""

EXAMPLES = r"""
- name: Look first - which objects of which revisions would be mapped
  helmops.recovery.helm_release_map_apis:
    release: web
    namespace: team-a
  check_mode: true
  diff: true

- name: Map the stored manifests after the cluster upgrade removed policy/v1beta1
  helmops.recovery.helm_release_map_apis:
    release: web
    namespace: team-a
  register: mapped

- name: Then upgrade with the chart version that renders policy/v1
  ansible.builtin.command:
    cmd: helm upgrade web ./chart -n team-a --wait
  when: mapped is changed
  changed_when: true

- name: Also map revision 3, to roll back to it later
  helmops.recovery.helm_release_map_apis:
    release: web
    namespace: team-a
    revisions: [3]
"""

RETURN = r"""
release:
  description: The release name.
  returned: always
  type: str
  sample: web
namespace:
  description: The release namespace.
  returned: always
  type: str
  sample: team-a
read:
  description: The revisions looked at, each with the Helm operations that read it.
  returned: always
  type: dict
  sample: {"2": ["helm upgrade (the revision it diffs against)"], "3": ["helm rollback (its current release)"]}
mapped:
  description:
    - The revisions rewritten (or, in check mode, to rewrite), with C(revision), C(status) (unchanged by the mapping),
      C(read_by) and C(changes) - C(kind), C(name), C(from), C(to) and C(in) (V(manifest) or C(hook <name>)).
  returned: always
  type: list
  elements: dict
lock:
  description: The lock verdict and its evidence, when the newest revision holds the lock.
  returned: when the newest revision is pending or uninstalling
  type: dict
overridden:
  description: The evidence of a running operation that O(force=true) overrode.
  returned: always
  type: list
  elements: str
backup_file:
  description: Where the records were saved before the rewrite (not written in check mode).
  returned: when something changed
  type: str
  sample: /home/ops/.helmops-recovery/backups/team-a/web/sh.helm.release.v1.web.v3.20261202T084512Z.json
next_step:
  description: What to do next for Helm to converge the cluster on the served versions.
  returned: always
  type: str
"""

import time
import typing as t

from ansible_collections.helmops.recovery.plugins.module_utils._mapping import (
    MappingOptions,
    apply_mapping,
    backup,
    plan_mapping,
    record_event,
)
from ansible_collections.helmops.recovery.plugins.module_utils._module import (
    LOCK_ARGUMENT_SPEC,
    ONE_RELEASE_ARGUMENT_SPEC,
    Context,
    run_module,
)
from ansible_collections.helmops.recovery.plugins.module_utils._release_codec import (
    validate_namespace_name,
    validate_release_name,
)

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    **ONE_RELEASE_ARGUMENT_SPEC,
    **LOCK_ARGUMENT_SPEC,
    "revisions": {"type": "list", "elements": "int"},
    "force": {"type": "bool", "default": False},
    "backup_dir": {"type": "path", "default": "~/.helmops-recovery/backups"},
}

NEXT_STEP = (
    "helm upgrade with a chart version that renders the served API versions: Helm can build the stored objects "
    "again. A helm rollback to a revision not mapped here needs it mapped first (revisions)."
)


def run(context: Context) -> dict[str, t.Any]:
    params = context.params
    options = MappingOptions(
        namespace=validate_namespace_name(params["namespace"]),
        release=validate_release_name(params["release"]),
        revisions=params["revisions"],
        force=params["force"],
        stale_after=params["stale_after"],
        client_timeout=params["client_timeout"],
        backup_dir=params["backup_dir"],
    )
    plan = plan_mapping(context.client, context.driver, options, time.time())
    result: dict[str, t.Any] = {
        "changed": bool(plan.rewrites),
        "release": options.release,
        "namespace": options.namespace,
        "read": {str(revision): read_by for revision, read_by in plan.read.items()},
        "mapped": [rewrite.as_dict() for rewrite in plan.rewrites],
        "overridden": plan.overridden,
        "next_step": NEXT_STEP if plan.rewrites else "nothing to map: Helm can build every object it reads next",
    }
    if plan.lock:
        result["lock"] = plan.lock
    if context.module._diff:
        result["diff"] = plan.diff()
    if plan.overridden:
        context.module.warn("force overrode signs of a running operation: " + "; ".join(plan.overridden))
    if plan.left_unmapped:
        context.module.warn(
            "left as they are (a hook is built only when it runs; remove them from the chart): "
            + "; ".join(plan.left_unmapped)
        )
    if not plan.rewrites or context.check_mode:
        return result
    result["backup_file"] = backup(plan, context.client.host)
    apply_mapping(context.client, context.driver, plan)
    event_warning = record_event(context.client, plan)
    if event_warning:
        context.module.warn(event_warning)
    return result


def main() -> None:
    run_module(ARGUMENT_SPEC, run)


if __name__ == "__main__":
    main()
