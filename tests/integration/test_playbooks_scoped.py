"""The playbooks as users run them, scoped to releases of their own (test_playbooks.py holds the runs that read
or change the whole cluster): --check proven read-only by the audit log, real Helm the witness of every recovery,
a planted secret value in no output or report, no token in Helm's argv, a second run changing nothing."""

from __future__ import annotations

import json
import shlex
import stat
import subprocess
import time
import typing as t
import uuid
from pathlib import Path

import pytest

from . import test_playbooks
from .support import (
    AUDIT_LOG,
    BIN,
    CHART,
    KUBECONFIG,
    ROOT,
    extra_vars,
    helm_json,
    kubectl,
    run_playbook,
    scenario,
    writes_by_user_since,
)
from .test_playbooks import (
    PLANTED,
    _argv_without_connection,
    helm_status,
    helm_wrapper,
    plant_secret,
    recap,
)

stuck = test_playbooks.stuck  # the module-scoped fixture, made again for this module


@pytest.mark.parametrize("name", ["release_namespace", "namespace"])
def test_the_namespace_variable_and_its_deprecated_name(stuck: dict[str, t.Any], tmp_path: Path, name: str) -> None:
    """-e release_namespace scopes a run without ansible-core's reserved-name warning; the deprecated
    -e namespace scopes it the same, and says so."""
    namespace = stuck["cases"][0]["namespace"]
    reports = tmp_path / "reports"
    done = run_playbook("triage.yml", "-e", f"{name}={namespace}", "-e", f"report_dir={reports}", "-e", "stale_after=1")
    assert recap(done.stdout)["failed"] == 0, done.stdout[-3000:]
    assert [p.name for p in reports.rglob("*__web.json")] == [f"{namespace}__web.json"]
    said = " ".join(done.stdout.split()) + done.stderr
    deprecated = name == "namespace"
    assert ("[DEPRECATED] -e namespace=" in said) is deprecated
    assert ("Found variable using reserved name" in said) is deprecated  # ansible-core's own warning


@pytest.mark.parametrize("playbook", ["remediate.yml", "prune_history.yml"])
def test_check_mode_of_writing_playbooks_writes_nothing(playbook: str, stuck: dict[str, t.Any], tmp_path: Path) -> None:
    before = {case["namespace"]: helm_status(case["major"], "web", case["namespace"]) for case in stuck["cases"]}
    started = time.time()
    for case in stuck["cases"]:
        done = run_playbook(
            playbook,
            "--check",
            "--diff",
            *extra_vars(
                namespace=case["namespace"],
                stale_after=1,
                keep=3,
                report_dir=str(tmp_path / "reports"),
                backup_dir=str(tmp_path / "backups"),
                helm_binary=str(BIN / f"helm{case['major']}"),
                **case["extra"],
            ),
        )
        assert recap(done.stdout)["failed"] == 0, done.stdout[-3000:]
        if playbook == "remediate.yml":
            assert "would-" in done.stdout, done.stdout[-2000:]
    assert writes_by_user_since(started) == []
    assert not (tmp_path / "backups").exists()
    after = {case["namespace"]: helm_status(case["major"], "web", case["namespace"]) for case in stuck["cases"]}
    assert after == before


