# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Gather what helm_release_facts reports: for every release in scope, its
revisions, lock verdict with evidence, live resources against its manifests,
risks, and the diagnosis.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

Records are listed page by page (label-selected, the next page fetched while
the current one is read). Every revision is summarised from the start of its
payload only (summary_from_object); whole payloads are kept and decoded only
for the revisions the diagnosis reads (the latest and the last deployed), so
memory grows with releases, not revisions.

With ``history="labels"`` the history comes from object metadata alone and
payloads are read only for records not labelled superseded (one selective
listing) plus, one GET each, any revision the diagnosis needs that this
listing missed (see _collect_labels).
"""

from __future__ import annotations

import collections
import re
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ._apis import revisions_helm_reads, unserved
from ._commands import CommandSettings
from ._deletions import DeletionSet, uninstall_deletions, update_deletions
from ._diagnosis import LARGE_RECORD_BYTES, UserContext, diagnose, diagnose_error
from ._history import KNOWN_GOOD_STATUSES, ROLLBACK_STATUSES, rollback_target
from ._k8s import KubeClient, KubeError, KubeNotFound, namespace_exists
from ._live import (
    INSTANCE_LABEL,
    RELEASE_NAME_ANNOTATION,
    RELEASE_NAMESPACE_ANNOTATION,
    RESOURCE_POLICY_ANNOTATION,
    Discovery,
    LiveIndex,
    added_fields,
    delete_command,
    differences,
    workload_ready,
)
from ._lock import DEFAULT_CLIENT_TIMEOUT, LockOptions, NewestRecord, hook_keys, hook_phase, lock_verdict
from ._manifest import HOOK_ANNOTATION, ManifestError, ObjectKey, kinds_named, parse_manifest
from ._release_codec import (
    KUBE_TIME_FORMAT,
    PENDING_STATUSES,
    SECRET_TYPE,
    STATUSES,
    Driver,
    RecordMeta,
    ReleaseRecordError,
    check_summary_identity,
    decode_payload,
    parse_object_name,
    payload_text_from_object,
    record_meta_from_object,
    summary_from_object,
)
from ._rollout import not_ready_pods
from ._storage import PAGE_SIZE, ListedRow, ReleaseStorage, selector

# detail="brief", a release healthy by its records: its entry keeps identity, state, the
# revisions read, record errors and the diagnosis drawn from all of this; the evidence
# sections stay with the entries that got the deep look. (Every value of a fleet's
# result costs ansible-playbook time: these are a third of a healthy entry's.)
BRIEF_OMITTED = ("written_by", "pending_seconds", "live", "lock", "risks")
History = t.Literal["full", "labels"]
Detail = t.Literal["full", "brief"]
OrphanSearch = t.Literal["manifests", "history"]
# Measured at R=1000, H=10 (docs/performance.md): one unpaginated response comes
# from the API server's watch cache (0.26 s metadata, 0.32 s payloads), while pages
# were read from etcd, every record's payload included, before the label selector
# was applied (1.2 s and 1.3 s). The price is memory: the payload listing is held
# whole while it is read (module peak 282 MiB, against 170 MiB paginated).
LABELS_META_PAGE_SIZE: int | None = None
LABELS_PAYLOAD_PAGE_SIZE: int | None = None


@dataclass
class GatherOptions:
    namespace: str | None = None
    releases: list[str] | None = None
    stale_after: int = 600
    client_timeout: int = DEFAULT_CLIENT_TIMEOUT
    include_values: bool = False
    history_threshold: int = 20
    inspect_live: bool = True
    history: History = "full"
    detail: Detail = "full"
    # manifests: orphans are searched among the kinds of the latest and last deployed manifests;
    # history: among the kinds any revision had (every payload decoded; history="full" only).
    orphan_search: OrphanSearch = "manifests"
    context: UserContext = field(default_factory=UserContext)
    commands: CommandSettings = field(default_factory=CommandSettings)  # what printed commands carry
    now: float = field(default_factory=time.time)


@dataclass
class _Revision:
    meta: RecordMeta
    summary: dict[str, t.Any] | None  # None: listed from metadata only (history="labels")

    @property
    def status(self) -> str:
        if self.summary is None:
            return self.meta.status_label or "unknown"
        return str((self.summary.get("info") or {}).get("status") or "unknown")


@dataclass
class _Release:
    namespace: str
    name: str
    revisions: dict[int, _Revision] = field(default_factory=dict)
    objects: dict[int, dict[str, t.Any]] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    # (apiVersion, kind) of every object any revision's manifest names (orphan_search="history").
    kinds_ever: set[tuple[str, str]] = field(default_factory=set)

    def add(self, revision: _Revision, obj: dict[str, t.Any], *, detach: bool = False) -> None:
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
class _View:
    """One release as the fact builders see it."""

    release: _Release
    ordered: list[_Revision]
    latest_release: dict[str, t.Any]
    latest_objects: list[tuple[ObjectKey, dict[str, t.Any]]]
    deployed_objects: list[tuple[ObjectKey, dict[str, t.Any]]]
    manifests: _Manifests | None = None  # None: a brief look read no manifest
    rollback_target: int | None = None

    @property
    def latest(self) -> _Revision:
        return self.ordered[-1]


def gather(client: KubeClient, driver: Driver, options: GatherOptions) -> tuple[list[dict[str, t.Any]], list[str]]:
    """Facts for every release in scope, and scope-level errors (no release found, ...)."""
    storage = ReleaseStorage(client, driver)
    releases, stray = _collect(storage, options)
    scope_errors = [error.args[0] for error in stray]
    if not releases and options.namespace and not namespace_exists(client, options.namespace):
        raise KubeNotFound(f"namespace {options.namespace!r} does not exist", 404, "NotFound", options.namespace)
    for wanted in options.releases or []:
        namespaces = {ns for ns, name in releases if name == wanted}
        if not namespaces:
            where = f"namespace {options.namespace}" if options.namespace else "any namespace"
            missing = f"release {wanted!r} not found in {where} ({storage.kind} records, owner=helm)"
            pasted = diagnose_error(options.context, wanted)
            if pasted:  # the error text is the only evidence of an operation that left no record
                missing += f"; {pasted}"
            scope_errors.append(missing)
    discovery = Discovery(client)
    live = LiveIndex(client, discovery)
    controllers = (
        _controllers(client, discovery)
        if options.inspect_live
        else _Controllers(errors=["controllers were not checked (inspect_live is false)"])
    )
    facts = [
        _release_facts(release, storage, live, controllers, options)
        for (_ns, _name), release in sorted(releases.items())
    ]
    scope_errors.extend(sorted(set(live.errors)))
    return facts, scope_errors


def _collect(
    storage: ReleaseStorage, options: GatherOptions
) -> tuple[dict[tuple[str, str], _Release], list[ReleaseRecordError]]:
    label_selector = selector() + _name_scope(options.releases)
    if options.history == "labels":
        return _collect_labels(storage, options.namespace, label_selector, superseded_by_name=options.detail == "brief")
    # Pages of 250: a record kept for the diagnosis is copied out of its page (detach), so
    # that the page is freed; the history of a cluster is never held whole.
    collected = _Collected(detach=True, kinds_ever=options.orphan_search == "history")
    for meta, obj in storage.list_objects(options.namespace, label_selector=label_selector, raw_data=True):
        collected.add(storage, meta, obj)
    for release in collected.releases.values():
        # A candidate known only once later records arrived (a rollback target older than the
        # last deployed revision, say) was dropped from its page: read it on its own.
        _read_candidates(release, storage)
    return collected.releases, collected.stray


def _name_scope(releases: list[str] | None) -> str:
    if not releases:
        return ""
    names = sorted(set(releases))
    return f",name in ({','.join(names)})" if len(names) > 1 else f",name={names[0]}"


@dataclass
class _Collected:
    """Releases built from listed records, and objects that belong to no release."""

    releases: dict[tuple[str, str], _Release] = field(default_factory=dict)
    stray: list[ReleaseRecordError] = field(default_factory=list)
    detach: bool = False  # copy kept records out of the listing's body (paginated listings)
    kinds_ever: bool = False  # note the kinds every record's manifest names (orphan_search="history")

    def add(self, storage: ReleaseStorage, meta: RecordMeta | ReleaseRecordError, obj: dict[str, t.Any] | None) -> None:
        """One listed object; ``obj=None`` lists the revision from its metadata alone."""
        if isinstance(meta, ReleaseRecordError):
            self.bad(meta, obj or {})
            return
        release = self.releases.setdefault((meta.namespace, meta.release), _Release(meta.namespace, meta.release))
        if obj is None:
            release.revisions[meta.revision] = _Revision(meta, None)
            return
        try:
            summary = summary_from_object(obj, storage.driver, meta.ref)
            _check_summary(meta, summary)
        except ReleaseRecordError as exc:
            release.errors.append(_error_entry(exc))
            release.revisions.pop(meta.revision, None)
            return
        if self.kinds_ever:
            release.kinds_ever |= _kinds_of_record(obj, storage.driver, meta.ref)
        release.add(_Revision(meta, summary), obj, detach=self.detach)

    def bad(self, error: ReleaseRecordError, obj: dict[str, t.Any]) -> None:
        owner = _owner_of_bad_object(obj)
        if owner is None:
            self.stray.append(error)
            return
        release = self.releases.setdefault(owner, _Release(*owner))
        release.errors.append(_error_entry(error))


def _kinds_of_record(obj: dict[str, t.Any], driver: Driver, ref: str) -> set[tuple[str, str]]:
    """The kinds a record's manifest names, read while the listing holds it (its payload is not kept). A payload
    that cannot be decoded names none: the search narrows, and a revision Helm reads reports the error itself."""
    try:
        manifest = decode_payload(payload_text_from_object(obj, driver), ref).get("manifest")
    except ReleaseRecordError:
        return set()
    return kinds_named(manifest) if isinstance(manifest, str) else set()


def _error_entry(exc: ReleaseRecordError) -> dict[str, str]:
    return {"object": exc.object_ref, "reason": exc.reason, "message": str(exc)}


def _collect_labels(
    storage: ReleaseStorage, namespace: str | None, label_selector: str, *, superseded_by_name: bool = False
) -> tuple[dict[tuple[str, str], _Release], list[ReleaseRecordError]]:
    """history="labels": every record's metadata; payloads only where a label is not superseded.

    Superseded records are most of a long history and the diagnosis never reads
    them whole: they stay metadata-only. Everything else (deployed, failed,
    pending, a missing or unknown status label) comes with its payload, so its
    summary and identity are checked exactly as in the full listing.

    ``superseded_by_name`` (detail="brief"): superseded records come from a
    listing of their names (_superseded_by_name) instead of their metadata.
    """
    # (namespace, object name) -> its metadata (or why it is no release record) and its object,
    # None when only metadata was listed for a valid record.
    listed: dict[tuple[str, str], tuple[RecordMeta | ReleaseRecordError, dict[str, t.Any] | None]] = {}
    # Listings that do not depend on each other are sent while the payload listing is read.
    with ThreadPoolExecutor(max_workers=2) as ahead:
        metadata = None if superseded_by_name else ahead.submit(_metadata_listing, storage, namespace, label_selector)
        other_types = ahead.submit(_other_type_listing, storage, namespace, label_selector)
        payloads = dict(_payload_listing(storage, namespace, label_selector))
        if metadata is not None:
            listed.update(metadata.result())
        listed.update(payloads)
        listed.update(other_types.result())
        # Asked for only now: a record relabelled superseded after the payload listing is then in
        # this one (Helm never relabels a superseded record back). The checks of the records
        # listed so far run meanwhile.
        by_name = (
            ahead.submit(_superseded_by_name, storage, namespace, label_selector, listed)
            if superseded_by_name
            else None
        )
        collected = _Collected()
        for listed_meta, payload in listed.values():
            collected.add(storage, listed_meta, payload)
        if by_name is not None:
            for key, (meta, obj) in by_name.result().items():
                if key not in listed:  # a record relabelled between the listings keeps its payload
                    collected.add(storage, meta, obj)
    for release in collected.releases.values():
        _read_candidates(release, storage)
    return collected.releases, collected.stray


def _payload_listing(
    storage: ReleaseStorage, namespace: str | None, label_selector: str
) -> t.Iterator[tuple[tuple[str, str], tuple[RecordMeta | ReleaseRecordError, dict[str, t.Any]]]]:
    """The records not labelled superseded, whole (deployed, failed, pending, unlabelled)."""
    for meta, obj in storage.list_objects(
        namespace,
        label_selector=label_selector + ",status!=superseded",
        page_size=LABELS_PAYLOAD_PAGE_SIZE,
        raw_data=True,
    ):
        yield _object_key(obj), (meta, obj)


def _other_type_listing(
    storage: ReleaseStorage, namespace: str | None, label_selector: str
) -> dict[tuple[str, str], tuple[RecordMeta | ReleaseRecordError, dict[str, t.Any] | None]]:
    """Secrets of another type that carry the labels, whole: metadata and names do not say
    a Secret's type, so one labelled superseded is found here (normally none)."""
    if storage.driver != "secret":
        return {}
    return {
        _object_key(obj): (meta, obj)
        for meta, obj in storage.list_objects(
            namespace,
            label_selector=label_selector,
            field_selector=f"type!={SECRET_TYPE}",
            page_size=PAGE_SIZE,
            raw_data=True,
        )
    }


