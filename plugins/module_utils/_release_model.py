# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One release as read from its records: its revisions, the payloads kept whole,
and the parsed manifests of those; what the listing builds and the fact
builders (facts, live comparison, risks) read.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ._history import DEFAULT_HISTORY_THRESHOLD, DEFAULT_STALE_AFTER, ROLLBACK_STATUSES, rollback_target
from ._manifest import ManifestError, ObjectKey, parse_manifest
from ._release_codec import RecordMeta


@dataclass
class Revision:
    meta: RecordMeta
    summary: dict[str, t.Any] | None  # None: listed from metadata only (history="labels")

    @property
    def status(self) -> str:
        if self.summary is None:
            return self.meta.status_label or "unknown"
        return str((self.summary.get("info") or {}).get("status") or "unknown")


@dataclass
class Release:
    namespace: str
    name: str
    revisions: dict[int, Revision] = field(default_factory=dict)
    objects: dict[int, dict[str, t.Any]] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    # (apiVersion, kind) of every object any revision's manifest names (orphan_search="history").
    kinds_ever: set[tuple[str, str]] = field(default_factory=set)

    def add(self, revision: Revision, obj: dict[str, t.Any], *, detach: bool = False) -> None:
        number = revision.meta.revision
        self.revisions[number] = revision
        self.objects[number] = obj
        keep = self.candidates()
        for dropped in [n for n in self.objects if n not in keep]:
            del self.objects[dropped]  # memory stays bounded per release
        if detach and number in self.objects:
            self.objects[number] = _detached(obj)

    def candidates(self) -> set[int]:
        """Revisions whose whole payload the facts read: the latest (what uninstall deletes,
        the lock), the last deployed (the live comparison) and the rollback target (what a
        rollback would delete is the latest manifest less the target's)."""
        ordered = sorted(self.revisions)
        if not ordered:
            return set()
        keep = {ordered[-1]}
        deployed = [n for n in ordered if self.revisions[n].status == "deployed"]
        keep.update(deployed[-1:])
        if self.revisions[ordered[-1]].status in ROLLBACK_STATUSES:
            target = rollback_target(self.history())
            keep.update([target] if target is not None else [])
        return keep

    def history(self) -> dict[int, tuple[str, str]]:
        """revision -> (status, description) as _history reads it (no description from labels)."""
        return {
            number: (revision.status, str(((revision.summary or {}).get("info") or {}).get("description") or ""))
            for number, revision in self.revisions.items()
        }


def _detached(obj: dict[str, t.Any]) -> dict[str, t.Any]:
    """The object with its data copied out of the listing's body: a Secret listed in protobuf
    holds memoryviews of the whole page, which one kept record would otherwise keep alive."""
    data = obj.get("data")
    if not data or not any(isinstance(value, memoryview) for value in data.values()):
        return obj
    return {**obj, "data": {k: bytes(v) if isinstance(v, memoryview) else v for k, v in data.items()}}


@dataclass
class ReleaseView:
    """One release as the fact builders see it."""

    release: Release
    ordered: list[Revision]
    latest_release: dict[str, t.Any]
    latest_objects: list[tuple[ObjectKey, dict[str, t.Any]]]
    deployed_objects: list[tuple[ObjectKey, dict[str, t.Any]]]
    manifests: Manifests | None = None  # None: a brief look read no manifest
    rollback_target: int | None = None

    @property
    def latest(self) -> Revision:
        return self.ordered[-1]


