"""Remediation on a chart shaped like production database charts (tests/charts/database): a StatefulSet
whose claims bind, a backup claim, a claim kept by policy, a pre-upgrade migration hook with its own
ServiceAccount, Role and RoleBinding, values of every type, and a 2.0.0 that moved storage.* to
persistence.* (hack/charts assembles it). Real Helm 3 and Helm 4 drive the releases (hack/scenario).

- The forward path after an upgrade to 2.0.0 was interrupted applies what that upgrade meant (its recorded
  values on 2.0.0's defaults), with a plain upgrade over bound claims; Helm's --reuse-values would have
  applied the deployed revision's values and 1.0.0's defaults (a template error), and --force a replace of
  the bound claims (refused by Kubernetes).
- A chart given for a whole namespace is never applied to a release of another chart.
- When the API server refuses to change a field, the failure names the object, the field and what to do,
  and doing it works.
"""

from __future__ import annotations

import json
import subprocess
import time
import typing as t
from pathlib import Path

import pytest
import yaml

from .support import (
    BIN,
    CHART,
    ROOT,
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
    scenario,
    writes_in_namespace,
)

DATABASE = str(ROOT / "tests" / "charts" / "database")


def both_helms(state: str) -> list[Scenario]:
    """The state with Helm 3 (Secret records) and Helm 4 (ConfigMap records)."""
    return [Scenario(state, "3", "secret", prefix="pc"), Scenario(state, "4", "configmap", prefix="pc")]


MAJOR_UPGRADE = both_helms("database-pending-major-upgrade")
UNINSTALLING = both_helms("operator-uninstalling")
ATOMIC_ROLLBACK_FAILED = both_helms("atomic-rollback-failed")
STUCK = both_helms("database-failed-upgrade")
BRANCHES = both_helms("database-pending-install") + both_helms("database-pending-rollback")
LEFT_ALONE = (
    both_helms("database-pending-upgrade-active")
    + both_helms("database-uninstalled")
    + both_helms("database-owned-elsewhere")
    + both_helms("database-flux-failed")
    + both_helms("database-kept-claim")
)
BLOATED = both_helms("database-bloated")


