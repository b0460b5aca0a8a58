"""The local control plane behaves like a cluster: RBAC with ServiceAccount
tokens, an audit log of every request, and simulated nodes that run pods."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from .support import BIN, KUBECONFIG, ROOT, kubectl


def _as(token: str, *args: str) -> subprocess.CompletedProcess[str]:
    server = kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
    return subprocess.run(
        [
            str(BIN / "kubectl"),
            "--server",
            server,
            "--token",
            token,
            "--certificate-authority",
            str(ROOT / ".cluster" / "pki" / "ca.crt"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_service_account_tokens_are_authorised_by_rbac(cluster: str) -> None:
    namespace = f"rbac-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    kubectl("create", "serviceaccount", "reader", "-n", namespace)
    token = kubectl("create", "token", "reader", "-n", namespace, "--duration", "10m").stdout.strip()

    denied = _as(token, "get", "secrets", "-n", namespace)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr
    assert f"system:serviceaccount:{namespace}:reader" in denied.stderr

    kubectl("create", "role", "secret-reader", "-n", namespace, "--verb=get,list", "--resource=secrets")
    kubectl(
        "create",
        "rolebinding",
        "reader",
        "-n",
        namespace,
        "--role=secret-reader",
        f"--serviceaccount={namespace}:reader",
    )
    allowed = _as(token, "get", "secrets", "-n", namespace)
    assert allowed.returncode == 0, allowed.stderr
    assert _as(token, "delete", "secret", "anything", "-n", namespace).returncode != 0
    kubectl("delete", "namespace", namespace, "--wait=false")


def test_audit_log_records_every_write(cluster: str) -> None:
    name = f"audit-{uuid.uuid4().hex[:6]}"
    kubectl("create", "configmap", name, "-n", "default", "--from-literal=a=b")
    kubectl("delete", "configmap", name, "-n", "default")
    events = [json.loads(line) for line in Path(ROOT / ".cluster" / "audit.log").read_text().splitlines()]
    verbs = {
        e["verb"]
        for e in events
        if (e.get("objectRef") or {}).get("name") == name and e.get("stage") == "ResponseComplete"
    }
    assert {"create", "delete"} <= verbs
    assert all(e["level"] == "Metadata" for e in events[-50:])


def test_simulated_nodes_run_pods_and_jobs(cluster: str) -> None:
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])]
    assert len(ready) >= 3
    name = f"job-{uuid.uuid4().hex[:6]}"
    kubectl("create", "job", name, "-n", "default", "--image=registry.invalid/x:1")
    kubectl("wait", "--for=condition=Complete", f"job/{name}", "-n", "default", "--timeout=60s")
    kubectl("delete", "job", name, "-n", "default", "--wait=false")


def test_impersonation_sends_every_group(cluster: str) -> None:
    from ansible_collections.helmops.recovery.plugins.module_utils._k8s import (
        ConnectionOptions,
        KubeClient,
        KubeForbidden,
        build_api_client,
    )

    namespace = f"imp-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    kubectl("create", "role", "reader", "-n", namespace, "--verb=list", "--resource=configmaps")
    kubectl("create", "rolebinding", "reader", "-n", namespace, "--role=reader", "--group=team-b")

    def client(groups: list[str]) -> KubeClient:
        options = ConnectionOptions(kubeconfig=KUBECONFIG, impersonate_user="alice", impersonate_groups=groups)
        return KubeClient(build_api_client(options))

    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert "items" in client(["team-a", "team-b"]).request("GET", path, target="configmaps")
    with pytest.raises(KubeForbidden, match="alice"):
        client(["team-a"]).request("GET", path, target="configmaps")
    kubectl("delete", "namespace", namespace, "--wait=false")
