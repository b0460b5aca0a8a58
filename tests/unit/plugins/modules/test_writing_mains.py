"""The writing modules (helm_release_unlock, helm_history_prune, helm_release_backup, helm_release_recover) through
their real main() against a fake API serving records recorded from real Helm: argument errors, refusals, check mode
and the shape of the result, for the paths that need no cluster. What they do to real releases is tested against the
local control plane (tests/integration)."""

from __future__ import annotations

import json
import os
import shlex
import stat
import typing as t
from pathlib import Path

import pytest
from ansible_collections.helmops.recovery.plugins.modules import (
    helm_history_prune,
    helm_release_backup,
    helm_release_recover,
    helm_release_unlock,
)
from fake_api import FakeApi, recorded
from module_main import WRITES, run_main

PENDING = "helm3-secret-pending-upgrade"


def writes(api: FakeApi) -> list[str]:
    return [r for r in api.requests if r.split()[0] in WRITES]


Call = t.Callable[..., tuple[dict[str, t.Any], FakeApi]]


@pytest.fixture
def call(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Call:
    """main() of a module on a recorded release (its namespace, name and driver are the defaults), against ``api``
    or a new FakeApi of the records; the module's result and the API it talked to."""

    def main_of(
        module: t.Any, stem: str, api: FakeApi | None = None, **args: t.Any
    ) -> tuple[dict[str, t.Any], FakeApi]:
        driver, objects = recorded(stem)
        meta = objects[0]["metadata"]
        api = api or FakeApi(objects)
        defaults = {"namespace": meta["namespace"], "driver": driver}
        if module is not helm_history_prune:
            defaults["release"] = meta["labels"]["name"]
        return run_main(module, {**defaults, **args}, api, monkeypatch, capsys), api

    return main_of


# --- argument errors: clear, naming the option, before any request ----------------------------------------------


@pytest.mark.parametrize(
    ("module", "args", "said"),
    [
        (helm_release_unlock, {"release": "Not_A_Name"}, "Not_A_Name"),
        (helm_release_unlock, {"method": "rewrite"}, "method"),
        (helm_release_unlock, {"namespace": "bad/ns"}, "bad/ns"),
        (helm_history_prune, {"keep": 0}, "keep must be at least 1"),
        (helm_history_prune, {"older_than": "soon"}, "soon"),
        (helm_history_prune, {"statuses": ["pending-upgrade"]}, "statuses"),
        (helm_release_backup, {"release": "x" * 60}, "x" * 60),
        (helm_release_recover, {"action": "restart"}, "action"),
        (helm_release_recover, {"helm_binary": "no-such-helm-binary"}, "'no-such-helm-binary' was not found"),
    ],
)
def test_a_bad_argument_fails_naming_it_before_any_write(
    module: t.Any,
    args: dict[str, t.Any],
    said: str,
    tmp_path: Path,
    call: Call,
) -> None:
    if module is helm_release_recover:
        args = {"action": "rollback", **args}
    result, api = call(module, PENDING, backup_dir=str(tmp_path), **args)
    assert result.get("failed") is True, result
    assert said in result["msg"]
    assert not result["msg"].startswith("unexpected error"), result["msg"]
    assert writes(api) == []
    assert not any(tmp_path.iterdir())


# --- helm_release_unlock --------------------------------------------------------------------------------------------


def test_unlock_in_check_mode_reports_the_unlock_and_writes_nothing(tmp_path: Path, call: Call) -> None:
    result, api = call(
        helm_release_unlock,
        PENDING,
        backup_dir=str(tmp_path),
        _ansible_check_mode=True,
        _ansible_diff=True,
    )
    assert result["changed"] is True and result["locked"] is True, result
    assert (result["revision"], result["previous_status"], result["status"]) == (2, "pending-upgrade", "failed")
    assert result["lock"]["verdict"] == "stale"
    assert result["diff"]["before"] != result["diff"]["after"]
    assert "backup_file" not in result
    assert writes(api) == [] and not any(tmp_path.iterdir())


def test_unlock_backs_up_writes_guarded_and_is_idempotent(tmp_path: Path, call: Call) -> None:
    first, api = call(helm_release_unlock, PENDING, backup_dir=str(tmp_path))
    assert first["changed"] is True and first["status"] == "failed", first
    backup = Path(first["backup_file"])
    assert backup.is_file() and stat.S_IMODE(backup.stat().st_mode) == 0o600
    # One guarded PUT of the locked record (its resourceVersion was checked by the fake, as the API server does),
    # then the Event; nothing deleted.
    assert writes(api) == ["PUT sh.helm.release.v1.fx-pending-upgrade.v2", "POST event"]
    second, api = call(helm_release_unlock, PENDING, api=api, backup_dir=str(tmp_path))
    assert second["changed"] is False and second["locked"] is False, second
    assert writes(api) == ["PUT sh.helm.release.v1.fx-pending-upgrade.v2", "POST event"]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ({"method": "delete_revision"}, "allow_destructive"),
        ({"method": "mark_deployed"}, "allow_destructive"),
    ],
)
def test_unlock_refuses_a_destructive_method_without_the_opt_in(
    args: dict[str, t.Any],
    said: str,
    tmp_path: Path,
    call: Call,
) -> None:
    result, api = call(helm_release_unlock, PENDING, backup_dir=str(tmp_path), **args)
    assert result.get("failed") is True and said in result["msg"], result
    assert writes(api) == [] and not any(tmp_path.iterdir())


