# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lock verdict: may a Helm client still be working on a pending release?

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

One function, ``lock_verdict``, used by helm_release_facts, helm_release_unlock
and helm_release_recover alike. It reads the newest record and the live objects
of its manifest, and never judges a live client stale:

- a record younger than ``stale_after`` may belong to a running client;
- a hook Job or Pod still running means Helm may be waiting on it;
- a rollout the controller is still progressing is activity at any age;
- an object ``helm --wait`` would still wait on (not ready, a claim not bound,
  a load balancer without an address; a rollout past its progress deadline
  included: Helm 3's ``--wait`` and Helm 4's ``--wait=legacy`` do not stop at
  ``ProgressDeadlineExceeded``, pkg/kube/ready.go ``deploymentReady``) is
  activity while the record is younger than the client bound: a client waits
  up to ``--timeout`` for pre-hooks, again for the resources and again for
  post-hooks (pkg/action/upgrade.go, hooks.go), so the bound is
  ``3 × client_timeout + CLIENT_GRACE`` seconds;
- a change to one of those objects within ``stale_after`` (other than a
  controller's status) is activity;
- an object that could not be read is activity: not being allowed to look is
  no proof that nothing runs.

Only the namespaced kinds Helm waits on are read (WAITED_KINDS), so a chart
with cluster-scoped objects needs no cluster-wide read access to be unlocked.
A ``stale`` verdict lists what was checked and found quiet, with the thresholds.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from ._errors import ModuleError
from ._history import DEFAULT_CLIENT_TIMEOUT, DEFAULT_STALE_AFTER, LOCKING_STATUSES
from ._k8s import KubeClient
from ._live import Discovery, LiveIndex, pod_ready
from ._manifest import ManifestError, ObjectKey, parse_manifest
from ._release_codec import parse_kube_time

CLIENT_GRACE = 60  # seconds for a client to render, apply and write around its waits
# The namespaced kinds whose readiness `helm --wait` checks (Helm 3 pkg/kube/ready.go; Helm 4's
# status waiter checks these among others).
WAITED_KINDS = frozenset(
    {
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Pod",
        "Job",
        "PersistentVolumeClaim",
        "Service",
    }
)


@dataclass(frozen=True)
class LockOptions:
    stale_after: int = DEFAULT_STALE_AFTER
    client_timeout: int = DEFAULT_CLIENT_TIMEOUT
    inspect_live: bool = True

    @property
    def client_bound(self) -> int:
        """How long after writing its pending record a Helm client may still be waiting."""
        return 3 * self.client_timeout + CLIENT_GRACE


@dataclass(frozen=True)
class NewestRecord:
    """The newest record of a release, as the verdict reads it."""

    namespace: str
    status: str
    age: float  # seconds since Helm wrote it
    release: t.Mapping[str, t.Any]  # its release JSON (hooks)
    objects: t.Sequence[tuple[ObjectKey, dict[str, t.Any]]]  # its parsed manifest
    unreadable: str = ""  # why its manifest could not be read (then nothing counts as quiet)


def newest_record(namespace: str, release: t.Mapping[str, t.Any], written_at: float | None, now: float) -> NewestRecord:
    """The newest record from its release JSON, its manifest parsed (an unreadable one remembered)."""
    info = release.get("info") if isinstance(release.get("info"), dict) else {}
    status = str((info or {}).get("status") or "unknown")
    try:
        objects = parse_manifest(
            str(release.get("manifest") or ""), namespace, what=f"revision {release.get('version')}'s manifest"
        )
        unreadable = ""
    except ManifestError as exc:
        objects, unreadable = [], str(exc)
    return NewestRecord(namespace, status, now - (written_at or 0.0), release, objects, unreadable)


def stale_or_refuse(
    client: KubeClient,
    namespace: str,
    release: t.Mapping[str, t.Any],
    written_at: float | None,
    *,
    options: LockOptions,
    now: float,
    force: bool,
    refusing: str,
) -> tuple[dict[str, t.Any], list[str]]:
    """The verdict on a locking newest record, for a module about to write: (verdict, evidence force overrode).
    Refuses (ModuleError, ``refusing`` first) unless the lock is stale or ``force`` is set. The caller reads the
    record it then writes, so every write carries that read's resourceVersion."""
    record = newest_record(namespace, release, written_at, now)
    verdict = lock_verdict(record, LiveIndex(client, Discovery(client)), options, now)
    if verdict.get("verdict") == "stale":
        return verdict, []
    evidence = list(verdict.get("evidence") or ["no verdict"])
    if not force:
        raise ModuleError(
            f"{refusing}: an operation may still be running: {'; '.join(evidence)}. Wait, or set force: true if you "
            "are sure no Helm client is working on it.",
            lock=verdict,
        )
    return verdict, evidence


def lock_verdict(record: NewestRecord, live: LiveIndex | None, options: LockOptions, now: float) -> dict[str, t.Any]:
    """Whether a Helm client may still be working on the release, with the evidence."""
    verdict: dict[str, t.Any] = {
        "verdict": "none",
        "stale_after": options.stale_after,
        "client_timeout": options.client_timeout,
        "evidence": [],
    }
    if record.status not in LOCKING_STATUSES:
        return verdict
    verdict.update(age_seconds=int(record.age), client_bound=options.client_bound)
    check = _Check(record, options, now)
    if record.age < options.stale_after:
        check.activity.append(
            f"the {record.status} record was written {int(record.age)}s ago (stale after {options.stale_after}s)"
        )
    else:
        check.quiet.append(
            f"the {record.status} record was written {int(record.age)}s ago, more than stale_after "
            f"{options.stale_after}s"
        )
    if record.unreadable:
        # What Helm waits on is unknown: never call it quiet.
        check.activity.append(f"could not check for a running operation: {record.unreadable}")
    elif not options.inspect_live or live is None:
        check.activity.append(
            "the live objects were not inspected (inspect_live is false), so a running client is not ruled out"
        )
    else:
        check.live(live)
    verdict.update(
        verdict="possibly-running" if check.activity else "stale", evidence=check.activity, checked=check.quiet
    )
    return verdict


class _Check:
    """Signs of activity and of quiet, gathered from the live objects of the newest record."""

    def __init__(self, record: NewestRecord, options: LockOptions, now: float) -> None:
        self.record = record
        self.options = options
        self.now = now
        self.activity: list[str] = []
        self.quiet: list[str] = []

    def live(self, live: LiveIndex) -> None:
        errors_before = len(live.errors)
        self._hooks(live)
        self._waited(live)
        # Not being allowed to look is no proof that nothing runs.
        self.activity += [f"could not check for a running operation: {error}" for error in live.errors[errors_before:]]

    def _hooks(self, live: LiveIndex) -> None:
        hooks = hook_keys(self.record.release, self.record.namespace)
        running = [reason for reason in (_hook_running(key, events, live) for key, events in hooks) if reason]
        self.activity += running
        if hooks and not running:
            self.quiet.append(f"no hook Job or Pod is running ({len(hooks)} checked)")

    def _waited(self, live: LiveIndex) -> None:
        options = self.options
        within_bound = self.record.age < options.client_bound
        bound_text = (
            f"a client with --timeout up to {options.client_timeout}s may wait on it until the record is "
            f"{options.client_bound}s old"
        )
        waited = [key for key, _document in self.record.objects if key.kind in WAITED_KINDS]
        ready: list[str] = []
        for key in waited:
            obj = live.get(key)
            if obj is None:
                continue
            pending = _being_deleted(obj) if self.record.status == "uninstalling" else not_ready(obj)
            if pending and _progressing(obj):
                # "Deployment web is rolling out (0/1 updated, ...)": its controller still drives it.
                self.activity.append(pending.replace(" is not ready ", " is rolling out ", 1))
            elif pending and within_bound:
                self.activity.append(f"{pending}; {bound_text}")
            elif pending:
                self.quiet.append(f"{pending}, but the record is older than the client bound ({options.client_bound}s)")
            else:
                ready.append(key.describe())
            changed = _recently_changed(obj, options.stale_after, self.now)
            if changed:
                self.activity.append(f"{key.describe()} {changed}")
        if not waited:
            self.quiet.append("the manifest holds nothing helm --wait would wait on")
            return
        shown = ", ".join(ready[:5]) + (", ..." if len(ready) > 5 else "")
        self.quiet.append(
            f"{len(ready)} of {len(waited)} object(s) helm --wait would wait on are ready"
            + (f" ({shown})" if ready else "")
        )
        self.quiet.append(f"none of them changed in the last {options.stale_after}s (other than controller status)")


def hook_keys(newest: t.Mapping[str, t.Any], namespace: str) -> list[tuple[ObjectKey, str]]:
    """The revision's hook Jobs and Pods, with the events they run on."""
    keys = []
    for hook in newest.get("hooks") or []:
        if not isinstance(hook, dict) or hook.get("kind") not in ("Job", "Pod"):
            continue
        api_version = "batch/v1" if hook["kind"] == "Job" else "v1"
        events = ", ".join(str(event) for event in hook.get("events") or [])
        keys.append((ObjectKey(api_version, str(hook["kind"]), namespace, str(hook.get("name"))), events))
    return keys


def _hook_running(key: ObjectKey, events: str, live: LiveIndex) -> str | None:
    obj = live.get(key)
    if obj is None:
        return None
    status = obj.get("status") or {}
    if key.kind == "Job" and status.get("active"):
        return f"hook Job {key.name} ({events}) is still running"
    if key.kind == "Pod" and status.get("phase") in ("Pending", "Running"):
        return f"hook Pod {key.name} ({events}) is {status.get('phase')}"
    return None


def hook_phase(obj: t.Mapping[str, t.Any]) -> str:
    """A hook Job's or Pod's phase now, in Helm's words (release.HookPhase): Running, Succeeded or Failed."""
    status = obj.get("status") or {}
    if obj.get("kind") == "Pod":
        phase = str(status.get("phase") or "Unknown")
        return "Running" if phase == "Pending" else phase
    conditions = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in conditions or "SuccessCriteriaMet" in conditions:
        return "Succeeded"
    if "Failed" in conditions or "FailureTarget" in conditions:
        return "Failed"
    return "Running"


def _recently_changed(obj: dict[str, t.Any], stale_after: int, now: float) -> str | None:
    newest = None
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if entry.get("subresource") == "status":
            continue  # controllers reporting status; not a change to what was applied
        stamp = parse_kube_time(entry.get("time"))
        if stamp is not None and (newest is None or stamp > newest[0]):
            newest = (stamp, entry.get("manager") or "?")
    if newest and now - newest[0] < stale_after:
        return f"was changed {int(now - newest[0])}s ago by {newest[1]}"
    return None


def _progressing(obj: dict[str, t.Any]) -> bool:
    """A rollout its controller still drives, at any age: a Deployment before its progress
    deadline, or any workload whose newest spec the controller has not seen yet."""
    metadata = obj.get("metadata") or {}
    status = obj.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(metadata.get("generation") or 0):
        return obj.get("kind") in ("Deployment", "StatefulSet", "DaemonSet")
    if obj.get("kind") != "Deployment":
        return False
    return not any(
        condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded"
        for condition in status.get("conditions") or []
    )


def _being_deleted(obj: dict[str, t.Any]) -> str | None:
    metadata = obj.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        return f"{obj.get('kind')} {metadata.get('name')} is being deleted (helm uninstall --wait waits for it)"
    return None


def not_ready(obj: dict[str, t.Any]) -> str | None:
    """Why `helm --wait` would still wait on this object, or None when it would not."""
    kind = str(obj.get("kind"))
    metadata = obj.get("metadata") or {}
    name = str(metadata.get("name"))
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet") and int(status.get("observedGeneration") or 0) < int(
        metadata.get("generation") or 0
    ):
        return f"{kind} {name} has a newer spec than its controller has seen"
    check = _READINESS.get(kind)
    return check(kind, name, spec, status) if check else None


