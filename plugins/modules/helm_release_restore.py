#!/usr/bin/python
# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: helm_release_restore
short_description: Restore a release's history from a backup this collection took, or import an exported release
version_added: 0.1.0
description:
  - Puts back the release records held by a backup that this collection wrote before a destructive step (unlock,
    prune, rollback, uninstall), or by an export of M(helmops.recovery.helm_release_backup) from another cluster.
  - Restores Helm's records only. It does not re-apply the release's workloads; the result's RV(next_step) says what
    to run to converge the cluster on the restored history (usually C(helm rollback) or C(helm upgrade)).
  - O(path) names backup files, or directories of one release's backups (C(<backup_dir>/<namespace>/<release>/));
    from a directory the newest backup step is read (its newest file, with the files taken with it, as a prune saves
    each record it deletes in a file of its own). The backups a restore takes of what it replaced are left out of a
    directory (give one as O(path) to undo that restore).
  - Every backup file carries where and when it was taken and which records the release had then (names and uids).
    The point in time restored is one file's, chosen by O(pick). Every file is validated (this collection's header,
    and a Kubernetes C(List) of Helm release records of one release whose payloads agree with their names, labels and
    namespace); anything else fails naming the file and the problem, and nothing is written.
  - Record by record, a missing record is created; one that is the same as the backup is left alone; one that
    differs is replaced only with O(overwrite=true). A record the cluster has that the backup's header does not list
    was written after the backup was taken (an upgrade's or rollback's new revision, a new install under the same
    name); replacing or deleting it needs O(discard_newer=true); otherwise the restore is refused, so newer history
    is never lost silently. Records the header lists that the backup does not hold (a prune keeps the newest) are left
    alone.
  - A backup taken on another cluster (another API server address) is refused unless it is an export of
    M(helmops.recovery.helm_release_backup), or O(other_cluster=true).
  - What is replaced or deleted is first saved under O(backup_dir) as a backup of its own
    (C(<release history>.before-restore.<time>.json), mode 0600); restoring that file undoes the replacements and
    deletions (records the restore created are not in it).
  - Writes as M(helmops.recovery.helm_release_unlock) does. Creates fail if the record appeared since it was read;
    updates carry the resourceVersion that was read, deletes uid and resourceVersion preconditions. A release whose
    newest record is pending or uninstalling (or cannot be read) is restored only when the lock verdict says stale
    (or O(force=true)). A failure part way says what was done before it; running the restore again continues.
  - Records what it did in annotations on the restored records (C(helmops.recovery/restored-at),
    C(helmops.recovery/restored-from)) and in a Kubernetes Event on the newest restored record.
  - The release is restored to the namespace it was backed up from, with the same driver. A Helm release record names
    its namespace inside its encoded payload, so a move to another namespace is refused rather than half done.
author:
  - helmops.recovery contributors (@helmops)
extends_documentation_fragment:
  - helmops.recovery.connection
  - helmops.recovery.connection.attributes
  - helmops.recovery.lock
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    description: Validates the backup and reports what it would create, replace, delete and keep; writes nothing.
    support: full
  diff_mode:
    description: The status of every revision the restore looks at, before and after; never values or manifests.
    support: full
  idempotent:
    description: A second run finds every record equal to the backup and reports no change.
    support: full
options:
  path:
    description:
      - Backup files, or directories holding one release's backups; all of them of one release.
      - A comma-separated string is read as a list, so a path that contains a comma must be given in a list.
    type: list
    elements: path
    required: true
  pick:
    description:
      - The point in time restored when several backup files are given.
      - V(newest) undoes the last step that took a backup (the files of that step). V(oldest) goes back to before the
        first of them, with each record's oldest copy (give the backups one remediation took to undo all of its
        steps; its report prints the command).
    type: str
    choices: [newest, oldest]
    default: newest
  release:
    description: The release the backup must hold; a guard against restoring the wrong file.
    type: str
    aliases: [name]
  namespace:
    description:
      - The namespace the backup must come from; a guard against restoring the wrong file.
      - Records are always restored to the namespace they were backed up from.
    type: str
  overwrite:
    description: Replace records that exist and differ from the backup (after saving them under O(backup_dir)).
    type: bool
    default: false
  discard_newer:
    description:
      - Delete the release's revisions that are newer than the backup's newest (after saving them under O(backup_dir)),
        so the history is the backup's again. Destructive.
    type: bool
    default: false
  other_cluster:
    description:
      - Restore a backup taken on another cluster, or on this one under another API server address. An export
        needs no such opt-in.
    type: bool
    default: false
  force:
    description:
      - Restore even if the release's newest record is pending or uninstalling and an operation may still be running
        on it, or cannot be read.
    type: bool
    default: false
  backup_dir:
    description: Where the records a restore replaces or deletes are saved first (directories 0700, files 0600).
    type: path
    default: ~/.helmops-recovery/backups
notes:
  - The O(driver) option, when set, must be the backup's (Secret records for C(secret), ConfigMap records for
    C(configmap)); unset, the backup's driver is used.
seealso:
  - module: helmops.recovery.helm_release_backup
  - module: helmops.recovery.helm_release_unlock
"""

EXAMPLES = r"""
- name: See what a restore of web's backups would do
  helmops.recovery.helm_release_restore:
    path: ~/.helmops-recovery/backups/team-a/web
    release: web
    namespace: team-a
  check_mode: true
  diff: true