def test_remediate_recovers_each_state_and_a_second_run_changes_nothing(
    stuck: dict[str, t.Any], tmp_path: Path
) -> None:
    reports, backups = tmp_path / "reports", tmp_path / "backups"
    for case in stuck["cases"]:
        wrapper, calls = helm_wrapper(tmp_path, case["major"])
        common = {
            "namespace": case["namespace"],
            "stale_after": 1,
            "helm_binary": str(wrapper),
            "helm_timeout": "120s",
            "backup_dir": str(backups),
            **case["extra"],
        }
        # Triage with the same policy first: the step it shows is the step remediate runs.
        policy = {
            k: v for k, v in common.items() if k in ("namespace", "stale_after", "chart", "force", "helm_timeout")
        }
        looked = run_playbook("triage.yml", *extra_vars(report_dir=str(tmp_path / "triage"), **policy))
        assert recap(looked.stdout)["failed"] == 0, looked.stdout[-3000:]
        shown = json.loads((tmp_path / "triage" / "localhost" / f"{case['namespace']}__web.json").read_text())
        done = run_playbook("remediate.yml", "-v", *extra_vars(report_dir=str(reports), **common))
        assert recap(done.stdout)["failed"] == 0, done.stdout[-4000:]
        ran = json.loads((reports / "localhost" / "remediation.json").read_text())["releases"][0]
        assert shown["triage"]["action"] == ran["action"].split(",")[0], (shown["triage"], ran)
        if ran["action"] in ("rollback", "uninstall_no_hooks"):  # a Helm step: the argv the module ran
            assert _argv_without_connection(shown["triage"]["command"]) == ["helm", *shlex.split(ran["command"])[1:]]
        assert helm_status(case["major"], "web", case["namespace"]) == case["expected"]
        if case["expected"] == "deployed":  # real Helm can upgrade it again
            upgrade = ["upgrade", "web", str(CHART), "-n", case["namespace"], "--reuse-values", "--set", "behaviour="]
            out = subprocess.run(
                [str(BIN / f"helm{case['major']}"), *upgrade, "--kubeconfig", KUBECONFIG, "--wait"],
                capture_output=True,
                text=True,
                check=False,
            )
            assert out.returncode == 0, out.stderr
        # Idempotent: check, then real; no report, so the recap counts cluster changes only.
        for mode in (["--check"], []):
            again = run_playbook("remediate.yml", *mode, *extra_vars(report_dir="", **common))
            assert recap(again.stdout)["failed"] == 0, again.stdout[-3000:]
            assert recap(again.stdout)["changed"] == 0, again.stdout[-3000:]
        log = calls.read_text()
        token = _admin_token()
        assert "ARGV" in log and token not in log
        assert "ENV HELM_KUBETOKEN set" in log
        # Every branch that runs Helm (rollback, unlock then upgrade, resumed rollback, uninstall), verbose.
        assert PLANTED not in done.stdout + done.stderr
        assert all(PLANTED not in path.read_text() for path in reports.rglob("*") if path.is_file())
    outcome = json.loads((reports / "localhost" / "remediation.json").read_text())
    assert outcome["releases"][0]["outcome"] in ("recovered", "unlocked")
    for path in backups.rglob("*"):
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def test_prune_history_playbook_keeps_what_helm_needs(stuck: dict[str, t.Any], tmp_path: Path) -> None:
    namespace = stuck["bloated"]
    before = helm_json("3", "secret", "history", "web", "-n", namespace, "--max", "100")
    done = run_playbook(
        "prune_history.yml", *extra_vars(namespace=namespace, keep=5, report_dir=str(tmp_path / "reports"))
    )
    assert recap(done.stdout)["failed"] == 0, done.stdout[-3000:]
    after = helm_json("3", "secret", "history", "web", "-n", namespace, "--max", "100")
    assert len(after) == 5 < len(before)
    assert after[-1]["revision"] == before[-1]["revision"] and after[-1]["status"] == "deployed"
    summary = json.loads((tmp_path / "reports" / "localhost" / "prune-summary.json").read_text())
    assert summary["totals"]["deleted"] == len(before) - 5
    assert PLANTED not in done.stdout + (tmp_path / "reports" / "localhost" / "prune-summary.md").read_text()
    again = run_playbook("prune_history.yml", *extra_vars(namespace=namespace, keep=5, report_dir=""))
    assert recap(again.stdout)["changed"] == 0, again.stdout[-3000:]


def _admin_token() -> str:
    return (ROOT / ".cluster" / "pki" / "tokens.csv").read_text().split(",", 1)[0].strip()


