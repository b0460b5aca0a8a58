"""Check mode writes nothing, for every module and every unlock method: each
check-mode run reports the change it would make and is followed by an
assertion over the API server's audit log that it sent no create, update,
patch or delete. Then the same runs for real write exactly what check mode
announced, and prune's backups are private (files 0600, directories 0700)."""

from __future__ import annotations

import json
import stat
import time
import typing as t
from pathlib import Path

import pytest

from .support import (
    WRITE_VERBS,
    Outcome,
    Scenario,
    audit_events_since,
    helm_json,
    ready,
    run_collection_module,
    run_scenarios,
)

METHODS = ("mark_failed", "mark_deployed", "delete_revision")
LOCKED = {method: Scenario("pending-upgrade", "4", "configmap", prefix=f"c{i}") for i, method in enumerate(METHODS)}
HISTORY = Scenario("deployed", "3", "secret", prefix="cp")


@pytest.fixture(scope="module")
def check_scenarios(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> dict[Scenario, Outcome]:
    return run_scenarios([*LOCKED.values(), HISTORY], tmp_path_factory.mktemp("check-scenarios"))


def requests_since(started: float) -> tuple[list[str], list[dict[str, t.Any]]]:
    """(every verb the modules sent, the writes among them) since `started`."""
    events = audit_events_since(started)
    return [e["verb"] for e in events], [e for e in events if e["verb"] in WRITE_VERBS]


def assert_wrote_nothing(started: float, what: str) -> None:
    verbs, writes = requests_since(started)
    assert verbs, f"{what}: the audit log must show the run's reads, or the no-write check proves nothing"
    assert writes == [], f"{what} wrote: {[(w['verb'], w['objectRef']) for w in writes]}"


def statuses(scenario: Scenario) -> list[tuple[int, str]]:
    history = helm_json(scenario.helm, scenario.driver, "history", scenario.release, "-n", scenario.namespace)
    return [(h["revision"], h["status"]) for h in history]


def test_facts_in_check_mode_read_and_write_nothing(check_scenarios: dict[Scenario, Outcome]) -> None:
    scenario = LOCKED["mark_failed"]
    ready(check_scenarios[scenario])
    started = time.time()
    result = run_collection_module(
        "helm_release_facts",
        {"namespace": scenario.namespace, "driver": scenario.driver, "stale_after": 1},
        check_mode=True,
    )
    assert result["changed"] is False
    [release] = result["ansible_facts"]["helm_releases"]
    assert release["status"] == "pending-upgrade" and release["lock"]["verdict"] == "stale"
    assert_wrote_nothing(started, "helm_release_facts in check mode")


@pytest.mark.parametrize("method", METHODS)
def test_unlock_in_check_mode_writes_nothing_for_every_method(
    check_scenarios: dict[Scenario, Outcome], method: str, tmp_path: Path
) -> None:
    scenario = LOCKED[method]
    ready(check_scenarios[scenario])
    before = statuses(scenario)
    args = {
        "release": scenario.release,
        "namespace": scenario.namespace,
        "driver": scenario.driver,
        "method": method,
        "allow_destructive": method != "mark_failed",
        "stale_after": 1,
        "backup_dir": str(tmp_path / "backups"),
    }
    started = time.time()
    check = run_collection_module("helm_release_unlock", args, check_mode=True, diff=True)
    assert check["changed"] is True and check["locked"] is True, check
    assert "backup_file" not in check
    assert_wrote_nothing(started, f"helm_release_unlock {method} in check mode")
    assert statuses(scenario) == before
    assert not (tmp_path / "backups").exists()

    # For real: exactly the writes check mode announced, on the record it named.
    started = time.time()
    real = run_collection_module("helm_release_unlock", args, diff=True)
    assert real["changed"] is True and real["diff"] == check["diff"]
    _verbs, writes = requests_since(started)
    record_writes = [(w["verb"], w["objectRef"]["name"]) for w in writes if w["objectRef"]["resource"] == "configmaps"]
    stuck, previous = (f"sh.helm.release.v1.{scenario.release}.v{n}" for n in (2, 1))
    assert (
        record_writes
        == {
            "mark_failed": [("update", stuck)],
            "mark_deployed": [("update", stuck), ("update", previous)],
            "delete_revision": [("delete", stuck)],
        }[method]
    )


def test_prune_in_check_mode_writes_nothing_and_its_backups_are_private(
    check_scenarios: dict[Scenario, Outcome], tmp_path: Path
) -> None:
    ready(check_scenarios[HISTORY])
    backup_dir = tmp_path / "backups"  # created by the module
    args = {"release": [HISTORY.release], "namespace": HISTORY.namespace, "keep": 1, "backup_dir": str(backup_dir)}
    started = time.time()
    check = run_collection_module("helm_history_prune", args, check_mode=True, diff=True)
    assert check["changed"] is True and check["releases"][0]["deleted"] == [1, 2]
    assert_wrote_nothing(started, "helm_history_prune in check mode")
    assert statuses(HISTORY) == [(1, "superseded"), (2, "superseded"), (3, "deployed")]
    assert not backup_dir.exists()

    real = run_collection_module("helm_history_prune", args, diff=True)
    assert real["releases"][0]["deleted"] == [1, 2]
    files = [Path(f) for f in real["releases"][0]["backup_files"]]
    assert len(files) == 2
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        saved = json.loads(path.read_text())
        assert saved["kind"] == "List" and saved["items"][0]["metadata"]["name"] in path.name
    release_dir = backup_dir / HISTORY.namespace / HISTORY.release
    assert {f.parent for f in files} == {release_dir}
    for directory in (backup_dir, backup_dir / HISTORY.namespace, release_dir):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert statuses(HISTORY) == [(3, "deployed")]
