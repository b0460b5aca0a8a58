"""Restoring a release's records from a backup: what is read, what is decided, what is written
(the records recorded from real Helm 3 and Helm 4, a fake API that answers writes as the API server does)."""

from __future__ import annotations

import copy
import json
import os
import typing as t
from pathlib import Path

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils import _release_codec as codec
from ansible_collections.helmops.recovery.plugins.module_utils._backup import export_release, save_records, taken_from
from ansible_collections.helmops.recovery.plugins.module_utils._errors import ModuleError
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
HERE = FakeApi.host


def with_status(obj: dict[str, t.Any], driver: codec.Driver, status: str) -> dict[str, t.Any]:
    """The record as Helm (or an unlock) rewrites it with another status, label and payload alike."""
    changed = copy.deepcopy(obj)
    release = codec.with_status(codec.decode_record(obj, driver).release, status)
    changed["data"]["release"] = codec.payload_value_for_object(codec.encode_payload(release), driver)
    changed["metadata"]["labels"]["status"] = status
    changed["metadata"]["resourceVersion"] = str(int(changed["metadata"]["resourceVersion"]) + 1)
    return changed


def next_revision(obj: dict[str, t.Any], driver: codec.Driver) -> dict[str, t.Any]:
    """A newer revision of the same release, a new object (what a rollback or upgrade writes)."""
    release = copy.deepcopy(codec.decode_record(obj, driver).release)
    revision = int(release["version"]) + 1
    release["version"] = revision
    newer = copy.deepcopy(obj)
    newer["metadata"]["name"] = codec.object_name(release["name"], revision)
    newer["metadata"]["labels"]["version"] = str(revision)
    newer["metadata"]["uid"] = f"uid-newer-{revision}"
    newer["data"]["release"] = codec.payload_value_for_object(codec.encode_payload(release), driver)
    return newer


def recreated(obj: dict[str, t.Any], driver: codec.Driver) -> dict[str, t.Any]:
    """The same revision number written again as a new object (an uninstall, then a new install)."""
    again = copy.deepcopy(obj)
    release = codec.with_status(codec.decode_record(obj, driver).release, "deployed", "Install complete, again")
    again["data"]["release"] = codec.payload_value_for_object(codec.encode_payload(release), driver)
    again["metadata"]["labels"]["status"] = "deployed"
    again["metadata"]["uid"] = "uid-reinstalled"
    return again


def backup_file(
    tmp_path: Path,
    objects: list[dict[str, t.Any]],
    history: list[dict[str, t.Any]] | None = None,
    cluster: str = HERE,
    name: str = "backup",
) -> str:
    """A backup of `objects`, taken when the release's records were `history` (by default, those objects)."""
    meta = objects[0]["metadata"]
    taken = taken_from(cluster, history if history is not None else objects)
    return save_records(str(tmp_path / "b"), meta["namespace"], meta["labels"]["name"], name, objects, taken=taken)


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
    assert len(CORPUS) >= 14


@pytest.mark.parametrize(
    ("case", "make", "message"),
    [
        ("no such path", lambda d: d / "missing", "no such file or directory"),
        ("an empty directory", lambda d: d, "holds no backup files"),
        ("a file larger than a restore reads", lambda d: _sparse(d / "huge.json"), "more than a restore reads"),
    ],
)
def test_a_path_that_holds_no_backup_is_refused(
    case: str, make: t.Callable[[Path], Path], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ModuleError, match=message):
        load_backup([str(make(tmp_path))])


def _sparse(path: Path) -> Path:
    with path.open("wb") as handle:
        handle.truncate(300 * 1024 * 1024)  # sparse: no disk or memory is used to make it
    return path


