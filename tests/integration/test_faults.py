"""Transient and persistent API faults, injected by the loopback fault proxy
between the modules and the real API server, on releases left by real Helm.

Transient faults are retried with backoff within the bound and the run ends as
it does without them (plus the retry warning); persistent ones end in a clear
failure with nothing written; a write that may have been applied is never
blindly repeated, and a second run converges.
"""

from __future__ import annotations

import time
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .faultproxy import FaultProxy, Rule, for_cluster
from .support import (
    KUBECONFIG,
    ROOT,
    WRITE_VERBS,
    Outcome,
    Scenario,
    audit_events_since,
    helm_json,
    ready,
    run_collection_module,
    run_scenarios,
    warnings_of,
)

LIST_RECORDS = r"^/api/v1/namespaces/[^/]+/secrets\?"
RECORD = r"^/api/v1/namespaces/[^/]+/secrets/sh\.helm\.release\.v1\."


@dataclass(frozen=True)
class Fault:
    id: str
    method: str
    path: str
    fault: str
    times: int | None

    def rule(self) -> Rule:
        return Rule(self.method, self.path, self.fault, times=self.times, retry_after=1)


# Retried, then the run succeeds: every module reads through these.
TRANSIENT_READS = [
    Fault("429-retry-after-on-list", "GET", LIST_RECORDS, "429", 2),
    Fault("500-on-list", "GET", LIST_RECORDS, "500", 2),
    Fault("503-on-list", "GET", LIST_RECORDS, "503", 2),
    Fault("reset-on-list", "GET", LIST_RECORDS, "reset", 2),
]
# Never ends: a clear failure after the retry bound, and no write.
PERSISTENT_READS = [
    Fault("429-always", "GET", LIST_RECORDS, "429", None),
    Fault("500-always", "GET", LIST_RECORDS, "500", None),
    Fault("503-always", "GET", LIST_RECORDS, "503", None),
    Fault("reset-always", "GET", LIST_RECORDS, "reset", None),
]
PERSISTENT_MESSAGES = {
    "429-always": "failed to read secrets in namespace {ns}: 429 TooManyRequests",
    "500-always": "failed to read secrets in namespace {ns}: 500 InternalError",
    "503-always": "failed to read secrets in namespace {ns}: 503 ServiceUnavailable",
    "reset-always": "cannot reach the Kubernetes API server",
}

FACTS = Scenario("deployed", "3", "secret", prefix="qf")
UNLOCK_TRANSIENT = {
    f.id: Scenario("pending-upgrade", "3", "secret", prefix=f"qu{i}") for i, f in enumerate(TRANSIENT_READS)
}
PRUNE_TRANSIENT = {f.id: Scenario("deployed", "4", "secret", prefix=f"qp{i}") for i, f in enumerate(TRANSIENT_READS)}
WRITE_FAULTS = ("429-once", "503-always", "reset-before", "reset-after")
UNLOCK_WRITES = {w: Scenario("pending-upgrade", "4", "secret", prefix=f"qw{i}") for i, w in enumerate(WRITE_FAULTS)}
PRUNE_WRITES = {w: Scenario("deployed", "3", "secret", prefix=f"qd{i}") for i, w in enumerate(WRITE_FAULTS)}
FAULT_SCENARIOS = [
    FACTS,
    *UNLOCK_TRANSIENT.values(),
    *PRUNE_TRANSIENT.values(),
    *UNLOCK_WRITES.values(),
    *PRUNE_WRITES.values(),
]