# Release names asked for again by label (name in (...)); more fall back to the full listing.
MAX_NAMES_RELISTED = 100
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def _metadata_listing(
    storage: ReleaseStorage, namespace: str | None, label_selector: str
) -> dict[tuple[str, str], tuple[RecordMeta | ReleaseRecordError, dict[str, t.Any] | None]]:
    return {
        _object_key(obj): (meta, None if isinstance(meta, RecordMeta) else obj)
        for meta, obj in storage.list_objects(
            namespace, label_selector=label_selector, page_size=LABELS_META_PAGE_SIZE, metadata_only=True
        )
    }


def _superseded_by_name(
    storage: ReleaseStorage,
    namespace: str | None,
    label_selector: str,
    listed: dict[tuple[str, str], tuple[RecordMeta | ReleaseRecordError, dict[str, t.Any] | None]],
) -> dict[tuple[str, str], tuple[RecordMeta | ReleaseRecordError, dict[str, t.Any] | None]]:
    """detail="brief": the records labelled superseded, from a table of their names.

    A table row (name and type, 0.04 s for 8,757 records against 0.3 s for their
    metadata) does not say its namespace. Cluster-wide, a row is placed in the one
    namespace where its release has records that are not superseded; rows in
    namespaces without such records are listed again with their metadata (normally
    none), and so are releases of that name in several namespaces. Anything still
    unplaced (a name that is not a release record's, say) falls back to the metadata
    of every superseded record, as history="labels" reads it.
    """
    superseded = label_selector + ",status=superseded"
    try:
        rows = storage.list_rows(namespace, superseded)
    except KubeError as exc:
        if exc.status != 406:
            raise
        return _metadata_listing(storage, namespace, superseded)  # no server-side tables here
    unplaced = collections.Counter((row.name, row.type) for row in rows)
    placed: dict[tuple[str, str], tuple[RecordMeta | ReleaseRecordError, dict[str, t.Any] | None]] = {}
    current: dict[str, set[str]] = collections.defaultdict(set)  # release -> namespaces of its other records
    for meta, _obj in listed.values():
        if isinstance(meta, RecordMeta):
            current[meta.release].add(meta.namespace)
    if namespace is None:
        elsewhere = ",".join(f"metadata.namespace!={ns}" for ns in sorted(set().union(*current.values())))
        _place_listed_rows(
            storage,
            storage.list_rows(None, superseded, field_selector=elsewhere or None, with_metadata=True),
            unplaced,
            placed,
        )
    ambiguous: set[str] = set()
    for (name, row_type), count in list(unplaced.items()):
        if count <= 0:
            continue
        if storage.driver == "secret" and row_type != SECRET_TYPE:
            unplaced[(name, row_type)] = 0  # the other-type listing holds it whole
            continue
        parsed = parse_object_name(name)
        homes = {namespace} if namespace is not None else current.get(parsed[0], set()) if parsed else set()
        if parsed is None or len(homes) != 1 or count != 1:
            ambiguous.add(parsed[0] if parsed else "")
            continue
        (home,) = homes
        placed[(home, name)] = (_meta_from_row(storage, home, name, *parsed), None)
        unplaced[(name, row_type)] = 0
    if ambiguous and len(ambiguous) <= MAX_NAMES_RELISTED and all(map(_LABEL_VALUE.match, ambiguous)):
        names = f",name in ({','.join(sorted(ambiguous))})"
        _place_listed_rows(
            storage, storage.list_rows(namespace, superseded + names, with_metadata=True), unplaced, placed
        )
    if +unplaced:
        return _metadata_listing(storage, namespace, superseded)
    return placed


