# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Restoring a release's records from this collection's backups (and importing an export).

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

``load_backup`` reads and validates backup files (a Kubernetes ``List`` of
release records with this collection's header, as _backup.py writes them:
the cluster, the time, and the release's records at that time);
``plan_restore`` compares them with the records the cluster has now and
decides, record by record, to create, replace, delete or keep; ``apply_restore``
writes that plan: creates that fail if the record appeared meanwhile, and
updates and deletes guarded by the resourceVersion the plan read. Only Helm's
records are restored, never the release's workloads: Helm itself converges the
cluster afterwards.

The point in time restored is one backup's (the newest given, or the oldest):
a record the cluster has now counts as the same history only if that backup's
header lists it (name and uid); any other is history written since, replaced
or deleted only when asked to.
"""

from __future__ import annotations

import json
import os
import shlex
import typing as t
from dataclasses import dataclass, field

from ._backup import BEFORE_RESTORE, HEADER, save_records, taken_from
from ._errors import ModuleError
from ._events import ReleaseEvent, post_event
from ._history import LOCKING_STATUSES
from ._k8s import KubeClient, KubeError, KubeNotFound, namespace_exists
from ._live import Discovery, LiveIndex
from ._lock import LockOptions, lock_verdict, newest_record
from ._release_codec import (
    PENDING_STATUSES,
    SECRET_TYPE,
    Driver,
    InvalidNameError,
    RecordMeta,
    ReleaseRecordError,
    decode_record,
    history_name,
    parse_helm_time,
    parse_object_name,
    record_meta_from_object,
    utc_now,
    validate_namespace_name,
    validate_release_name,
)
from ._storage import ReleaseStorage

# A backup holds one release's history: with records at Kubernetes' 1 MiB object limit, 256 MiB is a history of
# over 250 revisions (ten times Helm's usual --history-max). Files are refused before they are read beyond these
# bounds, so a wrong path cannot exhaust memory.
MAX_BACKUP_FILE_BYTES = 256 * 1024 * 1024
MAX_BACKUP_TOTAL_BYTES = 512 * 1024 * 1024
ANNOTATION_PREFIX = "helmops.recovery"
_KINDS: dict[str, Driver] = {"Secret": "secret", "ConfigMap": "configmap"}


@dataclass(frozen=True)
class BackupRecord:
    """One release record as a backup file holds it."""

    obj: dict[str, t.Any]
    meta: RecordMeta
    status: str
    file: str


@dataclass
class BackupFile:
    """One backup file: its header (where and when it was taken, the release's records then) and records."""

    path: str
    cluster: str
    taken_at: float
    export: bool
    history: frozenset[tuple[str, str]]  # (name, uid) of every record the release had when it was taken
    records: list[BackupRecord]


@dataclass
class Backup:
    """The records restored: each revision's copy from the backup files of one point in time."""

    namespace: str
    release: str
    driver: Driver
    records: dict[int, BackupRecord]
    files: list[str]
    cluster: str
    export: bool
    history: frozenset[tuple[str, str]]  # the release's records at the point in time restored
    pick: str = "newest"
    warnings: list[str] = field(default_factory=list)

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
    other_cluster: bool = False
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
    since: bool  # written since the point in time restored (its name and uid are not in that backup's header)


@dataclass
class Step:
    """What the restore does to one revision: create, replace, delete or keep."""

    revision: int
    action: str
    before: str | None  # the live record's status (None: absent)
    after: str | None  # its status afterwards (None: absent)
    record: BackupRecord | None = None
    live: Live | None = None

    @property
    def newer(self) -> bool:
        """The cluster's record here was written after the backup: replacing or deleting it loses newer history."""
        return self.live is not None and self.live.since and self.action in ("replace", "delete")

    def summary(self) -> dict[str, t.Any]:
        return {
            "revision": self.revision,
            "action": self.action,
            "status_before": self.before,
            "status": self.after,
            "written_since_backup": bool(self.live and self.live.since),
        }


@dataclass
class RestorePlan:
    backup: Backup
    steps: list[Step]
    lock: dict[str, t.Any] = field(default_factory=dict)
    overridden: list[str] = field(default_factory=list)
    done: list[dict[str, t.Any]] = field(default_factory=list)

    @property
    def writes(self) -> list[Step]:
        return [step for step in self.steps if step.action != "keep"]

    def diff(self) -> dict[str, t.Any]:
        """Every revision's status before and after ("absent": no record); never values or manifests."""

        def state(status: str | None) -> str:
            return status or "absent"

        return {
            "before": {f"revision {s.revision}": state(s.before) for s in self.steps},
            "after": {f"revision {s.revision}": state(s.after) for s in self.steps},
        }


# --- reading backups ----------------------------------------------------------


def load_backup(paths: t.Sequence[str], pick: str = "newest") -> Backup:
    """The backups given: files, and in each directory given the newest backup step (its newest file, with
    the files taken with it: a prune saves each record it deletes in a file of its own). The backups a restore
    takes of what it replaced are left out of a directory, so restoring one twice does the same thing twice.

    The point in time restored is the newest file's (``pick=newest``: undo the last step) or the oldest's
    (``pick=oldest``: undo every step of the files given); each record comes from the copy nearest to it."""
    if pick not in ("newest", "oldest"):
        raise ModuleError(f"pick must be newest or oldest, not {pick!r}")
    files: list[BackupFile] = []
    budget = [MAX_BACKUP_TOTAL_BYTES]
    for given in paths:
        path = os.path.expanduser(given)
        if os.path.isdir(path):
            files += _newest_step(path, budget)
        elif os.path.isfile(path):
            files.append(_read_file(path, budget))
        else:
            raise ModuleError(f"backup {path}: no such file or directory")
    if not files:
        raise ModuleError("no backup was given (path is empty)")
    files = sorted({f.path: f for f in files}.values(), key=lambda f: (f.taken_at, f.path))
    identity = _one_release(", ".join(paths), files)
    point = files[-1] if pick == "newest" else files[0]
    chosen = _copies(files, point, pick)
    if not chosen:
        raise ModuleError(f"backup {point.path}: it holds no record of the release as it was then")
    warnings = [
        f"revision {r.meta.revision} ({os.path.basename(r.file)}): its status label says {r.meta.status_label!r}, "
        f"its payload {r.status!r}; restored as saved (Helm reads the payload)"
        for r in chosen.values()
        if r.meta.status_label != r.status
    ]
    namespace, release, driver = identity
    return Backup(
        namespace=namespace,
        release=release,
        driver=driver,
        records=chosen,
        files=[f.path for f in files],
        cluster=point.cluster,
        export=point.export,
        history=point.history,
        pick=pick,
        warnings=warnings,
    )


def _copies(files: list[BackupFile], point: BackupFile, pick: str) -> dict[int, BackupRecord]:
    """Each record the release had at the point in time, from the copy nearest to it. Going back to the
    newest backup, that is its step's files alone (files with the same history: records the step did not save
    were not changed by it); going back to the oldest, the oldest copy in any file given (every step saved what
    it was about to change before changing it)."""
    if pick == "newest":
        candidates = [f for f in files if f.history == point.history and f.cluster == point.cluster]
    else:
        candidates = files[::-1]  # the last copy of a revision wins: the oldest file's
    chosen: dict[int, BackupRecord] = {}
    for file in candidates:
        for record in file.records:
            if (record.meta.name, str(record.obj["metadata"].get("uid") or "")) in point.history or point.export:
                chosen[record.meta.revision] = record
    return chosen


def _newest_step(directory: str, budget: list[int]) -> list[BackupFile]:
    """The newest backup file of a directory and the files taken with it (the same cluster and history)."""
    names = sorted(
        (
            name
            for name in os.listdir(directory)
            if name.endswith(".json") and f".{BEFORE_RESTORE}." not in name and not name.startswith(".")
        ),
        key=lambda name: (name.rsplit(".", 3)[-3:-1], name),  # <name>.<date>T<time>.<micro>Z.json
        reverse=True,
    )
    names = [name for name in names if os.path.isfile(os.path.join(directory, name))]
    if not names:
        raise ModuleError(f"backup directory {directory} holds no backup files (<record name>.<time>.json)")
    newest = _read_file(os.path.join(directory, names[0]), budget)
    step = [newest]
    for name in names[1:]:
        file = _read_file(os.path.join(directory, name), budget)
        if (file.cluster, file.history) != (newest.cluster, newest.history):
            break
        step.append(file)
    return step


def _read_file(path: str, budget: list[int]) -> BackupFile:
    size = os.path.getsize(path)
    if size > MAX_BACKUP_FILE_BYTES or size > budget[0]:
        raise ModuleError(
            f"backup {path}: {size} bytes, more than a restore reads ({MAX_BACKUP_FILE_BYTES} per file, "
            f"{MAX_BACKUP_TOTAL_BYTES} in all); give fewer files, or not a release's backup"
        )
    budget[0] -= size
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except RecursionError as exc:
        raise ModuleError(f"backup {path}: nested too deeply to be a backup") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModuleError(f"backup {path}: not readable as JSON ({exc}); it is truncated or not a backup") from exc
    if not isinstance(document, dict) or document.get("kind") != "List" or document.get("apiVersion") != "v1":
        raise ModuleError(f"backup {path}: not a backup written by helmops.recovery (a Kubernetes v1 List)")
    cluster, taken_at, export, history = _header(path, document.get(HEADER))
    items = document.get("items")
    if not isinstance(items, list) or not items:
        raise ModuleError(f"backup {path}: the List holds no release records")
    records: dict[str, BackupRecord] = {}
    for index, item in enumerate(items):
        record = _record(path, index, item)
        if record.meta.ref in records:
            raise ModuleError(f"backup {path}: revision {record.meta.revision} appears twice")
        records[record.meta.ref] = record
    file = BackupFile(path, cluster, taken_at, export, history, list(records.values()))
    _one_release(path, [file])
    return file


def _header(path: str, header: t.Any) -> tuple[str, float, bool, frozenset[tuple[str, str]]]:
    """Where and when the backup was taken, and the release's records then; without it a file is not ours."""
    where = f"backup {path}"
    if not isinstance(header, dict):
        raise ModuleError(
            f"{where}: it has no {HEADER} header, so it is not a backup written by helmops.recovery (a List of "
            "records from kubectl is not: its history and cluster are unknown)"
        )
    cluster, taken_at, export, history = (header.get(k) for k in ("cluster", "takenAt", "export", "history"))
    when = parse_helm_time(taken_at)
    entries = history if isinstance(history, list) else None
    if not isinstance(cluster, str) or when is None or not isinstance(export, bool) or entries is None:
        raise ModuleError(f"{where}: its {HEADER} header is not one helmops.recovery writes (edited by hand?)")
    names = set()
    for entry in entries:
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("name", "uid")):
            raise ModuleError(f"{where}: its {HEADER} header lists a record without a name and uid")
        names.add((entry["name"], entry["uid"]))
    return cluster, when, export, frozenset(names)


def _record(path: str, index: int, item: t.Any) -> BackupRecord:
    where = f"backup {path}, item {index}"
    if not isinstance(item, dict) or item.get("apiVersion") != "v1" or item.get("kind") not in _KINDS:
        raise ModuleError(f"{where}: not a Secret or ConfigMap, so not a Helm release record")
    _check_shape(where, item)
    driver = _KINDS[item["kind"]]
    try:
        meta = record_meta_from_object(item, driver)
        validate_release_name(meta.release)
        validate_namespace_name(meta.namespace)
        decoded = decode_record(item, driver, meta)
    except (ReleaseRecordError, InvalidNameError) as exc:
        raise ModuleError(f"{where}: {exc}") from exc
    payload_namespace = decoded.release.get("namespace")
    if payload_namespace != meta.namespace:
        raise ModuleError(
            f"{where} ({meta.ref}): the record is stored in namespace {meta.namespace!r} but describes a release "
            f"in {payload_namespace!r}; the file was edited, so it is not restored"
        )
    return BackupRecord(obj=item, meta=meta, status=decoded.status, file=path)


def _check_shape(where: str, item: dict[str, t.Any]) -> None:
    """The fields a restore writes back must have the types the API server takes (strings everywhere)."""
    metadata = item.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise ModuleError(f"{where}: its metadata has no name")
    for key in ("labels", "annotations"):
        value = metadata.get(key) or {}
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ModuleError(f"{where}: metadata.{key} is not a map of strings")
    data = item.get("data")
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ModuleError(f"{where}: data is not a map of strings")


def _one_release(path: str, files: list[BackupFile]) -> tuple[str, str, Driver]:
    identities = sorted({(r.meta.namespace, r.meta.release, r.meta.driver) for f in files for r in f.records})
    if len(identities) != 1:
        found = ", ".join(f"{driver} records of {namespace}/{release}" for namespace, release, driver in identities)
        raise ModuleError(f"backup {path} holds {found}; a restore takes one release's backups")
    clusters = sorted({f.cluster for f in files})
    if len(clusters) != 1:
        raise ModuleError(f"backup {path} holds backups of several clusters ({', '.join(clusters)})")
    return identities[0]


# --- planning -------------------------------------------------------------------


def plan_restore(client: KubeClient, backup: Backup, options: RestoreOptions, now: float) -> RestorePlan:
    """Decide, record by record; raise ModuleError when a guard refuses."""
    _check_target(client, backup, options)
    storage = ReleaseStorage(client, backup.driver)
    live = _live_records(storage, backup)
    _refuse_other_driver(client, backup)
    steps = [_backup_step(revision, record, live.get(revision)) for revision, record in backup.records.items()]
    steps += [_live_step(revision, entry) for revision, entry in live.items() if revision not in backup.records]
    steps.sort(key=lambda step: step.revision)
    plan = RestorePlan(backup, steps)
    _refuse_unasked(plan, options)
    if plan.writes:
        _check_creates(client, storage, plan)
        _check_lock(client, plan, live, options, now)
    return plan


def _check_target(client: KubeClient, backup: Backup, options: RestoreOptions) -> None:
    """Helm records name their namespace inside the payload and are read by one driver: the backup is restored
    where it came from, as it was stored, and a stated release, namespace or driver must be the backup's. A
    backup of another cluster is restored only as an import (an export, or other_cluster: true)."""
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
    if backup.cluster != client.host and not (backup.export or options.other_cluster):
        raise ModuleError(
            f"the backup was taken on the cluster at {backup.cluster}, and this is {client.host}: restoring it "
            "here would put another cluster's history (and values) on this release. To move a release, export it "
            "(helm_release_backup export: true); if this is the same cluster under another address, set "
            "other_cluster: true"
        )


def _live_records(storage: ReleaseStorage, backup: Backup) -> dict[int, Live]:
    live: dict[int, Live] = {}
    for meta, obj in storage.list_objects(backup.namespace, backup.release):
        metadata = obj.get("metadata") or {}
        parsed = parse_object_name(str(metadata.get("name") or ""))
        if parsed is None or parsed[0] != backup.release:
            continue  # labelled name=<release> but not one of its records: not ours to touch
        identity = (str(metadata.get("name")), str(metadata.get("uid") or ""))
        valid = None if isinstance(meta, ReleaseRecordError) else meta
        status = (metadata.get("labels") or {}).get("status")
        live[parsed[1]] = Live(obj, valid, status, since=identity not in backup.history)
    return live


def _refuse_other_driver(client: KubeClient, backup: Backup) -> None:
    """Records of the release under the other driver would make two histories, each seen by one HELM_DRIVER."""
    other: Driver = "configmap" if backup.driver == "secret" else "secret"
    found = next(iter(ReleaseStorage(client, other).list_meta(backup.namespace, backup.release)), None)
    if found is not None:
        raise ModuleError(
            f"release {backup.release} in {backup.namespace} has {other} records here, and the backup holds "
            f"{backup.driver} records: restoring them would give it two histories; restore with the driver it uses"
        )


def _backup_step(revision: int, record: BackupRecord, live: Live | None) -> Step:
    if live is None:
        return Step(revision, "create", None, record.status, record=record)
    action = "keep" if _same_record(record.obj, live.obj) else "replace"  # the same content: nothing to do
    return Step(revision, action, live.status, record.status, record=record, live=live)


def _live_step(revision: int, live: Live) -> Step:
    """A revision only the cluster has: newer history, or one the backed-up steps never changed."""
    if live.since:
        return Step(revision, "delete", live.status, None, live=live)
    return Step(revision, "keep", live.status, live.status, live=live)


def _same_record(saved: dict[str, t.Any], live: dict[str, t.Any]) -> bool:
    """What Helm reads: the payload, the labels and (Secrets) the type; annotations are ours to add."""

    def content(obj: dict[str, t.Any]) -> tuple[t.Any, ...]:
        return (obj.get("data") or {}, (obj.get("metadata") or {}).get("labels") or {}, obj.get("type"))

    return content(saved) == content(live)


def _refuse_unasked(plan: RestorePlan, options: RestoreOptions) -> None:
    refusals = []
    newer = [s for s in plan.steps if s.newer]
    if newer and not options.discard_newer:
        listed = ", ".join(f"{s.revision} ({s.before})" for s in newer)
        refusals.append(
            f"revision(s) {listed} were written after the backup was taken: restoring would replace or delete "
            "newer history; set discard_newer: true to do it (after a backup of them), or restore a newer backup"
        )
    replaced = [s for s in plan.steps if s.action == "replace" and not s.newer]
    if replaced and not options.overwrite:
        listed = ", ".join(f"{s.revision} (now {s.before}, the backup says {s.after})" for s in replaced)
        refusals.append(
            f"revision(s) {listed} exist and differ from the backup; set overwrite: true to replace them (what they "
            "hold now is backed up first)"
        )
    if refusals:
        raise ModuleError(
            f"refusing to restore {plan.backup.namespace}/{plan.backup.release}: " + "; ".join(refusals),
            restore=[s.summary() for s in plan.steps],
        )


def _check_creates(client: KubeClient, storage: ReleaseStorage, plan: RestorePlan) -> None:
    """A record to create must not exist under its name (an object the label selector did not list, its
    labels changed by hand): the create would fail after other writes were made. An import also needs the
    namespace: say so before any write (Helm's --create-namespace is not ours to imitate)."""
    creates = [step.record for step in plan.writes if step.action == "create" and step.record is not None]
    if creates and not any(step.live for step in plan.steps):
        _require_namespace(client, plan.backup.namespace)
    for record in creates:
        try:
            storage.get_object(plan.backup.namespace, record.meta.name)
        except KubeNotFound:
            continue
        raise ModuleError(
            f"{record.meta.ref} exists but is not listed as a record of {plan.backup.release} (its labels "
            "were changed); look at it and delete or relabel it before restoring"
        )


def _require_namespace(client: KubeClient, namespace: str) -> None:
    if not namespace_exists(client, namespace):
        raise ModuleError(
            f"namespace {namespace} does not exist on this cluster; create it first (kubectl create namespace "
            f"{shlex.quote(namespace)}), then restore"
        )


def _check_lock(
    client: KubeClient, plan: RestorePlan, live: dict[int, Live], options: RestoreOptions, now: float
) -> None:
    """Writing under a Helm client that is still working would lose its work or ours: a release whose newest
    record locks it (pending, or uninstalling: Helm deletes the history it read once the uninstall is done,
    pkg/action/uninstall.go) is restored only once the lock verdict says stale (the verdict unlock uses).
    A newest record that cannot be read gives no verdict: only force restores under it."""
    if not live:
        return
    newest = live[max(live)]
    if newest.meta is not None and newest.status not in LOCKING_STATUSES:
        return
    verdict: dict[str, t.Any] = {"verdict": "unknown", "evidence": ["the newest record cannot be read"]}
    if newest.meta is not None:
        try:
            record = decode_record(newest.obj, plan.backup.driver, newest.meta)
        except ReleaseRecordError as exc:
            verdict["evidence"] = [f"the newest record cannot be read: {exc}"]
        else:
            if record.status not in LOCKING_STATUSES:
                return
            verdict = lock_verdict(
                newest_record(plan.backup.namespace, record.release, record.meta.written_at, now),
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
            f"{max(live)} is {newest.status} and an operation may still be running: {'; '.join(evidence)}. "
            "Wait, or set force: true if you are sure no Helm client is working on it.",
            lock=verdict,
        )
    plan.overridden = list(evidence)


# --- writing --------------------------------------------------------------------


def backup_replaced(client: KubeClient, plan: RestorePlan, backup_dir: str) -> str | None:
    """Save what the restore replaces or deletes, as the API returned it (restorable in turn)."""
    objects = [step.live.obj for step in plan.writes if step.live is not None]
    if not objects:
        return None
    name = f"{history_name(plan.backup.release)}.{BEFORE_RESTORE}"
    taken = taken_from(client.host, [step.live.obj for step in plan.steps if step.live is not None])
    return save_records(backup_dir, plan.backup.namespace, plan.backup.release, name, objects, taken=taken)


def apply_restore(client: KubeClient, plan: RestorePlan) -> None:
    """Newer revisions go first (newest first), so Helm never sees restored history under them; then the
    replaced records, then the created ones, oldest first. A second run finishes an interrupted one; a
    failure says what was done before it (``plan.done``)."""
    storage = ReleaseStorage(client, plan.backup.driver)
    restored_at = utc_now()
    order = sorted((s for s in plan.writes if s.action == "delete"), key=lambda s: -s.revision)
    order += [s for s in plan.writes if s.action == "replace"] + [s for s in plan.writes if s.action == "create"]
    for step in order:
        try:
            _write(storage, step, restored_at)
        except KubeError as exc:
            raise ModuleError(
                f"the restore of {plan.backup.namespace}/{plan.backup.release} stopped at revision {step.revision} "
                f"({step.action}): {exc}. Done before it: {plan.done or 'nothing'}; running it again continues",
                done=plan.done,
            ) from exc
        plan.done.append({"revision": step.revision, "action": step.action})


def _write(storage: ReleaseStorage, step: Step, restored_at: str) -> None:
    if step.action == "delete" and step.live is not None:
        storage.delete_object(step.live.obj)
    elif step.record is not None:
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
        f"({backup.pick} point in time): "
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
    where = f"{shlex.quote(backup.release)} -n {shlex.quote(backup.namespace)}"
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
