"""Least privilege: ServiceAccounts bound to exactly the roles in docs/rbac/
can do their job, and no more; a missing write verb fails clearly and changes
nothing."""

from __future__ import annotations

import json
import subprocess
import time
import typing as t
import uuid
from pathlib import Path

import pytest

from .support import (
    CHART,
    KUBECONFIG,
    ROOT,
    extra_vars,
    helm,
    helm_json,
    kubectl,
    run_collection_module,
    run_playbook,
    scenario,
    write_kubeconfig,
    writes_by_user_since,
)


def identity(namespace: str, name: str, roles: list[str], tmp_path: Path) -> str:
    """A ServiceAccount bound in `namespace` to the given ClusterRoles; its kubeconfig path."""
    kubectl("create", "serviceaccount", name, "-n", namespace)
    for role in roles:
        kubectl(
            "create",
            "rolebinding",
            f"{name}-{role}",
            "-n",
            namespace,
            f"--clusterrole={role}",
            f"--serviceaccount={namespace}:{name}",
        )
    token = kubectl("create", "token", name, "-n", namespace, "--duration", "30m").stdout.strip()
    server = kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
    return write_kubeconfig(tmp_path, server, token, str(ROOT / ".cluster" / "pki" / "ca.crt"))


@pytest.fixture
def stuck_release(cluster: str) -> t.Iterator[str]:
    """Release web left in pending-upgrade by a killed Helm, and release hist with four revisions."""
    namespace = f"rbac-{uuid.uuid4().hex[:6]}"
    subprocess.run(
        [str(ROOT / "hack" / "scenario"), "pending-upgrade", "--release", "web", "--namespace", namespace],
        check=True,
        capture_output=True,
    )
    for verb in ("install", "upgrade", "upgrade", "upgrade"):
        helm("3", "secret", verb, "hist", CHART, "-n", namespace, f"--set=revisionNote={uuid.uuid4().hex}")
    kubectl("apply", "-f", str(ROOT / "docs" / "rbac"))
    time.sleep(1.5)  # let the record age past stale_after=1
    yield namespace
    kubectl("delete", "namespace", namespace, "--wait=false")


def statuses(namespace: str, release: str = "web") -> list[str]:
    return [h["status"] for h in helm_json("3", "secret", "history", release, "-n", namespace)]


def test_triage_role_reads_everything_it_needs_and_writes_nothing(stuck_release: str, tmp_path: Path) -> None:
    namespace = stuck_release
    reader = identity(namespace, "triage", ["helmops-triage"], tmp_path)
    facts = run_collection_module("helm_release_facts", {"namespace": namespace, "stale_after": 1}, kubeconfig=reader)
    assert not facts.get("failed"), facts.get("msg")
    release = next(r for r in facts["ansible_facts"]["helm_releases"] if r["name"] == "web")
    assert release["status"] == "pending-upgrade"
    assert release["lock"]["verdict"] == "stale", release["lock"]["evidence"]
    assert facts["ansible_facts"]["helm_release_errors"] == []
    assert release["live"]["objects"] and all(o["latest"] == "present" for o in release["live"]["objects"])

    unlock = run_collection_module(
        "helm_release_unlock",
        {"release": "web", "namespace": namespace, "stale_after": 1, "backup_dir": str(tmp_path / "b")},
        kubeconfig=reader,
    )
    assert unlock["failed"]
    assert f"forbidden (403) to update Secret {namespace}/sh.helm.release.v1.web.v2" in unlock["msg"]
    prune = run_collection_module("helm_history_prune", {"namespace": namespace, "keep": 1}, kubeconfig=reader)
    assert prune["failed"] and "forbidden (403) to delete Secret" in prune["msg"]
    assert statuses(namespace) == ["deployed", "pending-upgrade"]
    assert statuses(namespace, "hist") == ["superseded", "superseded", "superseded", "deployed"]


