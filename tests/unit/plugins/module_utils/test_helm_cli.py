"""How Helm is called: argv per action and version, and credentials kept off the command line."""

from __future__ import annotations

import json
import os
import stat
import typing as t
from pathlib import Path
from types import SimpleNamespace

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._errors import ModuleError
from ansible_collections.helmops.recovery.plugins.module_utils._helm_cli import (
    HelmFlags,
    bearer_token,
    chart_is_local,
    helm_environment,
    helm_error_cause,
    helm_major_version,
    refused_objects,
    rollback_argv,
    uninstall_argv,
    upgrade_argv,
)

TOKEN = "s3cr3t-token-value"
FLAGS = HelmFlags()


def configuration(**overrides: t.Any) -> SimpleNamespace:
    values: dict[str, t.Any] = {
        "host": "https://127.0.0.1:6443",
        "api_key": {"authorization": f"Bearer {TOKEN}"},
        "api_key_prefix": {},
        "ssl_ca_cert": "/tmp/ca.crt",
        "verify_ssl": True,
        "cert_file": None,
        "key_file": None,
        "proxy": None,
    }
    values.update(overrides)
    return SimpleNamespace(**values)


@pytest.mark.parametrize(
    ("output", "major"),
    [("v3.22.0", 3), ("v4.3.1", 4), ("3.14.2+g123", 3), ("  v4.0.0-rc.1\n", 4)],
)
def test_helm_major_version(output: str, major: int) -> None:
    assert helm_major_version(output) == major


@pytest.mark.parametrize("output", ["v2.17.0", "v5.0.0", "garbage", ""])
def test_unsupported_or_unreadable_helm_versions_are_clear_errors(output: str) -> None:
    with pytest.raises(ModuleError, match="Helm"):
        helm_major_version(output)


ARGV_CASES = [
    (
        "rollback",
        rollback_argv("helm", 3, "web", "team-a", revision=3, flags=HelmFlags()),
        ["helm", "rollback", "web", "3", "--namespace", "team-a", "--wait", "--timeout", "5m"],
    ),
    (
        # Helm 4's watcher fails a rollback on a Deployment's stale ProgressDeadlineExceeded: Helm 3's waiter
        "rollback-helm4",
        rollback_argv("helm", 4, "web", "team-a", revision=3, flags=HelmFlags()),
        ["helm", "rollback", "web", "3", "--namespace", "team-a", "--wait=legacy", "--timeout", "5m"],
    ),
    (
        "rollback-no-wait",
        rollback_argv("helm", 4, "web", "team-a", revision=3, flags=HelmFlags(wait=False, timeout="90s")),
        ["helm", "rollback", "web", "3", "--namespace", "team-a", "--timeout", "90s"],
    ),
    (
        "upgrade-helm3",
        upgrade_argv(
            "helm",
            3,
            "web",
            "team-a",
            "repo/web",
            chart_version="1.2.3",
            values_source="reuse",
            force=True,
            flags=HelmFlags(),
        ),
        [
            "helm",
            "upgrade",
            "web",
            "repo/web",
            "--namespace",
            "team-a",
            "--hide-notes",
            "--version",
            "1.2.3",
            "--reuse-values",
            "--force",
            "--wait",
            "--timeout",
            "5m",
        ],
    ),
    (
        "upgrade-helm4-force-replace-needs-client-side-apply",
        upgrade_argv(
            "helm",
            4,
            "web",
            "team-a",
            "./chart",
            chart_version=None,
            values_source="chart",
            force=True,
            flags=HelmFlags(),
        ),
        [
            "helm",
            "upgrade",
            "web",
            "./chart",
            "--namespace",
            "team-a",
            "--hide-notes",
            "--reset-values",
            "--force-replace",
            "--server-side=false",
            "--wait=legacy",
            "--timeout",
            "5m",
        ],
    ),
    (
        "upgrade-with-the-fix",
        upgrade_argv(
            "helm",
            3,
            "web",
            "team-a",
            "./chart",
            chart_version=None,
            values_files=["newest-values.yaml", "fix.yaml"],
            values_source="newest",
            force=False,
            flags=HelmFlags(wait=False),
        ),
        [
            "helm",
            "upgrade",
            "web",
            "./chart",
            "--namespace",
            "team-a",
            "--hide-notes",
            "--reset-values",
            "--values",
            "newest-values.yaml",
            "--values",
            "fix.yaml",
            "--timeout",
            "5m",
        ],
    ),
    (
        "upgrade-deployed-values-on-the-new-chart-defaults",
        upgrade_argv(
            "helm",
            4,
            "web",
            "team-a",
            "./chart",
            chart_version=None,
            values_source="deployed",
            force=False,
            flags=FLAGS,
        ),
        [
            *("helm", "upgrade", "web", "./chart", "--namespace", "team-a", "--hide-notes"),
            *("--reset-then-reuse-values", "--wait=legacy", "--timeout", "5m"),
        ],
    ),
    (
        "uninstall",
        uninstall_argv("helm", 3, "web", "team-a", no_hooks=True, keep_history=False, flags=HelmFlags()),
        ["helm", "uninstall", "web", "--namespace", "team-a", "--no-hooks", "--wait", "--timeout", "5m"],
    ),
    (
        "uninstall-keep-history",
        uninstall_argv("helm", 4, "web", "team-a", no_hooks=False, keep_history=True, flags=HelmFlags(wait=False)),
        ["helm", "uninstall", "web", "--namespace", "team-a", "--keep-history", "--timeout", "5m"],
    ),
]