def _place_listed_rows(
    storage: ReleaseStorage,
    rows: list[ListedRow],
    unplaced: collections.Counter[tuple[str, str | None]],
    placed: dict[tuple[str, str], tuple[RecordMeta | ReleaseRecordError, dict[str, t.Any] | None]],
) -> None:
    """Rows listed with their metadata: checked as the metadata listing checks them."""
    for row in rows:
        if row.metadata is None:
            continue  # stays unplaced: the full listing decides
        obj: dict[str, t.Any] = {"metadata": row.metadata}
        if row.type is not None:
            obj["type"] = row.type
        meta = storage.meta_or_error(obj)
        placed[_object_key(obj)] = (meta, None if isinstance(meta, RecordMeta) else obj)
        unplaced[(row.name, row.type)] -= 1


def _meta_from_row(storage: ReleaseStorage, namespace: str, name: str, release: str, revision: int) -> RecordMeta:
    """A superseded record known by its name alone: no labels, uid or write time were read."""
    return RecordMeta(
        driver=storage.driver,
        namespace=namespace,
        name=name,
        release=release,
        revision=revision,
        status_label="superseded",  # what the listing selected on
        labels={},
        annotations={},
        uid="",
        resource_version="",
        creation_timestamp=None,
    )


def _object_key(obj: dict[str, t.Any]) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def _read_candidates(release: _Release, storage: ReleaseStorage) -> None:
    """GET the revisions the diagnosis reads whole that the listings gave without a payload
    (a newest revision labelled superseded, say), until the latest and last deployed are read."""
    fetched: set[int] = set()
    while True:
        missing = [n for n in sorted(release.candidates()) if n not in release.objects and n not in fetched]
        if not missing:
            return
        for number in missing:
            fetched.add(number)
            listed = release.revisions[number].meta
            try:
                obj = storage.get_object(listed.namespace, listed.name)
                meta = record_meta_from_object(obj, storage.driver)
                summary = summary_from_object(obj, storage.driver, meta.ref)
                _check_summary(meta, summary)
            except KubeNotFound:
                del release.revisions[number]  # deleted since it was listed
                continue
            except ReleaseRecordError as exc:
                release.errors.append(_error_entry(exc))
                del release.revisions[number]
                continue
            release.add(_Revision(meta, summary), obj)