def test_unlock_and_prune_roles_do_their_job(stuck_release: str, tmp_path: Path) -> None:
    namespace = stuck_release
    unlocker = identity(namespace, "unlocker", ["helmops-triage", "helmops-unlock"], tmp_path)
    done = run_collection_module(
        "helm_release_unlock",
        {"release": "web", "namespace": namespace, "stale_after": 1, "backup_dir": str(tmp_path / "b")},
        kubeconfig=unlocker,
    )
    assert done.get("changed") is True, done.get("msg")
    assert "warnings" not in done or not any("Event" in json.dumps(w) for w in done["warnings"])
    assert statuses(namespace) == ["deployed", "failed"]

    pruner = identity(namespace, "pruner", ["helmops-prune"], tmp_path)
    pruned = run_collection_module("helm_history_prune", {"namespace": namespace, "keep": 1}, kubeconfig=pruner)
    assert not pruned.get("failed"), pruned.get("msg")
    deleted = {r["release"]: r["deleted"] for r in pruned["releases"]}
    assert deleted == {"hist": [1, 2, 3], "web": []}  # web: the newest and the deployed revision are protected
    assert statuses(namespace) == ["deployed", "failed"]
    assert statuses(namespace, "hist") == ["deployed"]


# --- fail closed where a check is forbidden, with exactly the shipped roles ----------------

CONTROLLER_CRDS = ROOT / "tests" / "integration" / "fixtures" / "controller-crds"


@pytest.fixture
def controller_crds(cluster: str) -> t.Iterator[None]:
    """Flux's HelmRelease and k3s's HelmChart kinds are served (as on clusters that run them)."""
    kubectl("wait", "--for=delete", "-f", str(CONTROLLER_CRDS), "--timeout=60s", check=False)  # a leftover
    kubectl("apply", "-f", str(CONTROLLER_CRDS))
    kubectl("wait", "--for=condition=Established", "-f", str(CONTROLLER_CRDS), "--timeout=60s")
    kubectl("apply", "-f", str(ROOT / "docs" / "rbac"))
    yield
    kubectl("delete", "-f", str(CONTROLLER_CRDS), "--timeout=60s", check=False)


def bind_cluster_wide(name: str, namespace: str, role: str) -> None:
    kubectl(
        "create",
        "clusterrolebinding",
        f"{namespace}-{name}-{role}",
        f"--clusterrole={role}",
        f"--serviceaccount={namespace}:{name}",
    )


def outcome_of(done: subprocess.CompletedProcess[str]) -> str:
    return " ".join(done.stdout.split())


