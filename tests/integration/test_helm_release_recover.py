"""helm_release_recover and helm_release_backup on real stuck releases:
check / real / idempotent check / idempotent, with real Helm as the witness,
the guards' refusals writing nothing, and Helm's argv free of credentials."""

from __future__ import annotations

import json
import stat
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

import pytest

from .support import (
    BIN,
    CHART,
    HELMS,
    ROOT,
    Outcome,
    Scenario,
    helm,
    helm_json,
    ready,
    run_collection_module,
    run_scenarios,
    warnings_of,
    writes_by_user_since,
)

RECOVER_SCENARIOS = [
    Scenario(state, major, driver, prefix="rc")
    for state, driver in (
        ("failed-upgrade", "secret"),
        ("failed-upgrade", "configmap"),
        ("failed-install", "secret"),
        ("uninstalling", "secret"),
        ("pending-upgrade", "secret"),
        ("keep-policy", "secret"),
    )
    for major in HELMS
]
# Untouched copies for the refusals (a refusal changes nothing, so they share them).
REFUSAL_SCENARIOS = [
    Scenario(state, "3", "secret", prefix="rf")
    for state in ("uninstalling", "pending-upgrade", "failed-install", "keep-policy")
]


@pytest.fixture(scope="module")
def stuck(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> dict[Scenario, Outcome]:
    outcomes = run_scenarios(RECOVER_SCENARIOS + REFUSAL_SCENARIOS, tmp_path_factory.mktemp("recover"))
    time.sleep(2)  # the pending records age past stale_after=1
    return outcomes


def pick(state: str, major: str, driver: str = "secret") -> Scenario:
    return Scenario(state, major, driver, prefix="rc")


def recover(scenario: Scenario, tmp_path: Path, *, check_mode: bool = False, **args: t.Any) -> dict[str, t.Any]:
    return run_collection_module(
        "helm_release_recover",
        {
            "release": scenario.release,
            "namespace": scenario.namespace,
            "driver": scenario.driver,
            "helm_binary": str(BIN / f"helm{scenario.helm}"),
            "timeout": "120s",
            "stale_after": 1,
            "backup_dir": str(tmp_path / "backups"),
            **args,
        },
        check_mode=check_mode,
        diff=True,
    )


def status(scenario: Scenario) -> str:
    done = helm(scenario.helm, scenario.driver, "status", scenario.release, "-n", scenario.namespace, "-o", "json",
                check=False)  # fmt: skip
    if done.returncode != 0:
        return "absent" if "not found" in done.stderr else f"error: {done.stderr}"
    return str(json.loads(done.stdout)["info"]["status"])


def fix_values(tmp_path: Path) -> str:
    path = tmp_path / "fix.yaml"
    path.write_text('behaviour: ""\n')
    return str(path)


@dataclass(frozen=True)
class Case:
    state: str
    action: str
    extra: dict[str, t.Any]
    expected: str  # Helm's status afterwards
    description: str | None  # the newest revision's description afterwards


CASES = [
    Case("failed-upgrade", "rollback", {}, "deployed", "Rollback to 1"),
    Case("failed-install", "upgrade", {"chart": CHART, "values_files": "FIX"}, "deployed", "Upgrade complete"),
    Case("uninstalling", "uninstall", {"allow_destructive": True, "force": True}, "absent", None),
]


@pytest.mark.parametrize(
    ("case", "major"),
    [(case, major) for case in CASES for major in HELMS],
    ids=[f"{case.action}-{case.state}-helm{major}" for case in CASES for major in HELMS],
)
def test_check_real_idempotent_check_idempotent(
    stuck: dict[Scenario, Outcome], case: Case, major: str, tmp_path: Path
) -> None:
    state, action, extra, expected, description = case.state, case.action, case.extra, case.expected, case.description
    scenario = pick(state, major)
    ready(stuck[scenario])
    args = {**extra, "action": action}
    if args.get("values_files") == "FIX":
        args["values_files"] = [fix_values(tmp_path)]
    before = status(scenario)

    started = time.time()
    check = recover(scenario, tmp_path, check_mode=True, **args)
    assert check["changed"] is True, check
    assert check["command"].split()[1] == action and "--namespace" in check["command"]
    assert check["diff"]["before"]["status"] == before
    assert writes_by_user_since(started) == []
    assert status(scenario) == before and not (tmp_path / "backups").exists()

    real = recover(scenario, tmp_path, **args)
    assert real["changed"] is True and "failed" not in real, real
    assert real["status_after"] == expected == status(scenario)
    if description:
        history = helm_json(scenario.helm, scenario.driver, "history", scenario.release, "-n", scenario.namespace)
        assert history[-1]["description"] == description
        assert real["revision_after"] == history[-1]["revision"] == real["revision_before"] + 1
    files = [Path(p) for p in real["backup_files"]]
    assert len(files) == 3 and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    records = json.loads(files[0].read_text())
    assert records["kind"] == "List" and len(records["items"]) == check["revision_before"]

    for check_mode in (True, False):
        again = recover(scenario, tmp_path, check_mode=check_mode, **args)
        assert again["changed"] is False, again
        assert "runs only when" in again["reason"] or "not installed" in again["reason"]
    if expected == "deployed":  # Helm works with it again
        helm(scenario.helm, scenario.driver, "upgrade", scenario.release, CHART, "-n", scenario.namespace,
             "--reuse-values", "--set", "behaviour=", "--wait")  # fmt: skip


def test_configmap_driver_is_followed(stuck: dict[Scenario, Outcome], tmp_path: Path) -> None:
    scenario = pick("failed-upgrade", "4", "configmap")
    ready(stuck[scenario])
    real = recover(scenario, tmp_path, action="rollback")
    assert real["status_after"] == "deployed" == status(scenario)


# (scenario state, args, message) - each refused with nothing written
REFUSALS = [
    ("uninstalling", {"action": "uninstall", "force": True}, "is destructive"),
    ("uninstalling", {"action": "uninstall", "allow_destructive": True, "stale_after": 3600}, "may still be running"),
    ("pending-upgrade", {"action": "upgrade", "chart": CHART}, "Unlock it first"),
    ("pending-upgrade", {"action": "rollback", "stale_after": 3600}, "may still be running"),
    ("failed-install", {"action": "rollback"}, "no known-good revision"),
    ("failed-install", {"action": "upgrade", "chart": "example/app"}, "needs chart_version"),
    ("failed-install", {"action": "upgrade"}, "needs the chart reference"),
    ("failed-install", {"action": "rollback", "helm_binary": "/nonexistent/helm"}, "was not found"),
    (
        "keep-policy",
        {"action": "uninstall", "allow_destructive": True, "when_status": ["deployed"]},
        "would delete PersistentVolumeClaim",
    ),
]


@pytest.mark.parametrize(
    ("state", "args", "message"),
    REFUSALS,
    ids=[f"{state}-{message.split()[0]}-{i}" for i, (state, args, message) in enumerate(REFUSALS)],
)
def test_guards_refuse_clearly_and_write_nothing(
    stuck: dict[Scenario, Outcome], state: str, args: dict[str, t.Any], message: str, tmp_path: Path
) -> None:
    scenario = Scenario(state, "3", "secret", prefix="rf")
    ready(stuck[scenario])
    before = status(scenario)
    started = time.time()
    result = recover(scenario, tmp_path, **args)
    assert result.get("failed") is True, result
    assert message in result["msg"], result["msg"]
    assert "Traceback" not in result["msg"]
    assert writes_by_user_since(started) == []
    assert status(scenario) == before


def test_helm_gets_credentials_through_its_environment_only(stuck: dict[Scenario, Outcome], tmp_path: Path) -> None:
    scenario = pick("failed-upgrade", "3", "configmap")  # a copy no other test changes
    ready(stuck[scenario])
    log = tmp_path / "argv.log"
    wrapper = tmp_path / "helm"
    lines = [
        "#!/bin/sh",
        f'printf "%s\\n" "ARGV $*" >> {log}',
        f'env | sed -n "s/^\\(HELM_KUBETOKEN\\|KUBECONFIG\\)=.*/ENV \\1/p" >> {log}',
        f'exec {BIN / "helm3"} "$@"',
    ]
    wrapper.write_text("\n".join(lines) + "\n")
    wrapper.chmod(0o755)
    result = recover(scenario, tmp_path, action="rollback", helm_binary=str(wrapper))
    assert result["changed"] is True and result["status_after"] == "deployed"
    token = (ROOT / ".cluster" / "pki" / "tokens.csv").read_text().split(",", 1)[0].strip()
    text = log.read_text()
    assert "ARGV rollback r-failed-upgrade 1" in text
    assert "ENV HELM_KUBETOKEN" in text and "ENV KUBECONFIG" in text
    assert token not in text and token not in json.dumps(result)


def test_backup_module_check_then_real(stuck: dict[Scenario, Outcome], tmp_path: Path) -> None:
    scenario = pick("keep-policy", "4")
    ready(stuck[scenario])
    args = {"release": scenario.release, "namespace": scenario.namespace, "backup_dir": str(tmp_path / "b")}
    started = time.time()
    check = run_collection_module("helm_release_backup", args, check_mode=True)
    assert check["changed"] is True and check["files"] == []
    assert not (tmp_path / "b").exists() and writes_by_user_since(started) == []
    real = run_collection_module("helm_release_backup", args)
    files = [Path(p) for p in real["files"]]
    assert [p.name.split(".")[0] for p in files] == ["sh", "values", "manifest"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700
    manifest = helm(scenario.helm, scenario.driver, "get", "manifest", scenario.release, "-n", scenario.namespace)
    assert files[2].read_text() == manifest.stdout.rstrip("\n") + "\n" or files[2].read_text() in manifest.stdout
    assert "archive" in files[1].read_text()  # the user-supplied values: volumes
    assert writes_by_user_since(started) == []
    missing = run_collection_module("helm_release_backup", {**args, "release": "no-such-release"})
    assert missing["failed"] and "nothing to back up" in missing["msg"]
    assert not warnings_of(real)
