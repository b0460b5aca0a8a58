"""Restoring a release's records from a backup: what is read, what is decided, what is written
(the records recorded from real Helm 3 and Helm 4, a fake API that answers writes as the API server does)."""

from __future__ import annotations

import copy
import datetime
import json
import typing as t
from pathlib import Path

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils import _release_codec as codec
from ansible_collections.helmops.recovery.plugins.module_utils._backup import export_release, save_records
from ansible_collections.helmops.recovery.plugins.module_utils._errors import ModuleError
from ansible_collections.helmops.recovery.plugins.module_utils._k8s import KubeConflict
from ansible_collections.helmops.recovery.plugins.module_utils._restore import (
    RestoreOptions,
    apply_restore,
    backup_replaced,
    load_backup,
    plan_restore,
    record_event,
)
from ansible_collections.helmops.recovery.plugins.module_utils._storage import StoredRecord
from fake_api import NOW, FakeApi, recorded

ROOT = Path(__file__).resolve().parents[4]
CORPUS = sorted((ROOT / "tests" / "hostile" / "backups").glob("*.json"))


def with_status(obj: dict[str, t.Any], driver: codec.Driver, status: str) -> dict[str, t.Any]:
    """The record as Helm (or an unlock) rewrites it with another status, label and payload alike."""
    changed = copy.deepcopy(obj)
    release = codec.with_status(codec.decode_record(obj, driver).release, status)
    changed["data"]["release"] = codec.payload_value_for_object(codec.encode_payload(release), driver)
    changed["metadata"]["labels"]["status"] = status
    changed["metadata"]["resourceVersion"] = str(int(changed["metadata"]["resourceVersion"]) + 1)
    return changed


def next_revision(obj: dict[str, t.Any], driver: codec.Driver, *, after_the_backup: bool) -> dict[str, t.Any]:
    """A newer revision of the same release: one a rollback wrote after the backup (Helm stamps its
    info.last_deployed as it starts; a minute ahead here, so it is after any backup the test takes), or one
    the backup never held though it is older (the newest revisions a prune keeps)."""
    release = copy.deepcopy(codec.decode_record(obj, driver).release)
    revision = int(release["version"]) + 1
    release["version"] = revision
    if after_the_backup:
        ahead = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)
        release["info"]["last_deployed"] = ahead.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    newer = copy.deepcopy(obj)
    newer["metadata"]["name"] = codec.object_name(release["name"], revision)
    newer["metadata"]["labels"]["version"] = str(revision)
    newer["metadata"]["uid"] = f"uid-newer-{revision}"
    newer["data"]["release"] = codec.payload_value_for_object(codec.encode_payload(release), driver)
    return newer


def backup_file(tmp_path: Path, objects: list[dict[str, t.Any]]) -> str:
    meta = objects[0]["metadata"]
    return save_records(str(tmp_path / "b"), meta["namespace"], meta["labels"]["name"], "backup", objects)


# --- reading ------------------------------------------------------------------


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_a_hostile_backup_is_refused_naming_the_file_and_the_problem(path: Path, tmp_path: Path) -> None:
    entry = json.loads(path.read_text())
    file = tmp_path / f"{path.stem}.json"
    file.write_text(entry["text"])
    with pytest.raises(ModuleError) as refused:
        load_backup([str(file)])
    assert entry["message"] in str(refused.value) and str(file) in str(refused.value)


def test_the_corpus_has_every_kind_of_bad_backup() -> None:
    assert len(CORPUS) >= 11


@pytest.mark.parametrize(
    ("case", "make", "message"),
    [
        ("no such path", lambda d: d / "missing", "no such file or directory"),
        ("an empty directory", lambda d: d, "holds no backup files"),
        ("a file larger than any history", lambda d: _sparse(d / "huge.json"), "more than any release history"),
    ],
)
def test_a_path_that_holds_no_backup_is_refused(
    case: str, make: t.Callable[[Path], Path], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ModuleError, match=message):
        load_backup([str(make(tmp_path))])


def _sparse(path: Path) -> Path:
    with path.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)  # sparse: no disk or memory is used to make it
    return path


def test_a_directory_merges_its_backups_newest_copy_first_and_leaves_out_restores_own(tmp_path: Path) -> None:
    driver, objects = recorded("helm3-secret-pending-upgrade")
    directory = tmp_path / "b" / objects[0]["metadata"]["namespace"] / "fx-pending-upgrade"
    older = backup_file(tmp_path, objects)  # revision 2 pending-upgrade
    newer = backup_file(tmp_path, [with_status(objects[1], driver, "failed")])
    (directory / "values.20261124T000000.000000Z.yaml").write_text("secret: x\n")
    save_records(str(tmp_path / "b"), objects[0]["metadata"]["namespace"], "fx-pending-upgrade", "x.before-restore", [])
    backup = load_backup([str(directory)])
    assert backup.files == [older, newer]
    assert {r: record.status for r, record in backup.records.items()} == {1: "deployed", 2: "failed"}
    assert (backup.release, backup.driver, backup.newest) == ("fx-pending-upgrade", driver, 2)