class Manifests:
    """The parsed manifests of the revisions read whole, each parsed once; a manifest that
    cannot be read (or a payload that could not be decoded) is remembered with its cause."""

    def __init__(self, payloads: dict[int, dict[str, t.Any]], namespace: str, refs: dict[int, str]) -> None:
        self._payloads = payloads
        self._namespace = namespace
        self._refs = refs
        self._parsed: dict[int, list[tuple[ObjectKey, dict[str, t.Any]]]] = {}
        self.errors: dict[int, str] = {}

    def read(self, revision: int) -> list[tuple[ObjectKey, dict[str, t.Any]]] | None:
        """The objects of a revision's manifest; None when it cannot be read (see errors)."""
        if revision in self._parsed:
            return self._parsed[revision]
        if revision in self.errors:
            return None
        payload = self._payloads.get(revision)
        if payload is None:
            missing = revision not in self._refs
            self.errors[revision] = f"revision {revision}'s record " + (
                "is not in the history" if missing else "could not be decoded (see record_errors)"
            )
            return None
        what = f"revision {revision}'s manifest ({self._refs.get(revision, 'record')})"
        try:
            self._parsed[revision] = parse_manifest(str(payload.get("manifest") or ""), self._namespace, what=what)
        except ManifestError as exc:
            self.errors[revision] = str(exc)
            return None
        return self._parsed[revision]

    def objects(self, revision: int) -> list[tuple[ObjectKey, dict[str, t.Any]]]:
        return self.read(revision) or []


# --- the release as its facts report it ---------------------------------------------------------------------------
#
# The facts dict is the public contract (helm_release_facts RETURN); it also reaches the plan and the filters as
# JSON. The decision tree reads it through these typed views, never with .get() on nested dicts: a section a brief
# entry omits (live, lock, risks) reads as its empty view.

Entry = t.Mapping[str, t.Any]


def _section(facts: Entry, key: str) -> Entry:
    value = facts.get(key)
    return value if isinstance(value, t.Mapping) else {}


def _entries(section: Entry, key: str) -> list[Entry]:
    return [item for item in section.get(key) or [] if isinstance(item, t.Mapping)]


def _or_default(value: int | None, default: int) -> int:
    return default if value is None else value


