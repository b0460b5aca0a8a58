"""The playbooks as users run them: triage, remediate and prune_history through
real ansible-playbook runs against the local control plane, with real Helm.
This file holds the runs that read or change the whole cluster (a triage with no
scope, a CRD); test_playbooks_scoped.py the runs scoped to releases of their own.

--check is proven read-only by the API server's audit log (every write by the
identity the playbooks use, Helm included); real Helm is the witness of every
recovery; a planted secret value never appears in any output or report; the
argv of every Helm call carries no token; a second run changes nothing."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
import typing as t
import uuid
from pathlib import Path

import pytest

from .support import (
    BIN,
    CHART,
    KUBECONFIG,
    extra_vars,
    helm_json,
    kubectl,
    run_playbook,
    scenario,
    writes_by_user_since,
)

PLANTED = "planted-secret-value-4d2e81"


def recap(output: str) -> dict[str, int]:
    match = re.search(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output)
    if not match:
        raise AssertionError(f"no PLAY RECAP in:\n{output[-3000:]}")
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups()), strict=True))


def helm_status(major: str, release: str, namespace: str) -> str:
    done = subprocess.run(
        [str(BIN / f"helm{major}"), "status", release, "-n", namespace, "-o", "json", "--kubeconfig", KUBECONFIG],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HOME": os.environ.get("HOME", "/tmp")},
    )
    if done.returncode != 0:
        return "absent" if "not found" in done.stderr else f"error: {done.stderr}"
    return str(json.loads(done.stdout)["info"]["status"])


def plant_secret(release: str, namespace: str, major: str = "3") -> None:
    """A values entry holding a secret, in the release's newest deployed revision."""
    helm_cmd = [str(BIN / f"helm{major}"), "--kubeconfig", KUBECONFIG, "-n", namespace]
    subprocess.run(
        [
            *helm_cmd,
            "upgrade",
            release,
            str(CHART),
            "--reuse-values",
            f"--set=secretToken={PLANTED}",
            "--wait",
            "--history-max",
            "0",
        ],  # keep a bloated history bloated
        check=True,
        capture_output=True,
    )


def helm_wrapper(tmp_path: Path, major: str) -> tuple[Path, Path]:
    """A helm binary that records its argv and whether a token came through the environment."""
    log = tmp_path / f"helm{major}-calls.log"
    wrapper = tmp_path / f"helm{major}"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "ARGV $*" >> {log}\n'
        f'[ -n "$HELM_KUBETOKEN" ] && echo "ENV HELM_KUBETOKEN set" >> {log}\n'
        f'exec {BIN / f"helm{major}"} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper, log


# (state, helm major, extra vars) -> what real Helm must show after remediate.yml
CASES = [
    ("failed-upgrade", "3", {}, "deployed"),
    ("pending-upgrade", "4", {"chart": str(CHART)}, "deployed"),
    ("pending-rollback", "3", {}, "deployed"),
    ("uninstalling", "4", {"force": True, "allow_destructive": True}, "absent"),
]


