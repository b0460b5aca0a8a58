"""helm_history_prune on history written by real Helm 3 and Helm 4, both drivers:
check mode deletes nothing (audit log), real Helm agrees with what is left, and
protected revisions survive."""

from __future__ import annotations

import stat
import time
import typing as t
import uuid
from pathlib import Path

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._prune import PruneOptions, apply_prune, plan_prune

from .support import (
    CHART,
    PRUNE_SCENARIOS,
    WRITE_VERBS,
    Outcome,
    Scenario,
    audit_events_since,
    helm,
    helm_json,
    kubectl,
    ready,
    run_collection_module,
)


def prune(args: dict[str, t.Any], *, check_mode: bool = False, driver: str = "secret") -> dict[str, t.Any]:
    return run_collection_module("helm_history_prune", {"driver": driver, **args}, check_mode=check_mode, diff=True)


def revisions(scenario: Scenario) -> list[int]:
    history = helm_json(
        scenario.helm, scenario.driver, "history", scenario.release, "-n", scenario.namespace, "--max", "1000"
    )
    return [h["revision"] for h in history]


@pytest.mark.parametrize("scenario", PRUNE_SCENARIOS, ids=[s.id for s in PRUNE_SCENARIOS])
def test_prune_check_real_idempotent_and_helm_still_works(
    scenarios: dict[Scenario, Outcome], scenario: Scenario, tmp_path: Path
) -> None:
    ready(scenarios[scenario])
    args = {"release": [scenario.release], "namespace": scenario.namespace, "keep": 5, "backup_dir": str(tmp_path)}
    assert revisions(scenario) == list(range(1, 31))

    started = time.time()
    check = prune(args, check_mode=True, driver=scenario.driver)
    assert check["changed"] is True
    assert check["releases"][0]["deleted"] == list(range(1, 26))
    assert check["releases"][0]["kept"] == [26, 27, 28, 29, 30]
    assert check["diff"]["after"] == {f"{scenario.namespace}/{scenario.release}": [26, 27, 28, 29, 30]}
    events = audit_events_since(started)
    assert events and not [e for e in events if e["verb"] in WRITE_VERBS]
    assert revisions(scenario) == list(range(1, 31))
    assert not list(tmp_path.iterdir())

    real = prune(args, driver=scenario.driver)
    assert real["releases"][0] == {**check["releases"][0], "backup_files": real["releases"][0]["backup_files"]}
    assert real["totals"]["deleted"] == 25 and real["totals"]["bytes_reclaimed"] > 1_000_000
    assert revisions(scenario) == [26, 27, 28, 29, 30]
    backups = real["releases"][0]["backup_files"]
    assert len(backups) == 25 and all(stat.S_IMODE(Path(b).stat().st_mode) == 0o600 for b in backups)

    again = prune(args, driver=scenario.driver)
    assert again["changed"] is False and again["totals"]["deleted"] == 0

    helm(scenario.helm, scenario.driver, "rollback", scenario.release, "27", "-n", scenario.namespace, "--wait")
    helm(
        scenario.helm,
        scenario.driver,
        "upgrade",
        scenario.release,
        CHART,
        "-n",
        scenario.namespace,
        "--wait",
        "--history-max",
        "0",
    )
    assert revisions(scenario)[-2:] == [31, 32]


def _install(namespace: str, release: str, steps: list[dict[str, t.Any]], major: str = "3") -> None:
    """Drive real Helm through install/upgrade steps that succeed or fail."""
    for index, values in enumerate(steps):
        verb = "install" if index == 0 else "upgrade"
        extra = ["--create-namespace"] if index == 0 else ["--history-max", "0"]
        fails = values.pop("_fails", False)
        set_args = [f"--set={key}={value}" for key, value in values.items()]
        done = helm(
            major,
            "secret",
            verb,
            release,
            CHART,
            "-n",
            namespace,
            *extra,
            *set_args,
            *(["--wait", "--timeout", "4s"] if fails else []),
            check=not fails,
        )
        assert (done.returncode != 0) == fails, done.stderr


def test_last_deployed_revision_survives_even_when_older_than_keep(cluster: str) -> None:
    namespace = f"prune-{uuid.uuid4().hex[:6]}"
    steps: list[dict[str, t.Any]] = [{"revisionNote": "r1"}] + [
        {"revisionNote": f"r{n}", "behaviour": "never-ready", "_fails": True} for n in range(2, 7)
    ]
    _install(namespace, "web", steps)
    before = helm_json("3", "secret", "history", "web", "-n", namespace)
    assert [h["status"] for h in before] == ["deployed"] + ["failed"] * 5
    result = prune({"release": ["web"], "namespace": namespace, "keep": 2})
    release = result["releases"][0]
    assert release["deleted"] == [2, 3, 4]
    assert release["kept"] == [1, 5, 6]
    protected = {p["revision"]: p["reasons"] for p in release["protected"]}
    assert "last deployed revision" in protected[1] and "newest revision" in protected[6]
    assert [h["revision"] for h in helm_json("3", "secret", "history", "web", "-n", namespace)] == [1, 5, 6]
    kubectl("delete", "namespace", namespace, "--wait=false")