def test_remediate_refuses_when_it_may_not_check_for_controllers(controller_crds: None, tmp_path: Path) -> None:
    """Flux and k3s kinds are served, and the identity may not list them cluster-wide: a HelmRelease in
    any namespace could manage the release, so remediate refuses and names the missing permission."""
    namespace = f"rbac-ctl-{uuid.uuid4().hex[:5]}"
    scenario("failed-upgrade", "web", namespace)
    operator = identity(namespace, "operator", ["helmops-triage", "helmops-unlock", "helmops-remediate"], tmp_path)
    try:
        facts = run_collection_module("helm_release_facts", {"namespace": namespace}, kubeconfig=operator)
        risks = facts["ansible_facts"]["helm_releases"][0]["risks"]
        assert risks["managed_by"] is None
        assert "forbidden (403)" in risks["managed_by_unknown"] and "HelmRelease objects" in risks["managed_by_unknown"]
        options = {
            "namespace": namespace,
            "helm_binary": str(ROOT / ".cluster" / "bin" / "helm3"),
            "backup_dir": str(tmp_path / "b"),
            "report_dir": "",
        }
        refused = run_playbook("remediate.yml", *extra_vars(**options), kubeconfig=operator)
        said = outcome_of(refused)
        assert f"{namespace}/web: failed -> refused (controller_managed: none)" in said, refused.stdout[-3000:]
        assert "helmops-cluster-read" in said
        assert statuses(namespace) == ["deployed", "failed"]

        bind_cluster_wide("operator", namespace, "helmops-cluster-read")
        recovered = run_playbook("remediate.yml", *extra_vars(**options), kubeconfig=operator)
        assert f"{namespace}/web: failed -> recovered" in outcome_of(recovered), recovered.stdout[-3000:]
        assert statuses(namespace)[-1] == "deployed"
    finally:
        kubectl("delete", "clusterrolebinding", f"{namespace}-operator-helmops-cluster-read", check=False)
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_flux_and_k3s_managed_releases_are_left_to_their_controllers(controller_crds: None, tmp_path: Path) -> None:
    namespace = f"rbac-mgd-{uuid.uuid4().hex[:5]}"
    elsewhere = f"{namespace}-flux"
    scenario("failed-upgrade", "web", namespace)
    scenario("failed-upgrade", "api", namespace)
    kubectl("create", "namespace", elsewhere)
    for manifest in (
        {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "web", "namespace": elsewhere},
            "spec": {"releaseName": "web", "targetNamespace": namespace, "storageNamespace": namespace},
        },
        {
            "apiVersion": "helm.cattle.io/v1",
            "kind": "HelmChart",
            "metadata": {"name": "api", "namespace": "kube-system"},
            "spec": {"chart": "api", "targetNamespace": namespace},
        },
    ):
        subprocess.run(
            [str(ROOT / ".cluster" / "bin" / "kubectl"), "--kubeconfig", KUBECONFIG, "apply", "-f", "-"],
            input=json.dumps(manifest),
            text=True,
            check=True,
            capture_output=True,
        )
    operator = identity(namespace, "operator", ["helmops-triage", "helmops-unlock", "helmops-remediate"], tmp_path)
    bind_cluster_wide("operator", namespace, "helmops-cluster-read")
    try:
        started = time.time()
        options = {"namespace": namespace, "helm_binary": str(ROOT / ".cluster" / "bin" / "helm3"), "report_dir": ""}
        done = run_playbook("remediate.yml", *extra_vars(**options), kubeconfig=operator)
        said = outcome_of(done)
        assert (
            f"{namespace}/web: failed -> skipped (controller_managed: leave_to_controller): "
            "managed by Flux helm-controller" in said
        )
        assert (
            f"{namespace}/api: failed -> skipped (controller_managed: leave_to_controller): "
            "managed by k3s helm-controller" in said
        )
        assert statuses(namespace) == ["deployed", "failed"] and statuses(namespace, "api") == ["deployed", "failed"]
        assert writes_by_user_since(started, f"system:serviceaccount:{namespace}:operator") == []
    finally:
        kubectl("delete", "clusterrolebinding", f"{namespace}-operator-helmops-cluster-read", check=False)
        kubectl("delete", "helmchart", "api", "-n", "kube-system", check=False)
        for name in (namespace, elsewhere):
            kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_a_chart_with_cluster_scoped_objects_unlocks_with_the_shipped_roles(cluster: str, tmp_path: Path) -> None:
    """The release holds a ClusterRole: the lock verdict reads only what Helm waits on (namespaced), so the
    namespace-bound roles unlock it; with the cluster-wide read role, triage compares the ClusterRole too."""
    namespace = f"rbac-crole-{uuid.uuid4().hex[:5]}"
    scenario("pending-upgrade", "web", namespace, "3", "clusterRole=true")
    kubectl("apply", "-f", str(ROOT / "docs" / "rbac"))
    unlocker = identity(namespace, "unlocker", ["helmops-triage", "helmops-unlock"], tmp_path)
    time.sleep(1.5)
    try:
        facts = run_collection_module(
            "helm_release_facts", {"namespace": namespace, "stale_after": 1}, kubeconfig=unlocker
        )
        release = facts["ansible_facts"]["helm_releases"][0]
        assert release["lock"]["verdict"] == "stale", release["lock"]
        done = run_collection_module(
            "helm_release_unlock",
            {"release": "web", "namespace": namespace, "stale_after": 1, "backup_dir": str(tmp_path / "b")},
            kubeconfig=unlocker,
        )
        assert done.get("changed") is True, done.get("msg")
        assert statuses(namespace) == ["deployed", "failed"]
        bind_cluster_wide("unlocker", namespace, "helmops-cluster-read")
        facts = run_collection_module("helm_release_facts", {"namespace": namespace}, kubeconfig=unlocker)
        objects = facts["ansible_facts"]["helm_releases"][0]["live"]["objects"]
        cluster_role = next(o for o in objects if o["kind"] == "ClusterRole")
        assert cluster_role["latest"] == "present" and cluster_role["namespace"] == "", cluster_role
    finally:
        kubectl("delete", "clusterrolebinding", f"{namespace}-unlocker-helmops-cluster-read", check=False)
        kubectl("delete", "clusterrole", f"{namespace}-web-reader", check=False)
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
