# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Assemble what helm_release_facts reports: for every release in scope, its
revisions, lock verdict with evidence, live resources against its manifests,
risks, and the diagnosis.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

Each job has its own module: listing the records (_listing.py), the release
they make (_release_model.py), the lock verdict (_lock.py), the live
comparison (_live.py), the risks (_risks.py), the controllers that manage
releases (_controllers.py) and the decision tree (_diagnosis.py). Here they
are put together, one release at a time: whole payloads are decoded only for
the revisions the facts read (the latest, the last deployed and a rollback
target), so memory grows with releases, not revisions.
"""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass, field

from ._commands import CommandSettings
from ._controllers import Controllers, list_controllers
from ._diagnosis import UserContext, diagnose, diagnose_error
from ._history import DEFAULT_HISTORY_THRESHOLD, KNOWN_GOOD_STATUSES, ROLLBACK_STATUSES, rollback_target
from ._k8s import KubeClient, KubeNotFound, namespace_exists
from ._listing import collect, error_entry
from ._live import Discovery, LiveIndex, live_facts, scoped, workload_ready
from ._lock import DEFAULT_CLIENT_TIMEOUT, LockOptions, NewestRecord, hook_keys, hook_phase, lock_verdict
from ._release_codec import (
    KUBE_TIME_FORMAT,
    PENDING_STATUSES,
    Driver,
    ReleaseRecordError,
    check_summary_identity,
    decode_payload,
    payload_text_from_object,
)
from ._release_model import Manifests, Release, ReleaseView, Revision
from ._risks import risks
from ._rollout import not_ready_pods
from ._storage import ReleaseStorage

# detail="brief", a release healthy by its records: its entry keeps identity, state, the
# revisions read, record errors and the diagnosis drawn from all of this; the evidence
# sections stay with the entries that got the deep look (_add_evidence) and are not computed
# for the others, save the risks the tree reads. (Every value of a fleet's result costs
# ansible-playbook time: these are a third of a healthy entry's.)
EVIDENCE_SECTIONS = ("written_by", "pending_seconds", "live", "lock", "risks")
History = t.Literal["full", "labels"]
Detail = t.Literal["full", "brief"]
OrphanSearch = t.Literal["manifests", "history"]


@dataclass
class GatherOptions:
    namespace: str | None = None
    releases: list[str] | None = None
    stale_after: int = 600
    client_timeout: int = DEFAULT_CLIENT_TIMEOUT
    include_values: bool = False
    history_threshold: int = DEFAULT_HISTORY_THRESHOLD
    inspect_live: bool = True
    history: History = "full"
    detail: Detail = "full"
    # manifests: orphans are searched among the kinds of the latest and last deployed manifests;
    # history: among the kinds any revision had (every payload decoded; history="full" only).
    orphan_search: OrphanSearch = "manifests"
    context: UserContext = field(default_factory=UserContext)
    commands: CommandSettings = field(default_factory=CommandSettings)  # what printed commands carry
    now: float = field(default_factory=time.time)


def gather(client: KubeClient, driver: Driver, options: GatherOptions) -> tuple[list[dict[str, t.Any]], list[str]]:
    """Facts for every release in scope, and scope-level errors (no release found, ...)."""
    storage = ReleaseStorage(client, driver)
    releases, stray = collect(
        storage,
        options.namespace,
        options.releases,
        from_labels=options.history == "labels",
        superseded_by_name=options.detail == "brief",
        kinds_ever=options.orphan_search == "history",
    )
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
        list_controllers(client, discovery)
        if options.inspect_live
        else Controllers(errors=["controllers were not checked (inspect_live is false)"])
    )
    facts = [
        _release_facts(release, storage, live, controllers, options)
        for (_ns, _name), release in sorted(releases.items())
    ]
    scope_errors.extend(sorted(set(live.errors)))
    return facts, scope_errors


# --- one release ------------------------------------------------------------------


def _release_facts(
    release: Release,
    storage: ReleaseStorage,
    live: LiveIndex,
    controllers: Controllers,
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
    manifests = Manifests(full, release.namespace, refs) if deep else None  # a brief look parses no manifest
    facts: dict[str, t.Any] = {
        "name": release.name,
        "namespace": release.namespace,
        "driver": storage.driver,
        "exists": True,
        "detail": "full" if deep else "brief",
        "status": latest.status,
        "latest_revision": latest.meta.revision,
        "last_deployed_revision": deployed[-1].meta.revision if deployed else None,
        "last_known_good_revision": known_good[-1].meta.revision if known_good else None,
        "rollback_target_revision": target,
        "pending": pending,
        "upgrade_blocked": pending,
        "revisions": [_revision_facts(r, options.history) for r in ordered],
        "record_errors": release.errors,
    }
    looked_at = live if options.inspect_live else None  # scopes cluster-wide kinds as Helm does
    view = ReleaseView(
        release=release,
        ordered=ordered,
        latest_release=latest_release,
        latest_objects=scoped(manifests.objects(latest.meta.revision), looked_at) if manifests else [],
        deployed_objects=(
            scoped(manifests.objects(deployed[-1].meta.revision), looked_at) if manifests and deployed else []
        ),
        manifests=manifests,
        rollback_target=target,
    )
    release_risks = risks(
        view,
        live,
        controllers.of(release.namespace, release.name),
        history_threshold=options.history_threshold,
        sizes_from_labels=options.history == "labels",
        inspect_live=options.inspect_live,
        deep=deep,
    )
    if deep:
        _add_evidence(facts, view, live, release_risks, options)
    if options.include_values:
        facts["user_values"] = latest_release.get("config") or {}
    # A brief entry reports no evidence sections; the tree still reads what the risks say of the release's
    # controller, history and record sizes (a healthy release's lock and live objects were not looked at).
    diagnosis = diagnose(facts if deep else {**facts, "risks": release_risks}, options.context, options.commands)
    facts["diagnosis"] = diagnosis.as_dict()
    if options.detail == "brief":
        facts["revisions"] = _brief_revisions(facts)  # after the diagnosis, which may read any of them
    return facts


def _add_evidence(
    facts: dict[str, t.Any],
    view: ReleaseView,
    live: LiveIndex,
    release_risks: dict[str, t.Any],
    options: GatherOptions,
) -> None:
    """The sections of an entry that got the deep look (EVIDENCE_SECTIONS): who wrote it, the pending age, live
    objects, lock, risks."""
    latest = view.latest
    record_age = options.now - (latest.meta.written_at or 0.0)
    facts["written_by"] = "helm4" if "apply_method" in view.latest_release else "helm3"
    facts["pending_seconds"] = int(record_age) if facts["pending"] else None
    looked_at = live if options.inspect_live else None
    facts["live"] = live_facts(view, live, _stuck_pods(view, live)) if looked_at else {"checked": False}
    facts["lock"] = _lock(view, record_age, looked_at, options)
    facts["risks"] = release_risks
    if looked_at:
        _add_live_hook_phases(release_risks.get("hooks") or [], view, live)


def _stuck_pods(view: ReleaseView, live: LiveIndex) -> list[dict[str, t.Any]]:
    """The newest manifest's StatefulSet pods that a rollback or upgrade cannot move on its own (_rollout.py)."""
    return [
        {"statefulset": pod.statefulset, "pod": pod.name, "revision": pod.revision}
        for key in dict(view.latest_objects)  # an object named twice is one object
        if key.kind == "StatefulSet" and (obj := live.get(key)) is not None and not workload_ready(obj)
        for pod in not_ready_pods(key, obj, live)
    ]