@pytest.fixture(scope="module")
def stuck(cluster: str) -> t.Iterator[dict[str, t.Any]]:
    """One namespace per case, driven into its state by real Helm, the secret planted where it can be."""
    prefix = f"pb-{uuid.uuid4().hex[:5]}"
    cases = []
    for state, major, extra, expected in CASES:
        namespace = f"{prefix}-{state}"
        # The chart's NOTES print the planted value, as many real charts print credentials.
        scenario(state, "web", namespace, major, f"secretToken={PLANTED}")
        cases.append({"state": state, "major": major, "extra": extra, "expected": expected, "namespace": namespace})
    bloated = f"{prefix}-bloated"
    scenario("bloated", "web", bloated)
    plant_secret("web", bloated)
    time.sleep(2)  # let the pending records age past stale_after=1
    yield {"cases": cases, "bloated": bloated, "prefix": prefix}
    for namespace in [c["namespace"] for c in cases] + [bloated]:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_triage_check_writes_nothing_and_reports_every_release(stuck: dict[str, t.Any], tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    started = time.time()
    done = run_playbook("triage.yml", "--check", *extra_vars(report_dir=str(reports), stale_after=1))
    assert recap(done.stdout)["failed"] == 0, done.stdout[-3000:]
    assert writes_by_user_since(started) == []
    summary = (reports / "fleet-summary.md").read_text()
    for case in stuck["cases"]:
        assert f"{case['namespace']}/web" in summary
        report = json.loads((reports / "localhost" / f"{case['namespace']}__web.json").read_text())
        assert (
            report["triage"]["state"]
            == helm_json(case["major"], "secret", "status", "web", "-n", case["namespace"])["info"]["status"]
        )
    assert "Next step:" in done.stdout
    assert PLANTED not in done.stdout + done.stderr
    assert all(PLANTED not in path.read_text() for path in reports.rglob("*") if path.is_file())


FLUX_CRD = "helmreleases.helm.toolkit.fluxcd.io"


def apply(manifest: dict[str, t.Any]) -> None:
    subprocess.run(
        [str(BIN / "kubectl"), "--kubeconfig", KUBECONFIG, "apply", "-f", "-"],
        input=json.dumps(manifest),
        text=True,
        check=True,
        capture_output=True,
    )


def _argv_without_connection(command: str) -> list[str]:
    """A printed command as the argv a module runs: the module hands Helm the driver and the cluster in its
    environment, the printed command names them (HELM_DRIVER=..., --kube-context of the current context)."""
    argv = shlex.split(command)
    argv = argv[1:] if argv[0].startswith("HELM_DRIVER=") else argv
    for flag in ("--kubeconfig", "--kube-context"):
        if flag in argv:
            index = argv.index(flag)
            del argv[index : index + 2]
    return argv


def test_a_release_flux_manages_is_left_alone_unless_included(cluster: str, tmp_path: Path) -> None:
    namespace = f"pb-flux-{uuid.uuid4().hex[:4]}"
    scenario("failed-upgrade", "web", namespace)
    kubectl("wait", "--for=delete", f"crd/{FLUX_CRD}", "--timeout=60s", check=False)  # another test's leftover
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    apply(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": FLUX_CRD},
            "spec": {
                "group": "helm.toolkit.fluxcd.io",
                "scope": "Namespaced",
                "names": {"kind": "HelmRelease", "plural": "helmreleases", "singular": "helmrelease"},
                "versions": [{"name": "v2", "served": True, "storage": True, "schema": schema}],
            },
        }
    )
    kubectl("wait", "--for=condition=Established", f"crd/{FLUX_CRD}", "--timeout=60s")
    apply(
        {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"releaseName": "web"},
        }
    )
    try:
        common = {"namespace": namespace, "report_dir": "", "helm_binary": str(BIN / "helm3")}
        started = time.time()
        skipped = run_playbook("remediate.yml", *extra_vars(**common))
        said = " ".join(skipped.stdout.split())
        assert recap(skipped.stdout)["failed"] == 0, skipped.stdout[-3000:]
        assert (
            f"{namespace}/web: failed -> skipped (controller_managed: leave_to_controller): "
            "managed by Flux helm-controller" in said
        )
        assert writes_by_user_since(started) == []
        assert helm_status("3", "web", namespace) == "failed"
        # Triage says the same, and its step (suspend the HelmRelease) works pasted into a shell.
        looked = run_playbook("triage.yml", *extra_vars(namespace=namespace, report_dir=str(tmp_path / "t")))
        row = json.loads((tmp_path / "t" / "localhost" / f"{namespace}__web.json").read_text())["triage"]
        assert (row["branch"], row["action"]) == ("controller_managed", "leave_to_controller"), looked.stdout[-2000:]
        assert "--context " in row["command"]  # the current context, pinned
        shell = {**os.environ, "KUBECONFIG": KUBECONFIG, "PATH": f"{BIN}:{os.environ['PATH']}"}
        subprocess.run(["bash", "-c", row["command"]], env=shell, check=True, capture_output=True)
        suspended = json.loads(kubectl("get", "helmrelease", "web", "-n", namespace, "-o", "json").stdout)
        assert suspended["spec"]["suspend"] is True
        included = run_playbook(
            "remediate.yml", *extra_vars(include_controller_managed=True, backup_dir=str(tmp_path / "b"), **common)
        )
        assert recap(included.stdout)["failed"] == 0, included.stdout[-3000:]
        assert helm_status("3", "web", namespace) == "deployed"
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        kubectl("delete", "crd", FLUX_CRD, "--wait=false", check=False)
