"""helm_release_restore through its real main(): argument errors, refusals, check mode, diff and the result's
shape, against a fake API serving records recorded from real Helm (the cluster paths are in
tests/integration/test_restore.py)."""

from __future__ import annotations

import copy
import json
import typing as t
from pathlib import Path

import module_main
import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._backup import save_records, taken_from
from ansible_collections.helmops.recovery.plugins.modules import helm_release_restore
from fake_api import FakeApi, recorded
from module_main import WRITES

OLD = {"written_since_backup": False}


def run_main(
    args: dict[str, t.Any], api: FakeApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> dict[str, t.Any]:
    return module_main.run_main(helm_release_restore, args, api, monkeypatch, capsys)


@pytest.fixture
def unlocked(tmp_path: Path) -> tuple[str, list[dict[str, t.Any]], list[dict[str, t.Any]]]:
    """A backup of a pending-upgrade release (Helm 3, Secrets), and the records after an unlock marked it failed."""
    _driver, objects = recorded("helm3-secret-pending-upgrade")
    namespace = objects[0]["metadata"]["namespace"]
    taken = taken_from(FakeApi.host, objects)  # taken on this (fake) cluster
    path = save_records(str(tmp_path / "b"), namespace, "fx-pending-upgrade", "backup", objects, taken=taken)
    live = copy.deepcopy(objects)
    live[1]["metadata"]["labels"]["status"] = "failed"  # what the status label says now (the payload is checked too)
    return path, objects, live


CASES = [
    # (case, extra arguments, check mode, failed, words in msg or next_step)
    ("the path is required", {"path": None}, False, True, "missing required arguments: path"),
    ("pick is newest or oldest", {"pick": "latest"}, False, True, "value of pick must be one of: newest, oldest"),
    ("a record that differs needs overwrite", {}, False, True, "set overwrite: true"),
    ("check mode writes nothing", {"overwrite": True}, True, False, "pending-upgrade, the lock it had before"),
    ("the wrong release is refused", {"release": "web"}, False, True, "not release 'web'"),
    ("an unknown option is refused", {"overwrite": True, "mode": "fast"}, False, True, "Unsupported parameters"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_main_refuses_clearly_and_check_mode_writes_nothing(
    case: tuple[str, dict[str, t.Any], bool, bool, str],
    unlocked: tuple[str, list[dict[str, t.Any]], list[dict[str, t.Any]]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _name, extra, check, failed, words = case
    path, _objects, live = unlocked
    api = FakeApi(copy.deepcopy(live))
    args = {"path": path, "_ansible_check_mode": check, "_ansible_diff": True, **extra}
    result = run_main({k: v for k, v in args.items() if v is not None}, api, monkeypatch, capsys)
    assert bool(result.get("failed")) is failed, result
    assert words in (result.get("msg", "") + result.get("next_step", "")), result
    assert not [r for r in api.requests if r.startswith(WRITES)], api.requests
    if not failed:
        assert result["changed"] is True
        assert result["restored"] == [
            {"revision": 1, "action": "keep", "status_before": "deployed", "status": "deployed", **OLD},
            {"revision": 2, "action": "replace", "status_before": "failed", "status": "pending-upgrade", **OLD},
        ]
        assert result["diff"] == {
            "before": {"revision 1": "deployed", "revision 2": "failed"},
            "after": {"revision 1": "deployed", "revision 2": "pending-upgrade"},
        }
        assert "backup_file" not in result


def test_main_restores_backs_up_what_it_replaces_and_reports_no_change_the_second_time(
    unlocked: tuple[str, list[dict[str, t.Any]], list[dict[str, t.Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, objects, live = unlocked
    api = FakeApi(copy.deepcopy(live))
    args = {"path": path, "overwrite": True, "backup_dir": str(tmp_path / "before")}
    first = run_main(args, api, monkeypatch, capsys)
    assert first["changed"] is True and first["driver"] == "secret" and first["files"] == [path]
    assert api.events[0]["note"].endswith("created revision(s) none, replaced [2], deleted newer none")
    saved = json.loads(Path(first["backup_file"]).read_text())["items"]
    assert [o["metadata"]["labels"]["status"] for o in saved] == ["failed"]
    assert api.objects[1]["metadata"]["labels"] == objects[1]["metadata"]["labels"]
    assert [r for r in api.requests if r.startswith(WRITES)] == [
        "PUT sh.helm.release.v1.fx-pending-upgrade.v2",
        "POST event",
    ]
    second = run_main(args, api, monkeypatch, capsys)
    assert second["changed"] is False and "backup_file" not in second
    assert [r for r in api.requests if r.startswith(WRITES)] == [
        "PUT sh.helm.release.v1.fx-pending-upgrade.v2",
        "POST event",
    ]