def test_a_directory_is_its_newest_step_never_older_copies_of_a_history_that_moved_on(tmp_path: Path) -> None:
    """Days ago a full backup (revision 1 only); then revision 2 was written and an unlock backed it up, then
    a prune-like step saved two files with the same history. A directory restore goes back to that newest step
    alone: an older copy of revision 1 never comes back over what the cluster has now."""
    driver, objects = recorded("helm3-secret-pending-upgrade")
    directory = tmp_path / "b" / objects[0]["metadata"]["namespace"] / "fx-pending-upgrade"
    days_ago = backup_file(tmp_path, [with_status(objects[0], driver, "deployed")], history=objects[:1])
    first = backup_file(tmp_path, [objects[1]], history=objects)
    second = backup_file(tmp_path, [objects[0]], history=objects)
    (directory / "values.20261124T000000.000000Z.yaml").write_text("secret: x\n")
    (directory / ".partial-x.json").write_text("{")  # an interrupted write's temporary file
    backup_file(tmp_path, [objects[1]], history=objects, name="sh.helm.release.v1.fx-pending-upgrade.before-restore")
    backup = load_backup([str(directory)])
    assert backup.files == [first, second] and days_ago not in backup.files
    assert {r: record.status for r, record in backup.records.items()} == {1: "deployed", 2: "pending-upgrade"}
    assert (backup.release, backup.driver, backup.newest, backup.cluster) == ("fx-pending-upgrade", driver, 2, HERE)


def test_a_status_label_edited_by_hand_is_restored_as_saved_with_a_warning(tmp_path: Path) -> None:
    """`kubectl label ... status=failed` is a common manual unlock, and Helm keeps reading such a record."""
    _driver, objects = recorded("helm3-secret-pending-upgrade")
    edited = copy.deepcopy(objects)
    edited[1]["metadata"]["labels"]["status"] = "failed"
    backup = load_backup([backup_file(tmp_path, edited)])
    assert backup.records[2].obj["metadata"]["labels"]["status"] == "failed"
    assert backup.warnings == [
        f"revision 2 ({os.path.basename(backup.files[0])}): its status label says 'failed', its payload "
        "'pending-upgrade'; restored as saved (Helm reads the payload)"
    ]


# --- deciding -----------------------------------------------------------------

FIXTURES = ("helm3-secret-pending-upgrade", "helm4-configmap-deployed")


def state_after(fixture: str, change: str) -> tuple[codec.Driver, list[dict[str, t.Any]], list[dict[str, t.Any]]]:
    """(driver, the records the backup holds, the records the cluster has after `change`); the backup was taken
    when the release had exactly the recorded records."""
    driver, objects = recorded(fixture)
    live = copy.deepcopy(objects)
    if change == "records deleted (prune, delete_revision)":
        live = live[:-1]
    elif change == "newest rewritten (unlock, mark_deployed)":
        live[-1] = with_status(live[-1], driver, "failed")
    elif change == "a newer revision written (rollback, upgrade)":
        live.append(next_revision(live[-1], driver))
    elif change == "the release gone (uninstall)":
        live = []
    elif change == "uninstalled, then installed again":  # and upgraded up to the revision before the newest
        live = [recreated(obj, driver) for obj in objects[:-1]]
    return driver, objects, live


PLANS = [
    # (change since the backup, options, actions by revision, or the refusal's words)
    ("nothing", {}, ["keep", "keep"], None),
    ("records deleted (prune, delete_revision)", {}, ["keep", "create"], None),
    ("the release gone (uninstall)", {}, ["create", "create"], None),
    ("newest rewritten (unlock, mark_deployed)", {}, None, "exist and differ from the backup; set overwrite"),
    ("newest rewritten (unlock, mark_deployed)", {"overwrite": True}, ["keep", "replace"], None),
    ("a newer revision written (rollback, upgrade)", {}, None, "written after the backup was taken"),
    ("a newer revision written (rollback, upgrade)", {"discard_newer": True}, ["keep", "keep", "delete"], None),
    ("uninstalled, then installed again", {"overwrite": True}, None, "written after the backup was taken"),
    ("uninstalled, then installed again", {"discard_newer": True}, ["replace", "create"], None),
    ("nothing", {"release": "another"}, None, "not release 'another'"),
    ("nothing", {"namespace": "elsewhere"}, None, "not namespace 'elsewhere'"),
]