@pytest.mark.parametrize(("argv", "expected"), [c[1:] for c in ARGV_CASES], ids=[c[0] for c in ARGV_CASES])
def test_argv(argv: list[str], expected: list[str]) -> None:
    assert argv == expected


@pytest.mark.parametrize(
    ("api_key", "prefix", "expected"),
    [
        ({"authorization": f"Bearer {TOKEN}"}, {}, TOKEN),
        ({"authorization": TOKEN}, {"authorization": "Bearer"}, TOKEN),
        ({"BearerToken": f"Bearer {TOKEN}"}, {}, TOKEN),
        ({}, {}, None),
    ],
)
def test_bearer_token(api_key: dict[str, str], prefix: dict[str, str], expected: str | None) -> None:
    assert bearer_token(configuration(api_key=api_key, api_key_prefix=prefix)) == expected


def test_environment_carries_the_token_and_a_private_kubeconfig_without_it(tmp_path: Path) -> None:
    env = helm_environment(
        configuration(verify_ssl=False, cert_file="/tmp/c.crt", key_file="/tmp/c.key", proxy="http://proxy:3128"),
        "configmap",
        str(tmp_path),
        impersonate_user="ops",
        impersonate_groups=["a", "b"],
    )
    assert env["HELM_KUBETOKEN"] == TOKEN
    assert (env["HELM_DRIVER"], env["HELM_KUBEASUSER"], env["HELM_KUBEASGROUPS"]) == ("configmap", "ops", "a,b")
    assert env["HELM_KUBEAPISERVER"] == "" and env["HELM_KUBECONTEXT"] == "" and env["HELM_NAMESPACE"] == ""
    path = Path(env["KUBECONFIG"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert TOKEN not in text
    document = json.loads(text)
    cluster = document["clusters"][0]["cluster"]
    assert cluster == {
        "server": "https://127.0.0.1:6443",
        "certificate-authority": "/tmp/ca.crt",
        "insecure-skip-tls-verify": True,
        "proxy-url": "http://proxy:3128",
    }
    assert document["users"][0]["user"] == {"client-certificate": "/tmp/c.crt", "client-key": "/tmp/c.key"}


def test_chart_is_local(tmp_path: Path) -> None:
    package = tmp_path / "web-1.0.0.tgz"
    package.write_bytes(b"")
    assert chart_is_local(str(tmp_path)) and chart_is_local(str(package))
    assert not chart_is_local("repo/web") and not chart_is_local("oci://registry/web")
    assert not chart_is_local(os.path.join(str(tmp_path), "missing"))


# Helm's output when the API server refuses to change an object, recorded from real Helm 3.22 / 4.3 on
# the database chart (tests/charts/database): the diff and struct dumps Helm appends are cut to the point.
_PVC_DIFF = """@@ -9,8 +9,8 @@
- "VolumeName": "pvc-4e6b78dd",
+ "VolumeName": "",
  "DataSource": null,
"""
_STS_DUMP = '[{"name":"data","Spec":{"AccessModes":["ReadWriteOnce"],"Resources":{"Requests":{"storage":"2Gi"}}}}]'
HELM_FAILURES = [
    (
        "helm3-force-on-a-bound-claim",
        'Error: UPGRADE FAILED: failed to replace object: PersistentVolumeClaim "db-backup" is invalid: spec: '
        "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for "
        "bound claims\n" + _PVC_DIFF + ' && failed to replace object: PersistentVolumeClaim "db-archive" is invalid: '
        "spec: Forbidden: spec is immutable after creation\n",
        'Error: UPGRADE FAILED: failed to replace object: PersistentVolumeClaim "db-backup" is invalid: spec: '
        "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for "
        "bound claims",
        [("PersistentVolumeClaim", "db-backup", "spec"), ("PersistentVolumeClaim", "db-archive", "spec")],
        "grow its storage request",
    ),
    (
        "helm4-statefulset-claim-templates",
        'level=WARN msg="upgrade failed" name=db error="cannot patch \\"db\\" with kind StatefulSet: ..."\n'
        'Error: UPGRADE FAILED: cannot patch "db" with kind StatefulSet: StatefulSet.apps "db" is invalid: '
        f"spec.volumeClaimTemplates: Invalid value: {_STS_DUMP}: field is immutable\n",
        'Error: UPGRADE FAILED: cannot patch "db" with kind StatefulSet: StatefulSet.apps "db" is invalid: '
        "spec.volumeClaimTemplates: Invalid value: (elided): field is immutable",
        [("StatefulSet", "db", "spec.volumeClaimTemplates")],
        "kubectl delete statefulset db --cascade=orphan -n team-a",
    ),
    (
        "not-an-object-error",
        "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress\n",
        "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress",
        [],
        None,
    ),
]


@pytest.mark.parametrize(
    ("output", "cause", "objects", "advice"), [c[1:] for c in HELM_FAILURES], ids=[c[0] for c in HELM_FAILURES]
)
def test_helm_failures_name_the_cause_the_object_and_what_to_do(
    output: str, cause: str, objects: list[tuple[str, str, str]], advice: str | None
) -> None:
    assert helm_error_cause(output) == cause
    refused = refused_objects(output, "team-a")
    assert [(o["kind"], o["name"], o["field"]) for o in refused] == objects
    assert all(o["immutable"] for o in refused)
    if advice:
        assert advice in refused[0]["what_to_do"]