def test_pending_and_uninstalling_revisions_survive(scenarios: dict[Scenario, Outcome]) -> None:
    for state in ("pending-upgrade", "uninstalling", "pending-install"):
        scenario = ready(scenarios[Scenario(state, "4", "secret")]).scenario
        before = revisions(scenario)
        result = prune({"release": [scenario.release], "namespace": scenario.namespace, "keep": 1}, check_mode=True)
        assert set(result["releases"][0]["kept"]) >= {before[-1]}
        reasons = [r for p in result["releases"][0]["protected"] for r in p["reasons"]]
        assert f"{state} revision" in reasons
        assert revisions(scenario) == before


def test_statuses_and_older_than_filters(cluster: str) -> None:
    namespace = f"prune-{uuid.uuid4().hex[:6]}"
    steps: list[dict[str, t.Any]] = [
        {"revisionNote": "r1"},
        {"revisionNote": "r2", "behaviour": "never-ready", "_fails": True},
        {"revisionNote": "r3"},
        {"revisionNote": "r4"},
        {"revisionNote": "r5"},
    ]
    _install(namespace, "web", steps)
    young = prune({"namespace": namespace, "keep": 1, "older_than": "1h"}, check_mode=True)
    assert young["releases"][0]["deleted"] == []
    failed_only = prune({"namespace": namespace, "keep": 1, "statuses": ["failed"]})
    assert failed_only["releases"][0]["deleted"] == [2]
    assert [h["status"] for h in helm_json("3", "secret", "history", "web", "-n", namespace)] == [
        "superseded",
        "superseded",
        "superseded",
        "deployed",
    ]
    kubectl("delete", "namespace", namespace, "--wait=false")


def test_namespace_and_cluster_wide_runs(cluster: str) -> None:
    namespaces = [f"prune-{uuid.uuid4().hex[:6]}" for _index in range(2)]
    for namespace in namespaces:
        for release in ("a", "b"):
            _install(namespace, release, [{"revisionNote": f"r{n}"} for n in range(1, 5)])
    one = prune({"namespace": namespaces[0], "keep": 2})
    assert {(r["release"], tuple(r["deleted"])) for r in one["releases"]} == {("a", (1, 2)), ("b", (1, 2))}
    everywhere = prune({"keep": 2, "release": ["a", "b"]}, check_mode=True)
    planned = {(r["namespace"], r["release"]): r["deleted"] for r in everywhere["releases"] if r["deleted"]}
    assert planned == {(namespaces[1], "a"): [1, 2], (namespaces[1], "b"): [1, 2]}
    for namespace in namespaces:
        kubectl("delete", "namespace", namespace, "--wait=false")


def test_interrupted_run_converges_and_a_changed_record_is_kept(cluster: str, kube_client: t.Any) -> None:
    namespace = f"prune-{uuid.uuid4().hex[:6]}"
    _install(namespace, "web", [{"revisionNote": f"r{n}"} for n in range(1, 9)])
    options = PruneOptions(namespace=namespace, releases=["web"], keep=2)
    plans, _errors = plan_prune(kube_client, "secret", options)
    assert [e.meta.revision for e in plans[0].delete] == [1, 2, 3, 4, 5, 6]
    # The run is "interrupted": only the two oldest deletes happen...
    plans[0].delete = plans[0].delete[:2]
    apply_prune(kube_client, "secret", plans, options)
    # ...and someone changes revision 4 after our (new) read below would have planned it.
    replan, _errors = plan_prune(kube_client, "secret", options)
    kubectl("annotate", "secret", "sh.helm.release.v1.web.v4", "-n", namespace, "example.com/touched=yes")
    apply_prune(kube_client, "secret", replan, options)
    result = replan[0].result(done=True)
    assert result["deleted"] == [3, 5, 6]
    assert result["skipped"] == [{"revision": 4, "reason": "changed since it was read; kept"}]
    history = [h["revision"] for h in helm_json("3", "secret", "history", "web", "-n", namespace)]
    assert history == [4, 7, 8]
    final = prune({"namespace": namespace, "keep": 2})
    assert final["releases"][0]["deleted"] == [4]
    assert [h["revision"] for h in helm_json("3", "secret", "history", "web", "-n", namespace)] == [7, 8]
    kubectl("delete", "namespace", namespace, "--wait=false")


def test_bad_input(cluster: str) -> None:
    assert "keep must be at least 1" in prune({"keep": 0})["msg"]
    assert "not a duration" in prune({"older_than": "soon"})["msg"]
    missing = prune({"namespace": "default", "release": ["ghost"]})
    assert missing["errors"] == ["release 'ghost' not found in namespace default (Secret records, owner=helm)"]