@pytest.mark.parametrize("fixture", FIXTURES)
@pytest.mark.parametrize("case", PLANS, ids=[f"{p[0]} {p[1]}" for p in PLANS])
def test_the_plan_creates_what_is_missing_and_touches_nothing_else_unasked(
    fixture: str, case: tuple[str, dict[str, t.Any], list[str] | None, str | None], tmp_path: Path
) -> None:
    change, options, actions, refusal = case
    _driver, objects, live = state_after(fixture, change)
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


def test_undoing_a_prune_keeps_the_revisions_the_prune_kept_and_refuses_over_later_ones(tmp_path: Path) -> None:
    """A prune saves only the old records it deletes; its header lists the newer ones it kept. They are left
    alone; a revision an upgrade wrote after the prune is newer history."""
    driver, objects = recorded("helm4-configmap-deployed")
    pruned = backup_file(tmp_path, objects[:1], history=objects)
    api = FakeApi(copy.deepcopy(objects[1:]))
    plan = plan_restore(api, load_backup([pruned]), RestoreOptions(paths=[]), NOW)  # type: ignore[arg-type]
    assert [(s.revision, s.action) for s in plan.steps] == [(1, "create"), (2, "keep"), (3, "keep")]
    api.objects.append(next_revision(api.objects[-1], driver))
    with pytest.raises(ModuleError, match=r"revision\(s\) 4 \(deployed\) were written after the backup"):
        plan_restore(api, load_backup([pruned]), RestoreOptions(paths=[]), NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "options", "refusal"),
    [
        ("a backup of another cluster", {}, "taken on the cluster at https://staging.example"),
        ("the same cluster under another address", {"other_cluster": True}, None),
    ],
)
def test_a_backup_of_another_cluster_is_never_restored_here_by_mistake(
    case: str, options: dict[str, t.Any], refusal: str | None, tmp_path: Path
) -> None:
    _driver, objects = recorded("helm3-secret-pending-upgrade")
    backup = load_backup([backup_file(tmp_path, objects, cluster="https://staging.example")])
    api = FakeApi(copy.deepcopy(objects))
    if refusal:
        with pytest.raises(ModuleError, match=refusal):
            plan_restore(api, backup, RestoreOptions(paths=[], **options), NOW)  # type: ignore[arg-type]
    else:
        plan = plan_restore(api, backup, RestoreOptions(paths=[], **options), NOW)  # type: ignore[arg-type]
        assert plan.writes == []  # the same records: the same uids


def test_a_driver_other_than_the_backups_is_refused(tmp_path: Path) -> None:
    _driver, objects = recorded("helm3-secret-pending-upgrade")
    backup = load_backup([backup_file(tmp_path, objects)])
    with pytest.raises(ModuleError, match="restored to the same namespace and driver"):
        plan_restore(FakeApi([]), backup, RestoreOptions(paths=[], driver="configmap"), NOW)  # type: ignore[arg-type]


def test_records_of_the_release_under_the_other_driver_are_refused(tmp_path: Path) -> None:
    _driver, objects = recorded("helm4-configmap-deployed")
    _other, secrets = recorded("helm4-secret-deployed")  # the same release name, stored as Secrets
    for obj in secrets:
        obj["metadata"]["namespace"] = objects[0]["metadata"]["namespace"]
    backup = load_backup([backup_file(tmp_path, objects)])
    with pytest.raises(ModuleError, match="has secret records here"):
        plan_restore(FakeApi(secrets), backup, RestoreOptions(paths=[]), NOW)  # type: ignore[arg-type]


def test_an_import_into_a_cluster_without_the_namespace_is_refused_before_any_write(tmp_path: Path) -> None:
    _driver, objects = recorded("helm4-configmap-deployed")
    backup = load_backup([backup_file(tmp_path, objects)])
    api = FakeApi([])
    with pytest.raises(ModuleError, match="create it first"):
        plan_restore(api, backup, RestoreOptions(paths=[]), NOW)  # type: ignore[arg-type]
    assert "GET namespace fixture-h4-configmap-deployed" in api.requests
    assert not [r for r in api.requests if r.startswith(("POST", "PUT", "DELETE"))]


