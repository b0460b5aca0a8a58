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

from .support import CHART, ROOT, helm, helm_json, kubectl, run_collection_module, write_kubeconfig


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
