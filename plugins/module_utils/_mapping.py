# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Mapping stored manifests to the API versions the cluster serves: plan, then act.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

Each record Helm reads next is rewritten in place: its manifest (and its hooks' manifests) with
the apiVersion of unserved objects replaced, every other field of the release JSON as it was -
status, description, revision number. A new revision instead (what helm-mapkubeapis writes)
would turn a failed or pending release into a deployed one that never ran, and move the
rollback targets; in place, `helm history` shows the same revisions, statuses and descriptions.
Like an unlock: a stale lock only, the resourceVersion on every write, a backup first.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ._apis import Change, MappingError, map_manifest, revisions_helm_reads, unserved
from ._backup import save_records, taken_from
from ._errors import ModuleError
from ._events import ReleaseEvent, post_event
from ._history import LOCKING_STATUSES
from ._k8s import KubeClient
from ._live import Discovery
from ._lock import DEFAULT_CLIENT_TIMEOUT, LockOptions, stale_or_refuse
from ._manifest import ManifestError, parse_manifest
from ._release_codec import Driver, utc_now
from ._storage import ReleaseStorage, StoredRecord, corrupt_newer, require_preconditions

ANNOTATION = "helmops.recovery/apis-mapped-at"


@dataclass
class MappingOptions:
    namespace: str
    release: str
    revisions: list[int] | None = None  # None: the revisions Helm reads next
    force: bool = False
    stale_after: int = 600
    client_timeout: int = DEFAULT_CLIENT_TIMEOUT
    backup_dir: str = "~/.helmops-recovery/backups"


@dataclass
class RevisionRewrite:
    stored: StoredRecord
    release: dict[str, t.Any]  # the release JSON to write
    changes: list[Change]
    read_by: list[str]

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "revision": self.stored.record.revision,
            "status": self.stored.record.status,
            "read_by": self.read_by,
            "changes": [change.as_dict() for change in self.changes],
        }


@dataclass
class MappingPlan:
    options: MappingOptions
    history: list[StoredRecord]
    read: dict[int, list[str]]  # revision -> which Helm operation reads it
    rewrites: list[RevisionRewrite] = field(default_factory=list)
    lock: dict[str, t.Any] = field(default_factory=dict)
    overridden: list[str] = field(default_factory=list)
    left_unmapped: list[str] = field(default_factory=list)  # hook objects served at no version, left as they are

    def diff(self) -> dict[str, t.Any]:
        """Each changed object's apiVersion before and after; never a manifest (it may hold Secrets)."""
        before: dict[str, list[str]] = {}
        after: dict[str, list[str]] = {}
        for rewrite in self.rewrites:
            label = f"revision {rewrite.stored.record.revision} ({rewrite.stored.record.status})"
            before[label] = [f"{c.where}: {c.kind} {c.name}: apiVersion {c.old}" for c in rewrite.changes]
            after[label] = [f"{c.where}: {c.kind} {c.name}: apiVersion {c.new}" for c in rewrite.changes]
        return {"before": before, "after": after}


def plan_mapping(client: KubeClient, driver: Driver, options: MappingOptions, now: float) -> MappingPlan:
    """Decide what to rewrite; raises ModuleError when a guard refuses or a document cannot be mapped safely."""
    storage = ReleaseStorage(client, driver)
    records, errors = storage.history(options.namespace, options.release)
    if not records:
        detail = f" ({len(errors)} corrupt record(s): {errors[0]})" if errors else ""
        raise ModuleError(
            f"release {options.release!r} not found in namespace {options.namespace} ({storage.kind} records){detail}"
        )
    by_revision = {stored.record.revision: stored for stored in records}
    history = {n: (s.record.status, s.record.description) for n, s in by_revision.items()}
    labelled = [n for n, s in by_revision.items() if s.record.meta.status_label == "deployed"]
    read = revisions_helm_reads(history, labelled)
    for revision in options.revisions or []:
        if revision not in by_revision:
            raise ModuleError(f"release {options.release} has no revision {revision} (it has {sorted(by_revision)})")
        read.setdefault(revision, ["named in revisions"])
    plan = MappingPlan(options, records, dict(sorted(read.items())))
    _check_newest(client, plan, records[-1], errors, now)
    discovery = Discovery(client)
    for revision, read_by in plan.read.items():
        rewrite = _rewrite(by_revision[revision], discovery, options, read_by, plan.left_unmapped)
        if rewrite is not None:
            plan.rewrites.append(rewrite)
    return plan


def _check_newest(client: KubeClient, plan: MappingPlan, newest: StoredRecord, errors: list[t.Any], now: float) -> None:
    """A running Helm client may be about to write the records: refuse unless the lock is stale (as unlock)."""
    options = plan.options
    if corrupt_newer(newest, errors):
        raise ModuleError(
            f"a newer record of {options.release!r} is corrupt, so the newest revision is unknown: "
            + "; ".join(str(error) for error in errors)
        )
    if newest.record.status not in LOCKING_STATUSES:
        return
    plan.lock, plan.overridden = stale_or_refuse(
        client,
        options.namespace,
        newest.record.release,
        newest.record.meta.written_at,
        options=LockOptions(options.stale_after, options.client_timeout),
        now=now,
        force=options.force,
        refusing=f"refusing to map {options.release}: its newest revision {newest.record.revision} is "
        f"{newest.record.status}",
    )


