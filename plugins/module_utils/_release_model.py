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

from ._history import ROLLBACK_STATUSES, rollback_target
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
