"""Credentials in a kubeconfig given as a dictionary never reach a module's output, however deeply
they are nested, whether the kubeconfig loads or not (the modules run through their real main())."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from ansible.release import __version__ as ansible_version

ROOT = Path(__file__).resolve().parents[4]
SECRETS = {
    "token": "tok-9f2c1d7e",
    "password": "pw-5b7e2a91",
    "client-key-data": "a2V5LWRhdGEtc2VjcmV0LTQ0",
    "id-token": "idtok-3c8e1f02",
    "refresh-token": "refresh-77a0b5c3",
    "client-secret": "clsecret-1d9e4b66",
    "env": "envsecret-6f3a2c18",
    "arg": "--token=argsecret-0b4d7e95",
}

ANSIBLE_VERSION = tuple(int(part) for part in ansible_version.split(".")[:2])


def kubeconfig(context: str = "c") -> dict[str, t.Any]:
    users = [
        {"name": "static", "user": {"token": SECRETS["token"], "password": SECRETS["password"], "username": "ops"}},
        {"name": "keyed", "user": {"client-key-data": SECRETS["client-key-data"]}},
        {
            "name": "oidc",
            "user": {
                "auth-provider": {
                    "name": "oidc",
                    "config": {
                        "id-token": SECRETS["id-token"],
                        "refresh-token": SECRETS["refresh-token"],
                        "client-secret": SECRETS["client-secret"],
                    },
                }
            },
        },
        {
            "name": "exec",
            "user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": "get-token",
                    "args": [SECRETS["arg"]],
                    "env": [{"name": "TOKEN", "value": SECRETS["env"]}],
                }
            },
        },
    ]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9", "insecure-skip-tls-verify": True}}],
        "users": users,
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "static"}}],
    }


def run_module(name: str, args: dict[str, t.Any], tmp_path: Path) -> dict[str, t.Any]:
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run(
        [sys.executable, str(ROOT / "plugins" / "modules" / f"{name}.py"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PYTHONPATH": str(ROOT / ".collections"), "PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )
    return t.cast(dict[str, t.Any], json.loads(done.stdout))


CASES = [
    ("loads, then the server cannot be reached", "c", "cannot reach the Kubernetes API server"),
    ("fails to load (no such context)", "missing", "cannot load Kubernetes credentials"),
]


@pytest.mark.parametrize(("case", "context", "message"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("module", ["helm_release_facts", "helm_release_unlock", "helm_release_recover"])
def test_no_credential_of_a_kubeconfig_dict_reaches_the_output(
    case: str, context: str, message: str, module: str, tmp_path: Path
) -> None:
    args: dict[str, t.Any] = {"kubeconfig": kubeconfig(context), "namespace": "team-a", "request_timeout": 5}
    if module == "helm_release_facts":
        args["release"] = ["web"]
    else:
        args.update(release="web", backup_dir=str(tmp_path / "b"))
    if module == "helm_release_recover":
        args.update(action="rollback", helm_binary="/bin/true")
    result = run_module(module, args, tmp_path)
    text = json.dumps(result)
    assert result.get("failed"), result
    if module != "helm_release_recover":  # recover asks the Helm binary for its version first
        assert message in result["msg"], result["msg"]
    leaked = [name for name, value in SECRETS.items() if value in text]
    assert leaked == [], f"{case}: {leaked} in {text[:2000]}"
    if ANSIBLE_VERSION < (2, 21):  # ansible-core 2.21 no longer echoes the invocation
        assert "ops" in text or "static" in text  # names are not censored: the invocation is still readable
