"""helm_release_map_apis through its real main(): check mode, the rewrite, idempotence and refusals, against a fake
API that serves records recorded from real Helm and a discovery in which their apps/v1 Deployment is served only at
another version (the cluster paths, with versions really turned off, are in tests/integration/test_removed_api.py)."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils import _release_codec as codec
from ansible_collections.helmops.recovery.plugins.modules import helm_release_map_apis
from fake_api import FakeApi, recorded
from module_main import WRITES, run_main

# apps/v1 is no longer served; the Deployment is served at apps/v2 (what a cluster upgrade does to a beta version).
MOVED = {"v1": ["ConfigMap", "Secret", "Service", "Pod"], "apps/v2": ["Deployment"], "batch/v1": ["Job"]}
GONE = {"v1": ["ConfigMap", "Secret", "Service", "Pod"], "batch/v1": ["Job"]}


def api_for(stem: str, served: dict[str, list[str]]) -> tuple[FakeApi, codec.Driver]:
    driver, objects = recorded(stem)
    return FakeApi(objects, served=served), driver


def records(api: FakeApi, driver: codec.Driver) -> dict[int, codec.ReleaseRecord]:
    decoded = [codec.decode_record(obj, driver) for obj in api.objects]
    return {record.revision: record for record in decoded}


def args(stem: str, tmp_path: Path, **extra: t.Any) -> dict[str, t.Any]:
    driver, objects = recorded(stem)
    meta = objects[0]["metadata"]
    return {
        "release": meta["labels"]["name"],
        "namespace": meta["namespace"],
        "driver": driver,
        "backup_dir": str(tmp_path / "backups"),
        **extra,
    }


def test_check_mode_reports_the_mapping_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api, driver = api_for("helm4-configmap-failed-hook", MOVED)
    before = records(api, driver)
    result = run_main(
        helm_release_map_apis,
        {**args("helm4-configmap-failed-hook", tmp_path), "_ansible_check_mode": True, "_ansible_diff": True},
        api,
        monkeypatch,
        capsys,
    )
    assert result["changed"] is True, result
    assert [m["revision"] for m in result["mapped"]] == sorted(int(n) for n in result["read"])
    assert {c["to"] for m in result["mapped"] for c in m["changes"]} == {"apps/v2"}
    assert not [r for r in api.requests if r.split()[0] in WRITES], api.requests
    assert not (tmp_path / "backups").exists()
    assert "manifest: Deployment" in str(result["diff"]["before"]) and "apiVersion apps/v2" in str(
        result["diff"]["after"]
    )
    assert "data:" not in str(result["diff"])  # never a manifest
    assert records(api, driver).keys() == before.keys()


@pytest.mark.parametrize("stem", ["helm3-secret-failed-hook", "helm4-configmap-pending-upgrade"])
def test_the_rewrite_changes_only_the_manifests_and_a_second_run_changes_nothing(
    stem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api, driver = api_for(stem, MOVED)
    before = records(api, driver)
    result = run_main(helm_release_map_apis, args(stem, tmp_path), api, monkeypatch, capsys)
    assert result["changed"] is True and not result.get("failed"), result
    after = records(api, driver)
    mapped = {m["revision"] for m in result["mapped"]}
    assert mapped == {int(n) for n in result["read"]}
    for revision, old in before.items():
        new = after[revision]
        expected_manifest = (
            old.release["manifest"].replace(
                "apiVersion: apps/v1\nkind: Deployment", "apiVersion: apps/v2\nkind: Deployment"
            )
            if revision in mapped
            else old.release["manifest"]
        )
        assert new.release["manifest"] == expected_manifest
        assert {k: v for k, v in new.release.items() if k != "manifest"} == {
            k: v for k, v in old.release.items() if k != "manifest"
        }, "every other field of the record stays, status and description included"
        assert new.meta.status_label == old.meta.status_label
    assert Path(result["backup_file"]).is_file()
    assert [e["reason"] for e in api.events] == ["HelmReleaseApisMapped"]
    again = run_main(helm_release_map_apis, args(stem, tmp_path), api, monkeypatch, capsys)
    assert again["changed"] is False and again["mapped"] == [], again


REFUSALS = [
    # (case, served, extra arguments, words in msg)
    ("a kind served at no version", GONE, {}, "cannot be mapped: the API serves the kind at no version"),
    ("a revision the release does not have", MOVED, {"revisions": [99]}, "has no revision 99"),
    ("a pending newest revision that may still be running", MOVED, {"stale_after": 10**10}, "may still be running"),
    ("an unknown option", MOVED, {"mappings": {}}, "Unsupported parameters"),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c[0] for c in REFUSALS])
def test_refusals_name_the_cause_and_write_nothing(
    case: tuple[str, dict[str, list[str]], dict[str, t.Any], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _name, served, extra, words = case
    stem = "helm3-secret-pending-upgrade"
    api, _driver = api_for(stem, served)
    result = run_main(helm_release_map_apis, args(stem, tmp_path, **extra), api, monkeypatch, capsys)
    assert result.get("failed") is True and words in result["msg"], result
    assert not [r for r in api.requests if r.split()[0] in WRITES], api.requests
    assert not (tmp_path / "backups").exists()