- name: Undo a remediation that unlocked, then upgraded (its report names these backups)
  helmops.recovery.helm_release_restore:
    path:
      - ~/.helmops-recovery/backups/team-a/web/sh.helm.release.v1.web.v7.20261124T084512.000000Z.json
      - ~/.helmops-recovery/backups/team-a/web/sh.helm.release.v1.web.20261124T084513.000000Z.json
    pick: oldest
    overwrite: true
    discard_newer: true

- name: Undo an unlock (the unlock backed up the record it rewrote)
  helmops.recovery.helm_release_restore:
    path: ~/.helmops-recovery/backups/team-a/web/sh.helm.release.v1.web.v7.20261124T084512.000000Z.json
    overwrite: true

- name: Import a release exported from the old cluster, then let Helm converge it
  helmops.recovery.helm_release_restore:
    path: /srv/exports/sh.helm.release.v1.web.export.20261124T084512.000000Z.json
    kubeconfig: ~/.kube/new-cluster
  register: imported

- name: Show what to run next
  ansible.builtin.debug:
    msg: "{{ imported.next_step }}"
"""

RETURN = r"""
release:
  description: The release the backup holds.
  returned: always
  type: str
  sample: web
namespace:
  description: Its namespace.
  returned: always
  type: str
  sample: team-a
driver:
  description: The storage driver of the backup's records.
  returned: always
  type: str
  sample: secret
files:
  description: The backup files read, oldest first.
  returned: always
  type: list
  elements: str
restored:
  description: What the restore does (or would do) to each revision it looks at.
  returned: always
  type: list
  elements: dict
  contains:
    revision:
      description: The revision.
      type: int
    action:
      description: V(create), V(replace), V(delete) (a revision newer than the backup) or V(keep).
      type: str
    status_before:
      description: The status label of the cluster's record before (null when it had none).
      type: str
    status:
      description: The status afterwards (null when the record is deleted).
      type: str
    written_since_backup:
      description: The cluster's record was written after the backup was taken (the backup's header does not list it).
      type: bool
  sample:
    - {revision: 1, action: keep, status_before: superseded, status: superseded, written_since_backup: false}
    - {revision: 2, action: replace, status_before: failed, status: pending-upgrade, written_since_backup: false}
backup_file:
  description: Where the records that were replaced or deleted were saved first.
  returned: when records were replaced or deleted (never in check mode)
  type: str
lock:
  description: The lock verdict, when the release's newest record was pending.
  returned: when the newest record was pending and something would be written
  type: dict
overridden:
  description: The evidence of a running operation that O(force=true) overrode.
  returned: always
  type: list
  elements: str
next_step:
  description: What to run next to converge the cluster's objects on the restored history.
  returned: always
  type: str
"""

import time
import typing as t

from ansible_collections.helmops.recovery.plugins.module_utils._module import LOCK_ARGUMENT_SPEC, Context, run_module
from ansible_collections.helmops.recovery.plugins.module_utils._restore import (
    RestoreOptions,
    apply_restore,
    backup_replaced,
    load_backup,
    next_step,
    plan_restore,
    record_event,
)

ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    **LOCK_ARGUMENT_SPEC,
    "path": {"type": "list", "elements": "path", "required": True},
    "pick": {"type": "str", "choices": ["newest", "oldest"], "default": "newest"},
    "release": {"type": "str", "aliases": ["name"]},
    "namespace": {"type": "str"},
    "overwrite": {"type": "bool", "default": False},
    "discard_newer": {"type": "bool", "default": False},
    "other_cluster": {"type": "bool", "default": False},
    "force": {"type": "bool", "default": False},
    "backup_dir": {"type": "path", "default": "~/.helmops-recovery/backups"},
}


def run(context: Context) -> dict[str, t.Any]:
    params = context.params
    options = RestoreOptions(
        paths=params["path"],
        pick=params["pick"],
        release=params["release"],
        namespace=params["namespace"],
        driver=params["driver"],
        overwrite=params["overwrite"],
        discard_newer=params["discard_newer"],
        other_cluster=params["other_cluster"],
        force=params["force"],
        stale_after=params["stale_after"],
        client_timeout=params["client_timeout"],
        backup_dir=params["backup_dir"],
    )
    backup = load_backup(options.paths, options.pick)
    plan = plan_restore(context.client, backup, options, time.time())
    result: dict[str, t.Any] = {
        "changed": bool(plan.writes),
        "release": backup.release,
        "namespace": backup.namespace,
        "driver": backup.driver,
        "files": backup.files,
        "restored": [step.summary() for step in plan.steps],
        "overridden": plan.overridden,
        "next_step": next_step(plan),
    }
    if plan.lock:
        result["lock"] = plan.lock
    if context.module._diff:
        result["diff"] = plan.diff()
    for warning in backup.warnings:
        context.module.warn(warning)
    if plan.overridden:
        context.module.warn("force overrode signs of a running operation: " + "; ".join(plan.overridden))
    if not plan.writes or context.check_mode:
        return result
    backup_file = backup_replaced(context.client, plan, options.backup_dir)
    if backup_file:
        result["backup_file"] = backup_file
    apply_restore(context.client, plan)
    event_warning = record_event(context.client, plan)
    if event_warning:
        context.module.warn(event_warning)
    return result


def main() -> None:
    run_module(ARGUMENT_SPEC, run)


if __name__ == "__main__":
    main()