def chart(name: str) -> str:
    return subprocess.run(
        [str(ROOT / "hack" / "charts"), name], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def made(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> dict[Scenario, Outcome]:
    """This file's releases, made side by side before its first test."""
    scenarios = MAJOR_UPGRADE + UNINSTALLING + ATOMIC_ROLLBACK_FAILED + STUCK + BRANCHES + LEFT_ALONE + BLOATED
    return run_scenarios(scenarios, tmp_path_factory.mktemp("pc"))


def claims(namespace: str) -> dict[str, tuple[str, str]]:
    """Claim name -> (phase, volume) in the namespace."""
    listed = json.loads(kubectl("get", "pvc", "-n", namespace, "-o", "json").stdout)
    return {c["metadata"]["name"]: (c["status"].get("phase"), c["spec"].get("volumeName")) for c in listed["items"]}


def remediate(namespace: str, major: str, driver: str, tmp_path: Path, *args: str, **values: t.Any) -> t.Any:
    common = {
        "namespace": namespace,
        "stale_after": 1,
        "client_timeout": 1,
        "helm_binary": str(BIN / f"helm{major}"),
        "helm_timeout": "120s",
        "backup_dir": str(tmp_path / "backups"),
        "report_dir": str(tmp_path / "reports"),
    }
    return run_playbook("remediate.yml", *args, *extra_vars(**{**common, **values}), env={"HELM_DRIVER": driver})


@pytest.mark.parametrize("case", MAJOR_UPGRADE, ids=[s.id for s in MAJOR_UPGRADE])
def test_the_forward_path_applies_what_the_interrupted_major_upgrade_meant(
    made: dict[Scenario, Outcome], case: Scenario, tmp_path: Path
) -> None:
    ready(made[case])
    namespace, release = case.namespace, case.release
    bound = claims(namespace)
    assert {phase for phase, _volume in bound.values()} == {"Bound"} and len(bound) == 3, bound
    charts = {"charts": {"database": {"chart": chart("database-2")}}}

    # The cluster runs 2.0.0: every object is the newest revision's as the API server returns it (zero values
    # it omits, defaults it adds), and the pod label only 2.0.0's manifest added tells it from revision 1.
    facts = run_collection_module(
        "helm_release_facts",
        {"release": [release], "namespace": namespace, "driver": case.driver, "stale_after": 1, "client_timeout": 1},
    )["ansible_facts"]["helm_releases"][0]
    live = facts["live"]
    assert {o["name"]: o["latest"] for o in live["objects"]} == dict.fromkeys(
        [f"{release}-config", f"{release}-backup", f"{release}-archive", f"{release}-headless", release], "present"
    ), live
    statefulset = next(o for o in live["objects"] if o["kind"] == "StatefulSet")
    assert (
        "spec.template.metadata.labels.helmops.test/behaviour (the other revision's)"
        in statefulset["deployed_differences"]
    )
    assert live["closer_to"] == "new" and live["orphans"] == [], live
    assert {f["code"] for f in facts["diagnosis"]["findings"]} & {"hook-running", "hook-failed"} == set()
    assert [a["name"] for a in facts["diagnosis"]["actions"]][:1] == ["unlock"]

    started = time.time()
    looked = remediate(namespace, case.helm, case.driver, tmp_path, "--check", "--diff", **charts)
    assert looked.returncode == 0, looked.stdout[-3000:]
    assert "would then run helm upgrade of" in looked.stdout and "values revision 2 recorded" in " ".join(
        looked.stdout.split()
    )
    assert writes_in_namespace(namespace, started) == []

    done = remediate(namespace, case.helm, case.driver, tmp_path, **charts)
    assert done.returncode == 0, done.stdout[-4000:]
    history = helm_json(case.helm, case.driver, "history", release, "-n", namespace)
    assert [(h["revision"], h["status"], h["chart"]) for h in history] == [
        (1, "superseded", "database-1.0.0"),
        (2, "failed", "database-2.0.0"),
        (3, "deployed", "database-2.0.0"),
    ]
    # What the interrupted upgrade meant: its values (numbers, booleans) on 2.0.0's defaults.
    values = helm_json(case.helm, case.driver, "get", "values", release, "-n", namespace, "--revision", "3")
    assert values["config"] == {"maxConnections": 250, "fsync": False, "checkpointRatio": 0.7}
    config = json.loads(kubectl("get", "configmap", f"{release}-config", "-n", namespace, "-o", "json").stdout)
    assert config["data"]["max_connections"] == "250" and config["data"]["fsync"] == "off"
    assert claims(namespace) == bound, "the claims and their volumes are the ones the database had"

    # Helm works on the release again, and a second run changes nothing.
    upgrade = ["upgrade", release, chart("database-2"), "-n", namespace, "--reuse-values", "--wait"]
    helm(case.helm, case.driver, *upgrade, "--set", "config.maxConnections=300")
    again = remediate(namespace, case.helm, case.driver, tmp_path, **charts)
    said = " ".join(again.stdout.split())
    assert again.returncode == 0 and "localhost: 1 release(s): 1 healthy" in said, again.stdout
    assert len(helm_json(case.helm, case.driver, "history", release, "-n", namespace)) == 4


def test_a_chart_given_for_a_namespace_never_reaches_a_release_of_another_chart(cluster: str, tmp_path: Path) -> None:
    """`-e chart=` for a namespace with a database release and an app release, both stuck the same way:
    the database is upgraded with it; the app release is refused (its chart is app), then upgraded once
    the charts map names its own chart."""
    namespace = "pc-two-charts"
    kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true")
    scenario("database-pending-major-upgrade", "db", namespace, "3")
    scenario("pending-upgrade", "web", namespace, "3")
    database_2 = chart("database-2")

    done = remediate(namespace, "3", "secret", tmp_path, chart=database_2)
    said = " ".join(done.stdout.split())
    assert "refusing to upgrade web with chart 'database'" in said and "the release's chart is 'app'" in said, said[
        -3000:
    ]
    web = helm_json("3", "secret", "history", "web", "-n", namespace)
    assert [h["status"] for h in web] == ["deployed", "failed"], web  # unlocked, never upgraded with database
    # The report says what happened: the unlock was done, then the upgrade was refused; web is failed now.
    report = json.loads((tmp_path / "reports" / "localhost" / "remediation.json").read_text())
    outcome = next(o for o in report["releases"] if o["release"] == "web")
    assert (outcome["outcome"], outcome["status_before"], outcome["status_after"]) == (
        "refused",
        "pending-upgrade",
        "failed",
    )
    assert outcome["message"].startswith("unlock was done, then: refusing to upgrade web"), outcome
    db = helm_json("3", "secret", "history", "db", "-n", namespace)
    assert db[-1]["status"] == "deployed" and db[-1]["chart"] == "database-2.0.0", db

    # The module refuses the same upgrade on the now unlocked release: nothing written, Helm never upgraded it.
    started = time.time()
    direct = run_collection_module(
        "helm_release_recover",
        {
            "release": "web",
            "namespace": namespace,
            "action": "upgrade",
            "chart": database_2,
            "helm_binary": str(BIN / "helm3"),
            "backup_dir": str(tmp_path / "direct-backups"),
        },
    )
    assert direct.get("refused") is True and direct["release_charts"] == ["app"], direct
    assert writes_in_namespace(namespace, started) == []
    assert not (tmp_path / "direct-backups").exists()

    fixed = remediate(namespace, "3", "secret", tmp_path, chart=database_2, charts={"app": CHART})
    assert fixed.returncode == 0, fixed.stdout[-4000:]
    web = helm_json("3", "secret", "history", "web", "-n", namespace)
    assert [h["status"] for h in web] == ["superseded", "failed", "deployed"] and web[-1]["chart"] == "app-0.1.0", web


@pytest.mark.parametrize("major", ["3", "4"])
def test_a_field_that_cannot_change_is_named_with_what_to_do(cluster: str, major: str, tmp_path: Path) -> None:
    """A failed upgrade that changed the claim templates' size: the plain upgrade Helm runs again is refused
    by the API server; the failure names the StatefulSet, the field and the step, and after the step the
    upgrade works (the claims stay). --force would be refused on the bound claims themselves."""
    namespace, release = f"pc-immutable-h{major}", "db"
    kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true")
    helm(major, "secret", "install", release, DATABASE, "-n", namespace, "--create-namespace", "--wait")
    bigger = tmp_path / "bigger.yaml"
    bigger.write_text(yaml.safe_dump({"storage": {"size": "2Gi"}}))
    helm(major, "secret", "upgrade", release, DATABASE, "-n", namespace, "-f", str(bigger), check=False)
    assert helm_json(major, "secret", "status", release, "-n", namespace)["info"]["status"] == "failed"
    bound = claims(namespace)

    def upgrade(**args: t.Any) -> dict[str, t.Any]:
        return run_collection_module(
            "helm_release_recover",
            {
                "release": release,
                "namespace": namespace,
                "action": "upgrade",
                "chart": DATABASE,
                "helm_binary": str(BIN / f"helm{major}"),
                "timeout": "120s",
                "backup_dir": str(tmp_path / "backups"),
                **args,
            },
        )

    failed = upgrade()
    assert failed.get("failed") and not failed.get("refused"), failed
    assert "Invalid value: (elided): field is immutable" in failed["msg"], failed["msg"]
    assert f"kubectl delete statefulset {release} --cascade=orphan -n {namespace}" in failed["msg"], failed["msg"]
    assert [(o["kind"], o["field"]) for o in failed["refused_objects"]] == [
        ("StatefulSet", "spec.volumeClaimTemplates")
    ]
    assert "DataSource" not in failed["msg"], "no object dumps"

    forced = upgrade(force_replace=True)
    assert forced.get("failed"), forced
    assert ("PersistentVolumeClaim", f"{release}-backup") in {(o["kind"], o["name"]) for o in forced["refused_objects"]}
    assert "grow its storage request" in forced["msg"]

    kubectl("delete", "statefulset", release, "--cascade=orphan", "-n", namespace)
    done = upgrade()
    assert done.get("changed") is True, done.get("msg")
    assert helm_json(major, "secret", "status", release, "-n", namespace)["info"]["status"] == "deployed"
    assert claims(namespace) == bound, "the step kept every claim and its volume"


@pytest.mark.parametrize("case", UNINSTALLING, ids=[s.id for s in UNINSTALLING])
def test_an_uninstall_without_hooks_names_what_it_left_in_the_cluster(
    made: dict[Scenario, Outcome], case: Scenario, tmp_path: Path
) -> None:
    """The operator chart stuck uninstalling behind a pre-delete hook that never finishes: remediate
    (force, allow_destructive) uninstalls it without hooks, and reports the hook Job, its ServiceAccount,
    ClusterRole and ClusterRoleBinding (which `helm uninstall --no-hooks` neither runs nor deletes) and the
    CRD kept by policy, each with the command that removes it; those commands remove them."""
    ready(made[case])
    namespace, release = case.namespace, case.release
    options = {"force": True, "allow_destructive": True, "wait_timeout": 5}
    # Its cluster-scoped objects (CRD, ClusterRole, ClusterRoleBinding) and the subchart's are the release's own,
    # not orphans, so nothing is escalated.
    facts = run_collection_module(
        "helm_release_facts", {"release": [release], "namespace": namespace, "driver": case.driver}
    )["ansible_facts"]["helm_releases"][0]
    assert facts["live"]["orphans"] == [] and facts["live"]["deployed_missing"] == [], facts["live"]
    assert "escalate" not in [a["name"] for a in facts["diagnosis"]["actions"]]

    started = time.time()
    looked = remediate(namespace, case.helm, case.driver, tmp_path, "--check", **options)
    assert looked.returncode == 0, looked.stdout[-3000:]
    assert writes_in_namespace(namespace, started) == []

    done = remediate(namespace, case.helm, case.driver, tmp_path, **options)
    assert done.returncode == 0, done.stdout[-4000:]
    report = json.loads((tmp_path / "reports" / "localhost" / "remediation.json").read_text())
    (outcome,) = report["releases"]
    assert (outcome["outcome"], outcome["status_after"]) == ("recovered", "absent"), outcome
    assert len(list((tmp_path / "backups").rglob("sh.helm.release.v1.*.json"))) == 1, "one backup, taken once"
    hook = f"{release}-operator-cleanup"
    left = {(item["kind"], item["name"]): item for item in outcome["left_behind"]}
    assert set(left) == {
        ("Job", hook),
        ("ServiceAccount", hook),
        ("ClusterRole", f"{hook}-{namespace}"),
        ("ClusterRoleBinding", f"{hook}-{namespace}"),
        ("CustomResourceDefinition", f"backups.{namespace}.ops.helmops.test"),
    }, left
    assert "--no-hooks neither runs nor deletes hooks" in left[("Job", hook)]["why"]
    assert (
        "kept by helm.sh/resource-policy: keep"
        in left[("CustomResourceDefinition", f"backups.{namespace}.ops.helmops.test")]["why"]
    )
    markdown = (tmp_path / "reports" / "localhost" / "remediation.md").read_text()
    assert f"`kubectl delete clusterrole.rbac.authorization.k8s.io {hook}-{namespace}`" in markdown

    for item in left.values():
        if "command" in item:
            kubectl(*item["command"].split()[1:])
    for kind, name in left:
        scope = ["-n", namespace] if kind in ("Job", "ServiceAccount") else []
        assert kubectl("get", kind.lower(), name, *scope, "--ignore-not-found", "-o", "name").stdout == "" or (
            kind == "CustomResourceDefinition"
        ), (kind, name)
    kubectl("delete", "customresourcedefinition", f"backups.{namespace}.ops.helmops.test")


@pytest.mark.parametrize("case", ATOMIC_ROLLBACK_FAILED, ids=[s.id for s in ATOMIC_ROLLBACK_FAILED])
def test_an_atomic_upgrade_whose_rollback_failed_is_recognised(made: dict[Scenario, Outcome], case: Scenario) -> None:
    """`helm upgrade --atomic` timed out and its own rollback failed on a pre-rollback hook: the error text
    Helm printed is recognised, and the hook is reported once, as the cluster shows it (Failed)."""
    error = ready(made[case]).result["errors"][-1]
    facts = run_collection_module(
        "helm_release_facts",
        {
            "release": [case.release],
            "namespace": case.namespace,
            "driver": case.driver,
            "error": error,
            "operation": "upgrade",
        },
    )["ansible_facts"]["helm_releases"][0]
    findings = facts["diagnosis"]["findings"]
    codes = [f["code"] for f in findings]
    assert facts["status"] == "pending-rollback"
    assert codes.count("atomic-rollback-failed") == 1 and codes.count("hook-failed") == 1, codes
    hook = next(f for f in findings if f["code"] == "hook-failed")
    assert hook["message"] == f"Hook Job {case.release}-pre-rollback (pre-rollback) is Failed in the cluster."
    assert "hook-running" not in codes


@pytest.mark.parametrize("case", STUCK, ids=[s.id for s in STUCK])
def test_a_rollback_of_a_statefulset_stuck_on_a_never_ready_pod_converges(
    made: dict[Scenario, Outcome], case: Scenario, tmp_path: Path
) -> None:
    """The database's upgrade failed on a pod that never gets ready: the StatefulSet replaces no pod until it
    is, so a rollback can only time out. Triage says so and prints the step; remediate refuses the rollback
    until replace_stuck_pods, then converges (the pod replaced, the claims the same), and a second run and a
    real helm upgrade find a healthy release."""
    ready(made[case])
    namespace, release = case.namespace, case.release
    bound = claims(namespace)
    facts = run_collection_module(
        "helm_release_facts", {"release": [release], "namespace": namespace, "driver": case.driver}
    )["ansible_facts"]["helm_releases"][0]
    assert facts["live"]["stuck_pods"] == [
        {"statefulset": release, "pod": f"{release}-0", "revision": facts["live"]["stuck_pods"][0]["revision"]}
    ]
    rollback = facts["diagnosis"]["actions"][0]
    assert (
        rollback["name"] == "rollback"
        and f"kubectl delete pod {release}-0 --namespace {namespace}" in rollback["command"]
    )
    assert "statefulset-stuck" in {f["code"] for f in facts["diagnosis"]["findings"]}

    started = time.time()
    refused = remediate(namespace, case.helm, case.driver, tmp_path)
    said = " ".join(refused.stdout.split())
    assert refused.returncode != 0 and "-> refused (" in said and "replace_stuck_pods: true" in said, said[-3000:]
    assert writes_in_namespace(namespace, started) == []
    assert not (tmp_path / "backups").exists(), "a refused step writes no backup"
    assert [h["status"] for h in helm_json(case.helm, case.driver, "history", release, "-n", namespace)] == [
        "deployed",
        "failed",
    ]

    done = remediate(namespace, case.helm, case.driver, tmp_path, replace_stuck_pods=True)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "-> recovered (" in " ".join(done.stdout.split())
    history = helm_json(case.helm, case.driver, "history", release, "-n", namespace)
    assert [h["status"] for h in history] == ["superseded", "failed", "deployed"], history
    statefulset = json.loads(kubectl("get", "statefulset", release, "-n", namespace, "-o", "json").stdout)
    assert statefulset["status"].get("readyReplicas") == 1
    assert statefulset["status"]["updateRevision"] == statefulset["status"]["currentRevision"]
    assert claims(namespace) == bound

    again = remediate(namespace, case.helm, case.driver, tmp_path, replace_stuck_pods=True)
    assert again.returncode == 0 and "-> healthy (" in " ".join(again.stdout.split()), again.stdout[-3000:]
    helm(case.helm, case.driver, "upgrade", release, DATABASE, "-n", namespace, "--reuse-values", "--wait")


# state -> (outcome, the statuses helm history then shows, the newest revision's description, backups: one per
# step that writes: the unlock and the upgrade, or the rollback)
BRANCH_ENDS = {
    "database-pending-install": ("recovered", ["superseded", "deployed"], "Upgrade complete", 2),
    "database-pending-rollback": ("recovered", ["superseded", "superseded", "failed", "deployed"], "Rollback to 1", 1),
}


@pytest.mark.parametrize("case", BRANCHES, ids=[s.id for s in BRANCHES])
def test_the_remaining_branches_check_act_and_stay_done(
    made: dict[Scenario, Outcome], case: Scenario, tmp_path: Path
) -> None:
    """pending_install (unlock, then the upgrade with the install's own values) and pending_rollback (the
    interrupted rollback, resumed) on the database chart: --check writes nothing, the run recovers with the
    claims untouched, a second run finds it healthy, and Helm upgrades it afterwards."""
    ready(made[case])
    namespace, release = case.namespace, case.release
    bound = claims(namespace)
    charts = {"charts": {"database": DATABASE}}

    started = time.time()
    looked = remediate(namespace, case.helm, case.driver, tmp_path, "--check", **charts)
    assert looked.returncode == 0, looked.stdout[-3000:]
    assert writes_in_namespace(namespace, started) == []

    done = remediate(namespace, case.helm, case.driver, tmp_path, **charts)
    assert done.returncode == 0, done.stdout[-4000:]
    outcome, statuses, description, backups = BRANCH_ENDS[case.state]
    assert f"-> {outcome} (" in " ".join(done.stdout.split())
    history = helm_json(case.helm, case.driver, "history", release, "-n", namespace)
    assert [h["status"] for h in history] == statuses and history[-1]["description"] == description, history
    values = helm_json(case.helm, case.driver, "get", "values", release, "-n", namespace)
    expected = {"maxConnections": 250, "fsync": False, "checkpointRatio": 0.7}
    assert (values.get("config") == expected) is (case.state == "database-pending-install"), values
    assert claims(namespace) == bound
    assert len(list((tmp_path / "backups").rglob("sh.helm.release.v1.*.json"))) == backups, "one backup per step"

    again = remediate(namespace, case.helm, case.driver, tmp_path, **charts)
    assert again.returncode == 0 and "-> healthy (" in " ".join(again.stdout.split()), again.stdout[-3000:]
    helm(case.helm, case.driver, "upgrade", release, DATABASE, "-n", namespace, "--reuse-values", "--wait")


# state -> (remediate's exit code, the outcome it reports, what the console line says of it)
LEFT_ALONE_ENDS = {
    "database-pending-upgrade-active": (2, "still-running", "possibly_running: wait"),
    "database-uninstalled": (0, "healthy", "uninstalled: none"),
    # A rollback would write the replica's ConfigMap (and take it back); an uninstall would delete it.
    "database-owned-elsewhere": (2, "escalated", "ConfigMap {release}-config -> {namespace}/{release}-replica"),
    "database-flux-failed": (0, "skipped", "managed by Flux helm-controller (HelmRelease database)"),
    # Healthy: the claim an older revision kept is the triage's to report (an orphan), no recovery's to touch.
    "database-kept-claim": (0, "healthy", "deployed: none"),
}


@pytest.mark.parametrize("case", LEFT_ALONE, ids=[s.id for s in LEFT_ALONE])
def test_the_branches_that_leave_the_release_alone_write_nothing(
    made: dict[Scenario, Outcome], case: Scenario, tmp_path: Path
) -> None:
    """possibly_running (a StatefulSet still rolling out under a client that may still wait on it), uninstalled
    (history kept on purpose), escalate (a ConfigMap another release took over), controller_managed (Flux's
    labels on every object) and deployed (with a claim an older revision kept) on the database chart: in check
    mode and for real, nothing is written, no backup is taken, and the history stays as Helm left it."""
    ready(made[case])
    namespace, release = case.namespace, case.release
    before = helm_json(case.helm, case.driver, "history", release, "-n", namespace)
    code, outcome, said = LEFT_ALONE_ENDS[case.state]
    said = said.format(release=release, namespace=namespace)
    started = time.time()
    # Check mode, then for real: a run that writes nothing leaves the same release for the next run, so the
    # real run is also the idempotence check.
    for args in (["--check"], []):
        done = remediate(namespace, case.helm, case.driver, tmp_path, *args, client_timeout=900, wait_timeout=4)
        assert done.returncode == code, done.stdout[-3000:]
        line = " ".join(done.stdout.split())
        assert f"{namespace}/{release}: " in line and f"-> {outcome} (" in line and said in line, done.stdout[-3000:]
    assert writes_in_namespace(namespace, started) == []
    assert not (tmp_path / "backups").exists()
    assert helm_json(case.helm, case.driver, "history", release, "-n", namespace) == before


FLUX_FAILED = both_helms("database-flux-failed")[:1]


@pytest.mark.parametrize("case", FLUX_FAILED, ids=[s.id for s in FLUX_FAILED])
def test_a_release_flux_manages_is_recovered_only_when_included(
    made: dict[Scenario, Outcome], case: Scenario, tmp_path: Path
) -> None:
    """include_controller_managed lifts the controller_managed branch only: the failed database is then planned
    as any other (a rollback whose never-ready pod must be replaced, refused without replace_stuck_pods)."""
    ready(made[case])
    looked = remediate(case.namespace, case.helm, case.driver, tmp_path, "--check", include_controller_managed=True)
    line = " ".join(looked.stdout.split())
    assert f"{case.namespace}/{case.release}: failed -> refused (failed: rollback)" in line, looked.stdout[-3000:]
    assert "replace_stuck_pods" in line


@pytest.mark.parametrize("case", BLOATED, ids=[s.id for s in BLOATED])
def test_a_long_database_history_is_pruned_to_what_helm_needs(
    made: dict[Scenario, Outcome], case: Scenario, tmp_path: Path
) -> None:
    """bloated_history on the database chart (24 revisions, each with its migration hook): --check writes
    nothing; the run deletes the oldest records (each exported first) and keeps the newest ten, the deployed
    one among them, claims untouched; a second run finds it healthy; Helm still rolls back and upgrades."""
    ready(made[case])
    namespace, release = case.namespace, case.release
    bound = claims(namespace)
    before = helm_json(case.helm, case.driver, "history", release, "-n", namespace, "--max", "100")
    assert len(before) == 24 and before[-1]["status"] == "deployed"

    started = time.time()
    looked = remediate(namespace, case.helm, case.driver, tmp_path, "--check")
    assert looked.returncode == 0 and "bloated_history: prune_history" in " ".join(looked.stdout.split())
    assert writes_in_namespace(namespace, started) == []

    done = remediate(namespace, case.helm, case.driver, tmp_path)
    assert done.returncode == 0, done.stdout[-4000:]
    after = helm_json(case.helm, case.driver, "history", release, "-n", namespace, "--max", "100")
    assert [h["revision"] for h in after] == [h["revision"] for h in before[-10:]], after
    assert after[-1]["status"] == "deployed" and claims(namespace) == bound
    deleted = [w for w in writes_in_namespace(namespace, started) if w.startswith("delete")]
    assert len(deleted) == 14 and all(f".v1.{release}.v" in w for w in deleted), deleted
    assert len(list((tmp_path / "backups").rglob("sh.helm.release.v1.*.json"))) == 14, "each pruned record exported"

    again = remediate(namespace, case.helm, case.driver, tmp_path)
    assert again.returncode == 0 and "-> healthy (" in " ".join(again.stdout.split()), again.stdout[-3000:]
    oldest = str(after[0]["revision"])
    helm(case.helm, case.driver, "rollback", release, oldest, "-n", namespace, "--wait")
    helm(case.helm, case.driver, "upgrade", release, DATABASE, "-n", namespace, "--reuse-values", "--wait")
    assert claims(namespace) == bound


def test_objects_an_older_revision_kept_are_found_as_leftovers(cluster: str) -> None:
    """Revision 1 of the operator had a ConfigMap kept by policy; revision 2 dropped it and Helm left it in the
    cluster (pkg/kube/client.go skips deleting kept objects). No manifest Helm acts on has a ConfigMap:
    orphan_search=manifests does not look among ConfigMaps, orphan_search=history does, and names it with the
    command that removes it; that command removes it."""
    namespace, release = "pc-leftover", "op"
    kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true")
    operator = chart("operator")
    install = ["install", release, operator, "-n", namespace, "--create-namespace", "--wait"]
    helm("3", "secret", *install, "--set", "legacyConfig.enabled=true")
    helm("3", "secret", "upgrade", release, operator, "-n", namespace, "--wait", "--set", "legacyConfig.enabled=false")
    leftover = f"{release}-operator-legacy"

    def orphans(search: str) -> list[dict[str, str]]:
        args = {"release": [release], "namespace": namespace, "orphan_search": search}
        found = run_collection_module("helm_release_facts", args)["ansible_facts"]["helm_releases"][0]["live"]
        assert {o["kind"] for o in found["objects"]} & {"ConfigMap"} == set(), "no manifest Helm acts on has one"
        return t.cast(list[dict[str, str]], found["orphans"])

    assert orphans("manifests") == []
    command = f"kubectl delete configmap {leftover} -n {namespace}"
    expected = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "namespace": namespace,
        "name": leftover,
        "command_if_unneeded": command,
    }
    assert orphans("history") == [expected]
    kubectl(*command.split()[1:])
    assert orphans("history") == []
    kubectl("delete", "namespace", namespace, "--wait=false")


@pytest.mark.parametrize("case", both_helms("database-kept-claim")[:1], ids=["database-kept-claim"])
def test_a_claim_an_older_revision_kept_is_an_orphan_the_triage_escalates(
    made: dict[Scenario, Outcome], case: Scenario, tmp_path: Path
) -> None:
    """The backup claim kept by policy and dropped from the chart: the facts name it (a claim's kind is in the
    manifests), the diagnosis escalates it after the step of a healthy release, and the triage report lists it
    with the command that deletes it, marked as what it is."""
    ready(made[case])
    namespace, release = case.namespace, case.release
    facts = run_collection_module("helm_release_facts", {"release": [release], "namespace": namespace})
    entry = facts["ansible_facts"]["helm_releases"][0]
    claim = f"{release}-backup"
    assert [(o["kind"], o["name"]) for o in entry["live"]["orphans"]] == [("PersistentVolumeClaim", claim)]
    assert [a["name"] for a in entry["diagnosis"]["actions"]] == ["none", "escalate"]
    reports = tmp_path / "reports"
    done = run_playbook("triage.yml", *extra_vars(namespace=namespace, release=release, report_dir=str(reports)))
    assert done.returncode == 0, done.stdout[-3000:]
    markdowns = list(reports.rglob(f"{namespace}__{release}.md"))
    assert len(markdowns) == 1, markdowns
    text = markdowns[0].read_text()
    assert f"`kubectl delete persistentvolumeclaim {claim} -n {namespace}`" in text, text