# --- deciding -----------------------------------------------------------------

FIXTURES = ("helm3-secret-pending-upgrade", "helm4-configmap-deployed")


def live_and_backup(fixture: str, change: str) -> tuple[codec.Driver, list[dict[str, t.Any]], list[dict[str, t.Any]]]:
    """(driver, the records the backup holds, the records the cluster has after `change`)."""
    driver, objects = recorded(fixture)
    live = copy.deepcopy(objects)
    if change == "records deleted (prune, uninstall, delete_revision)":
        live = live[:-1]
    elif change == "newest rewritten (unlock, mark_deployed)":
        live[-1] = with_status(live[-1], driver, "failed")
    elif change == "a newer revision written (rollback)":
        live.append(next_revision(live[-1], driver, after_the_backup=True))
    elif change == "a newer revision the backup never held (prune)":
        live.append(next_revision(live[-1], driver, after_the_backup=False))
    elif change == "the release gone (uninstall)":
        live = []
    return driver, objects, live


PLANS = [
    # (change since the backup, options, actions by revision, or the refusal's words)
    ("nothing", {}, ["keep", "keep"], None),
    ("records deleted (prune, uninstall, delete_revision)", {}, ["keep", "create"], None),
    ("the release gone (uninstall)", {}, ["create", "create"], None),
    ("newest rewritten (unlock, mark_deployed)", {}, None, "exist and differ from the backup; set overwrite"),
    ("newest rewritten (unlock, mark_deployed)", {"overwrite": True}, ["keep", "replace"], None),
    ("a newer revision written (rollback)", {}, None, "newer than the backup's newest"),
    ("a newer revision written (rollback)", {"discard_newer": True}, ["keep", "keep", "delete"], None),
    ("a newer revision the backup never held (prune)", {}, ["keep", "keep", "keep"], None),
    ("nothing", {"release": "another"}, None, "not release 'another'"),
    ("nothing", {"namespace": "elsewhere"}, None, "not namespace 'elsewhere'"),
]


@pytest.mark.parametrize("fixture", FIXTURES)
@pytest.mark.parametrize("case", PLANS, ids=[f"{p[0]} {p[1]}" for p in PLANS])
def test_the_plan_creates_what_is_missing_and_touches_nothing_else_unasked(
    fixture: str, case: tuple[str, dict[str, t.Any], list[str] | None, str | None], tmp_path: Path
) -> None:
    change, options, actions, refusal = case
    _driver, objects, live = live_and_backup(fixture, change)
    backup = load_backup([backup_file(tmp_path, objects)])
    api = FakeApi(live, namespaces=[objects[0]["metadata"]["namespace"]])
    wanted = RestoreOptions(paths=[], **options)
    if refusal:
        with pytest.raises(ModuleError, match=refusal):
            plan_restore(api, backup, wanted, NOW)  # type: ignore[arg-type]
        return
    plan = plan_restore(api, backup, wanted, NOW)  # type: ignore[arg-type]
    assert actions
    done = [step.action for step in plan.steps]  # the table is for two revisions; older ones go as the first
    assert done[-len(actions) :] == actions and set(done[: -len(actions)]) <= {actions[0]}
    assert all(not r.startswith(("POST", "PUT", "DELETE")) for r in api.requests)


def test_a_driver_other_than_the_backups_is_refused(tmp_path: Path) -> None:
    _driver, objects = recorded("helm3-secret-pending-upgrade")
    backup = load_backup([backup_file(tmp_path, objects)])
    with pytest.raises(ModuleError, match="restored to the same namespace and driver"):
        plan_restore(FakeApi([]), backup, RestoreOptions(paths=[], driver="configmap"), NOW)  # type: ignore[arg-type]


def test_an_import_into_a_cluster_without_the_namespace_is_refused_before_any_write(tmp_path: Path) -> None:
    _driver, objects = recorded("helm4-configmap-deployed")
    backup = load_backup([backup_file(tmp_path, objects)])
    api = FakeApi([])
    with pytest.raises(ModuleError, match="create it first"):
        plan_restore(api, backup, RestoreOptions(paths=[]), NOW)  # type: ignore[arg-type]
    assert api.requests == ["LIST owner=helm,name=fx-deployed", "GET namespace fixture-h4-configmap-deployed"]


# --- writing ------------------------------------------------------------------

CHANGES = [
    ("records deleted (prune, uninstall, delete_revision)", {}),
    ("the release gone (uninstall)", {}),
    ("newest rewritten (unlock, mark_deployed)", {"overwrite": True}),
    ("a newer revision written (rollback)", {"discard_newer": True}),
]