def test_playbooks_with_least_privilege_tokens(cluster: str, tmp_path: Path) -> None:
    """triage.yml works with the read-only token; remediate.yml with it is refused, clearly, and writes nothing."""
    from .test_rbac import identity

    namespace = f"pb-rbac-{uuid.uuid4().hex[:5]}"
    scenario("pending-upgrade", "web", namespace)
    kubectl("apply", "-f", str(ROOT / "docs" / "rbac"))
    reader = identity(namespace, "reader", ["helmops-triage"], tmp_path)
    time.sleep(2)
    try:
        triage = run_playbook(
            "triage.yml", *extra_vars(namespace=namespace, report_dir=str(tmp_path / "r")), kubeconfig=reader
        )
        assert recap(triage.stdout)["failed"] == 0, triage.stdout[-3000:]
        assert f"{namespace}/web: pending-upgrade" in " ".join(triage.stdout.split())
        remediate = run_playbook(
            "remediate.yml",
            *extra_vars(namespace=namespace, stale_after=1, report_dir="", backup_dir=str(tmp_path / "b")),
            kubeconfig=reader,
        )
        assert recap(remediate.stdout)["failed"] == 1
        said = " ".join(remediate.stdout.split())
        assert f"forbidden (403) to update Secret {namespace}/sh.helm.release.v1.web.v2" in said, said[-3000:]
        assert helm_status("3", "web", namespace) == "pending-upgrade"
        denied = [
            line
            for line in AUDIT_LOG.read_text().splitlines()
            if f"system:serviceaccount:{namespace}:reader" in line and '"verb":"update"' in line
        ]
        assert denied and all('"code":403' in line for line in denied)
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_a_possibly_running_operation_is_waited_on_then_decided_again(cluster: str, tmp_path: Path) -> None:
    """A young pending record is waited on until it is stale, then recovered; a rollout that never ends is
    waited on up to wait_timeout and left untouched."""
    prefix = f"pb-wait-{uuid.uuid4().hex[:4]}"
    young, active = f"{prefix}-young", f"{prefix}-active"
    scenario("pending-upgrade", "web", young)
    scenario("pending-upgrade-active", "web", active)
    try:
        common = {"report_dir": "", "backup_dir": str(tmp_path / "b"), "helm_binary": str(BIN / "helm3")}
        waited = run_playbook(
            "remediate.yml", *extra_vars(namespace=young, stale_after=20, wait_timeout=90, wait_poll=3, **common)
        )
        said = " ".join(waited.stdout.split())
        assert recap(waited.stdout)["failed"] == 0, waited.stdout[-3000:]
        assert "branch possibly_running" in said and "FAILED - RETRYING" in waited.stdout
        assert f"{young}/web: pending-upgrade -> unlocked (pending_upgrade: unlock)" in said
        assert helm_status("3", "web", young) == "failed"  # unlocked: helm upgrade works again

        started = time.time()
        gave_up = run_playbook(
            "remediate.yml", *extra_vars(namespace=active, stale_after=1, wait_timeout=6, wait_poll=2, **common)
        )
        said = " ".join(gave_up.stdout.split())
        assert recap(gave_up.stdout)["failed"] == 1
        assert f"{active}/web: pending-upgrade -> still-running" in said
        assert writes_by_user_since(started) == []
        assert helm_status("3", "web", active) == "pending-upgrade"
    finally:
        for namespace in (young, active):
            kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_a_planted_secret_value_never_leaves_the_cluster(cluster: str, tmp_path: Path) -> None:
    """Triage and remediation of the release holding the planted value, verbose and with diffs: the value is in no
    output and no report (the exported records hold it by design, privately)."""
    namespace = f"pb-planted-{uuid.uuid4().hex[:4]}"
    scenario("bloated", "web", namespace)
    plant_secret("web", namespace)
    reports = tmp_path / "reports"
    outputs = []
    for playbook, extra in (("triage.yml", {}), ("remediate.yml", {"keep": 8, "backup_dir": str(tmp_path / "b")})):
        done = run_playbook(
            playbook, "-vv", "--diff", *extra_vars(namespace=namespace, report_dir=str(reports / playbook), **extra)
        )
        assert recap(done.stdout)["failed"] == 0, done.stdout[-3000:]
        outputs += [done.stdout, done.stderr]
    assert "bloated_history" in outputs[2]
    written = [path.read_text() for path in reports.rglob("*") if path.is_file()]
    assert len(written) >= 5
    assert all(PLANTED not in text for text in outputs + written)
    exported = list((tmp_path / "b").rglob("*.json"))  # the pruned records, values inside, private
    assert exported and all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in exported)
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_triage_brief_looks_deep_only_at_the_release_in_trouble(cluster: str, tmp_path: Path) -> None:
    """-e detail=brief: the healthy release's report says it was read from its records alone; the stuck one
    is looked at whole, live objects included, and gets the same next step as with the full look."""
    namespace = f"pb-brief-{uuid.uuid4().hex[:5]}"
    scenario("deployed", "ok", namespace)
    scenario("pending-upgrade", "web", namespace)
    try:
        rows = {}
        for detail in ("brief", "full"):
            reports = tmp_path / detail
            done = run_playbook(
                "triage.yml",
                "--check",
                *extra_vars(namespace=namespace, stale_after=1, report_dir=str(reports), detail=detail),
            )
            assert recap(done.stdout)["failed"] == 0, done.stdout[-3000:]
            for release in ("ok", "web"):
                report = json.loads((reports / "localhost" / f"{namespace}__{release}.json").read_text())
                rows[detail, release] = report
        assert rows["brief", "ok"]["facts"]["detail"] == "brief"
        assert not {"live", "lock", "risks"} & set(rows["brief", "ok"]["facts"])
        markdown = (tmp_path / "brief" / "localhost" / f"{namespace}__ok.md").read_text()
        assert "a brief look reports a healthy deployed release from its records alone" in markdown
        assert rows["brief", "web"]["facts"]["detail"] == "full"
        assert rows["brief", "web"]["facts"]["live"]["checked"] is True
        for release in ("ok", "web"):
            assert rows["brief", release]["triage"]["state"] == rows["full", release]["triage"]["state"]
            assert rows["brief", release]["triage"]["action"] == rows["full", release]["triage"]["action"]
        assert rows["full", "web"]["triage"]["state"] == "pending-upgrade"
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
