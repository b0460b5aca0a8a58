# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Restoring a release's records from this collection's backups (and importing an export).

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

``load_backup`` reads and validates backup files (a Kubernetes ``List`` of
release records, as _backup.py writes them); ``plan_restore`` compares them
with the records the cluster has now and decides, record by record, to create,
replace, delete or keep; ``apply_restore`` writes that plan: creates that fail
if the record appeared meanwhile, and updates and deletes guarded by the
resourceVersion the plan read. Only Helm's records are restored, never the
release's workloads: Helm itself converges the cluster afterwards.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import time
import typing as t
from dataclasses import dataclass, field

from ._backup import BEFORE_RESTORE, save_records
from ._errors import ModuleError
from ._events import ReleaseEvent, post_event
from ._k8s import KubeClient, KubeForbidden, KubeNotFound, path_quote
from ._live import Discovery, LiveIndex
from ._lock import LockOptions, lock_verdict, newest_record
from ._release_codec import (
    PENDING_STATUSES,
    SECRET_TYPE,
    Driver,
    RecordMeta,
    ReleaseRecordError,
    decode_record,
    history_name,
    parse_helm_time,
    parse_object_name,
    record_meta_from_object,
    utc_now,
)
from ._storage import ReleaseStorage

# A backup holds at most a release's history: 128 MiB is over a hundred records at Kubernetes' 1 MiB object
# limit. A larger file is refused before it is read, so a wrong path cannot exhaust memory.
MAX_BACKUP_FILE_BYTES = 128 * 1024 * 1024
ANNOTATION_PREFIX = "helmops.recovery"
_KINDS: dict[str, Driver] = {"Secret": "secret", "ConfigMap": "configmap"}
# <name>.<UTC time>.json, as _backup.save_records names its files.
_STAMP_RE = re.compile(r"\.(?P<stamp>\d{8}T\d{6}\.\d{6}Z)\.json$")


@dataclass(frozen=True)
class BackupRecord:
    """One release record as a backup file holds it."""

    obj: dict[str, t.Any]
    meta: RecordMeta
    status: str
    file: str


@dataclass
class Backup:
    """The records of one release, read from one backup file or merged from a directory of them."""

    namespace: str
    release: str
    driver: Driver
    records: dict[int, BackupRecord]
    files: list[str]
    taken_at: float | None = None  # when the state restored was backed up (the file's name says), if known
    pick: str = "newest"  # which copy of a record several files hold is restored

    @property
    def newest(self) -> int:
        return max(self.records)


@dataclass
class RestoreOptions:
    paths: list[str]
    pick: str = "newest"
    release: str | None = None
    namespace: str | None = None
    driver: Driver | None = None  # only when the user set it: it must then match the backup
    overwrite: bool = False
    discard_newer: bool = False
    force: bool = False
    stale_after: int = 600
    client_timeout: int = 900
    backup_dir: str = "~/.helmops-recovery/backups"


@dataclass
class Live:
    """A record the cluster has now (``meta`` is None when it is not a valid release record)."""

    obj: dict[str, t.Any]
    meta: RecordMeta | None
    status: str | None  # its status label


@dataclass
class Step:
    """What the restore does to one revision: create, replace, delete or keep."""

    revision: int
    action: str
    before: str | None  # the live record's status (None: absent)
    after: str | None  # its status afterwards (None: absent)
    record: BackupRecord | None = None
    live: Live | None = None

    def summary(self) -> dict[str, t.Any]:
        return {"revision": self.revision, "action": self.action, "status_before": self.before, "status": self.after}


@dataclass
class RestorePlan:
    backup: Backup
    steps: list[Step]
    lock: dict[str, t.Any] = field(default_factory=dict)
    overridden: list[str] = field(default_factory=list)

    @property
    def writes(self) -> list[Step]:
        return [step for step in self.steps if step.action != "keep"]

    def diff(self) -> dict[str, t.Any]:
        """The status of every revision the restore looks at, before and after ("absent": no record);
        never values or manifests."""

        def state(status: str | None) -> str:
            return status or "absent"

        return {
            "before": {f"revision {s.revision}": state(s.before) for s in self.steps},
            "after": {f"revision {s.revision}": state(s.after) for s in self.steps},
        }


