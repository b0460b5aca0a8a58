# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pruning release history without an upgrade: plan, then delete.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

The plan keeps the newest ``keep`` revisions of each release and never
deletes the newest revision, the last deployed one, the last known-good one
(the rollback target), or any pending or uninstalling revision. Deletes go
oldest first, each with uid + resourceVersion preconditions, with bounded
concurrency; a record that changed since it was read is kept and reported.
"""

from __future__ import annotations

import re
import threading
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ._backup import Taken, save_records
from ._errors import GuardRefused, ModuleError
from ._history import KNOWN_GOOD_STATUSES, ROLLBACK_STATUSES, rollback_target
from ._k8s import KubeClient, KubeConflict, KubeError, KubeNotFound, KubeUnreachable
from ._release_codec import (
    PENDING_STATUSES,
    Driver,
    RecordMeta,
    ReleaseRecordError,
    parse_object_name,
)
from ._storage import ReleaseStorage, selector

# Only these may be pruned; a status Helm may add later is left alone.
PRUNABLE_STATUSES = ("superseded", "failed", "uninstalled", "deployed", "unknown")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str | int | None) -> int | None:
    """'30d', '12h', '90m', '3600s' or a number of seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    match = _DURATION.match(str(value))
    if not match:
        raise ModuleError(f"older_than {value!r} is not a duration such as 30d, 12h, 90m or 3600 (seconds)")
    return int(match.group(1)) * _SECONDS[match.group(2)]


@dataclass
class PruneOptions:
    namespace: str | None = None
    releases: list[str] | None = None
    keep: int = 10
    older_than: int | None = None
    statuses: list[str] | None = None
    backup_dir: str | None = None
    concurrency: int = 4
    now: float = field(default_factory=time.time)


@dataclass
class _Entry:
    meta: RecordMeta
    status: str
    written_at: float
    obj: dict[str, t.Any] | None  # kept only with a backup_dir, for records that may be deleted
    description: str = ""


@dataclass
class ReleasePlan:
    namespace: str
    release: str
    kept: list[int] = field(default_factory=list)
    delete: list[_Entry] = field(default_factory=list)
    protected: list[dict[str, t.Any]] = field(default_factory=list)
    skipped: list[dict[str, t.Any]] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    backup_files: list[str] = field(default_factory=list)
    history: tuple[tuple[str, str], ...] = ()  # (name, uid) of every record when planned, for the backups

    @property
    def before(self) -> list[int]:
        return sorted(self.kept + [e.meta.revision for e in self.delete])

    def result(self, done: bool) -> dict[str, t.Any]:
        deleted = self.deleted if done else [e.meta.revision for e in self.delete]
        by_revision = {e.meta.revision: e for e in self.delete}
        return {
            "namespace": self.namespace,
            "release": self.release,
            "kept": sorted(set(self.before) - set(deleted)),
            "deleted": sorted(deleted),
            "protected": self.protected,
            "skipped": self.skipped,
            "bytes_reclaimed": sum(by_revision[n].meta.size or 0 for n in deleted),
            "errors": self.errors,
            **({"backup_files": self.backup_files} if self.backup_files else {}),
        }


def plan_prune(client: KubeClient, driver: Driver, options: PruneOptions) -> tuple[list[ReleasePlan], list[str]]:
    """One plan per release in scope, and scope-level errors."""
    storage = ReleaseStorage(client, driver)
    label_selector = selector()
    if options.releases:
        names = sorted(set(options.releases))
        label_selector += f",name in ({','.join(names)})" if len(names) > 1 else f",name={names[0]}"
    entries: dict[tuple[str, str], list[_Entry]] = {}
    unreadable: dict[tuple[str, str], int] = {}  # releases with records that cannot be read
    errors: list[str] = []
    for meta, obj in storage.list_objects(options.namespace, label_selector=label_selector):
        if isinstance(meta, ReleaseRecordError):
            errors.append(f"{meta} (left alone)")
            _count_unreadable(unreadable, obj)
            continue
        try:
            # Whole records, checked against their object names: deletes decide on them.
            record = storage.decode(obj, meta)
        except ReleaseRecordError as exc:
            errors.append(f"{exc} (left alone)")
            _count_unreadable(unreadable, obj)
            continue
        written_at = meta.written_at or options.now  # unknown: treat as new, so older_than never prunes it
        kept_obj = obj if options.backup_dir else None  # whole objects only when they are to be backed up
        entry = _Entry(meta, record.status, written_at, kept_obj, record.description)
        entries.setdefault((meta.namespace, meta.release), []).append(entry)
    for wanted in options.releases or []:
        if not any(name == wanted for _ns, name in {*entries, *unreadable}):
            where = f"namespace {options.namespace}" if options.namespace else "any namespace"
            errors.append(f"release {wanted!r} not found in {where} ({storage.kind} records, owner=helm)")
    plans = [
        _plan_release(ns, name, sorted(items, key=lambda e: e.meta.revision), options)
        for (ns, name), items in sorted(entries.items())
    ]
    for plan in plans:
        if (plan.namespace, plan.release) in unreadable:
            _leave_alone(plan, unreadable[(plan.namespace, plan.release)])
    return plans, errors


def _count_unreadable(unreadable: dict[tuple[str, str], int], obj: dict[str, t.Any]) -> None:
    metadata = obj.get("metadata") or {}
    parsed = parse_object_name(str(metadata.get("name") or ""))
    if parsed is not None:
        key = (str(metadata.get("namespace") or ""), parsed[0])
        unreadable[key] = unreadable.get(key, 0) + 1


