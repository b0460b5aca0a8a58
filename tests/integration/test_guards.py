"""The data-loss guard reads what Helm's own action will delete, on releases real
Helm 3 and Helm 4 left in the state (hack/scenario):

- a failed upgrade that added a PersistentVolumeClaim: the last deployed revision
  has no claim, the newest (what `helm uninstall` deletes, and what `helm rollback`
  diffs away) has one;
- a stale pending-upgrade that added one (Helm killed while it waited);
- a failed upgrade that added a StatefulSet whose claims are deleted with it
  (persistentVolumeClaimRetentionPolicy.whenDeleted: Delete);
- a chart rendering `SEP: =` and `BUILD_DATE: 0000-00-00` unquoted, which YAML 1.1
  reads differently from Helm, next to a claim.

Each is refused without allow_data_loss, through the module and through
remediate.yml, with no delete in the audit log and the claim still there; then
allowed with the opt-in, after which Helm deleted the claim.
"""

from __future__ import annotations

import subprocess
import time
import typing as t
from pathlib import Path

import pytest

from .support import (
    BIN,
    GUARD_SCENARIOS,
    KUBECONFIG,
    ROOT,
    Outcome,
    Scenario,
    extra_vars,
    helm_json,
    kubectl,
    ready,
    run_collection_module,
    run_playbook,
    writes_by_user_since,
)

CLIENT_TIMEOUT = 1  # seconds: the client bound is then 3 * 1 + 60 = 63 s after the pending record
CLIENT_BOUND = 3 * CLIENT_TIMEOUT + 60


def claims(scenario: Scenario) -> list[str]:
    """The claims the scenario's newest revision holds (or takes with it), which must never be lost unasked."""
    release = scenario.release
    return {
        "failed-upgrade-adds-pvc": [f"{release}-cache"],
        "pending-upgrade-adds-pvc": [f"{release}-cache"],
        "failed-upgrade-statefulset": [f"data-{release}-db-0"],
        "unquoted-config": [f"{release}-data"],
    }[scenario.state]


def holder(scenario: Scenario) -> str:
    """The object whose deletion loses the data: the claim, or the StatefulSet that deletes it."""
    if scenario.state == "failed-upgrade-statefulset":
        return f"StatefulSet {scenario.namespace}/{scenario.release}-db"
    return f"PersistentVolumeClaim {scenario.namespace}/{claims(scenario)[0]}"


def existing_claims(namespace: str) -> set[str]:
    listed = kubectl("get", "pvc", "-n", namespace, "-o", "jsonpath={.items[*].metadata.name}").stdout
    return set(listed.split())