@pytest.mark.parametrize("fixture", FIXTURES)
@pytest.mark.parametrize(("change", "options"), CHANGES, ids=[c[0] for c in CHANGES])
def test_a_restore_brings_back_what_helm_reads_and_a_second_run_changes_nothing(
    fixture: str, change: str, options: dict[str, t.Any], tmp_path: Path
) -> None:
    driver, objects, live = live_and_backup(fixture, change)
    path = backup_file(tmp_path, objects)
    namespace = objects[0]["metadata"]["namespace"]
    api = FakeApi(copy.deepcopy(live), namespaces=[namespace])
    wanted = RestoreOptions(paths=[path], backup_dir=str(tmp_path / "b"), **options)
    plan = plan_restore(api, load_backup([path]), wanted, NOW)  # type: ignore[arg-type]
    replaced = backup_replaced(plan, wanted.backup_dir)
    apply_restore(api, plan)  # type: ignore[arg-type]
    assert record_event(api, plan) is None  # type: ignore[arg-type]

    def helm_reads(items: list[dict[str, t.Any]]) -> dict[str, t.Any]:
        return {o["metadata"]["name"]: (o["data"], o["metadata"]["labels"], o.get("type")) for o in items}

    assert helm_reads(api.objects) == helm_reads(objects)
    changed_now = {s.revision for s in plan.writes}
    for obj in api.objects:
        annotations = obj["metadata"].get("annotations") or {}
        restored = codec.parse_object_name(obj["metadata"]["name"])[1] in changed_now  # type: ignore[index]
        assert ("helmops.recovery/restored-from" in annotations) == restored
        assert obj["metadata"]["uid"] != "" and obj["metadata"]["resourceVersion"] != ""
    if replaced:  # what the restore replaced or deleted can be restored in turn
        assert {o["metadata"]["name"] for o in json.loads(Path(replaced).read_text())["items"]} == {
            o["metadata"]["name"]
            for o in live
            if codec.parse_object_name(o["metadata"]["name"])[1] in changed_now  # type: ignore[index]
        }
    assert api.events[0]["reason"] == "HelmReleaseRestored" and api.events[0]["regarding"]["kind"] == (
        "Secret" if driver == "secret" else "ConfigMap"
    )
    again = plan_restore(api, load_backup([path]), wanted, NOW)  # type: ignore[arg-type]
    assert again.writes == []


def test_a_record_changed_after_the_plan_read_it_is_never_overwritten(tmp_path: Path) -> None:
    driver, objects, live = live_and_backup("helm3-secret-pending-upgrade", "newest rewritten (unlock, mark_deployed)")
    api = FakeApi(copy.deepcopy(live))
    path = backup_file(tmp_path, objects)
    plan = plan_restore(api, load_backup([path]), RestoreOptions(paths=[path], overwrite=True), NOW)  # type: ignore[arg-type]
    api.objects[1] = with_status(api.objects[1], driver, "superseded")  # Helm wrote it meanwhile
    with pytest.raises(KubeConflict):
        apply_restore(api, plan)  # type: ignore[arg-type]
    assert api.objects[1]["metadata"]["labels"]["status"] == "superseded"


def test_an_export_holds_the_records_without_this_clusters_identity_and_imports(tmp_path: Path) -> None:
    driver, objects = recorded("helm4-configmap-deployed")
    namespace = objects[0]["metadata"]["namespace"]
    stored = [StoredRecord(record=codec.decode_record(o, driver), obj=o) for o in objects]
    path = export_release(str(tmp_path), namespace, "fx-deployed", stored)
    items = json.loads(Path(path).read_text())["items"]
    assert ".export." in path and all(
        set(i["metadata"]) <= {"name", "namespace", "labels", "annotations"} for i in items
    )
    api = FakeApi([], namespaces=[namespace])  # the other cluster
    plan = plan_restore(api, load_backup([path]), RestoreOptions(paths=[path]), NOW)  # type: ignore[arg-type]
    apply_restore(api, plan)  # type: ignore[arg-type]
    assert [o["metadata"]["name"] for o in api.objects] == [o["metadata"]["name"] for o in objects]


def test_pick_oldest_goes_back_to_before_the_first_of_several_steps(tmp_path: Path) -> None:
    """An unlock (its backup: revision 2 pending-upgrade), then an upgrade (its backup: every record, revision 2
    failed) that wrote revision 3: the oldest copies, and revision 3 counted as newer than the first backup."""
    driver, objects = recorded("helm3-secret-pending-upgrade")
    first = backup_file(tmp_path, [objects[1]])
    unlocked = with_status(objects[1], driver, "failed")
    second = backup_file(tmp_path, [objects[0], unlocked])
    upgraded = next_revision(unlocked, driver, after_the_backup=True)
    api = FakeApi([with_status(objects[0], driver, "superseded"), unlocked, upgraded])
    newest = load_backup([first, second])
    assert newest.records[2].status == "failed" and newest.pick == "newest"
    oldest = load_backup([second, first], pick="oldest")
    assert [oldest.records[r].status for r in (1, 2)] == ["deployed", "pending-upgrade"]
    plan = plan_restore(api, oldest, RestoreOptions(paths=[], overwrite=True, discard_newer=True), NOW)  # type: ignore[arg-type]
    assert [(s.revision, s.action, s.after) for s in plan.steps] == [
        (1, "replace", "deployed"),
        (2, "replace", "pending-upgrade"),
        (3, "delete", None),
    ]
