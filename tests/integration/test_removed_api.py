"""Releases whose stored manifest names an API version the cluster no longer serves, made by a real API server:
here a CRD that stops serving v1alpha1 (cert-manager's v1alpha2 removal, each namespace with a group of its own);
test_removed_builtin_api.py turns a built-in version off. Real Helm 3 and 4 fail on them ("resource mapping not
found ... no matches for kind"); facts say removed-api, the mapping rewrites exactly the revisions Helm reads, and
then real Helm upgrades and rolls back.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from .support import (
    BIN,
    ROOT,
    WORKER_ACCOUNT,
    Outcome,
    Scenario,
    extra_vars,
    helm,
    helm_json,
    kubectl,
    ready,
    run_collection_module,
    run_playbook,
    run_scenarios,
    warnings_of,
    writes_in_namespace,
)
from .test_rbac import identity

# The two ways, each with both Helm majors and both drivers between its cases.
DEPLOYED = Scenario("removed-api-crd", "3", "secret", prefix="ra")
FAILED = Scenario("removed-api-failed", "4", "configmap", prefix="ra")
PENDING = Scenario("removed-api-pending", "4", "secret", prefix="ra")
CRD = [DEPLOYED, FAILED, PENDING]
BUILTIN = [
    Scenario("removed-api-builtin", "4", "secret", prefix="ra"),
    Scenario("removed-api-builtin", "3", "configmap", prefix="ra"),
]
# What each case maps by default: the revisions Helm reads next (_apis.revisions_helm_reads).
MAPPED = {DEPLOYED: [2], FAILED: [2, 3], PENDING: [1, 2], BUILTIN[0]: [2], BUILTIN[1]: [2]}


@pytest.fixture(scope="module")
def made(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> dict[Scenario, Outcome]:
    return run_scenarios(CRD, tmp_path_factory.mktemp("removed-api"))


def facts(case: Scenario, **extra: object) -> dict:
    result = run_collection_module(
        "helm_release_facts",
        {"namespace": case.namespace, "release": [case.release], "driver": case.driver, "as_facts": False, **extra},
    )
    assert not result.get("failed"), result
    (release,) = result["helm_releases"]
    return release


def map_apis(case: Scenario, tmp_path: Path, *, check_mode: bool = False, **extra: object) -> dict:
    args = {
        "namespace": case.namespace,
        "release": case.release,
        "driver": case.driver,
        "backup_dir": str(tmp_path / "backups"),
        "stale_after": 5,
        "client_timeout": 5,
        **extra,
    }
    return run_collection_module("helm_release_map_apis", args, check_mode=check_mode, diff=True)


def history(case: Scenario) -> list[tuple[int, str, str]]:
    listed = helm_json(case.helm, case.driver, "history", case.release, "-n", case.namespace)
    return [(h["revision"], h["status"], h["description"]) for h in listed]


@pytest.mark.parametrize("case", CRD, ids=[s.id for s in CRD])
def test_facts_say_removed_api_and_read_the_objects_through_the_served_version(
    made: dict[Scenario, Outcome], case: Scenario
) -> None:
    served_as = f"{case.namespace}.widgets.helmops.test/v1"
    check_facts(made[case], "Widget", f"{case.release}-widget", served_as, MAPPED[case])


@pytest.mark.parametrize("case", CRD, ids=[s.id for s in CRD])
def test_the_mapping_lets_real_helm_act_again_and_keeps_the_history(
    made: dict[Scenario, Outcome], case: Scenario, tmp_path: Path
) -> None:
    upgrade = {"revisionNote": "r9", "widget": True, "widgetApiVersion": f"{case.namespace}.widgets.helmops.test/v1"}
    check_mapping(made[case], tmp_path, MAPPED[case], upgrade)


def check_facts(outcome: Outcome, kind: str, name: str, served_as: str, mapped: list[int]) -> None:
    """Facts (given Helm's own error too) say removed-api, not missing-crd; the object is read through the served
    version, so it is present, not missing; the first step that acts is the mapping."""
    ready(outcome)
    case = outcome.scenario
    release = facts(case, error=outcome.result["errors"][-1] if outcome.result["errors"] else None)
    (removed,) = release["risks"]["removed_apis"]
    assert (removed["kind"], removed["name"], removed["served_as"]) == (kind, name, served_as), removed
    assert removed["revisions"] == mapped, removed
    assert release["risks"]["missing_crds"] == []
    codes = {f["code"] for f in release["diagnosis"]["findings"]}
    assert "removed-api" in codes and "missing-crd" not in codes, codes  # Helm's own words say "ensure CRDs"
    (live,) = [o for o in release["live"]["objects"] if o["kind"] == kind]
    assert live["served_as"] == served_as and live["deployed"] == "present", live  # not reported missing
    actions = {a["name"]: a for a in release["diagnosis"]["actions"]}
    assert "helm_release_map_apis" in actions["map_apis"]["command"]


def check_mapping(outcome: Outcome, tmp_path: Path, mapped: list[int], upgrade: dict) -> None:
    """--check writes nothing; the mapping rewrites the revisions Helm reads and keeps the history; a second run
    changes nothing; real Helm then upgrades and rolls back (a deployed release), or rolls back to the mapped
    target (a failed or pending one, which the mapping left failed or pending)."""
    ready(outcome)
    case = outcome.scenario
    before = history(case)
    started = time.time()
    looked = map_apis(case, tmp_path, check_mode=True)
    assert looked["changed"] is True and not looked.get("failed"), looked
    assert [m["revision"] for m in looked["mapped"]] == mapped
    assert writes_in_namespace(case.namespace, started) == [], "check mode wrote"
    assert not (tmp_path / "backups").exists()

    done = map_apis(case, tmp_path)
    assert done["changed"] is True and [m["revision"] for m in done["mapped"]] == mapped, done
    assert Path(done["backup_file"]).is_file()
    assert history(case) == before, "same revisions, statuses and descriptions"
    assert map_apis(case, tmp_path)["changed"] is False  # a second run changes nothing

    scope = ["-n", case.namespace, "--wait", "--timeout", "120s"]
    if before[-1][1] == "deployed":
        values_file = tmp_path / "values.json"
        values_file.write_text(json.dumps(upgrade))  # the chart now renders the served version
        chart = str(ROOT / "tests" / "charts" / "app")
        helm(case.helm, case.driver, "upgrade", case.release, chart, "-f", str(values_file), *scope)
        helm(case.helm, case.driver, "rollback", case.release, str(mapped[-1]), *scope)
    else:
        helm(case.helm, case.driver, "rollback", case.release, str(mapped[0]), *scope)
    assert history(case)[-1][1] == "deployed"


def test_remediate_maps_then_converges_forward(cluster: str, tmp_path: Path) -> None:
    """The failed release through the playbook a user runs: never rolled back to a mapped revision (it keeps the
    removed version's fields), so without the chart nothing is written; with the chart and a values file that
    moves the custom resource to the served version, --check writes nothing, then it maps and upgrades."""
    case = Scenario("removed-api-failed", "3", "secret", prefix="rb")
    ready(run_scenarios([case], tmp_path)[case])
    before = history(case)
    fix = tmp_path / "served.json"
    # The fix: pods that get ready (named, not left out: Helm 3 diffs against the last deployed revision, which had no
    # behaviour label, so leaving it out would keep the failed revision's never-ready one), the served version.
    fix.write_text(json.dumps({"behaviour": "slow", "widgetApiVersion": f"{case.namespace}.widgets.helmops.test/v1"}))
    values = {
        "namespace": case.namespace,
        "release": case.release,
        "stale_after": 1,
        "client_timeout": 1,
        "helm_binary": str(BIN / f"helm{case.helm}"),
        "helm_timeout": "120s",
        "backup_dir": str(tmp_path / "backups"),
        "report_dir": str(tmp_path / "reports"),
    }
    report = tmp_path / "reports" / "localhost" / "remediation.json"
    started = time.time()
    refused = run_playbook("remediate.yml", *extra_vars(**values), env={"HELM_DRIVER": case.driver})
    (outcome,) = json.loads(report.read_text())["releases"]
    assert (outcome["branch"], outcome["outcome"]) == ("removed_api", "refused"), outcome
    assert "needs its chart" in outcome["message"] or "needs the chart" in outcome["message"], outcome
    assert refused.returncode != 0 and history(case) == before
    forward = {**values, "chart": str(ROOT / "tests" / "charts" / "app"), "values_files": [str(fix)]}
    looked = run_playbook("remediate.yml", "--check", *extra_vars(**forward), env={"HELM_DRIVER": case.driver})
    assert looked.returncode == 0, looked.stdout[-3000:]
    assert writes_in_namespace(case.namespace, started) == [], "a refusal or check mode wrote"
    done = run_playbook("remediate.yml", *extra_vars(**forward), env={"HELM_DRIVER": case.driver})
    assert done.returncode == 0, done.stdout[-3000:]
    (outcome,) = json.loads(report.read_text())["releases"]
    assert (outcome["branch"], outcome["action"], outcome["outcome"], outcome["status_after"]) == (
        "removed_api",
        "map_apis, then upgrade",
        "recovered",
        "deployed",
    ), outcome
    assert outcome["backups"], outcome
    assert history(case)[-1][:2] == (4, "deployed") and len(history(case)) == 4


def test_the_shipped_unlock_role_maps_and_the_triage_role_alone_cannot(cluster: str, tmp_path: Path) -> None:
    """The mapping writes records as an unlock does: helmops-triage + helmops-unlock, nothing more."""
    case = Scenario("removed-api-crd", "4", "configmap", prefix="rc")
    ready(run_scenarios([case], tmp_path)[case])
    kubectl("apply", "-f", str(ROOT / "docs" / "rbac"))
    # Named as a worker's identities (support.WORKER_ACCOUNT): this file runs beside the main run.
    reader = identity(case.namespace, f"{WORKER_ACCOUNT}map-reader", ["helmops-triage"], tmp_path)
    args = {"namespace": case.namespace, "release": case.release, "driver": case.driver, "stale_after": 1}
    refused = run_collection_module(
        "helm_release_map_apis", {**args, "backup_dir": str(tmp_path / "r")}, kubeconfig=reader
    )
    assert refused.get("failed") and "forbidden (403) to update ConfigMap" in refused["msg"], refused
    mapper = identity(case.namespace, f"{WORKER_ACCOUNT}mapper", ["helmops-triage", "helmops-unlock"], tmp_path)
    done = run_collection_module(
        "helm_release_map_apis", {**args, "backup_dir": str(tmp_path / "m")}, kubeconfig=mapper
    )
    assert done.get("changed") is True, done.get("msg")
    assert not warnings_of(done), warnings_of(done)  # the Event too was allowed
