"""The real API server stopped in the middle of a prune or an unlock, then
restarted: the interrupted run fails clearly, a second run converges, and every
record left is valid for real Helm (history, status, then a real upgrade).

The fault proxy only decides *when*: it stops the API server (hack/cluster
stop-apiserver) as a chosen request passes through it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .faultproxy import FaultProxy, Rule, for_cluster
from .support import (
    CHART,
    KUBECONFIG,
    ROOT,
    ApiServer,
    Outcome,
    Scenario,
    helm,
    helm_json,
    kubectl,
    ready,
    run_collection_module,
    run_scenarios,
)
from .test_faults import RECORD, applied_writes

UNLOCK_FAILED = Scenario("pending-upgrade", "3", "secret", prefix="ra")
UNLOCK_DEPLOYED = Scenario("pending-upgrade", "4", "secret", prefix="rb")


@pytest.fixture
def api_server(cluster: str) -> Iterator[ApiServer]:
    control = ApiServer()
    try:
        yield control
    finally:
        control.start()  # whatever happened, the next test finds the API server up


@pytest.fixture
def proxy(cluster: str, tmp_path: Path) -> Iterator[tuple[FaultProxy, str]]:
    fault_proxy, kubeconfig = for_cluster(KUBECONFIG, ROOT / ".cluster" / "pki", tmp_path)
    with fault_proxy:
        yield fault_proxy, kubeconfig


@pytest.fixture(scope="module")
def restart_scenarios(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> dict[Scenario, Outcome]:
    return run_scenarios([UNLOCK_FAILED, UNLOCK_DEPLOYED], tmp_path_factory.mktemp("restart-scenarios"))


def history(major: str, release: str, namespace: str) -> list[tuple[int, str]]:
    return [(h["revision"], h["status"]) for h in helm_json(major, "secret", "history", release, "-n", namespace)]


def assert_valid_for_helm(major: str, release: str, namespace: str) -> list[tuple[int, str]]:
    """Real Helm reads every record (history, status) and can upgrade the release."""
    before = history(major, release, namespace)
    status = helm_json(major, "secret", "status", release, "-n", namespace)
    assert status["name"] == release
    helm(major, "secret", "upgrade", release, CHART, "-n", namespace, "--set", "revisionNote=after-restart")
    after = history(major, release, namespace)
    assert after[-1] == (before[-1][0] + 1, "deployed")
    return after


def test_prune_interrupted_by_an_api_server_stop_converges(
    api_server: ApiServer, proxy: tuple[FaultProxy, str]
) -> None:
    namespace = f"restart-prune-{uuid.uuid4().hex[:6]}"
    helm("3", "secret", "install", "web", CHART, "-n", namespace, "--create-namespace")
    for note in range(2, 11):
        helm("3", "secret", "upgrade", "web", CHART, "-n", namespace, "--set", f"revisionNote=r{note}")
    assert [r for r, _s in history("3", "web", namespace)] == list(range(1, 11))
    fault_proxy, kubeconfig = proxy
    deletes_seen: list[str] = []

    def stop_after_third(method: str, path: str, status: int) -> None:
        deletes_seen.append(path)
        if len(deletes_seen) == 3:
            api_server.stop()

    fault_proxy.add(Rule("DELETE", RECORD, "hook", times=None, after=stop_after_third))
    args = {"namespace": namespace, "release": ["web"], "keep": 1}
    started = time.time()
    interrupted = run_collection_module("helm_history_prune", args, kubeconfig=kubeconfig)
    assert api_server.stops == 1
    assert interrupted["failed"] is True
    assert "cannot reach the Kubernetes API server" in interrupted["msg"]
    assert "Traceback" not in interrupted["msg"]
    assert interrupted["releases"][0]["deleted"] == [1, 2, 3]
    # Once the API server is gone the run stops: it does not spend the retry bound on every record.
    unreachable = [s.path.rsplit("/", 1)[-1] for s in fault_proxy.seen if s.fault == "upstream-unreachable"]
    assert unreachable == ["sh.helm.release.v1.web.v4"] * 5  # one record, the retry bound, then it stops
    assert interrupted["releases"][0]["skipped"] == [
        {"revision": n, "reason": "not attempted: an older delete failed; kept"} for n in range(5, 10)
    ]

    api_server.start()
    # Oldest first: the records left are the newer ones, without a gap.
    assert history("3", "web", namespace) == [(n, "superseded") for n in range(4, 10)] + [(10, "deployed")]
    second = run_collection_module("helm_history_prune", args)
    assert not second.get("failed"), second.get("msg")
    assert second["releases"][0]["deleted"] == [4, 5, 6, 7, 8, 9]
    assert run_collection_module("helm_history_prune", args)["changed"] is False
    deleted = sorted(w["objectRef"]["name"] for w in applied_writes(started) if w["verb"] == "delete")
    assert deleted == sorted(f"sh.helm.release.v1.web.v{n}" for n in range(1, 10))  # each exactly once
    assert assert_valid_for_helm("3", "web", namespace) == [(10, "superseded"), (11, "deployed")]
    kubectl("delete", "namespace", namespace, "--wait=false")


def test_unlock_interrupted_before_its_write_converges(
    restart_scenarios: dict[Scenario, Outcome], api_server: ApiServer, proxy: tuple[FaultProxy, str], tmp_path: Path
) -> None:
    scenario = UNLOCK_FAILED
    ready(restart_scenarios[scenario])
    fault_proxy, kubeconfig = proxy
    fault_proxy.add(Rule("PUT", RECORD, "hook", times=1, before=api_server.stop))
    args = {
        "release": scenario.release,
        "namespace": scenario.namespace,
        "stale_after": 1,
        "backup_dir": str(tmp_path),
    }
    started = time.time()
    interrupted = run_collection_module("helm_release_unlock", args, kubeconfig=kubeconfig)
    assert api_server.stops == 1
    assert interrupted["failed"] is True
    assert "cannot reach the Kubernetes API server" in interrupted["msg"]
    assert f"sh.helm.release.v1.{scenario.release}.v2" in interrupted["msg"]
    api_server.start()
    assert history("3", scenario.release, scenario.namespace) == [(1, "deployed"), (2, "pending-upgrade")]
    second = run_collection_module("helm_release_unlock", args)
    assert second["changed"] is True and second["status"] == "failed"
    assert [w["verb"] for w in applied_writes(started) if w["objectRef"]["resource"] == "secrets"] == ["update"]
    after = assert_valid_for_helm("3", scenario.release, scenario.namespace)
    assert after == [(1, "superseded"), (2, "failed"), (3, "deployed")]


def test_mark_deployed_interrupted_between_its_writes_is_finished_by_a_second_run(
    restart_scenarios: dict[Scenario, Outcome], api_server: ApiServer, proxy: tuple[FaultProxy, str], tmp_path: Path
) -> None:
    scenario = UNLOCK_DEPLOYED
    ready(restart_scenarios[scenario])
    fault_proxy, kubeconfig = proxy
    # The first write (revision 2 becomes deployed) is applied and answered, then the API server stops
    # before the second (revision 1 becomes superseded).
    fault_proxy.add(Rule("PUT", RECORD, "hook", times=1, after=api_server.stop))
    args = {
        "release": scenario.release,
        "namespace": scenario.namespace,
        "stale_after": 1,
        "method": "mark_deployed",
        "allow_destructive": True,
        "backup_dir": str(tmp_path),
    }
    interrupted = run_collection_module("helm_release_unlock", args, kubeconfig=kubeconfig)
    assert api_server.stops == 1
    assert interrupted["failed"] is True
    assert "cannot reach the Kubernetes API server" in interrupted["msg"]
    assert f"sh.helm.release.v1.{scenario.release}.v1" in interrupted["msg"]
    api_server.start()
    # Two deployed records, never none: Helm takes the newest.
    assert history("4", scenario.release, scenario.namespace) == [(1, "deployed"), (2, "deployed")]
    assert helm_json("4", "secret", "status", scenario.release, "-n", scenario.namespace)["version"] == 2
    # A second run finishes the job: the older record is superseded, guarded like any write.
    started = time.time()
    second = run_collection_module("helm_release_unlock", args, diff=True)
    assert not second.get("failed"), second.get("msg")
    assert second["changed"] is True and second["locked"] is False
    assert "stopped before it superseded revision(s) 1; finishing that" in second["reason"]
    assert second["diff"]["after"]["revision 1"] == "superseded"
    assert [w["objectRef"]["name"] for w in applied_writes(started) if w["objectRef"]["resource"] == "secrets"] == [
        f"sh.helm.release.v1.{scenario.release}.v1"
    ]
    assert Path(second["backup_file"]).exists()
    assert history("4", scenario.release, scenario.namespace) == [(1, "superseded"), (2, "deployed")]
    assert run_collection_module("helm_release_unlock", args)["changed"] is False
    after = assert_valid_for_helm("4", scenario.release, scenario.namespace)
    assert after == [(1, "superseded"), (2, "superseded"), (3, "deployed")]