def _owner_of_bad_object(obj: dict[str, t.Any]) -> tuple[str, str] | None:
    metadata = obj.get("metadata") or {}
    parsed = parse_object_name(str(metadata.get("name") or ""))
    if parsed is None:
        return None
    return str(metadata.get("namespace") or ""), parsed[0]


def _check_summary(meta: RecordMeta, summary: dict[str, t.Any]) -> None:
    check_summary_identity(meta, summary)
    info = summary["info"]
    if info["status"] not in STATUSES:
        raise ReleaseRecordError(meta.ref, "unknown-status", f"payload status {info['status']!r} is not one of Helm's")


# --- one release ------------------------------------------------------------------


def _release_facts(
    release: _Release,
    storage: ReleaseStorage,
    live: LiveIndex,
    controllers: _Controllers,
    options: GatherOptions,
) -> dict[str, t.Any]:
    ordered = [release.revisions[n] for n in sorted(release.revisions)]
    if not ordered:
        return _broken_release_facts(release, storage, options)
    latest = ordered[-1]
    deployed = [r for r in ordered if r.status == "deployed"]
    known_good = [r for r in ordered if r.status in KNOWN_GOOD_STATUSES]
    deep = options.detail == "full" or _needs_deep_look(release, latest)
    full = _full_payloads(release, storage) if deep or options.include_values else {}
    latest_release = full.get(latest.meta.revision) or {}
    pending = latest.status in PENDING_STATUSES
    target = rollback_target(release.history()) if latest.status in ROLLBACK_STATUSES else None
    refs = {number: revision.meta.ref for number, revision in release.revisions.items()}
    manifests = _Manifests(full, release.namespace, refs) if deep else None  # a brief look parses no manifest
    facts: dict[str, t.Any] = {
        "name": release.name,
        "namespace": release.namespace,
        "driver": storage.driver,
        "exists": True,
        "detail": "full" if deep else "brief",
        "status": latest.status,
        "written_by": "helm4" if "apply_method" in latest_release else "helm3",  # a brief entry omits it
        "latest_revision": latest.meta.revision,
        "last_deployed_revision": deployed[-1].meta.revision if deployed else None,
        "last_known_good_revision": known_good[-1].meta.revision if known_good else None,
        "rollback_target_revision": target,
        "pending": pending,
        "upgrade_blocked": pending,
        "revisions": [_revision_facts(r, options.history) for r in ordered],
        "record_errors": release.errors,
    }
    record_age = options.now - (latest.meta.written_at or 0.0)
    facts["pending_seconds"] = int(record_age) if pending else None
    looked_at = live if options.inspect_live else None  # scopes cluster-wide kinds as Helm does
    view = _View(
        release=release,
        ordered=ordered,
        latest_release=latest_release,
        latest_objects=_scoped(manifests.objects(latest.meta.revision), looked_at) if manifests else [],
        deployed_objects=(
            _scoped(manifests.objects(deployed[-1].meta.revision), looked_at) if manifests and deployed else []
        ),
        manifests=manifests,
        rollback_target=target,
    )
    inspect_live = options.inspect_live and deep
    facts["live"] = _live_facts(view, live) if inspect_live else {"checked": False}
    facts["lock"] = _lock(view, record_age, live if inspect_live else None, options)
    facts["risks"] = _risks(view, live, controllers.of(release.namespace, release.name), options, deep)
    if inspect_live:
        _add_live_hook_phases(facts["risks"].get("hooks") or [], view, live)
    if options.include_values:
        facts["user_values"] = latest_release.get("config") or {}
    diagnosis = diagnose(facts, options.context, options.commands)
    facts["diagnosis"] = diagnosis.as_dict()
    if options.detail == "brief":
        facts["revisions"] = _brief_revisions(facts)  # after the diagnosis, which may read any of them
    if not deep:
        for key in BRIEF_OMITTED:
            del facts[key]
    return facts