def _rewrite(
    stored: StoredRecord, discovery: Discovery, options: MappingOptions, read_by: list[str], left: list[str]
) -> RevisionRewrite | None:
    """The record's release JSON with its manifests mapped; None when nothing in it needs mapping."""
    record = stored.record
    what = f"revision {record.revision}'s manifest ({record.meta.ref})"
    hooks = [h for h in record.release.get("hooks") or [] if isinstance(h, dict)]
    texts = [("manifest", what, str(record.release.get("manifest") or ""))] + [
        (f"hook {h.get('name')}", f"revision {record.revision}'s hook {h.get('name')}", str(h.get("manifest") or ""))
        for h in hooks
    ]
    mapping = _mapping_for(texts, discovery, options.namespace, left)
    if not mapping:
        return None
    if record.status_label_mismatch and not options.force:
        raise ModuleError(
            f"refusing to rewrite {options.release} revision {record.revision}: its status label says "
            f"{record.meta.status_label!r} but its payload says {record.status!r}, so the record was changed outside "
            "Helm. Check it with helm_release_facts, or set force: true.",
            revision=record.revision,
        )
    release = dict(record.release)  # every other field keeps its value and its position
    manifest = map_manifest(texts[0][2], mapping, "manifest", what)
    release["manifest"] = manifest.text
    changes = list(manifest.changes)
    if hooks:
        mapped_hooks = []
        for hook in record.release.get("hooks") or []:
            if not isinstance(hook, dict):
                mapped_hooks.append(hook)
                continue
            where = f"hook {hook.get('name')}"
            mapped = map_manifest(
                str(hook.get("manifest") or ""), mapping, where, f"revision {record.revision}'s {where}"
            )
            changes += mapped.changes
            mapped_hooks.append({**hook, "manifest": mapped.text} if mapped.changes else hook)
        release["hooks"] = mapped_hooks
    return RevisionRewrite(stored, release, changes, read_by) if changes else None


def _mapping_for(
    texts: list[tuple[str, str, str]], discovery: Discovery, namespace: str, left: list[str]
) -> dict[tuple[str, str], str]:
    """(apiVersion, kind) -> the served apiVersion, for every unserved object of these manifests. A kind the API
    serves at no version refuses the whole mapping when the manifest has it (there is nothing safe to write for
    it); in a hook it is left as it is and named in ``left`` (Helm builds a hook only when it runs it: a
    PodSecurityPolicy pre-install hook never runs again)."""
    mapping: dict[tuple[str, str], str] = {}
    for where, what, text in texts:
        try:
            objects = parse_manifest(text, namespace, what=what)
        except ManifestError as exc:
            raise MappingError(f"{exc}; nothing was mapped") from exc
        for key, _document in objects:
            moved = unserved(discovery, key.api_version, key.kind)
            if moved is None:
                continue
            if moved.served_as is None and where != "manifest":
                left.append(f"{what}: {key.api_version} {key.kind} {key.name} (served at no version)")
                continue
            if moved.served_as is None:
                cause = (
                    f"Kubernetes {moved.removed_in} removed {key.kind} and serves it at no version"
                    if moved.removed_in
                    else "the API serves the kind at no version (is its CRD installed?)"
                )
                raise MappingError(
                    f"{what}: {key.api_version} {key.kind} {key.name} cannot be mapped: {cause}. Remove it from the "
                    "chart, and from the stored manifest by hand after a backup; nothing was mapped",
                    object=f"{key.api_version} {key.kind} {key.name}",
                )
            mapping[(key.api_version, key.kind)] = moved.served_as
    return mapping


def backup(plan: MappingPlan, cluster: str) -> str:
    """Save the records about to change, as the API returned them, with the release's history then."""
    options = plan.options
    taken = taken_from(cluster, [r.obj for r in plan.history])
    objects = [rewrite.stored.obj for rewrite in plan.rewrites]
    name = plan.rewrites[0].stored.record.meta.name
    return save_records(options.backup_dir, options.namespace, options.release, name, objects, taken=taken)


def apply_mapping(client: KubeClient, driver: Driver, plan: MappingPlan) -> None:
    """Write every rewrite, each guarded by the resourceVersion the plan read it at; a record changed since makes
    the API answer 409 and nothing more is written (a second run maps what is left)."""
    storage = ReleaseStorage(client, driver)
    for rewrite in plan.rewrites:  # every record guarded before the first write: none is written, or all are tried
        require_preconditions(rewrite.stored.record.meta)
    now = utc_now()
    for rewrite in plan.rewrites:
        storage.replace(rewrite.stored, rewrite.release, annotations={ANNOTATION: now}, keep_status_label=True)


def record_event(client: KubeClient, plan: MappingPlan) -> str | None:
    """A Kubernetes Event on the newest rewritten record; returns a warning if it failed."""
    meta = plan.rewrites[0].stored.record.meta
    revisions = ", ".join(str(r.stored.record.revision) for r in plan.rewrites)
    moved = sorted({f"{c.kind} {c.old} -> {c.new}" for r in plan.rewrites for c in r.changes})
    event = ReleaseEvent(
        namespace=meta.namespace,
        release=plan.options.release,
        record_name=meta.name,
        driver=meta.driver,
        reason="HelmReleaseApisMapped",
        action="map_apis",
        note=f"helmops.recovery mapped revision {revisions} of {plan.options.release}: {'; '.join(moved)}"[:1024],
        module="helm_release_map_apis",
        name_hint="map-apis",
    )
    return post_event(client, event)