# --- reading backups ----------------------------------------------------------


def load_backup(paths: t.Sequence[str], pick: str = "newest") -> Backup:
    """Backup files, and every backup file of one release in each directory given, read oldest first. When
    several hold a record, ``pick`` says which copy is restored: the newest (undo the last step) or the oldest
    (go back to before the first). The backups a restore takes of what it replaced are left out of a
    directory, so restoring one twice does the same thing twice. Anything else is refused, naming the file."""
    if pick not in ("newest", "oldest"):
        raise ModuleError(f"pick must be newest or oldest, not {pick!r}")
    files: list[str] = []
    for given in paths:
        path = os.path.expanduser(given)
        if os.path.isdir(path):
            files += _backup_files(path)
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise ModuleError(f"backup {path}: no such file or directory")
    if not files:
        raise ModuleError("no backup was given (path is empty)")
    files = sorted(dict.fromkeys(files), key=lambda file: (_written_at(file) or 0.0, file))
    read = [record for file in files for record in _read_file(file)]
    namespace, release, driver = _one_release(", ".join(paths), read)
    ordered = read if pick == "newest" else read[::-1]  # the last copy of a revision wins
    records = {record.meta.revision: record for record in ordered}
    taken_at = _written_at(files[-1] if pick == "newest" else files[0])
    return Backup(namespace, release, driver, records, files, taken_at=taken_at, pick=pick)


def _backup_files(directory: str) -> list[str]:
    files = []
    for name in os.listdir(directory):
        full = os.path.join(directory, name)
        if not name.endswith(".json") or not os.path.isfile(full) or f".{BEFORE_RESTORE}." in name:
            continue  # values and manifest files (.yaml) sit next to the records
        files.append(full)
    if not files:
        raise ModuleError(f"backup directory {directory} holds no backup files (<record name>.<time>.json)")
    return files


def _written_at(file: str) -> float | None:
    match = _STAMP_RE.search(file)
    if not match:
        return None
    stamp = match.group("stamp")
    return calendar.timegm(time.strptime(stamp[:15], "%Y%m%dT%H%M%S")) + int(stamp[16:22]) / 1e6