def wait_claims_gone(namespace: str, names: list[str], timeout: float = 90.0) -> set[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = existing_claims(namespace) & set(names)
        if not left:
            return left
        time.sleep(1)
    return existing_claims(namespace) & set(names)


def aged(outcome: Outcome) -> None:
    """A pending record is judged only once a client with --timeout CLIENT_TIMEOUT can no longer be waiting."""
    if outcome.scenario.state.startswith("pending-"):
        time.sleep(max(0.0, outcome.finished_at + CLIENT_BOUND + 2 - time.time()))


def deletes_in(namespace: str, started: float) -> list[str]:
    return [w for w in writes_by_user_since(started) if w.startswith("delete") and f"/namespaces/{namespace}/" in w]


def recover(scenario: Scenario, tmp_path: Path, check_mode: bool = False, **args: t.Any) -> dict[str, t.Any]:
    return run_collection_module(
        "helm_release_recover",
        {
            "release": scenario.release,
            "namespace": scenario.namespace,
            "driver": scenario.driver,
            "helm_binary": str(BIN / f"helm{scenario.helm}"),
            "stale_after": 1,
            "client_timeout": CLIENT_TIMEOUT,
            "backup_dir": str(tmp_path / "backups"),
            "timeout": "120s",
            **args,
        },
        check_mode=check_mode,
        diff=True,
    )


def facts_of(scenario: Scenario) -> dict[str, t.Any]:
    result = run_collection_module(
        "helm_release_facts",
        {
            "release": [scenario.release],
            "namespace": scenario.namespace,
            "driver": scenario.driver,
            "stale_after": 1,
            "client_timeout": CLIENT_TIMEOUT,
        },
    )
    assert not result.get("failed"), result.get("msg")
    return t.cast(dict[str, t.Any], result["ansible_facts"]["helm_releases"][0])


def described(entries: list[dict[str, t.Any]] | None) -> set[str]:
    return {f"{e['kind']} {e['namespace']}/{e['name']}" for e in entries or [] if e.get("data")}


MODULE_CASES = [s for s in GUARD_SCENARIOS if s.prefix == "g"]


@pytest.mark.parametrize("scenario", MODULE_CASES, ids=[s.id for s in MODULE_CASES])
def test_module_refuses_what_loses_data_and_acts_with_the_opt_in(
    scenarios: dict[Scenario, Outcome], scenario: Scenario, tmp_path: Path
) -> None:
    outcome = ready(scenarios[scenario])
    aged(outcome)
    namespace = scenario.namespace
    assert set(claims(scenario)) <= existing_claims(namespace)
    facts = facts_of(scenario)
    deletions = facts["risks"]["deletions"]
    # What an uninstall deletes comes from the newest revision, whatever its status.
    assert holder(scenario) in described(deletions["uninstall"]["objects"]), deletions
    assert deletions["uninstall"]["revision"] == facts["latest_revision"]
    rollback_state = scenario.state != "unquoted-config"
    if rollback_state:
        assert facts["lock"]["verdict"] in ("none", "stale"), facts["lock"]
        assert holder(scenario) in described(deletions["rollback"]["objects"]), deletions
        offered = next(a for a in facts["diagnosis"]["actions"] if a["name"] == "rollback")
        assert offered["data_loss"] is True and holder(scenario).split()[1].split("/")[1] in offered["why"]

    started = time.time()
    actions = ["rollback", "uninstall"] if rollback_state else ["uninstall"]
    when = {} if rollback_state else {"when_status": ["deployed"]}
    for action in actions:
        for check_mode in (True, False):
            refused = recover(scenario, tmp_path, check_mode, action=action, allow_destructive=True, **when)
            assert refused.get("failed") and refused.get("refused"), refused
            assert holder(scenario) in refused["msg"] and "allow_data_loss" in refused["msg"], refused["msg"]
    time.sleep(1)  # the audit log is written asynchronously
    assert deletes_in(namespace, started) == []
    assert writes_by_user_since(started) == [] or all(namespace not in w for w in writes_by_user_since(started))
    assert set(claims(scenario)) <= existing_claims(namespace)
    assert not (tmp_path / "backups").exists(), "a refused run writes no backup"

    # The opt-in: Helm acts, and deletes what the guard named.
    action = actions[0]
    done = recover(scenario, tmp_path, action=action, allow_destructive=True, allow_data_loss=True, **when)
    assert done.get("changed") is True, done.get("msg")
    assert holder(scenario) in {f"{d['kind']} {d['namespace']}/{d['name']}" for d in done["deletes"]["objects"]}
    assert wait_claims_gone(namespace, claims(scenario)) == set()
    if action == "rollback":
        history = helm_json(scenario.helm, scenario.driver, "history", scenario.release, "-n", namespace)
        assert history[-1]["status"] == "deployed"
        if scenario.state.startswith("pending-"):
            assert done["marked_failed"] == [2]
            assert [h["status"] for h in history] == ["superseded", "failed", "deployed"]
        assert all(not h["status"].startswith("pending-") for h in history)


PLAYBOOK_CASES = [s for s in GUARD_SCENARIOS if s.prefix == "gp" and s.state != "unquoted-config"]


@pytest.mark.parametrize("scenario", PLAYBOOK_CASES, ids=[s.id for s in PLAYBOOK_CASES])
def test_remediate_refuses_a_rollback_that_loses_data_until_allowed(
    scenarios: dict[Scenario, Outcome], scenario: Scenario, tmp_path: Path
) -> None:
    outcome = ready(scenarios[scenario])
    aged(outcome)
    namespace = scenario.namespace
    common = {
        "namespace": namespace,
        "stale_after": 1,
        "client_timeout": CLIENT_TIMEOUT,
        "helm_binary": str(BIN / f"helm{scenario.helm}"),
        "helm_timeout": "120s",
        "backup_dir": str(tmp_path / "backups"),
        "report_dir": str(tmp_path / "reports"),
        "allow_destructive": True,
    }
    env_driver = {"HELM_DRIVER": scenario.driver}
    started = time.time()
    for check in (["--check"], []):
        done = run_playbook("remediate.yml", *check, *extra_vars(**common), env=env_driver)
        said = " ".join(done.stdout.split())  # the console wraps long lines
        assert "-> refused (" in said and holder(scenario) in said, done.stdout[-3000:]
        assert "allow_data_loss" in said
    time.sleep(1)
    assert deletes_in(namespace, started) == []
    assert set(claims(scenario)) <= existing_claims(namespace)

    allowed = run_playbook("remediate.yml", *extra_vars(allow_data_loss=True, **common), env=env_driver)
    assert allowed.returncode == 0, allowed.stdout[-3000:]
    assert "-> recovered (" in " ".join(allowed.stdout.split()), allowed.stdout[-4000:]
    assert wait_claims_gone(namespace, claims(scenario)) == set()
    history = helm_json(scenario.helm, scenario.driver, "history", scenario.release, "-n", namespace)
    assert history[-1]["status"] == "deployed"


def test_unquoted_manifest_is_read_as_helm_reads_it(scenarios: dict[Scenario, Outcome]) -> None:
    """`SEP: =` and `BUILD_DATE: 0000-00-00` in a manifest real Helm installed: the objects, the
    claim and the live comparison are all there (YAML 1.1 read the whole manifest as nothing)."""
    for scenario in (s for s in GUARD_SCENARIOS if s.state == "unquoted-config" and s.prefix == "gp"):
        ready(scenarios[scenario])
        facts = facts_of(scenario)
        assert facts["risks"].get("unreadable_manifests") is None
        kinds = {(o["kind"], o["name"]) for o in facts["live"]["objects"]}
        assert ("ConfigMap", f"{scenario.release}-config") in kinds
        assert ("PersistentVolumeClaim", f"{scenario.release}-data") in kinds
        assert all(o["latest"] == "present" for o in facts["live"]["objects"]), facts["live"]["objects"]
        assert [p["name"] for p in facts["risks"]["pvcs_deleted_on_uninstall"]] == [f"{scenario.release}-data"]
        manifest = subprocess.run(
            [str(BIN / f"helm{scenario.helm}"), "get", "manifest", scenario.release, "-n", scenario.namespace],
            capture_output=True,
            text=True,
            check=True,
            env={"KUBECONFIG": KUBECONFIG, "HOME": str(ROOT / ".cluster" / "helm-home")},
        ).stdout
        assert "SEP: =" in manifest and "BUILD_DATE: 0000-00-00" in manifest
