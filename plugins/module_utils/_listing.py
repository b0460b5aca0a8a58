# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How a scope's release records are listed: page by page with every payload's
summary (history="full"), or from labels with payloads only where a record is
not superseded (history="labels"), and the revisions the facts read whole
fetched on their own when a listing missed them.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.
"""

from __future__ import annotations

import collections
import re
import typing as t
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ._k8s import KubeError, KubeNotFound
from ._manifest import kinds_named
from ._release_codec import (
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
from ._release_model import Release, Revision
from ._storage import PAGE_SIZE, ListedRow, ReleaseStorage, selector

# Unpaginated (None): the API server answers one response from its watch cache, while
# pages are read from etcd, every record's payload included, before the label selector
# applies. The price is memory: the payload listing is held whole while it is read
# (the figures: docs/performance.md, "Paginated or not").
LABELS_META_PAGE_SIZE: int | None = None
LABELS_PAYLOAD_PAGE_SIZE: int | None = None


def collect(
    storage: ReleaseStorage,
    namespace: str | None,
    releases: list[str] | None,
    *,
    from_labels: bool = False,
    superseded_by_name: bool = False,
    kinds_ever: bool = False,
) -> tuple[dict[tuple[str, str], Release], list[ReleaseRecordError]]:
    """The releases in scope (every release, or those named) built from their records, and the objects that
    carry a release's labels but are no release record. ``from_labels``: history="labels" (_collect_labels);
    ``kinds_ever``: note the kinds every record's manifest names (orphan_search="history")."""
    label_selector = selector() + _name_scope(releases)
    if from_labels:
        return _collect_labels(storage, namespace, label_selector, superseded_by_name=superseded_by_name)
    # Pages of 250: a record kept for the diagnosis is copied out of its page (detach), so
    # that the page is freed; the history of a cluster is never held whole.
    collected = _Collected(detach=True, kinds_ever=kinds_ever)
    for meta, obj in storage.list_objects(namespace, label_selector=label_selector, raw_data=True):
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

    releases: dict[tuple[str, str], Release] = field(default_factory=dict)
    stray: list[ReleaseRecordError] = field(default_factory=list)
    detach: bool = False  # copy kept records out of the listing's body (paginated listings)
    kinds_ever: bool = False  # note the kinds every record's manifest names (orphan_search="history")

    def add(self, storage: ReleaseStorage, meta: RecordMeta | ReleaseRecordError, obj: dict[str, t.Any] | None) -> None:
        """One listed object; ``obj=None`` lists the revision from its metadata alone."""
        if isinstance(meta, ReleaseRecordError):
            self.bad(meta, obj or {})
            return
        release = self.releases.setdefault((meta.namespace, meta.release), Release(meta.namespace, meta.release))
        if obj is None:
            release.revisions[meta.revision] = Revision(meta, None)
            return
        try:
            summary = summary_from_object(obj, storage.driver, meta.ref)
            check_summary(meta, summary)
        except ReleaseRecordError as exc:
            release.errors.append(error_entry(exc))
            release.revisions.pop(meta.revision, None)
            return
        if self.kinds_ever:
            release.kinds_ever |= kinds_of_record(obj, storage.driver, meta.ref)
        release.add(Revision(meta, summary), obj, detach=self.detach)

    def bad(self, error: ReleaseRecordError, obj: dict[str, t.Any]) -> None:
        owner = _owner_of_bad_object(obj)
        if owner is None:
            self.stray.append(error)
            return
        release = self.releases.setdefault(owner, Release(*owner))
        release.errors.append(error_entry(error))


def kinds_of_record(obj: dict[str, t.Any], driver: Driver, ref: str) -> set[tuple[str, str]]:
    """The kinds a record's manifest names, read while the listing holds it (its payload is not kept). A payload
    that cannot be decoded names none: the search narrows, and a revision Helm reads reports the error itself."""
    try:
        manifest = decode_payload(payload_text_from_object(obj, driver), ref).get("manifest")
    except ReleaseRecordError:
        return set()
    return kinds_named(manifest) if isinstance(manifest, str) else set()


def error_entry(exc: ReleaseRecordError) -> dict[str, str]:
    return {"object": exc.object_ref, "reason": exc.reason, "message": str(exc)}


def _collect_labels(
    storage: ReleaseStorage, namespace: str | None, label_selector: str, *, superseded_by_name: bool = False
) -> tuple[dict[tuple[str, str], Release], list[ReleaseRecordError]]:
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

    A table row (name and type, a fraction of the cost of the records' metadata:
    docs/performance.md, "Superseded records by name") does not say its namespace.
    Cluster-wide, a row is placed in the one namespace where its release has
    records that are not superseded; rows in
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


def _read_candidates(release: Release, storage: ReleaseStorage) -> None:
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
                check_summary(meta, summary)
            except KubeNotFound:
                del release.revisions[number]  # deleted since it was listed
                continue
            except ReleaseRecordError as exc:
                release.errors.append(error_entry(exc))
                del release.revisions[number]
                continue
            release.add(Revision(meta, summary), obj)


def _owner_of_bad_object(obj: dict[str, t.Any]) -> tuple[str, str] | None:
    metadata = obj.get("metadata") or {}
    parsed = parse_object_name(str(metadata.get("name") or ""))
    if parsed is None:
        return None
    return str(metadata.get("namespace") or ""), parsed[0]


def check_summary(meta: RecordMeta, summary: dict[str, t.Any]) -> None:
    check_summary_identity(meta, summary)
    info = summary["info"]
    if info["status"] not in STATUSES:
        raise ReleaseRecordError(meta.ref, "unknown-status", f"payload status {info['status']!r} is not one of Helm's")