def test_unlock_of_a_deployed_release_changes_nothing(tmp_path: Path, call: Call) -> None:
    result, api = call(helm_release_unlock, "helm3-secret-deployed", backup_dir=str(tmp_path))
    assert (result["changed"], result["locked"], result["previous_status"]) == (False, False, "deployed"), result
    assert writes(api) == []


def test_a_write_without_preconditions_is_refused_as_a_guard_not_an_unexpected_error(
    tmp_path: Path, call: Call
) -> None:
    _driver, objects = recorded(PENDING)
    for obj in objects:
        obj["metadata"].pop("resourceVersion")
    result, api = call(helm_release_unlock, PENDING, api=FakeApi(objects), backup_dir=str(tmp_path))
    assert result.get("failed") is True, result
    assert "refusing an unconditional write" in result["msg"] and not result["msg"].startswith("unexpected error")
    assert result["record"].endswith("fx-pending-upgrade.v2")
    assert writes(api) == []


def test_mark_deployed_checks_every_record_before_its_first_write(tmp_path: Path, call: Call) -> None:
    """mark_deployed rewrites the pending record and supersedes the older deployed one: when the older one cannot be
    guarded, neither is written (before, the pending record was rewritten and the run failed half-way)."""
    _driver, objects = recorded(PENDING)
    objects[0]["metadata"].pop("resourceVersion")  # revision 1, the deployed one mark_deployed supersedes
    result, api = call(
        helm_release_unlock,
        PENDING,
        api=FakeApi(objects),
        method="mark_deployed",
        allow_destructive=True,
        backup_dir=str(tmp_path),
    )
    assert result.get("failed") is True and "refusing an unconditional write" in result["msg"], result
    assert result["record"].endswith("fx-pending-upgrade.v1")
    assert writes(api) == []


# --- helm_history_prune ---------------------------------------------------------------------------------------------


def test_prune_in_check_mode_plans_and_deletes_nothing(call: Call) -> None:
    result, api = call(helm_history_prune, "helm3-secret-deployed", keep=1, _ansible_check_mode=True)
    [release] = result["releases"]
    assert result["changed"] is True
    assert (release["kept"], release["deleted"]) == ([3], [1, 2]), release
    assert result["totals"]["deleted"] == 2 and result["totals"]["bytes_reclaimed"] > 0
    assert writes(api) == []


def test_prune_deletes_with_preconditions_and_is_idempotent(call: Call) -> None:
    first, api = call(helm_history_prune, "helm3-secret-deployed", keep=1)
    assert first["changed"] is True and first["errors"] == [], first
    assert sorted(writes(api)) == [
        "DELETE sh.helm.release.v1.fx-deployed.v1",
        "DELETE sh.helm.release.v1.fx-deployed.v2",
    ]
    assert [o["metadata"]["name"] for o in api.objects] == ["sh.helm.release.v1.fx-deployed.v3"]
    second, api = call(helm_history_prune, "helm3-secret-deployed", api=api, keep=1)
    assert second["changed"] is False and second["totals"]["deleted"] == 0, second


def test_prune_keeps_a_record_it_cannot_guard_and_deletes_the_others(call: Call) -> None:
    """A record read without its resourceVersion is never deleted unconditionally; the run goes on with the rest."""
    _driver, objects = recorded("helm3-secret-deployed")
    objects[0]["metadata"].pop("resourceVersion")
    result, api = call(helm_history_prune, "helm3-secret-deployed", api=FakeApi(objects), keep=1)
    [release] = result["releases"]
    assert release["deleted"] == [2] and not result.get("failed"), result
    [skipped] = release["skipped"]
    assert skipped["revision"] == 1 and "refusing an unconditional write" in skipped["reason"], skipped
    assert writes(api) == ["DELETE sh.helm.release.v1.fx-deployed.v2"]


def test_prune_never_deletes_the_revision_a_pending_release_needs(call: Call) -> None:
    """keep: 1 on a pending-upgrade: revision 1 is the last deployed one, the rollback target."""
    result, api = call(helm_history_prune, PENDING, keep=1)
    assert result["changed"] is False and result["totals"]["deleted"] == 0, result
    assert writes(api) == []


# --- helm_release_backup --------------------------------------------------------------------------------------------


