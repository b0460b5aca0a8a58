#!/usr/bin/python
# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: helm_release_unlock
short_description: Release a stale "another operation is in progress" lock, safely and never under a running operation
version_added: 0.1.0
description:
  - Makes a release whose newest revision is stuck in C(pending-install), C(pending-upgrade) or C(pending-rollback)
    operable again, so C(helm upgrade) and C(helm rollback) work.
  - Refuses unless the stuck revision is the newest one and the lock is stale - older than O(stale_after) with no
    running hook, no rollout its controller still drives, no recent change, and, while a client with C(--timeout) up
    to O(client_timeout) could still be waiting, nothing C(helm --wait) would wait on (the verdict
    M(helmops.recovery.helm_release_facts) reports, read here from the same records the writes are guarded by).
    O(force=true) overrides the liveness verdict only; the result lists what was overridden.
  - Refuses a stuck revision whose status label disagrees with its payload (the record was changed outside Helm)
    unless O(force=true).
  - Every write carries the record's resourceVersion (deletes carry uid and resourceVersion preconditions); if Helm or
    anyone else changed the record since it was read, nothing is written and the module fails saying so.
  - Before any write the original record is saved to O(backup_dir) (mode 0600), so it can be restored.
  - Records what it did in annotations on the rewritten record and in a Kubernetes Event on the release namespace.
  - A release that is not locked is left alone and reported as unchanged, with the reason in RV(reason).
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
    description: Reports exactly what it would change, and writes nothing (no record, no backup file, no Event).
    support: full
  diff_mode:
    description: A short before/after of the revision number, status and description; never values or manifests.
    support: full
  idempotent:
    description: A second run finds the release unlocked and reports no change.
    support: full
options:
  method:
    description:
      - V(mark_failed) rewrites the stuck revision's status to C(failed) in both the C(status) label and the encoded
        payload, with a description saying it was unlocked and from which status; everything else stays as Helm wrote it.
        Non-destructive.
      - V(mark_deployed) records the stuck revision as C(deployed) and the previously deployed one as C(superseded).
        Destructive - right only if the cluster matches the stuck revision's manifest. Needs O(allow_destructive=true).
        If a run stopped between those two writes, running it again supersedes the older record (and reports a change).
      - V(delete_revision) deletes the stuck revision's record, so Helm forgets it (the "surgical Helm forget").
        Destructive; for a first install the release's live resources become orphaned. Needs O(allow_destructive=true).
    type: str
    choices: [mark_failed, mark_deployed, delete_revision]
    default: mark_failed
  allow_destructive:
    description: Allow the destructive methods V(mark_deployed) and V(delete_revision).
    type: bool
    default: false
  force:
    description:
      - Unlock even if there are signs of a running operation (a recent record, a running hook Job, a rollout in
        progress), and a stuck record whose status label disagrees with its payload. Never overrides the other
        guards. The result lists what was overridden.
    type: bool
    default: false
  backup_dir:
    description:
      - Where the original records are saved before any write, as C(<backup_dir>/<namespace>/<release>/<object>.<time>.json).
      - The directories are created with mode 0700, the files with mode 0600.
    type: path
    default: ~/.helmops-recovery/backups
seealso:
  - module: helmops.recovery.helm_release_facts
"""

EXAMPLES = r"""
- name: Look first
  helmops.recovery.helm_release_unlock:
    release: web
    namespace: team-a
  check_mode: true
  diff: true

- name: Unlock a release a killed CI job left in pending-upgrade
  helmops.recovery.helm_release_unlock:
    release: web
    namespace: team-a
  register: unlock

- name: Then the upgrade the CI job meant to run
  ansible.builtin.command:
    cmd: helm upgrade web ./chart -n team-a
  when: unlock is changed
  changed_when: true

- name: Make Helm forget a half-finished first install (destructive)
  helmops.recovery.helm_release_unlock:
    release: batch
    namespace: jobs
    method: delete_revision
    allow_destructive: true
    backup_dir: /var/backups/helm
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
revision:
  description: The newest revision (the stuck one, when the release was locked).
  returned: always
  type: int
  sample: 2
locked:
  description: Whether the release was locked (its newest revision pending) when the module ran.
  returned: always
  type: bool
previous_status:
  description: Status of the newest revision before the module ran.
  returned: always
  type: str
  sample: pending-upgrade
status:
  description: Status of that revision afterwards (null when it was deleted).
  returned: always
  type: str
  sample: failed
method:
  description: The method used.
  returned: always
  type: str
reason:
  description: Why the module changed something, or why it did not.
  returned: always
  type: str
  sample: "release web is not locked: its newest revision 3 is deployed"
lock:
  description: The lock verdict and its evidence, as helm_release_facts reports it.
  returned: when the release was locked
  type: dict
overridden:
  description: The evidence of a running operation that O(force=true) overrode.
  returned: always
  type: list
  elements: str
backup_file:
  description: Where the original records were saved (not written in check mode).
  returned: when something changed or would change
  type: str
  sample: /home/ops/.helmops-recovery/backups/team-a/web/sh.helm.release.v1.web.v2.20261124T084512Z.json
"""

import time
import typing as t

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
from ansible_collections.helmops.recovery.plugins.module_utils._unlock import (
    UnlockOptions,
    apply_unlock,
    backup,
    plan_unlock,
    record_event,
    supersede_older,
)

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    **ONE_RELEASE_ARGUMENT_SPEC,
    **LOCK_ARGUMENT_SPEC,
    "method": {"type": "str", "choices": ["mark_failed", "mark_deployed", "delete_revision"], "default": "mark_failed"},
    "allow_destructive": {"type": "bool", "default": False},
    "force": {"type": "bool", "default": False},
    "backup_dir": {"type": "path", "default": "~/.helmops-recovery/backups"},
}


def run(context: Context) -> dict[str, t.Any]:
    params = context.params
    options = UnlockOptions(
        namespace=validate_namespace_name(params["namespace"]),
        release=validate_release_name(params["release"]),
        method=params["method"],
        allow_destructive=params["allow_destructive"],
        force=params["force"],
        stale_after=params["stale_after"],
        client_timeout=params["client_timeout"],
        backup_dir=params["backup_dir"],
    )
    plan = plan_unlock(context.client, context.driver, options, time.time())
    result: dict[str, t.Any] = {
        "changed": plan.locked or plan.resume,
        "release": options.release,
        "namespace": options.namespace,
        "revision": plan.stuck.record.revision if plan.stuck else None,
        "locked": plan.locked,
        "previous_status": plan.previous_status,
        "status": plan.new_status,
        "method": options.method,
        "reason": plan.reason,
        "overridden": plan.overridden,
    }
    if plan.locked:
        result["lock"] = plan.lock
    if context.module._diff:
        result["diff"] = plan.diff()
    for warning in plan.warnings:
        context.module.warn(warning)
    if plan.overridden:
        context.module.warn("force overrode signs of a running operation: " + "; ".join(plan.overridden))
    if not (plan.locked or plan.resume) or context.check_mode:
        return result
    result["backup_file"] = backup(plan, context.client.host)
    if plan.resume:
        supersede_older(context.client, context.driver, plan)
        return result
    apply_unlock(context.client, context.driver, plan)
    event_warning = record_event(context.client, plan)
    if event_warning:
        context.module.warn(event_warning)
    return result


def main() -> None:
    run_module(ARGUMENT_SPEC, run)


if __name__ == "__main__":
    main()