def _read_file(file: str) -> list[BackupRecord]:
    size = os.path.getsize(file)
    if size > MAX_BACKUP_FILE_BYTES:
        raise ModuleError(
            f"backup {file}: {size} bytes, more than any release history ({MAX_BACKUP_FILE_BYTES} at most); "
            "it is not a backup of one release"
        )
    try:
        with open(file, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModuleError(f"backup {file}: not readable as JSON ({exc}); it is truncated or not a backup") from exc
    if not isinstance(document, dict) or document.get("kind") != "List" or document.get("apiVersion") != "v1":
        raise ModuleError(f"backup {file}: not a backup written by helmops.recovery (a Kubernetes v1 List)")
    items = document.get("items")
    if not isinstance(items, list) or not items:
        raise ModuleError(f"backup {file}: the List holds no release records")
    records: dict[str, BackupRecord] = {}
    for index, item in enumerate(items):
        record = _record(file, index, item)
        if record.meta.ref in records:
            raise ModuleError(f"backup {file}: revision {record.meta.revision} appears twice")
        records[record.meta.ref] = record
    _one_release(file, list(records.values()))
    return list(records.values())


def _record(file: str, index: int, item: t.Any) -> BackupRecord:
    where = f"backup {file}, item {index}"
    if not isinstance(item, dict) or item.get("apiVersion") != "v1" or item.get("kind") not in _KINDS:
        raise ModuleError(f"{where}: not a Secret or ConfigMap, so not a Helm release record")
    driver = _KINDS[item["kind"]]
    try:
        meta = record_meta_from_object(item, driver)
        decoded = decode_record(item, driver, meta)
    except ReleaseRecordError as exc:
        raise ModuleError(f"{where}: {exc}") from exc
    if decoded.meta.status_label != decoded.status:
        raise ModuleError(
            f"{where} ({meta.ref}): its status label says {meta.status_label!r} but its payload says "
            f"{decoded.status!r}; the file was edited, so it is not restored"
        )
    payload_namespace = decoded.release.get("namespace")
    if payload_namespace != meta.namespace:
        raise ModuleError(
            f"{where} ({meta.ref}): the record is stored in namespace {meta.namespace!r} but describes a release "
            f"in {payload_namespace!r}; the file was edited, so it is not restored"
        )
    return BackupRecord(obj=item, meta=meta, status=decoded.status, file=file)


def _one_release(path: str, records: list[BackupRecord]) -> tuple[str, str, Driver]:
    identities = sorted({(r.meta.namespace, r.meta.release, r.meta.driver) for r in records})
    if len(identities) != 1:
        found = ", ".join(f"{driver} records of {namespace}/{release}" for namespace, release, driver in identities)
        raise ModuleError(f"backup {path} holds {found}; a restore takes one release's backups")
    return identities[0]


# --- planning -------------------------------------------------------------------


def plan_restore(client: KubeClient, backup: Backup, options: RestoreOptions, now: float) -> RestorePlan:
    """Decide, record by record; raise ModuleError when a guard refuses."""
    _check_target(backup, options)
    storage = ReleaseStorage(client, backup.driver)
    live = _live_records(storage, backup)
    steps = [_step_for_backup(revision, record, live.get(revision)) for revision, record in backup.records.items()]
    steps += [
        Step(revision, "delete" if _written_since(entry, backup) else "keep", entry.status, None, live=entry)
        for revision, entry in live.items()
        if revision > backup.newest
    ]
    for step in steps:
        if step.action == "keep" and step.record is None:
            step.after = step.before  # a record the backup never held (a prune keeps the newest): left alone
    steps.sort(key=lambda step: step.revision)
    plan = RestorePlan(backup, steps)
    _refuse_unasked(plan, options)
    if not live and plan.writes:
        _require_namespace(client, backup.namespace)
    if plan.writes:
        _check_lock(client, plan, live, options, now)
    return plan


def _check_target(backup: Backup, options: RestoreOptions) -> None:
    """Helm records name their namespace inside the payload and are read by one driver: the backup is restored
    where it came from, as it was stored, and a stated release, namespace or driver must be the backup's."""
    for option, wanted, held in (
        ("release", options.release, backup.release),
        ("namespace", options.namespace, backup.namespace),
        ("driver", options.driver, backup.driver),
    ):
        if wanted and wanted != held:
            raise ModuleError(
                f"the backup holds {backup.driver} records of release {backup.release} in namespace "
                f"{backup.namespace}, not {option} {wanted!r}: a release's records name their namespace inside "
                "them and Helm reads them with one driver, so they are restored to the same namespace and driver"
            )


def _live_records(storage: ReleaseStorage, backup: Backup) -> dict[int, Live]:
    live: dict[int, Live] = {}
    for meta, obj in storage.list_objects(backup.namespace, backup.release):
        parsed = parse_object_name(str((obj.get("metadata") or {}).get("name") or ""))
        if parsed is None or parsed[0] != backup.release:
            continue  # labelled name=<release> but not one of its records: not ours to touch
        labels = (obj.get("metadata") or {}).get("labels") or {}
        live[parsed[1]] = Live(obj, None if isinstance(meta, ReleaseRecordError) else meta, labels.get("status"))
    return live


def _written_since(entry: Live, backup: Backup) -> bool:
    """Whether Helm wrote this revision after the backup was taken: history that moved on. A prune's backup
    holds only the old records it deleted, so the newer revisions it kept are not "newer than the backup".
    Helm stamps a revision's info.last_deployed when the operation starts (pkg/action/upgrade.go and
    rollback.go, Helm 3 and 4), to the nanosecond; the object's own times are whole seconds, and a rollback
    often runs in the second its backup was taken. Unknown either way counts as newer: it is refused."""
    if backup.taken_at is None or entry.meta is None:
        return True
    try:
        info = decode_record(entry.obj, backup.driver, entry.meta).info
    except ReleaseRecordError:
        return True
    written = parse_helm_time(info.get("last_deployed"))
    return written is None or written >= backup.taken_at


def _step_for_backup(revision: int, record: BackupRecord, live: Live | None) -> Step:
    if live is None:
        return Step(revision, "create", None, record.status, record=record)
    action = "keep" if _same_record(record.obj, live.obj) else "replace"
    return Step(revision, action, live.status, record.status, record=record, live=live)


def _same_record(saved: dict[str, t.Any], live: dict[str, t.Any]) -> bool:
    """What Helm reads: the payload, the labels and (Secrets) the type; annotations are ours to add."""

    def content(obj: dict[str, t.Any]) -> tuple[t.Any, ...]:
        return (obj.get("data") or {}, (obj.get("metadata") or {}).get("labels") or {}, obj.get("type"))

    return content(saved) == content(live)


def _refuse_unasked(plan: RestorePlan, options: RestoreOptions) -> None:
    refusals = []
    replaced = [s for s in plan.steps if s.action == "replace"]
    if replaced and not options.overwrite:
        listed = ", ".join(f"{s.revision} (now {s.before}, the backup says {s.after})" for s in replaced)
        refusals.append(
            f"revision(s) {listed} exist and differ from the backup; set overwrite: true to replace them (what they "
            "hold now is backed up first)"
        )
    newer = [s for s in plan.steps if s.action == "delete"]
    if newer and not options.discard_newer:
        listed = ", ".join(f"{s.revision} ({s.before})" for s in newer)
        refusals.append(
            f"the release has revision(s) {listed}, newer than the backup's newest ({plan.backup.newest}): restoring "
            "would put older history under newer history; set discard_newer: true to delete them (after a backup of "
            "them), or restore a newer backup"
        )
    if refusals:
        raise ModuleError(
            f"refusing to restore {plan.backup.namespace}/{plan.backup.release}: " + "; ".join(refusals),
            restore=[s.summary() for s in plan.steps],
        )


def _require_namespace(client: KubeClient, namespace: str) -> None:
    """An import into a cluster that lacks the namespace: say so before any write (Helm's
    --create-namespace is not ours to imitate: its labels and policies are the cluster's own)."""
    try:
        client.request("GET", f"/api/v1/namespaces/{path_quote(namespace)}", target=f"namespace {namespace}")
    except KubeNotFound as exc:
        raise ModuleError(
            f"namespace {namespace} does not exist on this cluster; create it first (kubectl create namespace "
            f"{namespace}), then restore"
        ) from exc
    except KubeForbidden:
        return  # a namespaced Role cannot read Namespace objects; the create says it if the namespace is missing


def _check_lock(
    client: KubeClient, plan: RestorePlan, live: dict[int, Live], options: RestoreOptions, now: float
) -> None:
    """Writing under a Helm client that is still working would lose its work or ours: a release whose newest
    record is pending is restored only once the lock verdict says stale (the verdict unlock uses)."""
    if not live:
        return
    newest = live[max(live)]
    if newest.status not in PENDING_STATUSES or newest.meta is None:
        return
    record = decode_record(newest.obj, plan.backup.driver, newest.meta)
    written_at = record.meta.written_at
    verdict = lock_verdict(
        newest_record(plan.backup.namespace, record.release, written_at, now),
        LiveIndex(client, Discovery(client)),
        LockOptions(options.stale_after, options.client_timeout),
        now,
    )
    plan.lock = verdict
    if verdict.get("verdict") == "stale":
        return
    evidence = verdict.get("evidence") or ["no verdict"]
    if not options.force:
        raise ModuleError(
            f"refusing to restore {plan.backup.namespace}/{plan.backup.release}: its newest revision "
            f"{record.revision} is {record.status} and an operation may still be running: {'; '.join(evidence)}. "
            "Wait, or set force: true if you are sure no Helm client is working on it.",
            lock=verdict,
        )
    plan.overridden = list(evidence)


# --- writing --------------------------------------------------------------------


def backup_replaced(plan: RestorePlan, backup_dir: str) -> str | None:
    """Save what the restore replaces or deletes, as the API returned it (restorable in turn)."""
    objects = [step.live.obj for step in plan.writes if step.live is not None]
    if not objects:
        return None
    name = f"{history_name(plan.backup.release)}.{BEFORE_RESTORE}"
    return save_records(backup_dir, plan.backup.namespace, plan.backup.release, name, objects)


def apply_restore(client: KubeClient, plan: RestorePlan) -> None:
    """Newer revisions go first (newest first), so Helm never sees restored history under them; then the
    replaced records, then the created ones, oldest first. A second run finishes an interrupted one."""
    storage = ReleaseStorage(client, plan.backup.driver)
    restored_at = utc_now()
    for step in sorted(plan.writes, key=lambda s: -s.revision):
        if step.action == "delete" and step.live is not None:
            storage.delete_object(step.live.obj)
    for action in ("replace", "create"):
        for step in plan.writes:
            if step.action != action or step.record is None:
                continue
            body = restorable(step.record, restored_at)
            if step.live is None:
                storage.create_object(body)
            else:
                storage.update_object(body, str((step.live.obj.get("metadata") or {}).get("resourceVersion") or ""))


def restorable(record: BackupRecord, restored_at: str) -> dict[str, t.Any]:
    """The record as it was saved, without the identity its old object had on the API server (uid,
    resourceVersion, times, managed fields), marked with where it came from."""
    saved = record.obj.get("metadata") or {}
    annotations = {
        **(saved.get("annotations") or {}),
        f"{ANNOTATION_PREFIX}/restored-at": restored_at,
        f"{ANNOTATION_PREFIX}/restored-from": os.path.basename(record.file),
    }
    body: dict[str, t.Any] = {
        "apiVersion": "v1",
        "kind": record.obj["kind"],
        "metadata": {
            "name": record.meta.name,
            "namespace": record.meta.namespace,
            "labels": dict(saved.get("labels") or {}),
            "annotations": annotations,
        },
        "data": dict(record.obj.get("data") or {}),
    }
    if record.meta.driver == "secret":
        body["type"] = record.obj.get("type") or SECRET_TYPE
    return body


def record_event(client: KubeClient, plan: RestorePlan) -> str | None:
    """A Kubernetes Event on the newest restored record; returns a warning if it failed."""
    backup = plan.backup
    actions = {action: [s.revision for s in plan.writes if s.action == action] for action in ("create", "replace")}
    deleted = [s.revision for s in plan.writes if s.action == "delete"]
    note = (
        f"helmops.recovery restore of release {backup.release} from {len(backup.files)} backup file(s) "
        f"({backup.pick} copy of each record): "
        f"created revision(s) {actions['create'] or 'none'}, replaced {actions['replace'] or 'none'}, "
        f"deleted newer {deleted or 'none'}"
    )
    event = ReleaseEvent(
        namespace=backup.namespace,
        release=backup.release,
        record_name=backup.records[backup.newest].meta.name,
        driver=backup.driver,
        reason="HelmReleaseRestored",
        action="restore",
        note=note,
        module="helm_release_restore",
        name_hint="restore",
    )
    return post_event(client, event)


def next_step(plan: RestorePlan) -> str:
    """What to run next: the records are back, the workloads are as the last Helm run left them."""
    backup = plan.backup
    newest = backup.records[backup.newest]
    where = f"{backup.release} -n {backup.namespace}"
    env = "HELM_DRIVER=configmap " if backup.driver == "configmap" else ""
    if newest.status in PENDING_STATUSES:
        return (
            f"the newest restored revision {backup.newest} is {newest.status}, the lock it had before; the cluster's "
            f"objects were not changed. Check with helmops.recovery.triage, and when it is stale recover with "
            f"helmops.recovery.remediate or `{env}helm rollback {where}`."
        )
    return (
        f"only Helm's records were restored; the cluster's objects were not. Compare `{env}helm get manifest {where}` "
        f"with the cluster, then converge with `{env}helm rollback {where} <revision>` or `helm upgrade`."
    )
