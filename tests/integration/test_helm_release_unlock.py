"""helm_release_unlock on locks left by real Helm 3 and Helm 4, both drivers:
check mode writes nothing (audit log), real Helm agrees with every result,
guards refuse what they must, and a concurrent writer is never overwritten."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
import typing as t
import uuid
from pathlib import Path

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._k8s import KubeConflict
from ansible_collections.helmops.recovery.plugins.module_utils._unlock import UnlockOptions, apply_unlock, plan_unlock

from .support import (
    CHART,
    DELETE_SCENARIOS,
    FORCE_SCENARIOS,
    KUBECONFIG,
    MARK_DEPLOYED_SCENARIOS,
    RACE_SCENARIOS,
    ROOT,
    UNLOCK_SCENARIOS,
    WRITE_VERBS,
    Outcome,
    Scenario,
    audit_events_since,
    helm,
    helm_json,
    kubectl,
    ready,
    run_collection_module,
    warnings_of,
    write_kubeconfig,
)


def unlock(scenario: Scenario, backup_dir: Path, *, check_mode: bool = False, **args: t.Any) -> dict[str, t.Any]:
    return run_collection_module(
        "helm_release_unlock",
        {
            "release": scenario.release,
            "namespace": scenario.namespace,
            "driver": scenario.driver,
            "backup_dir": str(backup_dir),
            **args,
        },
        check_mode=check_mode,
        diff=True,
    )


def history(scenario: Scenario) -> list[dict[str, t.Any]]:
    return t.cast(
        list[dict[str, t.Any]],
        helm_json(scenario.helm, scenario.driver, "history", scenario.release, "-n", scenario.namespace),
    )


def writes_since(started: float) -> list[dict[str, t.Any]]:
    events = audit_events_since(started)
    assert events, "the audit log must show the module's requests, or the no-write check proves nothing"
    return [e for e in events if e["verb"] in WRITE_VERBS]


@pytest.mark.parametrize("scenario", UNLOCK_SCENARIOS, ids=[s.id for s in UNLOCK_SCENARIOS])
def test_mark_failed_check_real_restore_idempotent(
    scenarios: dict[Scenario, Outcome], scenario: Scenario, tmp_path: Path
) -> None:
    ready(scenarios[scenario])
    before = history(scenario)
    stuck = before[-1]
    assert stuck["status"] == scenario.state

    # A record seconds old is refused with the default stale_after, and nothing is written.
    started = time.time()
    fresh = unlock(scenario, tmp_path)
    assert fresh["failed"] and "an operation may still be running" in fresh["msg"]
    assert "stale after 600s" in fresh["msg"]
    assert writes_since(started) == []

    # Check mode: the exact change, nothing written (the audit log is the witness).
    started = time.time()
    check = unlock(scenario, tmp_path, check_mode=True, stale_after=1)
    assert check["changed"] is True
    assert check["diff"]["before"]["status"] == scenario.state
    assert check["diff"]["after"] == {
        "revision": stuck["revision"],
        "status": "failed",
        "description": f"Unlocked by helmops.recovery: was {scenario.state} (stale lock)",
    }
    assert "backup_file" not in check
    assert writes_since(started) == []
    assert history(scenario) == before
    assert not list(tmp_path.iterdir())

    # For real: real Helm sees the revision failed, and the backup is private.
    real = unlock(scenario, tmp_path, stale_after=1)
    assert real["changed"] is True and real["diff"] == check["diff"]
    after = history(scenario)
    assert after[-1]["status"] == "failed"
    assert after[-1]["description"] == f"Unlocked by helmops.recovery: was {scenario.state} (stale lock)"
    assert [h["status"] for h in after[:-1]] == [h["status"] for h in before[:-1]]
    backup = Path(real["backup_file"])
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    kind = "secret" if scenario.driver == "secret" else "configmap"
    events = json.loads(kubectl("get", "events.events.k8s.io", "-n", scenario.namespace, "-o", "json").stdout)
    assert any(
        e.get("reason") == "HelmReleaseUnlocked" and e["regarding"]["name"].endswith(f".v{stuck['revision']}")
        for e in events["items"]
    )
    annotations = json.loads(
        kubectl(
            "get",
            kind,
            f"sh.helm.release.v1.{scenario.release}.v{stuck['revision']}",
            "-n",
            scenario.namespace,
            "-o",
            "json",
        ).stdout
    )["metadata"]["annotations"]
    assert annotations["helmops.recovery/previous-status"] == scenario.state

    # The backup restores the original record exactly.
    original = json.loads(backup.read_text())["items"][0]
    for volatile in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
        original["metadata"].pop(volatile, None)
    subprocess.run(
        [str(ROOT / ".cluster" / "bin" / "kubectl"), "--kubeconfig", KUBECONFIG, "replace", "-f", "-"],
        input=json.dumps(original),
        text=True,
        check=True,
        capture_output=True,
    )
    assert history(scenario) == before

    # Unlock again, then the upgrade Helm refused works.
    assert unlock(scenario, tmp_path, stale_after=1)["changed"] is True
    helm(
        scenario.helm,
        scenario.driver,
        "upgrade",
        scenario.release,
        CHART,
        "-n",
        scenario.namespace,
        "--wait",
        "--timeout",
        "2m",
    )
    assert history(scenario)[-1]["status"] == "deployed"

    # Idempotent: check and real runs find nothing to do.
    for check_mode in (True, False):
        again = unlock(scenario, tmp_path, check_mode=check_mode, stale_after=1)
        assert again["changed"] is False
        assert again["reason"].startswith(f"release {scenario.release} is not locked")


@pytest.mark.parametrize("scenario", MARK_DEPLOYED_SCENARIOS, ids=[s.id for s in MARK_DEPLOYED_SCENARIOS])
def test_mark_deployed_needs_opt_in_and_real_helm_agrees(
    scenarios: dict[Scenario, Outcome], scenario: Scenario, tmp_path: Path
) -> None:
    ready(scenarios[scenario])
    before = history(scenario)
    refused = unlock(scenario, tmp_path, method="mark_deployed", stale_after=1)
    assert refused["failed"] and "method mark_deployed is destructive" in refused["msg"]
    assert history(scenario) == before
    done = unlock(scenario, tmp_path, method="mark_deployed", allow_destructive=True, stale_after=1)
    assert done["changed"] is True
    assert any("may not match its manifest" in w for w in warnings_of(done))
    after = history(scenario)
    assert [h["status"] for h in after] == ["superseded", "deployed"]
    status = helm_json(scenario.helm, scenario.driver, "status", scenario.release, "-n", scenario.namespace)
    assert status["info"]["status"] == "deployed" and status["version"] == 2
    helm(scenario.helm, scenario.driver, "upgrade", scenario.release, CHART, "-n", scenario.namespace, "--wait")
    assert unlock(scenario, tmp_path, method="mark_deployed", allow_destructive=True, stale_after=1)["changed"] is False


@pytest.mark.parametrize("scenario", DELETE_SCENARIOS, ids=[s.id for s in DELETE_SCENARIOS])
def test_delete_revision_needs_opt_in_and_real_helm_forgets(
    scenarios: dict[Scenario, Outcome], scenario: Scenario, tmp_path: Path
) -> None:
    ready(scenarios[scenario])
    refused = unlock(scenario, tmp_path, method="delete_revision", stale_after=1)
    assert refused["failed"] and "method delete_revision is destructive" in refused["msg"]
    assert history(scenario)[-1]["status"] == "pending-install"
    done = unlock(scenario, tmp_path, method="delete_revision", allow_destructive=True, stale_after=1)
    assert done["changed"] is True and done["status"] is None
    assert any("become orphaned" in w for w in warnings_of(done))
    gone = helm(scenario.helm, scenario.driver, "history", scenario.release, "-n", scenario.namespace, check=False)
    assert gone.returncode != 0 and "not found" in gone.stderr
    kubectl("get", "deployment", f"{scenario.release}-web", "-n", scenario.namespace)  # orphaned, still there
    assert Path(done["backup_file"]).exists()


@pytest.mark.parametrize("scenario", FORCE_SCENARIOS, ids=[s.id for s in FORCE_SCENARIOS])
def test_running_rollout_or_hook_is_refused_unless_forced(
    scenarios: dict[Scenario, Outcome], scenario: Scenario, tmp_path: Path
) -> None:
    ready(scenarios[scenario])
    evidence = (
        "is rolling out"
        if scenario.state == "pending-upgrade-active"
        else (f"hook Job {scenario.release}-pre-upgrade (pre-upgrade) is still running")
    )
    started = time.time()
    refused = unlock(scenario, tmp_path, stale_after=1)
    assert refused["failed"] and evidence in refused["msg"]
    assert refused["lock"]["verdict"] == "possibly-running"
    assert writes_since(started) == []
    forced = unlock(scenario, tmp_path, stale_after=1, force=True)
    assert forced["changed"] is True
    assert any(evidence in item for item in forced["overridden"])
    assert any("force overrode" in w for w in warnings_of(forced))
    assert history(scenario)[-1]["status"] == "failed"


@pytest.mark.parametrize("scenario", RACE_SCENARIOS, ids=[s.id for s in RACE_SCENARIOS])
def test_a_concurrent_writer_is_never_overwritten(
    scenarios: dict[Scenario, Outcome], scenario: Scenario, kube_client: t.Any, tmp_path: Path
) -> None:
    ready(scenarios[scenario])
    options = UnlockOptions(
        namespace=scenario.namespace, release=scenario.release, stale_after=1, backup_dir=str(tmp_path)
    )
    plan = plan_unlock(kube_client, "secret", options, time.time())
    assert plan.locked
    # Someone else writes the record between our read and our write.
    kubectl(
        "annotate",
        "secret",
        f"sh.helm.release.v1.{scenario.release}.v2",
        "-n",
        scenario.namespace,
        "example.com/touched=yes",
    )
    with pytest.raises(KubeConflict, match="changed since it was read"):
        apply_unlock(kube_client, "secret", plan)
    assert history(scenario)[-1]["status"] == "pending-upgrade"
    # Through the module, a fresh read succeeds and the other writer's change survives.
    assert unlock(scenario, tmp_path, stale_after=1)["changed"] is True
    obj = json.loads(
        kubectl(
            "get", "secret", f"sh.helm.release.v1.{scenario.release}.v2", "-n", scenario.namespace, "-o", "json"
        ).stdout
    )
    assert obj["metadata"]["annotations"]["example.com/touched"] == "yes"
    assert os.stat(tmp_path).st_mode & 0o077 == 0


def test_a_release_that_is_not_there(cluster: str, tmp_path: Path) -> None:
    missing = run_collection_module(
        "helm_release_unlock", {"release": "ghost", "namespace": "default", "backup_dir": str(tmp_path)}
    )
    assert missing["failed"] and "release 'ghost' not found in namespace default" in missing["msg"]
    bad = run_collection_module("helm_release_unlock", {"release": "Ghost!", "namespace": "default"})
    assert bad["failed"] and "invalid release name 'Ghost!'" in bad["msg"]


def test_a_liveness_check_that_cannot_look_refuses(cluster: str, tmp_path: Path) -> None:
    """An identity that may edit Secrets but not see workloads gets no 'stale' verdict."""
    namespace = f"blind-{uuid.uuid4().hex[:6]}"
    subprocess.run(
        [str(ROOT / "hack" / "scenario"), "pending-upgrade", "--release", "web", "--namespace", namespace],
        check=True,
        capture_output=True,
    )
    kubectl("create", "serviceaccount", "unlocker", "-n", namespace)
    kubectl("create", "role", "secrets-only", "-n", namespace, "--verb=get,list,update", "--resource=secrets")
    kubectl(
        "create",
        "rolebinding",
        "unlocker",
        "-n",
        namespace,
        "--role=secrets-only",
        f"--serviceaccount={namespace}:unlocker",
    )
    token = kubectl("create", "token", "unlocker", "-n", namespace).stdout.strip()
    server = kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
    config = write_kubeconfig(tmp_path, server, token, str(ROOT / ".cluster" / "pki" / "ca.crt"))
    time.sleep(2)
    result = run_collection_module(
        "helm_release_unlock",
        {"release": "web", "namespace": namespace, "stale_after": 1, "backup_dir": str(tmp_path / "b")},
        kubeconfig=config,
    )
    assert result["failed"]
    assert "could not check for a running operation" in result["msg"]
    assert "forbidden" in result["msg"]
    assert token not in json.dumps(result)
    assert helm_json("3", "secret", "history", "web", "-n", namespace)[-1]["status"] == "pending-upgrade"
    kubectl("delete", "namespace", namespace, "--wait=false")