def _leave_alone(plan: ReleasePlan, bad_records: int) -> None:
    """A release with a record that cannot be read: its newest, last deployed and
    last known-good revisions are unknown, so nothing of it is deleted."""
    reason = f"kept: {bad_records} record(s) of this release cannot be read, so its protected revisions are unknown"
    plan.skipped.extend({"revision": e.meta.revision, "reason": reason} for e in plan.delete)
    plan.kept = sorted(plan.kept + [e.meta.revision for e in plan.delete])
    plan.delete = []


def _protections(ordered: list[_Entry]) -> dict[int, list[str]]:
    reasons: dict[int, list[str]] = {}

    def protect(entry: _Entry, reason: str) -> None:
        reasons.setdefault(entry.meta.revision, []).append(reason)

    protect(ordered[-1], "newest revision")
    # Helm's upgrade diffs against the newest record *labelled* deployed (storage.Deployed selects by
    # label); the payload says what was deployed: when they disagree, both are kept.
    for deployed in (
        [e for e in ordered if e.status == "deployed"],
        [e for e in ordered if e.meta.status_label == "deployed"],
    ):
        if deployed and "last deployed revision" not in reasons.get(deployed[-1].meta.revision, []):
            protect(deployed[-1], "last deployed revision")
    known_good = [e for e in ordered if e.status in KNOWN_GOOD_STATUSES]
    if known_good:
        protect(known_good[-1], "last known-good revision (rollback target)")
    if ordered[-1].status in ROLLBACK_STATUSES:
        # The revision a recovery rolls back to (_history.py): an interrupted rollback's own target, say.
        target = rollback_target({e.meta.revision: (e.status, e.description) for e in ordered})
        aimed = [e for e in ordered if e.meta.revision == target and e is not known_good[-1]]
        for entry in aimed:
            protect(entry, "the revision an interrupted rollback aimed at (rollback target)")
    for entry in ordered:
        for status in dict.fromkeys((entry.status, entry.meta.status_label)):
            if status in PENDING_STATUSES or status == "uninstalling":
                protect(entry, f"{status} revision")
            elif status is not None and status not in PRUNABLE_STATUSES:
                protect(entry, f"unrecognised status {status!r}")
    return reasons


def _plan_release(namespace: str, release: str, ordered: list[_Entry], options: PruneOptions) -> ReleasePlan:
    plan = ReleasePlan(namespace, release)
    plan.history = tuple(sorted((e.meta.name, e.meta.uid) for e in ordered))
    protections = _protections(ordered)
    newest = {e.meta.revision for e in ordered[-options.keep :]} if options.keep > 0 else set()
    for entry in ordered:
        revision = entry.meta.revision
        reasons = protections.get(revision)
        if reasons:
            plan.protected.append({"revision": revision, "reasons": reasons})
        if reasons or revision in newest or not _selected(entry, options):
            plan.kept.append(revision)
            entry.obj = None  # only records to delete keep their object (for the backup)
        else:
            plan.delete.append(entry)
    return plan


def _selected(entry: _Entry, options: PruneOptions) -> bool:
    """Whether the statuses / older_than filters let this record go."""
    if options.statuses and entry.status not in options.statuses:
        return False
    return options.older_than is None or options.now - entry.written_at >= options.older_than


def apply_prune(client: KubeClient, driver: Driver, plans: list[ReleasePlan], options: PruneOptions) -> None:
    """Delete every planned record: per release oldest first, releases in parallel."""
    storage = ReleaseStorage(client, driver)
    workers = max(1, min(options.concurrency, 16))
    if options.backup_dir:
        for plan in plans:
            for entry in plan.delete:
                taken = Taken(cluster=client.host, history=plan.history)
                objects = [entry.obj or {}]
                name = entry.meta.name
                path = save_records(options.backup_dir, plan.namespace, plan.release, name, objects, taken=taken)
                plan.backup_files.append(path)
    unreachable = threading.Event()  # the API server is gone: every release stops
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda plan: _delete_release(storage, plan, unreachable), plans))


def _delete_release(storage: ReleaseStorage, plan: ReleasePlan, unreachable: threading.Event) -> None:
    # Oldest first, one at a time within a release (releases run in parallel): an
    # interruption leaves the newer planned records, never a gap below a deleted one.
    # So the first delete that fails ends the release's run and the newer ones are kept;
    # once the API server cannot be reached, every release stops.
    for index, entry in enumerate(plan.delete):
        if unreachable.is_set():
            _not_attempted(plan, plan.delete[index:], "the API server could not be reached")
            return
        if not _delete_one(storage, plan, entry, unreachable):
            _not_attempted(plan, plan.delete[index + 1 :], "an older delete failed")
            return


def _not_attempted(plan: ReleasePlan, entries: list[_Entry], why: str) -> None:
    plan.skipped.extend({"revision": e.meta.revision, "reason": f"not attempted: {why}; kept"} for e in entries)


def _delete_one(storage: ReleaseStorage, plan: ReleasePlan, entry: _Entry, unreachable: threading.Event) -> bool:
    """Delete one record; False when it failed (the release's run stops there)."""
    try:
        storage.delete(entry.meta)
        plan.deleted.append(entry.meta.revision)
    except KubeNotFound:
        plan.deleted.append(entry.meta.revision)  # already gone (an earlier, interrupted run)
    except KubeConflict:
        plan.skipped.append({"revision": entry.meta.revision, "reason": "changed since it was read; kept"})
    except GuardRefused as exc:  # read without uid/resourceVersion: never deleted unconditionally
        plan.skipped.append({"revision": entry.meta.revision, "reason": f"{exc}; kept"})
    except KubeError as exc:
        if isinstance(exc, KubeUnreachable):
            unreachable.set()
        plan.errors.append(str(exc))
        return False
    return True