def test_a_record_to_create_that_exists_unlisted_is_refused_before_any_write(tmp_path: Path) -> None:
    driver, objects = recorded("helm3-secret-pending-upgrade")
    relabelled = copy.deepcopy(objects[1])
    relabelled["metadata"]["labels"]["owner"] = "someone"  # the label selector no longer lists it
    api = FakeApi([objects[0], relabelled])
    backup = load_backup([backup_file(tmp_path, objects)])
    with pytest.raises(ModuleError, match="exists but is not listed as a record"):
        plan_restore(api, backup, RestoreOptions(paths=[]), NOW)  # type: ignore[arg-type]
    assert driver == "secret"


@pytest.mark.parametrize(
    ("case", "newest", "force", "refusal"),
    [
        ("a fresh uninstalling record (a Helm client may still run)", "uninstalling", False, "may still be running"),
        ("a corrupt newest record (no verdict)", "corrupt", False, "cannot be read"),
        ("a corrupt newest record, forced", "corrupt", True, None),
    ],
)
def test_a_release_that_may_be_locked_is_restored_only_forced_or_stale(
    case: str, newest: str, force: bool, refusal: str | None, tmp_path: Path
) -> None:
    driver, objects = recorded("helm3-secret-pending-upgrade")
    live = copy.deepcopy(objects)
    if newest == "uninstalling":
        live[1] = with_status(live[1], driver, "uninstalling")
        live[1]["metadata"]["labels"]["modifiedAt"] = str(int(NOW))  # written just now
    else:
        live[1]["data"]["release"] = "bm90IGd6aXA="  # "not gzip"
    backup = load_backup([backup_file(tmp_path, objects)])
    wanted = RestoreOptions(paths=[], overwrite=True, force=force)
    if refusal:
        with pytest.raises(ModuleError, match=refusal):
            plan_restore(FakeApi(live), backup, wanted, NOW)  # type: ignore[arg-type]
    else:
        plan = plan_restore(FakeApi(live), backup, wanted, NOW)  # type: ignore[arg-type]
        assert [s.action for s in plan.steps] == ["keep", "replace"] and plan.overridden


# --- writing ------------------------------------------------------------------

CHANGES = [
    ("records deleted (prune, delete_revision)", {}),
    ("the release gone (uninstall)", {}),
    ("newest rewritten (unlock, mark_deployed)", {"overwrite": True}),
    ("a newer revision written (rollback, upgrade)", {"discard_newer": True}),
    ("uninstalled, then installed again", {"discard_newer": True}),
]


@pytest.mark.parametrize("fixture", FIXTURES)
@pytest.mark.parametrize(("change", "options"), CHANGES, ids=[c[0] for c in CHANGES])
def test_a_restore_brings_back_what_helm_reads_and_a_second_run_changes_nothing(
    fixture: str, change: str, options: dict[str, t.Any], tmp_path: Path
) -> None:
    driver, objects, live = state_after(fixture, change)
    path = backup_file(tmp_path, objects)
    namespace = objects[0]["metadata"]["namespace"]
    api = FakeApi(copy.deepcopy(live), namespaces=[namespace])
    wanted = RestoreOptions(paths=[path], backup_dir=str(tmp_path / "b"), **options)
    plan = plan_restore(api, load_backup([path]), wanted, NOW)  # type: ignore[arg-type]
    replaced = backup_replaced(api, plan, wanted.backup_dir)  # type: ignore[arg-type]
    apply_restore(api, plan)  # type: ignore[arg-type]
    assert record_event(api, plan) is None  # type: ignore[arg-type]

    def helm_reads(items: list[dict[str, t.Any]]) -> dict[str, t.Any]:
        return {o["metadata"]["name"]: (o["data"], o["metadata"]["labels"], o.get("type")) for o in items}

    assert helm_reads(api.objects) == helm_reads(objects)
    changed_now = {s.revision for s in plan.writes}
    assert sorted(d["revision"] for d in plan.done) == sorted(changed_now)
    for obj in api.objects:
        annotations = obj["metadata"].get("annotations") or {}
        revision = codec.parse_object_name(obj["metadata"]["name"])[1]  # type: ignore[index]
        assert ("helmops.recovery/restored-from" in annotations) == (revision in changed_now)
    if replaced:  # what the restore replaced or deleted can be restored in turn
        saved = json.loads(Path(replaced).read_text())
        names = {o["metadata"]["name"] for o in saved["items"]}
        assert names == {s.live.obj["metadata"]["name"] for s in plan.writes if s.live}
    assert api.events[0]["reason"] == "HelmReleaseRestored" and api.events[0]["regarding"]["kind"] == (
        "Secret" if driver == "secret" else "ConfigMap"
    )
    again = plan_restore(api, load_backup([path]), wanted, NOW)  # type: ignore[arg-type]
    assert again.writes == []