@pytest.fixture(scope="module")
def fault_scenarios(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> dict[Scenario, Outcome]:
    return run_scenarios(FAULT_SCENARIOS, tmp_path_factory.mktemp("fault-scenarios"))


@pytest.fixture
def proxy(cluster: str, tmp_path: Path) -> Iterator[tuple[FaultProxy, str]]:
    fault_proxy, kubeconfig = for_cluster(KUBECONFIG, ROOT / ".cluster" / "pki", tmp_path)
    with fault_proxy:
        yield fault_proxy, kubeconfig


def facts(scenario: Scenario, kubeconfig: str = KUBECONFIG) -> dict[str, t.Any]:
    return run_collection_module(
        "helm_release_facts", {"namespace": scenario.namespace, "driver": scenario.driver}, kubeconfig=kubeconfig
    )


def unlock(
    scenario: Scenario, backup_dir: Path, kubeconfig: str = KUBECONFIG, check_mode: bool = False
) -> dict[str, t.Any]:
    return run_collection_module(
        "helm_release_unlock",
        {
            "release": scenario.release,
            "namespace": scenario.namespace,
            "driver": scenario.driver,
            "stale_after": 1,
            "backup_dir": str(backup_dir),
        },
        kubeconfig=kubeconfig,
        check_mode=check_mode,
        diff=True,
    )


def prune(scenario: Scenario, kubeconfig: str = KUBECONFIG, check_mode: bool = False) -> dict[str, t.Any]:
    return run_collection_module(
        "helm_history_prune",
        {"release": [scenario.release], "namespace": scenario.namespace, "driver": scenario.driver, "keep": 1},
        kubeconfig=kubeconfig,
        check_mode=check_mode,
        diff=True,
    )


def statuses(scenario: Scenario) -> list[tuple[int, str]]:
    history = helm_json(scenario.helm, scenario.driver, "history", scenario.release, "-n", scenario.namespace)
    return [(h["revision"], h["status"]) for h in history]


def release_view(result: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """What facts say about each release, without the ages that move between runs."""
    return [
        {
            "name": r["name"],
            "status": r["status"],
            "latest_revision": r["latest_revision"],
            "last_deployed_revision": r["last_deployed_revision"],
            "revisions": [(v["revision"], v["status"], v["size_bytes"]) for v in r["revisions"]],
            "record_errors": r["record_errors"],
            "diagnosis": r["diagnosis"]["state"],
            "actions": [a["name"] for a in r["diagnosis"]["actions"]],
        }
        for r in result["ansible_facts"]["helm_releases"]
    ]


def applied_writes(started: float, *, expect_requests: bool = True) -> list[dict[str, t.Any]]:
    """Writes from the modules that the API server carried out since `started`."""
    events = audit_events_since(started)
    if expect_requests:
        assert events, "the audit log must show the module's requests, or the write count proves nothing"
    return [
        e
        for e in events
        if e["verb"] in WRITE_VERBS
        and e["objectRef"].get("resource") in ("secrets", "configmaps")
        and 200 <= e["responseStatus"]["code"] < 300
    ]


def retried(result: dict[str, t.Any]) -> int:
    for warning in warnings_of(result):
        if warning.endswith("API request(s) were retried after transient errors"):
            return int(warning.split()[0])
    return 0


def assert_clear_failure(result: dict[str, t.Any], *fragments: str) -> None:
    assert result.get("failed") is True, result
    assert "Traceback" not in result["msg"] and "exception" not in result, result
    assert not result["msg"].startswith("unexpected error"), result["msg"]
    for fragment in fragments:
        assert fragment in result["msg"], result["msg"]


# --- transient reads: retried, same result --------------------------------------------


@pytest.mark.parametrize("fault", TRANSIENT_READS, ids=[f.id for f in TRANSIENT_READS])
def test_facts_ride_out_transient_faults(
    fault_scenarios: dict[Scenario, Outcome], proxy: tuple[FaultProxy, str], fault: Fault
) -> None:
    ready(fault_scenarios[FACTS])
    fault_proxy, kubeconfig = proxy
    baseline = facts(FACTS)
    fault_proxy.add(fault.rule())
    started = time.time()
    result = facts(FACTS, kubeconfig)
    assert not result.get("failed"), result.get("msg")
    assert release_view(result) == release_view(baseline)
    assert len(fault_proxy.faulted()) == 2
    assert retried(result) == 2
    assert applied_writes(started) == []


@pytest.mark.parametrize("fault", TRANSIENT_READS, ids=[f.id for f in TRANSIENT_READS])
def test_unlock_rides_out_transient_faults(
    fault_scenarios: dict[Scenario, Outcome], proxy: tuple[FaultProxy, str], fault: Fault, tmp_path: Path
) -> None:
    scenario = UNLOCK_TRANSIENT[fault.id]
    ready(fault_scenarios[scenario])
    fault_proxy, kubeconfig = proxy
    baseline = unlock(scenario, tmp_path, check_mode=True)
    assert baseline["changed"] is True
    fault_proxy.add(fault.rule())
    started = time.time()
    result = unlock(scenario, tmp_path, kubeconfig)
    assert not result.get("failed"), result.get("msg")
    assert result["diff"] == baseline["diff"] and result["status"] == "failed"
    assert retried(result) == 2 and len(fault_proxy.faulted()) == 2
    writes = applied_writes(started)
    assert [(w["verb"], w["objectRef"]["name"]) for w in writes] == [
        ("update", f"sh.helm.release.v1.{scenario.release}.v2")
    ]
    assert statuses(scenario) == [(1, "deployed"), (2, "failed")]


@pytest.mark.parametrize("fault", TRANSIENT_READS, ids=[f.id for f in TRANSIENT_READS])
def test_prune_rides_out_transient_faults(
    fault_scenarios: dict[Scenario, Outcome], proxy: tuple[FaultProxy, str], fault: Fault
) -> None:
    scenario = PRUNE_TRANSIENT[fault.id]
    ready(fault_scenarios[scenario])
    fault_proxy, kubeconfig = proxy
    baseline = prune(scenario, check_mode=True)
    assert baseline["releases"][0]["deleted"] == [1, 2]
    fault_proxy.add(fault.rule())
    started = time.time()
    result = prune(scenario, kubeconfig)
    assert not result.get("failed"), result.get("msg")
    assert result["releases"] == baseline["releases"]
    assert retried(result) == 2 and len(fault_proxy.faulted()) == 2
    assert sorted(w["objectRef"]["name"] for w in applied_writes(started) if w["verb"] == "delete") == [
        f"sh.helm.release.v1.{scenario.release}.v1",
        f"sh.helm.release.v1.{scenario.release}.v2",
    ]
    assert statuses(scenario) == [(3, "deployed")]


# --- persistent reads: a clear failure, nothing written ---------------------------------


@pytest.mark.parametrize("fault", PERSISTENT_READS, ids=[f.id for f in PERSISTENT_READS])
@pytest.mark.parametrize("module", ["helm_release_facts", "helm_release_unlock", "helm_history_prune"])
def test_persistent_faults_fail_clearly_and_write_nothing(
    fault_scenarios: dict[Scenario, Outcome], proxy: tuple[FaultProxy, str], fault: Fault, module: str, tmp_path: Path
) -> None:
    ready(fault_scenarios[FACTS])
    fault_proxy, kubeconfig = proxy
    before = statuses(FACTS)
    fault_proxy.add(fault.rule())
    started = time.time()
    if module == "helm_release_facts":
        result = facts(FACTS, kubeconfig)
    elif module == "helm_release_unlock":
        result = unlock(FACTS, tmp_path, kubeconfig)
    else:
        result = prune(FACTS, kubeconfig)
    assert_clear_failure(result, PERSISTENT_MESSAGES[fault.id].format(ns=FACTS.namespace), "gave up after 5 attempts")
    # The bound: five attempts, then the failure (never an endless loop).
    assert len(fault_proxy.faulted()) == 5
    # Every request stopped at the proxy was a read, and the API server carried out no write.
    assert {s.method for s in fault_proxy.seen} == {"GET"}
    assert applied_writes(started, expect_requests=False) == []
    assert statuses(FACTS) == before


# --- faults on the writes themselves ---------------------------------------------------


def write_rule(method: str, kind: str) -> Rule:
    fault, times = {
        "429-once": ("429", 1),
        "503-always": ("503", None),
        "reset-before": ("reset", 1),
        "reset-after": ("reset-after", 1),
    }[kind]
    return Rule(method, RECORD, fault, times=times, retry_after=1)


@pytest.mark.parametrize("kind", WRITE_FAULTS)
def test_unlock_never_repeats_a_write_that_may_have_been_applied(
    fault_scenarios: dict[Scenario, Outcome], proxy: tuple[FaultProxy, str], kind: str, tmp_path: Path
) -> None:
    scenario = UNLOCK_WRITES[kind]
    ready(fault_scenarios[scenario])
    fault_proxy, kubeconfig = proxy
    record = f"sh.helm.release.v1.{scenario.release}.v2"
    fault_proxy.add(write_rule("PUT", kind))
    started = time.time()
    result = unlock(scenario, tmp_path, kubeconfig)
    writes = [(w["verb"], w["objectRef"]["name"]) for w in applied_writes(started)]
    puts = [s for s in fault_proxy.seen if s.method == "PUT"]
    if kind == "429-once":
        # Rejected before it was processed: the one write that is safe to repeat.
        assert result["changed"] is True and retried(result) == 1
        assert [s.status for s in puts] == [429, 200]
        assert writes == [("update", record)]
        assert statuses(scenario) == [(1, "deployed"), (2, "failed")]
        return
    # 503 or a lost connection: the write may have been applied, so it is not repeated.
    assert len(puts) == 1
    if kind == "503-always":
        assert_clear_failure(result, f"failed to update Secret {scenario.namespace}/{record}: 503")
    else:
        assert_clear_failure(result, "cannot reach the Kubernetes API server", record)
    if kind == "reset-after":
        assert writes == [("update", record)]  # applied once, never twice
        assert statuses(scenario) == [(1, "deployed"), (2, "failed")]
    else:
        assert writes == []
        assert statuses(scenario) == [(1, "deployed"), (2, "pending-upgrade")]
    # A second run (no faults) converges: the lock is released exactly once.
    second = unlock(scenario, tmp_path)
    assert not second.get("failed"), second.get("msg")
    assert second["changed"] is (kind != "reset-after")
    assert statuses(scenario) == [(1, "deployed"), (2, "failed")]
    assert len([w for w in applied_writes(started) if w["verb"] == "update"]) == 1


@pytest.mark.parametrize("kind", WRITE_FAULTS)
def test_prune_deletes_are_guarded_and_converge(
    fault_scenarios: dict[Scenario, Outcome], proxy: tuple[FaultProxy, str], kind: str
) -> None:
    scenario = PRUNE_WRITES[kind]
    ready(fault_scenarios[scenario])
    fault_proxy, kubeconfig = proxy
    baseline = prune(scenario, check_mode=True)
    fault_proxy.add(write_rule("DELETE", kind))
    started = time.time()
    result = prune(scenario, kubeconfig)
    deletes = [s for s in fault_proxy.seen if s.method == "DELETE"]
    applied = sorted(w["objectRef"]["name"] for w in applied_writes(started))
    names = [f"sh.helm.release.v1.{scenario.release}.v{n}" for n in (1, 2)]
    if kind == "503-always":
        assert_clear_failure(result, "record(s) could not be deleted", "503", "gave up after 5 attempts")
        assert applied == []
        assert statuses(scenario) == [(1, "superseded"), (2, "superseded"), (3, "deployed")]
        second = prune(scenario)
        assert second["releases"] == baseline["releases"]
    else:
        # Deletes carry uid + resourceVersion preconditions, so a repeat can never delete
        # anything else: after a reset it either deletes the same record or finds it gone.
        assert not result.get("failed"), result.get("msg")
        assert result["releases"] == baseline["releases"] and retried(result) == 1
        assert applied == names
        if kind == "reset-after":
            assert [s.status for s in deletes] == [None, 404, 200]
    assert statuses(scenario) == [(3, "deployed")]
    again = prune(scenario)
    assert again["changed"] is False


# --- a server that trickles: the overall deadline -------------------------------------

# Bytes of the answer sent at once before it trickles: 0 trickles the status line too, 200 the body.
TRICKLES = {"the status line trickles": 0, "the body trickles": 200}


@pytest.mark.parametrize("case", TRICKLES)
@pytest.mark.parametrize("module", ["helm_release_facts", "helm_release_unlock", "helm_history_prune"])
def test_a_trickling_answer_fails_at_the_request_deadline(
    fault_scenarios: dict[Scenario, Outcome],
    proxy: tuple[FaultProxy, str],
    case: str,
    module: str,
    tmp_path: Path,
) -> None:
    """One byte a second never trips a per-read timeout; request_timeout bounds the whole request."""
    ready(fault_scenarios[FACTS])
    fault_proxy, kubeconfig = proxy
    fault_proxy.add(Rule("GET", LIST_RECORDS, "trickle", times=None, interval=1.0, start=TRICKLES[case]))
    args = {"namespace": FACTS.namespace, "driver": FACTS.driver, "request_timeout": 4}
    if module == "helm_release_unlock":
        args.update(release=FACTS.release, stale_after=1, backup_dir=str(tmp_path))
    elif module == "helm_history_prune":
        args.update(keep=1)
    started = time.monotonic()
    result = run_collection_module(module, args, kubeconfig=kubeconfig)
    elapsed = time.monotonic() - started
    assert_clear_failure(result, f"did not answer secrets in namespace {FACTS.namespace} within 4s (request_timeout)")
    assert "gave up after" not in result["msg"]  # a stalled server is not retried
    assert elapsed < 30, f"{case}: the run took {elapsed:.0f}s"
    assert len([s for s in fault_proxy.seen if s.fault == "trickle"]) == 1