def _needs_deep_look(release: Release, latest: Revision) -> bool:
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


def _broken_release_facts(release: Release, storage: ReleaseStorage, options: GatherOptions) -> dict[str, t.Any]:
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


def _full_payloads(release: Release, storage: ReleaseStorage) -> dict[int, dict[str, t.Any]]:
    decoded: dict[int, dict[str, t.Any]] = {}
    for number, obj in release.objects.items():
        meta = release.revisions[number].meta
        try:
            full = decode_payload(payload_text_from_object(obj, storage.driver), meta.ref)
            check_summary_identity(meta, full)  # a copy of another revision shows here
            decoded[number] = full
        except ReleaseRecordError as exc:
            release.errors.append(error_entry(exc))
    return decoded


def _revision_facts(revision: Revision, history: History = "full") -> dict[str, t.Any]:
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


def _metadata_revision_facts(revision: Revision) -> dict[str, t.Any]:
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


def _lock(view: ReleaseView, age: float, live: LiveIndex | None, options: GatherOptions) -> dict[str, t.Any]:
    latest = view.latest
    unreadable = view.manifests.errors.get(latest.meta.revision, "") if view.manifests else ""
    record = NewestRecord(
        view.release.namespace, latest.status, age, view.latest_release, view.latest_objects, unreadable
    )
    lock_options = LockOptions(options.stale_after, options.client_timeout, live is not None)
    return lock_verdict(record, live, lock_options, options.now)


def _add_live_hook_phases(hooks: list[dict[str, t.Any]], view: ReleaseView, live: LiveIndex) -> None:
    """The phase of each hook Job or Pod as the cluster shows it now: the record keeps the phase Helm last
    wrote, which stays Running when Helm was killed while the hook ran, even after the Job succeeded."""
    keys = {(key.kind, key.name): key for key, _events in hook_keys(view.latest_release, view.release.namespace)}
    for hook in hooks:
        key = keys.get((str(hook.get("kind")), str(hook.get("name"))))
        if key is not None:
            obj = live.get(key)
            hook["live_phase"] = hook_phase(obj) if obj is not None else "absent"
