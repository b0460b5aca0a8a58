"""A fleet: two real control planes (this one and a second started for the
test) plus a cluster that cannot be reached, as three inventory hosts. One
triage run produces one fleet summary; the unreachable cluster is reported
and fails alone; remediate recovers both live clusters in one run. A release
exported from one cluster is imported into the other, where real Helm then
upgrades it."""

from __future__ import annotations

import json
import os
import subprocess
import typing as t
import uuid
from pathlib import Path

import pytest

from .support import BIN, CHART, KUBECONFIG, ROOT, run_collection_module, run_playbook, write_kubeconfig
from .test_playbooks import recap

# The ports a control plane listens on lie in the kernel's ephemeral range, so a client's connection can hold
# one for a while ("bind: address already in use"): the second control plane then starts on the next base.
SECOND_PORT_BASES = ("36800", "37800", "38800")


@pytest.fixture(scope="module")
def second_cluster(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[str]:
    for base in SECOND_PORT_BASES:
        directory = tmp_path_factory.mktemp("second-cluster")
        env = {**os.environ, "CLUSTER_DIR": str(directory), "CLUSTER_PORT_BASE": base}
        command = [str(ROOT / "hack" / "cluster")]
        up = subprocess.run([*command, "up"], env=env, capture_output=True, text=True, check=False)
        if up.returncode == 0:
            break
        subprocess.run([*command, "down"], env=env, capture_output=True, check=False)
        if "address already in use" not in up.stderr:
            pytest.fail(f"the second control plane did not start: {up.stderr[-2000:]}")
    else:
        pytest.fail(f"the second control plane found no free ports: {up.stderr[-2000:]}")
    try:
        yield str(directory / "kubeconfig")
    finally:
        subprocess.run([*command, "down"], env=env, capture_output=True, check=False)


def scenario(state: str, namespace: str, kubeconfig: str) -> None:
    subprocess.run(
        [
            str(ROOT / "hack" / "scenario"),
            state,
            "--release",
            "web",
            "--namespace",
            namespace,
            "--kubeconfig",
            kubeconfig,
        ],
        check=True,
        capture_output=True,
    )


def status(kubeconfig: str, namespace: str) -> str:
    done = subprocess.run(
        [str(BIN / "helm3"), "status", "web", "-n", namespace, "-o", "json", "--kubeconfig", kubeconfig],
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(done.stdout)["info"]["status"])


def test_one_triage_for_the_fleet_and_one_remediation(second_cluster: str, tmp_path: Path) -> None:
    namespace = f"fleet-{uuid.uuid4().hex[:5]}"
    scenario("failed-upgrade", namespace, KUBECONFIG)
    scenario("pending-upgrade", namespace, second_cluster)
    dead = write_kubeconfig(tmp_path, "https://127.0.0.1:1", "not-a-token", None)
    inventory = tmp_path / "fleet.yml"
    inventory.write_text(
        json.dumps(
            {
                "clusters": {
                    "hosts": {
                        "cluster-a": {"kubeconfig": KUBECONFIG},
                        "cluster-b": {"kubeconfig": second_cluster},
                        "cluster-dead": {"kubeconfig": dead},
                    }
                }
            }
        )
    )
    reports = tmp_path / "reports"
    extra = json.dumps({"namespace": namespace, "stale_after": 1, "report_dir": str(reports)})
    done = run_playbook("triage.yml", "-i", str(inventory), "-e", extra)
    assert "cluster-dead" in done.stdout and recap_of(done.stdout, "cluster-dead")["failed"] == 1
    for host in ("cluster-a", "cluster-b"):
        assert recap_of(done.stdout, host)["failed"] == 0, done.stdout[-3000:]
    summary = (reports / "fleet-summary.md").read_text()
    html = (reports / "fleet-summary.html").read_text()
    assert summary.index("## cluster-a") < summary.index("## cluster-b") < summary.index("## cluster-dead")
    a_part, b_part = summary.split("## cluster-b")
    assert f"[{namespace}/web](cluster-a/{namespace}__web.md) | failed" in a_part
    assert f"[{namespace}/web](cluster-b/{namespace}__web.md) | pending-upgrade" in b_part
    assert "Could not be triaged" in b_part.split("## cluster-dead")[1]
    assert html.count(f">{namespace}/web</a>") == 2 and '<table class="attention">' in html
    fleet = json.loads((reports / "fleet-summary.json").read_text())
    assert fleet["totals"]["clusters"] == 3 and fleet["totals"]["clusters_unreadable"] == 1
    assert {c["cluster"]: [e["state"] for e in c["needing_attention"]] for c in fleet["clusters"]} == {
        "cluster-a": ["failed"],
        "cluster-b": ["pending-upgrade"],
        "cluster-dead": [],
    }
    metrics = (reports / "helm-releases.prom").read_text()
    assert 'helmops_cluster_up{cluster="cluster-dead"} 0.0' in metrics
    labels = f'cluster="cluster-b",namespace="{namespace}",release="web",status="pending-upgrade"'
    assert f"helmops_release_status{{{labels}}} 1.0" in metrics
    for host, state in (("cluster-a", "failed"), ("cluster-b", "pending-upgrade")):
        report = json.loads((reports / host / f"{namespace}__web.json").read_text())
        assert report["cluster"] == host and report["triage"]["state"] == state

    remediate = run_playbook(
        "remediate.yml",
        "-i",
        str(inventory),
        "--limit",
        "cluster-a,cluster-b",
        "-e",
        json.dumps(
            {
                "namespace": namespace,
                "stale_after": 1,
                "chart": str(ROOT / "tests" / "charts" / "app"),
                "helm_binary": str(BIN / "helm3"),
                "helm_timeout": "120s",
                "report_dir": "",
                "backup_dir": str(tmp_path / "backups"),
            }
        ),
    )
    for host in ("cluster-a", "cluster-b"):
        assert recap_of(remediate.stdout, host)["failed"] == 0, remediate.stdout[-4000:]
    assert status(KUBECONFIG, namespace) == "deployed"
    assert status(second_cluster, namespace) == "deployed"
    recap(remediate.stdout)


def recap_of(output: str, host: str) -> dict[str, int]:
    line = next(line for line in output.splitlines() if line.startswith(host) and "ok=" in line)
    return recap(line)


IMPORTS = [("3", "secret"), ("4", "configmap")]


@pytest.mark.parametrize(("major", "driver"), IMPORTS, ids=[f"helm{m}-{d}" for m, d in IMPORTS])
def test_a_release_exported_here_imports_into_the_second_cluster_where_helm_upgrades_it(
    second_cluster: str, major: str, driver: str, tmp_path: Path
) -> None:
    namespace = f"move-{uuid.uuid4().hex[:5]}"
    command = [str(ROOT / "hack" / "scenario"), "deployed", "--release", "web", "--namespace", namespace]
    subprocess.run(
        [*command, "--helm", major, "--driver", driver, "--kubeconfig", KUBECONFIG], check=True, capture_output=True
    )
    exported = run_collection_module(
        "helm_release_backup",
        {"release": "web", "namespace": namespace, "driver": driver, "backup_dir": str(tmp_path), "export": True},
    )
    path = exported["files"][0]

    def helm_there(kubeconfig: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / f"helm{major}"), *args, "-n", namespace, "--kubeconfig", kubeconfig],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "HELM_DRIVER": driver},
        )

    def history(kubeconfig: str) -> list[dict[str, t.Any]]:
        return t.cast(list[dict[str, t.Any]], json.loads(helm_there(kubeconfig, "history", "web", "-o", "json").stdout))

    missing = run_collection_module("helm_release_restore", {"path": path}, kubeconfig=second_cluster)
    assert missing.get("failed") and f"namespace {namespace} does not exist" in missing["msg"], missing
    other = "secret" if driver == "configmap" else "configmap"
    wrong = run_collection_module("helm_release_restore", {"path": path, "driver": other}, kubeconfig=second_cluster)
    assert wrong.get("failed") and "same namespace and driver" in wrong["msg"], wrong
    subprocess.run(
        [str(BIN / "kubectl"), "--kubeconfig", second_cluster, "create", "namespace", namespace],
        check=True,
        capture_output=True,
    )
    imported = run_collection_module("helm_release_restore", {"path": path}, kubeconfig=second_cluster)
    assert imported.get("changed") is True, imported.get("msg")
    assert [r["action"] for r in imported["restored"]] == ["create", "create", "create"]
    assert history(second_cluster) == history(KUBECONFIG)
    upgraded = helm_there(second_cluster, "upgrade", "web", CHART, "--set", "revisionNote=moved", "--wait")
    assert upgraded.returncode == 0, upgraded.stderr
    assert [h["status"] for h in history(second_cluster)] == ["superseded", "superseded", "superseded", "deployed"]
    deployment = subprocess.run(
        [str(BIN / "kubectl"), "--kubeconfig", second_cluster, "get", "deployment", "web-web", "-n", namespace],
        capture_output=True,
        text=True,
        check=False,
    )
    assert deployment.returncode == 0, deployment.stderr