def _statefulset_not_ready(kind: str, name: str, spec: dict[str, t.Any], status: dict[str, t.Any]) -> str | None:
    wanted = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
    if ready < wanted or (rolling and status.get("updateRevision") != status.get("currentRevision")):
        return f"StatefulSet {name} is not ready ({ready}/{wanted} ready)"
    return None


def _daemonset_not_ready(kind: str, name: str, spec: dict[str, t.Any], status: dict[str, t.Any]) -> str | None:
    desired = int(status.get("desiredNumberScheduled") or 0)
    if int(status.get("updatedNumberScheduled") or 0) < desired or int(status.get("numberReady") or 0) < desired:
        return f"DaemonSet {name} is not ready ({status.get('numberReady', 0)}/{desired} ready)"
    return None


def _replicas_not_ready(kind: str, name: str, spec: dict[str, t.Any], status: dict[str, t.Any]) -> str | None:
    wanted = int(spec.get("replicas", 1))
    if int(status.get("readyReplicas") or 0) < wanted:
        return f"{kind} {name} is not ready ({status.get('readyReplicas', 0)}/{wanted} ready)"
    return None


def _deployment_not_ready(kind: str, name: str, spec: dict[str, t.Any], status: dict[str, t.Any]) -> str | None:
    """Helm waits until the new ReplicaSet has its replicas ready; the Deployment's status shows that
    as `kubectl rollout status` reads it: every replica updated, no old one left, the updated ones
    available (less maxUnavailable, which Helm allows too)."""
    if spec.get("paused"):
        return None  # Helm's waiter counts a paused Deployment as ready
    wanted = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    old = int(status.get("replicas") or 0) - updated
    if updated >= wanted and old <= 0 and available >= updated - _max_unavailable(spec, wanted):
        return None
    deadline = any(
        condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded"
        for condition in status.get("conditions") or []
    )
    reason = f"Deployment {name} is not ready ({updated}/{wanted} updated, {available} available, {max(old, 0)} old"
    return reason + (", past its progress deadline)" if deadline else ")")


