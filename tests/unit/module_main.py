"""A module's real main() as Ansible runs it (arguments on stdin, JSON on stdout), with its API client replaced by
a fake at the HTTP layer, so nothing leaves the process."""

from __future__ import annotations

import json
import types
import typing as t

import pytest
from ansible.module_utils import basic
from ansible_collections.helmops.recovery.plugins.module_utils import _module

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "c",
    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
    "users": [{"name": "u", "user": {"token": "not-used"}}],
    "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
}
WRITES = ("POST", "PUT", "DELETE")


def run_main(
    module: types.ModuleType,
    args: dict[str, t.Any],
    api: t.Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> dict[str, t.Any]:
    monkeypatch.setattr(_module, "KubeClient", lambda *_args, **_kwargs: api)
    payload = json.dumps({"ANSIBLE_MODULE_ARGS": {"kubeconfig": KUBECONFIG, **args}}).encode()
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", payload)
    if hasattr(basic, "_ANSIBLE_PROFILE"):  # ansible-core 2.19 and later
        monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    with pytest.raises(SystemExit):
        module.main()
    return t.cast(dict[str, t.Any], json.loads(capsys.readouterr().out))