def test_a_record_changed_after_the_plan_read_it_is_never_overwritten_and_the_failure_says_what_was_done(
    tmp_path: Path,
) -> None:
    driver, objects, live = state_after("helm3-secret-pending-upgrade", "newest rewritten (unlock, mark_deployed)")
    api = FakeApi(copy.deepcopy(live))
    path = backup_file(tmp_path, objects)
    plan = plan_restore(api, load_backup([path]), RestoreOptions(paths=[path], overwrite=True), NOW)  # type: ignore[arg-type]
    api.objects[1] = with_status(api.objects[1], driver, "superseded")  # Helm wrote it meanwhile
    with pytest.raises(ModuleError, match=r"stopped at revision 2 \(replace\).*Done before it: nothing"):
        apply_restore(api, plan)  # type: ignore[arg-type]
    assert api.objects[1]["metadata"]["labels"]["status"] == "superseded"


def test_pick_oldest_goes_back_to_before_the_first_of_several_steps(tmp_path: Path) -> None:
    """An unlock (its backup: revision 2 pending-upgrade), then an upgrade (its backup: every record, revision 2
    failed) that wrote revision 3: the oldest copies, and revision 3 is newer than the first backup."""
    driver, objects = recorded("helm3-secret-pending-upgrade")
    first = backup_file(tmp_path, [objects[1]], history=objects)
    unlocked = with_status(objects[1], driver, "failed")
    second = backup_file(tmp_path, [objects[0], unlocked], history=objects)
    upgraded = next_revision(unlocked, driver)
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


def test_an_export_holds_the_records_without_this_clusters_identity_and_imports_only_where_there_is_none(
    tmp_path: Path,
) -> None:
    driver, objects = recorded("helm4-configmap-deployed")
    namespace = objects[0]["metadata"]["namespace"]
    stored = [StoredRecord(record=codec.decode_record(o, driver), obj=o) for o in objects]
    path = export_release(str(tmp_path), namespace, "fx-deployed", stored, "https://old.example")
    items = json.loads(Path(path).read_text())["items"]
    assert ".export." in path and all(
        set(i["metadata"]) <= {"name", "namespace", "labels", "annotations"} for i in items
    )
    installed_since = [recreated(objects[0], driver)]  # the other cluster already has a revision 1 of its own
    with pytest.raises(ModuleError, match="written after the backup was taken"):
        plan_restore(FakeApi(installed_since), load_backup([path]), RestoreOptions(paths=[path]), NOW)  # type: ignore[arg-type]
    api = FakeApi([], namespaces=[namespace])  # the other cluster
    plan = plan_restore(api, load_backup([path]), RestoreOptions(paths=[path]), NOW)  # type: ignore[arg-type]
    apply_restore(api, plan)  # type: ignore[arg-type]
    assert [o["metadata"]["name"] for o in api.objects] == [o["metadata"]["name"] for o in objects]