def _number(value: t.Any) -> int | None:
    """A count or revision as the facts hold it; anything that is not a whole number reads as unknown."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return int(value)
    except (ValueError, OverflowError):
        return None


@dataclass(frozen=True)
class LockFacts:
    """The lock verdict (_lock.py) as the facts report it."""

    verdict: str | None = None  # stale, possibly-running, not-locked; None: no verdict (a brief entry)
    age_seconds: int | None = None
    client_bound: int | None = None
    stale_after: int = DEFAULT_STALE_AFTER
    evidence: tuple[str, ...] = ()

    @classmethod
    def of(cls, lock: Entry) -> LockFacts:
        return cls(
            verdict=lock.get("verdict"),
            age_seconds=_number(lock.get("age_seconds")),
            client_bound=_number(lock.get("client_bound")),
            stale_after=_or_default(_number(lock.get("stale_after")), DEFAULT_STALE_AFTER),
            evidence=tuple(str(line) for line in lock.get("evidence") or []),
        )


@dataclass(frozen=True)
class LiveFacts:
    """The live comparison (_live.py) as the facts report it."""

    closer_to: str = "unknown"
    workloads_ready: bool | None = None
    stuck_pods: tuple[Entry, ...] = ()
    deployed_missing: tuple[str, ...] = ()
    deployed_total: int | None = None
    owned_by_other_release: tuple[Entry, ...] = ()
    orphans: tuple[Entry, ...] = ()

    @classmethod
    def of(cls, live: Entry) -> LiveFacts:
        ready = live.get("workloads_ready")
        return cls(
            closer_to=str(live.get("closer_to") or "unknown"),
            workloads_ready=None if ready is None else bool(ready),
            stuck_pods=tuple(_entries(live, "stuck_pods")),
            deployed_missing=tuple(str(item) for item in live.get("deployed_missing") or []),
            deployed_total=_number(live.get("deployed_total")),
            owned_by_other_release=tuple(_entries(live, "owned_by_other_release")),
            orphans=tuple(_entries(live, "orphans")),
        )


@dataclass(frozen=True)
class HistoryFacts:
    count: int = 0
    threshold: int = DEFAULT_HISTORY_THRESHOLD
    total_bytes: int | None = None
    sizes_unknown: int = 0

    @property
    def bloated(self) -> bool:
        return self.count > self.threshold

    @classmethod
    def of(cls, history: Entry) -> HistoryFacts:
        return cls(
            count=_number(history.get("count")) or 0,
            threshold=_or_default(_number(history.get("threshold")), DEFAULT_HISTORY_THRESHOLD),
            total_bytes=_number(history.get("total_bytes")),
            sizes_unknown=_number(history.get("sizes_unknown")) or 0,
        )


@dataclass(frozen=True)
class RiskFacts:
    """The risks (_risks.py) as the facts report them; None where a brief look could not know."""

    removed_apis: tuple[Entry, ...] = ()
    missing_crds: tuple[Entry, ...] = ()
    large_records: tuple[Entry, ...] = ()
    managed_by: Entry | None = None
    managed_by_unknown: str = ""
    unreadable_manifests: tuple[str, ...] = ()
    hooks: tuple[Entry, ...] = ()
    pvcs_deleted_on_uninstall: tuple[Entry, ...] = ()
    history: HistoryFacts = field(default_factory=HistoryFacts)
    deletions: Entry | None = None  # None: the manifests were not read

    @classmethod
    def of(cls, risks: Entry) -> RiskFacts:
        managed_by = risks.get("managed_by")
        unknown = str(risks.get("managed_by_unknown") or "")
        if managed_by and not isinstance(managed_by, t.Mapping):  # unreadable: unknown, so the plan refuses
            managed_by, unknown = None, unknown or f"managed_by is not readable: {managed_by!r:.80}"
        deletions = risks.get("deletions")
        return cls(
            removed_apis=tuple(_entries(risks, "removed_apis")),
            missing_crds=tuple(_entries(risks, "missing_crds")),
            large_records=tuple(_entries(risks, "large_records")),
            managed_by=managed_by or None,
            managed_by_unknown=unknown,
            unreadable_manifests=tuple(str(item) for item in risks.get("unreadable_manifests") or []),
            hooks=tuple(_entries(risks, "hooks")),
            pvcs_deleted_on_uninstall=tuple(_entries(risks, "pvcs_deleted_on_uninstall")),
            history=HistoryFacts.of(_section(risks, "history")),
            deletions=deletions if isinstance(deletions, t.Mapping) else None,
        )


@dataclass(frozen=True)
class ReleaseFacts:
    """One release as the decision tree reads its facts."""

    name: str
    namespace: str
    driver: str
    status: str
    written_by: str | None  # helm3 / helm4, on entries that got the deep look
    latest_revision: int | None
    last_known_good_revision: int | None
    rollback_target_revision: int | None
    upgrade_blocked: bool
    revisions: tuple[Entry, ...]
    record_errors: tuple[Entry, ...]
    lock: LockFacts
    live: LiveFacts
    risks: RiskFacts

    @classmethod
    def of(cls, facts: Entry) -> ReleaseFacts:
        return cls(
            name=str(facts["name"]),
            namespace=str(facts["namespace"]),
            driver=str(facts.get("driver") or "secret"),
            status=str(facts.get("status") or "unknown"),
            written_by=facts.get("written_by") if facts.get("written_by") in ("helm3", "helm4") else None,
            latest_revision=_number(facts.get("latest_revision")),
            last_known_good_revision=_number(facts.get("last_known_good_revision")),
            rollback_target_revision=_number(facts.get("rollback_target_revision")),
            upgrade_blocked=bool(facts.get("upgrade_blocked")),
            revisions=tuple(_entries(facts, "revisions")),
            record_errors=tuple(_entries(facts, "record_errors")),
            lock=LockFacts.of(_section(facts, "lock")),
            live=LiveFacts.of(_section(facts, "live")),
            risks=RiskFacts.of(_section(facts, "risks")),
        )

    def revision(self, number: int | None) -> Entry | None:
        """A revision's entry in the history, or None."""
        return next((entry for entry in self.revisions if entry.get("revision") == number), None)