class _Manifests:
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


def _needs_deep_look(release: _Release, latest: _Revision) -> bool:
    """detail="brief": whether the records show more than a healthy deployed release.

    Payloads, manifests and live objects are read for these releases only; a
    newest revision that is deployed by payload and label, with every record
    valid, is reported from its records alone.
    """
    return bool(release.errors) or latest.status != "deployed" or latest.meta.status_label != "deployed"


def _brief_revisions(facts: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """detail="brief": the revisions whose payload was read, and those the facts name
    (latest, last deployed, last known good); risks.history.by_status counts them all."""
    named = {facts["latest_revision"], facts["last_deployed_revision"], facts["last_known_good_revision"]}
    return [entry for entry in facts["revisions"] if entry["payload_read"] or entry["revision"] in named]


def _broken_release_facts(release: _Release, storage: ReleaseStorage, options: GatherOptions) -> dict[str, t.Any]:
    facts = {
        "name": release.name,
        "namespace": release.namespace,
        "driver": storage.driver,
        "exists": True,
        "status": "unknown",
        "revisions": [],
        "record_errors": release.errors,
    }
    facts["diagnosis"] = diagnose(facts, settings=options.commands).as_dict()
    return facts


def _full_payloads(release: _Release, storage: ReleaseStorage) -> dict[int, dict[str, t.Any]]:
    decoded: dict[int, dict[str, t.Any]] = {}
    for number, obj in release.objects.items():
        meta = release.revisions[number].meta
        try:
            full = decode_payload(payload_text_from_object(obj, storage.driver), meta.ref)
            check_summary_identity(meta, full)  # a copy of another revision shows here
            decoded[number] = full
        except ReleaseRecordError as exc:
            release.errors.append(_error_entry(exc))
    return decoded


def _revision_facts(revision: _Revision, history: History = "full") -> dict[str, t.Any]:
    if revision.summary is None:
        return _metadata_revision_facts(revision)
    info = revision.summary.get("info") or {}
    chart = (revision.summary.get("chart") or {}).get("metadata") or {}
    facts = {
        "revision": revision.meta.revision,
        "status": revision.status,
        "status_label": revision.meta.status_label,
        "status_label_mismatch": revision.meta.status_label not in (None, revision.status),
        "chart": chart.get("name"),
        "chart_version": chart.get("version"),
        "app_version": chart.get("appVersion"),
        "description": info.get("description") or "",
        "first_deployed": info.get("first_deployed") or None,
        "last_deployed": info.get("last_deployed") or None,
        "deleted": info.get("deleted") or None,
        "object": revision.meta.name,
        "size_bytes": revision.meta.size,
    }
    if history == "labels":
        facts.update(payload_read=True, written_at=_iso(revision.meta.written_at))
    return facts


def _metadata_revision_facts(revision: _Revision) -> dict[str, t.Any]:
    """A revision known from its labels only: what a payload would say is null, never guessed."""
    return {
        "revision": revision.meta.revision,
        "status": revision.status,
        "status_label": revision.meta.status_label,
        "status_label_mismatch": None,  # the payload was not read: nothing to compare
        "chart": None,
        "chart_version": None,
        "app_version": None,
        "description": None,
        "first_deployed": None,
        "last_deployed": None,
        "deleted": None,
        "object": revision.meta.name,
        "size_bytes": None,
        "payload_read": False,
        "written_at": _iso(revision.meta.written_at),
    }


def _iso(stamp: float | None) -> str | None:
    return None if stamp is None else time.strftime(KUBE_TIME_FORMAT, time.gmtime(stamp))


# --- lock and liveness -----------------------------------------------------------


def _lock(view: _View, age: float, live: LiveIndex | None, options: GatherOptions) -> dict[str, t.Any]:
    latest = view.latest
    unreadable = view.manifests.errors.get(latest.meta.revision, "") if view.manifests else ""
    record = NewestRecord(
        view.release.namespace, latest.status, age, view.latest_release, view.latest_objects, unreadable
    )
    lock_options = LockOptions(options.stale_after, options.client_timeout, live is not None)
    return lock_verdict(record, live, lock_options, options.now)


# --- live resources against the manifests ----------------------------------------


def _live_facts(view: _View, live: LiveIndex) -> dict[str, t.Any]:
    release = view.release
    latest_by_key = dict(view.latest_objects)
    deployed_by_key = dict(view.deployed_objects)
    objects = []
    new_votes = old_votes = 0
    owned_elsewhere = []
    workloads_ready = True
    for key in list(dict.fromkeys([*latest_by_key, *deployed_by_key])):
        obj = live.get(key)
        entry: dict[str, t.Any] = {"kind": key.kind, "name": key.name, "namespace": key.namespace}
        desired_latest, desired_deployed = latest_by_key.get(key), deployed_by_key.get(key)
        if obj is not None and obj.get("apiVersion") != key.api_version:
            # Read through the version the API serves now (removed_apis): the same object, converted.
            entry["served_as"] = obj.get("apiVersion")
            desired_latest, desired_deployed = (
                {**d, "apiVersion": obj.get("apiVersion")} if d is not None else None
                for d in (desired_latest, desired_deployed)
            )
        matches_latest = _compare(entry, "latest", desired_latest, obj, desired_deployed)
        matches_deployed = _compare(entry, "deployed", desired_deployed, obj, desired_latest)
        if latest_by_key.get(key) != deployed_by_key.get(key):
            new_votes += int(matches_latest and not matches_deployed)
            old_votes += int(matches_deployed and not matches_latest)
        if obj is not None:
            owner = _owner(obj)
            if owner and owner != (release.namespace, release.name):
                owned_elsewhere.append({"kind": key.kind, "name": key.name, "owner": f"{owner[0]}/{owner[1]}"})
            if not workload_ready(obj):
                workloads_ready = False
        objects.append(entry)
    closer = "same"
    if new_votes or old_votes:
        closer = "new" if new_votes > old_votes else "old" if old_votes > new_votes else "both"
    deployed_missing = [f"{e['kind']} {e['name']}" for e in objects if e.get("deployed") == "missing"]
    unreadable = sorted(set(view.manifests.errors.values())) if view.manifests else []
    _list_kinds_ever(release, live)
    stuck = [
        pod
        for key in latest_by_key
        if key.kind == "StatefulSet" and (obj := live.get(key)) is not None and not workload_ready(obj)
        for pod in not_ready_pods(key, obj, live)
    ]
    facts = {
        "checked": True,
        "objects": objects,
        # A rollback or upgrade that changes these StatefulSets cannot move them on its own (_rollout.py).
        "stuck_pods": [{"statefulset": p.statefulset, "pod": p.name, "revision": p.revision} for p in stuck],
        "closer_to": closer if not unreadable else "unknown",
        "workloads_ready": workloads_ready,
        # Without every manifest, an object in none of them is not known to be an orphan.
        "orphans": [] if unreadable else _orphans(release, set(latest_by_key) | set(deployed_by_key), live),
        "owned_by_other_release": owned_elsewhere,
        "deployed_missing": deployed_missing,
        "deployed_total": len(deployed_by_key),
    }
    if unreadable:
        facts["unreadable_manifests"] = unreadable
    return facts


def _compare(
    entry: dict[str, t.Any], which: str, desired: dict[str, t.Any] | None, obj: dict | None, other: t.Any
) -> bool:
    """Whether the live object is this revision's: it holds what the manifest asks for, and nothing
    the other revision's manifest added to the same object."""
    if desired is None:
        return False
    if obj is None:
        entry[which] = "missing"
        return False
    diff = differences(desired, obj)
    if other is not None and other != desired:
        diff += [f"{path} (the other revision's)" for path in added_fields(other, desired, obj)]
    entry[which] = "differs" if diff else "present"
    if diff:
        entry[f"{which}_differences"] = diff
    return not diff


def _owner(obj: dict[str, t.Any]) -> tuple[str, str] | None:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    name = annotations.get(RELEASE_NAME_ANNOTATION)
    if not name:
        return None
    return str(annotations.get(RELEASE_NAMESPACE_ANNOTATION) or ""), str(name)


def _list_kinds_ever(release: _Release, live: LiveIndex) -> None:
    """With orphan_search="history", list the kinds older revisions had and the current manifests may lack (an
    object a revision kept by policy, or failed to delete, then dropped from the chart): in the release's
    namespace, or cluster-wide for cluster-scoped kinds; LiveIndex lists each once, for every release there.
    Helm's upgrade skips deleting a kept object and only logs a failed delete (pkg/kube/client.go, Update)."""
    for api_version, kind in sorted(release.kinds_ever):
        resource = live.discovery.resource(api_version, kind)
        if resource is None or kind == "Secret":  # not served (any more); Secrets are never listed whole (_live.py)
            continue
        try:
            live.list(resource, release.namespace if resource.namespaced else "")
        except KubeError as exc:  # the search narrows; the release's facts stand
            live.errors.append(f"orphans of {release.namespace}/{release.name} not searched among {kind}: {exc}")


def _add_live_hook_phases(hooks: list[dict[str, t.Any]], view: _View, live: LiveIndex) -> None:
    """The phase of each hook Job or Pod as the cluster shows it now: the record keeps the phase Helm last
    wrote, which stays Running when Helm was killed while the hook ran, even after the Job succeeded."""
    keys = {(key.kind, key.name): key for key, _events in hook_keys(view.latest_release, view.release.namespace)}
    for hook in hooks:
        key = keys.get((str(hook.get("kind")), str(hook.get("name"))))
        if key is not None:
            obj = live.get(key)
            hook["live_phase"] = hook_phase(obj) if obj is not None else "absent"


def _orphans(release: _Release, known: set[ObjectKey], live: LiveIndex) -> list[dict[str, str]]:
    """Objects that carry the release's ownership but are in none of its manifests (nor hooks). A StatefulSet's claims
    (<template>-<statefulset>-<ordinal>, labelled with its selector) belong to the StatefulSet."""
    known_names = {(k.kind, k.namespace, k.name) for k in known}
    claims_of = [
        (k.namespace, re.compile(rf"^[a-z0-9.-]+-{re.escape(k.name)}-\d+$")) for k in known if k.kind == "StatefulSet"
    ]
    orphans = []
    for namespace, objects in live.listed():
        for name, obj in objects.items():
            metadata = obj.get("metadata") or {}
            if (obj.get("kind"), namespace, name) in known_names or HOOK_ANNOTATION in (
                metadata.get("annotations") or {}
            ):
                continue  # the release's own, or one of its hooks (hooks are not in the manifest)
            if obj.get("kind") == "PersistentVolumeClaim" and any(
                ns == namespace and claim.match(name) for ns, claim in claims_of
            ):
                continue
            owned = _owner(obj) == (release.namespace, release.name)
            labelled = (metadata.get("labels") or {}).get(
                INSTANCE_LABEL
            ) == release.name and namespace == release.namespace
            if (owned or labelled) and not metadata.get("ownerReferences"):
                api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
                orphans.append(
                    {
                        "apiVersion": api_version,
                        "kind": kind,
                        "namespace": namespace,
                        "name": name,
                        "command_if_unneeded": delete_command(api_version, kind, name, namespace),
                    }
                )
    return orphans


# --- risks -------------------------------------------------------------------------


def _risks(
    view: _View, live: LiveIndex, controller: _Managed, options: GatherOptions, deep: bool = True
) -> dict[str, t.Any]:
    ordered = view.ordered
    sizes = [r.meta.size or 0 for r in ordered]
    risks: dict[str, t.Any] = {
        "pvcs_deleted_on_uninstall": [],
        "kept_objects": [],
        "missing_crds": [],
        "removed_apis": [],
        "deletions": {},
        "hooks": [
            {
                "name": hook.get("name"),
                "kind": hook.get("kind"),
                "events": hook.get("events") or [],
                "last_run_phase": (hook.get("last_run") or {}).get("phase") or None,
            }
            for hook in view.latest_release.get("hooks") or []
        ],
        "large_records": [
            {"revision": r.meta.revision, "bytes": r.meta.size}
            for r in ordered
            if (r.meta.size or 0) >= LARGE_RECORD_BYTES
        ],
        "history": {
            "count": len(ordered),
            "total_bytes": sum(sizes),
            "largest_bytes": max(sizes) if sizes else 0,
            "threshold": options.history_threshold,
            "by_status": dict(collections.Counter(r.status for r in ordered)),
        },
        "managed_by": controller.owner,
    }
    if controller.unknown:
        risks["managed_by_unknown"] = controller.unknown
    if options.history == "labels":
        # Sizes come with payloads: total and largest cover the revisions read whole.
        risks["history"]["sizes_unknown"] = sum(1 for r in ordered if r.meta.size is None)
    if not deep or view.manifests is None:
        # detail="brief", healthy release: no payload or manifest was read, so these are unknown, not empty.
        risks.update(
            pvcs_deleted_on_uninstall=None,
            kept_objects=None,
            missing_crds=None,
            removed_apis=None,
            hooks=None,
            deletions=None,
        )
        return risks
    looked_at = live if options.inspect_live else None
    uninstall = _uninstall_set(view, looked_at)
    risks["deletions"]["uninstall"] = uninstall.as_dict()
    risks["pvcs_deleted_on_uninstall"] = [
        {"name": claim, "source": deletion.key.kind if claim == deletion.key.name else deletion.key.describe()}
        for deletion in uninstall.data_loss
        for claim in deletion.claims
    ]
    if view.rollback_target is not None:
        risks["deletions"]["rollback"] = _rollback_set(view, view.rollback_target, looked_at).as_dict()
    if view.manifests.errors:
        risks["unreadable_manifests"] = [view.manifests.errors[n] for n in sorted(view.manifests.errors)]
    for key, desired in view.latest_objects:
        annotations = (desired.get("metadata") or {}).get("annotations") or {}
        if str(annotations.get(RESOURCE_POLICY_ANNOTATION, "")).strip().lower() == "keep":
            risks["kept_objects"].append({"kind": key.kind, "name": key.name})
    if options.inspect_live:
        risks["removed_apis"] = _removed_apis(view, live)
    removed = {(entry["apiVersion"], entry["kind"]) for entry in risks["removed_apis"]}
    for key, desired in dict([*view.latest_objects, *view.deployed_objects]).items():
        not_served = options.inspect_live and live.discovery.resource(key.api_version, key.kind) is None
        if not_served and (key.api_version, key.kind) not in removed:
            risks["missing_crds"].append({"apiVersion": key.api_version, "kind": key.kind, "name": key.name})
        if not risks["managed_by"]:
            risks["managed_by"] = _managed_by_labels(desired)
    return risks


def _removed_apis(view: _View, live: LiveIndex) -> list[dict[str, t.Any]]:
    """The objects of the revisions Helm reads next (_apis.revisions_helm_reads) whose apiVersion the API no
    longer serves: a version that went away, not a CRD never installed (that is missing_crds)."""
    manifests = view.manifests
    labelled = [r.meta.revision for r in view.ordered if r.meta.status_label == "deployed"]
    found: dict[tuple[str, str, str, str], dict[str, t.Any]] = {}
    for revision in revisions_helm_reads(view.release.history(), labelled):
        for key, _document in manifests.objects(revision) if manifests else []:
            moved = unserved(live.discovery, key.api_version, key.kind)
            if moved is None or not moved.removed:
                continue
            entry = found.setdefault(
                (key.api_version, key.kind, key.namespace, key.name),
                {
                    "apiVersion": key.api_version,
                    "kind": key.kind,
                    "namespace": key.namespace,
                    "name": key.name,
                    "served_as": moved.served_as,
                    "removed_in": moved.removed_in,
                    "revisions": [],
                },
            )
            entry["revisions"].append(revision)
    return list(found.values())


def _uninstall_set(view: _View, live: LiveIndex | None) -> DeletionSet:
    """What `helm uninstall` would delete: the newest revision's objects (pkg/action/uninstall.go)."""
    revision = view.latest.meta.revision
    deletions = DeletionSet("uninstall", revision)
    objects = view.manifests.read(revision) if view.manifests else None
    if objects is None:
        deletions.objects, deletions.unknown = None, view.manifests.errors.get(revision, "") if view.manifests else ""
        return deletions
    deletions.objects = uninstall_deletions(_scoped(objects, live), live.answer if live else None)
    return deletions


def _rollback_set(view: _View, target: int, live: LiveIndex | None) -> DeletionSet:
    """What `helm rollback <target>` would delete: the newest revision's objects that the
    target's manifest lacks (pkg/action/rollback.go, kube/client.go update)."""
    revision = view.latest.meta.revision
    deletions = DeletionSet("rollback", revision, target)
    manifests = view.manifests
    current = manifests.read(revision) if manifests else None
    wanted = manifests.read(target) if manifests else None
    if current is None or wanted is None or manifests is None:
        deletions.objects = None
        deletions.unknown = manifests.errors.get(revision) or manifests.errors.get(target, "") if manifests else ""
        return deletions
    if live is None:
        deletions.objects = None
        deletions.unknown = "the live objects were not inspected (inspect_live is false)"
        return deletions
    deletions.objects = update_deletions(_scoped(current, live), _scoped(wanted, live), live.answer)
    return deletions


def _scoped(
    objects: list[tuple[ObjectKey, dict[str, t.Any]]], live: LiveIndex | None
) -> list[tuple[ObjectKey, dict[str, t.Any]]]:
    return objects if live is None else [(live.scoped(key), document) for key, document in objects]


# --- controllers that manage releases ----------------------------------------------

_FLUX = ("helm.toolkit.fluxcd.io", "HelmRelease")
_K3S = ("helm.cattle.io", "HelmChart")


@dataclass(frozen=True)
class _Managed:
    """The controller object that manages a release, or why that is unknown."""

    owner: dict[str, str] | None = None
    unknown: str = ""


@dataclass
class _Controllers:
    """(namespace, release) -> the controller object that manages it, from cluster-wide listings.

    A HelmRelease (Flux) or HelmChart (k3s, RKE2) in any namespace may manage a
    release in another, so only a cluster-wide listing rules one out. When that
    listing is forbidden, or was not made, every release's controller is unknown,
    and the plan refuses to act on it (docs/rbac: helmops-cluster-read)."""

    found: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def of(self, namespace: str, release: str) -> _Managed:
        owner = self.found.get((namespace, release))
        if owner is not None or not self.errors:
            return _Managed(owner)
        return _Managed(None, "; ".join(self.errors))


_CONTROLLER_KINDS = (
    (_FLUX[0], ("v2", "v2beta2", "v2beta1"), _FLUX[1], "Flux helm-controller"),
    (_K3S[0], ("v1",), _K3S[1], "k3s helm-controller"),
)


def _controllers(client: KubeClient, discovery: Discovery) -> _Controllers:
    controllers = _Controllers()
    for group, versions, kind, controller in _CONTROLLER_KINDS:
        version = next((v for v in versions if discovery.resource(f"{group}/{v}", kind) is not None), None)
        if version is None:
            continue  # the API does not serve the kind: no such controller here
        resource = discovery.resource(f"{group}/{version}", kind)
        path = f"/apis/{group}/{version}/{resource.plural if resource else ''}"
        try:
            listing = client.request("GET", path, target=f"{kind} objects in all namespaces")
        except KubeNotFound:
            # Deleted since discovery? Look again: a controller is ruled out only when the group serves none of
            # its versions any more; otherwise whether one manages a release is unknown (fail closed).
            if any(Discovery(client).resource(f"{group}/{v}", kind) is not None for v in versions):
                controllers.errors.append(f"could not check for a {controller} managing it: {kind} moved while read")
            continue
        except KubeError as exc:
            controllers.errors.append(f"could not check for a {controller} managing it: {exc}")
            continue
        for item in listing.get("items") or []:
            metadata = item.get("metadata") or {}
            spec = item.get("spec") or {}
            controllers.found[_managed_release(kind, metadata, spec)] = {
                "controller": controller,
                "kind": kind,
                "name": metadata.get("name", ""),
                "namespace": metadata.get("namespace", ""),
            }
    return controllers


def _managed_release(kind: str, metadata: dict[str, t.Any], spec: dict[str, t.Any]) -> tuple[str, str]:
    name = str(metadata.get("name", ""))
    namespace = str(metadata.get("namespace", ""))
    if kind == "HelmRelease":  # Flux: release [<targetNamespace>-]<name>, stored in storageNamespace
        target = spec.get("targetNamespace")
        release = spec.get("releaseName") or (f"{target}-{name}" if target else name)
        return str(spec.get("storageNamespace") or namespace), str(release)
    return str(spec.get("targetNamespace") or namespace), name  # k3s HelmChart


def _managed_by_labels(desired: dict[str, t.Any]) -> dict[str, str] | None:
    labels = (desired.get("metadata") or {}).get("labels") or {}
    if labels.get("helm.toolkit.fluxcd.io/name"):
        return {
            "controller": "Flux helm-controller",
            "kind": "HelmRelease",
            "name": labels["helm.toolkit.fluxcd.io/name"],
            "namespace": labels.get("helm.toolkit.fluxcd.io/namespace", ""),
        }
    if any(key.startswith("objectset.rio.cattle.io/") for key in labels):
        return {"controller": "Rancher Fleet", "kind": "BundleDeployment", "name": "", "namespace": ""}
    return None
