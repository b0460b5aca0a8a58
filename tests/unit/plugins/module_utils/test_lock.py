"""The lock verdict, table-driven: which live states count as a possibly running Helm client, at
which record age, and what a stale verdict says it checked. The real cases (a live Helm 3 and
Helm 4 client past a progress deadline) are in tests/integration/test_live_client.py."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._history import rollback_target, upgrade_base
from ansible_collections.helmops.recovery.plugins.module_utils._lock import (
    LockOptions,
    NewestRecord,
    lock_verdict,
    newest_record,
    not_ready,
)
from ansible_collections.helmops.recovery.plugins.module_utils._manifest import ObjectKey

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
OPTIONS = LockOptions(stale_after=600, client_timeout=900)  # client bound 2760 s

DEADLINE = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}


def deployment(
    updated: int = 1, available: int = 1, replicas: int = 1, deadline: bool = False, **meta: t.Any
) -> dict[str, t.Any]:
    status: dict[str, t.Any] = {
        "observedGeneration": 2,
        "updatedReplicas": updated,
        "availableReplicas": available,
        "replicas": replicas,
    }
    if deadline:
        status["conditions"] = [DEADLINE]
    return {
        "kind": "Deployment",
        "metadata": {"name": "web", "generation": 2, **meta},
        "spec": {"replicas": 1},
        "status": status,
    }


READINESS = [
    # (case, live object, not ready?)
    ("a Deployment rolled out", deployment(), False),
    ("a Deployment with an old pod left", deployment(replicas=2), True),
    ("a Deployment past its progress deadline", deployment(replicas=2, deadline=True), True),
    ("a paused Deployment", {**deployment(replicas=2), "spec": {"replicas": 1, "paused": True}}, False),
    (
        "a claim not bound",
        {"kind": "PersistentVolumeClaim", "metadata": {"name": "d"}, "status": {"phase": "Pending"}},
        True,
    ),
    (
        "a claim bound",
        {"kind": "PersistentVolumeClaim", "metadata": {"name": "d"}, "status": {"phase": "Bound"}},
        False,
    ),
    (
        "a load balancer without an address",
        {"kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "LoadBalancer"}},
        True,
    ),
    ("a ClusterIP Service", {"kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "ClusterIP"}}, False),
    ("a Job still running", {"kind": "Job", "metadata": {"name": "j"}, "status": {"active": 1}}, True),
    (
        "a failed Job (Helm's wait ends with an error)",
        {"kind": "Job", "metadata": {"name": "j"}, "status": {"conditions": [{"type": "Failed", "status": "True"}]}},
        False,
    ),
    (
        "a StatefulSet short of replicas",
        {"kind": "StatefulSet", "metadata": {"name": "db"}, "spec": {"replicas": 2}, "status": {"readyReplicas": 1}},
        True,
    ),
    ("a ConfigMap", {"kind": "ConfigMap", "metadata": {"name": "c"}}, False),
]


@pytest.mark.parametrize(("case", "obj", "pending"), READINESS, ids=[r[0] for r in READINESS])
def test_what_helm_wait_would_still_wait_on(case: str, obj: dict[str, t.Any], pending: bool) -> None:
    assert bool(not_ready(obj)) is pending, case


class FakeLive:
    """A LiveIndex stand-in: objects by name, and the errors a forbidden read leaves."""

    def __init__(self, objects: dict[str, dict[str, t.Any]], forbidden: bool = False) -> None:
        self.objects = objects
        self.forbidden = forbidden
        self.errors: list[str] = []

    def get(self, key: ObjectKey) -> dict[str, t.Any] | None:
        if self.forbidden:
            self.errors.append(f"forbidden (403) to list {key.kind.lower()}s in {key.namespace}")
            return None
        return self.objects.get(key.name)


WEB = ObjectKey("apps/v1", "Deployment", "ns", "web")
VERDICTS = [
    # (case, record age, live objects, forbidden, (verdict, evidence fragment))
    ("a young record", 30, {"web": deployment()}, False, ("possibly-running", "written 30s ago")),
    ("old and quiet", 3000, {"web": deployment()}, False, ("stale", "")),
    (
        "a rollout its controller still drives, at any age",
        9000,
        {"web": deployment(replicas=2)},
        False,
        ("possibly-running", "Deployment web is rolling out (1/1 updated, 1 available, 1 old)"),
    ),
    (
        "past the progress deadline, within the client bound",
        950,
        {"web": deployment(replicas=2, deadline=True)},
        False,
        ("possibly-running", "may wait on it until the record is 2760s old"),
    ),
    (
        "past the progress deadline, beyond the client bound",
        2800,
        {"web": deployment(replicas=2, deadline=True)},
        False,
        ("stale", ""),
    ),
    (
        "changed a minute ago",
        3000,
        {"web": deployment(managedFields=[{"manager": "kubectl", "time": "2027-01-15T07:59:00Z"}])},
        False,
        ("possibly-running", "was changed"),
    ),
    ("a forbidden read is no proof of quiet", 3000, {}, True, ("possibly-running", "could not check")),
]


@pytest.mark.parametrize(("case", "age", "objects", "forbidden", "expected"), VERDICTS, ids=[v[0] for v in VERDICTS])
def test_verdict(case: str, age: float, objects: dict[str, t.Any], forbidden: bool, expected: tuple[str, str]) -> None:
    verdict, evidence = expected
    record = NewestRecord("ns", "pending-upgrade", age, {"hooks": []}, [(WEB, {})])
    result = lock_verdict(record, t.cast(t.Any, FakeLive(objects, forbidden)), OPTIONS, NOW)
    assert result["verdict"] == verdict, (case, result)
    assert result["client_bound"] == 2760
    if evidence:
        assert any(evidence in line for line in result["evidence"]), result["evidence"]
    else:
        assert result["evidence"] == [] and result["checked"], result


def test_a_stale_verdict_lists_what_it_checked_and_the_thresholds() -> None:
    record = NewestRecord("ns", "pending-install", 2800, {"hooks": [{"kind": "Job", "name": "migrate"}]}, [(WEB, {})])
    live = FakeLive({"web": deployment(replicas=2, deadline=True), "migrate": {"status": {"succeeded": 1}}})
    result = lock_verdict(record, t.cast(t.Any, live), OPTIONS, NOW)
    assert result["verdict"] == "stale"
    checked = " | ".join(result["checked"])
    assert "written 2800s ago, more than stale_after 600s" in checked
    assert "no hook Job or Pod is running (1 checked)" in checked
    assert "past its progress deadline), but the record is older than the client bound (2760s)" in checked


def test_an_unreadable_manifest_is_never_quiet() -> None:
    record = newest_record(
        "ns", {"info": {"status": "pending-upgrade"}, "version": 2, "manifest": "a: 1\na: 2\n"}, NOW - 5000, NOW
    )
    assert record.unreadable.startswith("revision 2's manifest cannot be read")
    result = lock_verdict(record, t.cast(t.Any, FakeLive({})), OPTIONS, NOW)
    assert result["verdict"] == "possibly-running" and "cannot be read" in result["evidence"][0]


def test_not_inspected_is_not_quiet() -> None:
    record = NewestRecord("ns", "pending-upgrade", 5000, {}, [])
    result = lock_verdict(record, None, LockOptions(inspect_live=False), NOW)
    assert result["verdict"] == "possibly-running"


def test_a_deployed_release_has_no_lock() -> None:
    assert lock_verdict(NewestRecord("ns", "deployed", 5, {}, []), None, OPTIONS, NOW)["verdict"] == "none"


TARGETS = [
    # (case, history, target)
    ("failed upgrade: the last known-good before it", {1: ("deployed", ""), 2: ("failed", "")}, 1),
    ("superseded counts as known-good", {1: ("superseded", ""), 2: ("superseded", ""), 3: ("failed", "")}, 2),
    (
        "an interrupted rollback: the revision it aimed at",
        {1: ("superseded", ""), 2: ("superseded", ""), 3: ("pending-rollback", "Rollback to 1")},
        1,
    ),
    (
        "an interrupted rollback aimed at a failed revision: the last known-good",
        {1: ("superseded", ""), 2: ("failed", ""), 3: ("pending-rollback", "Rollback to 2")},
        1,
    ),
    ("never deployed: none", {1: ("failed", ""), 2: ("pending-upgrade", "")}, None),
    ("one revision: none", {1: ("pending-install", "")}, None),
]


@pytest.mark.parametrize(("case", "history", "target"), TARGETS, ids=[c[0] for c in TARGETS])
def test_rollback_target(case: str, history: dict[int, tuple[str, str]], target: int | None) -> None:
    assert rollback_target(history) == target, case


@pytest.mark.parametrize(
    ("status", "labelled", "newest", "base"),
    [
        ("deployed", [2], 3, 3),  # the newest, deployed
        ("failed", [2], 3, 2),  # the newest labelled deployed
        ("failed", [], 3, 3),  # none deployed: the failed newest itself
        ("pending-upgrade", [], 3, None),  # Helm refuses
        ("uninstalled", [], 3, None),
    ],
)
def test_upgrade_base_is_what_helm_diffs_against(
    status: str, labelled: list[int], newest: int, base: int | None
) -> None:
    assert upgrade_base(status, labelled, newest) == base