def _max_unavailable(spec: dict[str, t.Any], wanted: int) -> int:
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0
    value = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    text = str(value)
    if text.endswith("%"):
        try:
            return int(wanted * int(text[:-1]) / 100)
        except ValueError:
            return 0
    return int(text) if text.isdigit() else 0


def _pod_not_ready(kind: str, name: str, spec: dict[str, t.Any], status: dict[str, t.Any]) -> str | None:
    if status.get("phase") == "Succeeded" or pod_ready(status):
        return None
    return f"Pod {name} is not ready (phase {status.get('phase', 'unknown')})"


def _job_not_ready(kind: str, name: str, spec: dict[str, t.Any], status: dict[str, t.Any]) -> str | None:
    # A failed Job ends Helm's wait too (with an error): only a Job still running keeps it waiting.
    finished = any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in status.get("conditions") or []
    )
    return None if finished else f"Job {name} has not finished"


def _claim_not_ready(kind: str, name: str, spec: dict[str, t.Any], status: dict[str, t.Any]) -> str | None:
    phase = status.get("phase", "Pending")
    return None if phase == "Bound" else f"PersistentVolumeClaim {name} is not bound (phase {phase})"


def _service_not_ready(kind: str, name: str, spec: dict[str, t.Any], status: dict[str, t.Any]) -> str | None:
    waiting = spec.get("type") == "LoadBalancer" and not (status.get("loadBalancer") or {}).get("ingress")
    return f"Service {name} has no load balancer address yet" if waiting else None


_READINESS: dict[str, t.Callable[[str, str, dict[str, t.Any], dict[str, t.Any]], str | None]] = {
    "Deployment": _deployment_not_ready,
    "StatefulSet": _statefulset_not_ready,
    "DaemonSet": _daemonset_not_ready,
    "ReplicaSet": _replicas_not_ready,
    "ReplicationController": _replicas_not_ready,
    "Pod": _pod_not_ready,
    "Job": _job_not_ready,
    "PersistentVolumeClaim": _claim_not_ready,
    "Service": _service_not_ready,
}