def test_backup_in_check_mode_names_the_directory_and_writes_nothing(tmp_path: Path, call: Call) -> None:
    result, api = call(helm_release_backup, PENDING, backup_dir=str(tmp_path), _ansible_check_mode=True)
    assert result["changed"] is True and result["files"] == [], result
    assert result["directory"] == os.path.join(str(tmp_path), "fixture-h3-secret-pending-upgrade", "fx-pending-upgrade")
    assert not any(tmp_path.iterdir()) and api.requests == []


@pytest.mark.parametrize("export", [False, True])
def test_backup_writes_private_files_of_every_record(export: bool, tmp_path: Path, call: Call) -> None:
    result, api = call(helm_release_backup, PENDING, backup_dir=str(tmp_path), export=export)
    # A backup: the records as read, the newest values and manifest (what `helm get` shows); an export: the records.
    assert result["changed"] is True and len(result["files"]) == (1 if export else 3), result
    history = json.loads(Path(result["files"][0]).read_text())
    assert history["kind"] == "List"
    assert [o["metadata"]["name"] for o in history["items"]] == [
        "sh.helm.release.v1.fx-pending-upgrade.v1",
        "sh.helm.release.v1.fx-pending-upgrade.v2",
    ]
    assert all(("uid" in o["metadata"]) is not export for o in history["items"])
    for name in result["files"]:
        path = Path(name)
        assert path.is_file() and path.stat().st_size > 0
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert str(path).startswith(result["directory"])
    assert writes(api) == []


def test_backup_of_a_missing_release_says_so(tmp_path: Path, call: Call) -> None:
    result, _api = call(helm_release_backup, PENDING, backup_dir=str(tmp_path), release="gone")
    assert result.get("failed") is True
    assert (
        result["msg"] == "release 'gone' not found in namespace fixture-h3-secret-pending-upgrade; nothing to back up"
    )
    assert not any(tmp_path.iterdir())


# --- helm_release_recover -------------------------------------------------------------------------------------------


@pytest.fixture
def fake_helm(tmp_path: Path) -> tuple[Path, Path]:
    """A `helm` that answers `version` only and logs every call: recover must run nothing else in these tests."""
    log = tmp_path / "helm-calls"
    helm = tmp_path / "helm"
    lines = [
        f'echo "$*" >> {shlex.quote(str(log))}',
        '[ "$1" = version ] && { echo v3.22.0; exit 0; }',
        'echo "not faked" >&2',
        "exit 9",
    ]
    helm.write_text("#!/bin/sh\n" + "\n".join(lines) + "\n")
    helm.chmod(0o755)
    return helm, log


@pytest.mark.parametrize(
    ("stem", "args", "said"),
    [
        ("helm3-secret-failed-hook", {"action": "uninstall"}, "allow_destructive"),
        ("helm3-secret-deployed", {"action": "rollback", "when_status": ["failed"]}, None),
        (
            "helm3-secret-failed-hook",
            {"action": "rollback", "expected_revision": 1},
            "expected its newest revision at revision 1; it is now revision 2, status failed",
        ),
    ],
)
def test_recover_refuses_before_helm_runs(
    stem: str,
    args: dict[str, t.Any],
    said: str | None,
    fake_helm: tuple[Path, Path],
    call: Call,
) -> None:
    helm, log = fake_helm
    backups = helm.parent / "backups"
    result, api = call(helm_release_recover, stem, helm_binary=str(helm), backup_dir=str(backups), **args)
    if said is None:  # a status not in when_status: nothing to do, said so
        assert result["changed"] is False and not result.get("failed"), result
    else:
        assert result.get("failed") is True and said in result["msg"], result
        assert not result["msg"].startswith("unexpected error")
    assert log.read_text().split("\n")[:-1] == ["version --template {{.Version}}"]
    assert writes(api) == [] and not backups.exists()


def test_recover_in_check_mode_shows_the_helm_command_and_runs_none(
    fake_helm: tuple[Path, Path], tmp_path: Path, call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nor does it write the private kubeconfig Helm would read: Helm runs in check mode only to render an upgrade."""
    helm, log = fake_helm

    def no_environment(*_args: t.Any, **_kwargs: t.Any) -> dict[str, str]:
        raise AssertionError("check mode of a rollback built Helm's environment")

    monkeypatch.setattr(helm_release_recover, "helm_environment", no_environment)
    result, api = call(
        helm_release_recover,
        "helm3-secret-failed-hook",
        helm_binary=str(helm),
        action="rollback",
        backup_dir=str(tmp_path / "backups"),
        _ansible_check_mode=True,
    )
    assert result["changed"] is True and not result.get("failed"), result
    assert (result["revision_before"], result["target_revision"], result["status_before"]) == (2, 1, "failed")
    assert result["command"].startswith(f"{helm} rollback fx-failed-hook 1 ")
    assert log.read_text().split("\n")[:-1] == ["version --template {{.Version}}"]
    assert writes(api) == [] and not (tmp_path / "backups").exists()
