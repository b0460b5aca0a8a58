"""What the modules print is safe, on releases real Helm 3 and Helm 4 installed:

- a chart whose name is a shell command substitution (Helm accepts it): every command the
  facts print, pasted into a shell, runs nothing but the tool it names;
- a kubeconfig given as a dictionary, working, with credentials nested in other users
  (auth-provider, exec env and args): none of them reaches the output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import typing as t
import uuid
from pathlib import Path

import pytest
import yaml

from .support import CHART, KUBECONFIG, helm, kubectl, run_collection_module

HOSTILE_CHART_NAME = "app$(touch${IFS}PWNED)"


@pytest.fixture
def namespace(cluster: str) -> t.Iterator[str]:
    name = f"out-{uuid.uuid4().hex[:6]}"
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.parametrize("major", ["3", "4"])
def test_printed_commands_of_a_release_with_a_hostile_chart_name_run_nothing_when_pasted(
    namespace: str, major: str, tmp_path: Path
) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    metadata = yaml.safe_load((chart / "Chart.yaml").read_text())
    metadata["name"] = HOSTILE_CHART_NAME
    (chart / "Chart.yaml").write_text(yaml.safe_dump(metadata))
    helm(major, "secret", "install", "web", str(chart), "-n", namespace, "--create-namespace", "--wait")
    failing = ["upgrade", "web", str(chart), "-n", namespace, "--set", "behaviour=never-ready", "--wait"]
    helm(major, "secret", *failing, "--timeout", "5s", check=False)
    facts = run_collection_module("helm_release_facts", {"namespace": namespace})
    release = facts["ansible_facts"]["helm_releases"][0]
    assert release["status"] == "failed" and release["revisions"][-1]["chart"] == HOSTILE_CHART_NAME
    commands = [action["command"] for action in release["diagnosis"]["actions"]]
    assert any(HOSTILE_CHART_NAME in command for command in commands), commands
    workdir = tmp_path / "paste"
    workdir.mkdir()
    stubs = "helm() { :; }; kubectl() { :; }; ansible() { :; };"
    for command in commands:
        subprocess.run(["bash", "-c", f"{stubs} {command}"], cwd=workdir, check=True, capture_output=True)
    assert not [p.name for p in workdir.iterdir() if p.name.startswith("PWNED")], commands


def test_a_kubeconfig_dict_with_nested_credentials_never_reaches_the_output(cluster: str) -> None:
    config = yaml.safe_load(Path(KUBECONFIG).read_text())
    decoys = {
        "id-token": "idtok-7d2a9c41",
        "refresh-token": "refresh-2b8e6f13",
        "client-secret": "clsecret-5e1c0a77",
        "env": "envsecret-9a4d2b68",
        "arg": "--token=argsecret-3f7b1e20",
    }
    config["users"] += [
        {
            "name": "oidc",
            "user": {
                "auth-provider": {
                    "name": "oidc",
                    "config": {k: decoys[k] for k in ("id-token", "refresh-token", "client-secret")},
                }
            },
        },
        {
            "name": "exec",
            "user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": "get-token",
                    "args": [decoys["arg"]],
                    "env": [{"name": "TOKEN", "value": decoys["env"]}],
                }
            },
        },
    ]
    token = config["users"][0]["user"]["token"]
    result = run_collection_module("helm_release_facts", {"namespace": "default"}, kubeconfig=config)
    assert not result.get("failed"), result.get("msg")
    text = json.dumps(result)
    assert token not in text and not [name for name, value in decoys.items() if value in text]
