"""history="labels" built from records recorded from real Helm 3 and Helm 4, served by a
stand-in API that applies label selectors, field selectors and metadata-only listings
as the API server does. It must agree with history="full" on everything the diagnosis
decides, read payloads only where a label is not superseded (plus GETs for what that
missed), and keep every identity check for the records it reads."""

from __future__ import annotations

import base64
import copy
import json
import typing as t

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils import _release_codec as codec
from ansible_collections.helmops.recovery.plugins.module_utils._facts import GatherOptions, gather
from ansible_collections.helmops.recovery.plugins.module_utils._k8s import KubeNotFound
from ansible_collections.helmops.recovery.plugins.module_utils._listing import collect, kinds_of_record
from ansible_collections.helmops.recovery.plugins.module_utils._manifest import parse_manifest
from ansible_collections.helmops.recovery.plugins.module_utils._storage import ReleaseStorage
from fake_api import FIXTURES, NOW, FakeApi, recorded


def run(objects: list[dict[str, t.Any]], driver: codec.Driver, history: str) -> tuple[dict[str, t.Any], FakeApi]:
    api = FakeApi(objects)
    options = GatherOptions(inspect_live=False, history=t.cast(t.Any, history), now=NOW)
    facts, errors = gather(t.cast(t.Any, api), driver, options)
    assert len(facts) == 1, (facts, errors)
    return {**facts[0], "scope_errors": errors}, api


def decided(release: dict[str, t.Any]) -> dict[str, t.Any]:
    """What triage acts on."""
    return {
        "status": release["status"],
        "latest": release["latest_revision"],
        "last_deployed": release["last_deployed_revision"],
        "known_good": release["last_known_good_revision"],
        "lock": release["lock"]["verdict"],
        "actions": [(a["name"], a["command"]) for a in release["diagnosis"]["actions"]],
        "findings": [f["code"] for f in release["diagnosis"]["findings"]],
        "written_by": release["written_by"],
        "record_errors": release["record_errors"],
    }


STEMS = sorted(p.stem for p in FIXTURES.glob("*.json"))


@pytest.mark.parametrize("stem", STEMS)
def test_labels_decides_as_full_does(stem: str) -> None:
    driver, objects = recorded(stem)
    full, _api = run(objects, driver, "full")
    labels, api = run(objects, driver, "labels")
    assert decided(labels) == decided(full)
    statuses = {o["metadata"]["labels"]["version"]: o["metadata"]["labels"]["status"] for o in objects}
    latest = str(full["latest_revision"])
    for entry, whole in zip(labels["revisions"], full["revisions"], strict=True):
        read = statuses[str(entry["revision"])] != "superseded" or str(entry["revision"]) == latest
        assert entry["payload_read"] is read
        assert entry["written_at"] is not None
        if read:
            assert {k: v for k, v in entry.items() if k not in ("payload_read", "written_at")} == whole
        else:
            assert (entry["revision"], entry["status"], entry["object"]) == (
                whole["revision"],
                whole["status"],
                whole["object"],
            )
            assert [entry[k] for k in ("chart", "description", "last_deployed", "size_bytes")] == [None] * 4
            assert entry["status_label_mismatch"] is None
    lists = [r for r in api.requests if r.startswith("LIST")]  # sent concurrently: in any order
    expected = ["LIST owner=helm (metadata)", "LIST owner=helm,status!=superseded"]
    assert sorted(lists) == sorted(
        expected + (["LIST owner=helm type!=helm.sh/release.v1"] if driver == "secret" else [])
    )
    assert [r for r in api.requests if r.startswith("GET")] == []


def relabel(obj: dict[str, t.Any], status: str | None) -> dict[str, t.Any]:
    labels = obj["metadata"]["labels"]
    if status is None:
        labels.pop("status")
    else:
        labels["status"] = status
    return obj


def corrupt(obj: dict[str, t.Any]) -> dict[str, t.Any]:
    obj["data"]["release"] = base64.b64encode(b"not gzip, not json").decode()
    return obj


# (case, fixture, change to the recorded objects, expected labels-mode facts, GETs issued)
HOSTILE: list[tuple[str, str, t.Callable[[list[dict[str, t.Any]]], object], dict[str, t.Any], list[str]]] = [
    (
        "newest labelled superseded, payload pending-upgrade: fetched and its payload wins",
        "helm3-secret-pending-upgrade",
        lambda objs: relabel(objs[1], "superseded"),
        {"status": "pending-upgrade", "latest": 2, "mismatch": {2: True}, "reasons": []},
        ["GET v2"],
    ),
    (
        "status label missing: listed with its payload (status!=superseded selects it)",
        "helm4-secret-failed-hook",
        lambda objs: relabel(objs[0], None),
        {"status": "failed", "latest": 2, "mismatch": {1: False}, "reasons": []},
        [],
    ),
    (
        "newest record corrupt: reported, and the previous revision read instead",
        "helm3-configmap-deployed",
        lambda objs: corrupt(objs[2]),
        {"status": "superseded", "latest": 2, "mismatch": {2: False}, "reasons": ["bad-json"]},
        ["GET v2"],
    ),
    (
        "a superseded record is corrupt: not read, so not reported (documented)",
        "helm4-secret-deployed",
        lambda objs: corrupt(objs[0]),
        {"status": "deployed", "latest": 3, "mismatch": {1: None}, "reasons": []},
        [],
    ),
    (
        "a superseded record holds another revision's payload: not read, so not reported (documented)",
        "helm3-secret-deployed",
        lambda objs: objs[0].__setitem__("data", copy.deepcopy(objs[1]["data"])),
        {"status": "deployed", "latest": 3, "mismatch": {1: None}, "reasons": []},
        [],
    ),
    (
        "the newest record holds another revision's payload: read whole and reported, as in full; "
        "the rollback target (superseded) is read too, for what a rollback would delete",
        "helm4-configmap-atomic-rolled-back",
        lambda objs: objs[2].__setitem__("data", copy.deepcopy(objs[1]["data"])),
        {"status": "failed", "latest": 3, "mismatch": {3: True}, "reasons": ["label-mismatch"]},
        ["GET v1"],
    ),
    (
        "an owner=helm Secret of another type labelled superseded: not a release record",
        "helm3-secret-deployed",
        lambda objs: objs[0].__setitem__("type", "Opaque"),
        {"status": "deployed", "latest": 3, "mismatch": {}, "reasons": ["not-a-release"]},
        [],
    ),
]


@pytest.mark.parametrize(("case", "stem", "change", "expected", "gets"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_labels_keeps_the_checks_of_what_it_reads(
    case: str,
    stem: str,
    change: t.Callable[[list[dict[str, t.Any]]], object],
    expected: dict[str, t.Any],
    gets: list[str],
) -> None:
    driver, objects = recorded(stem)
    change(objects)
    release, api = run(objects, driver, "labels")
    by_revision = {r["revision"]: r for r in release["revisions"]}
    found = {
        "status": release["status"],
        "latest": release["latest_revision"],
        "mismatch": {n: by_revision[n]["status_label_mismatch"] for n in expected["mismatch"]},
        "reasons": [e["reason"] for e in release["record_errors"]],
    }
    assert found == expected, case
    assert ["GET " + r.rsplit(".", 1)[1] for r in api.requests if r.startswith("GET")] == gets, case
    assert "Traceback" not in json.dumps(release)


def test_a_record_deleted_between_listing_and_get_is_dropped() -> None:
    driver, objects = recorded("helm3-secret-pending-upgrade")
    relabel(objects[1], "superseded")
    api = FakeApi(objects)
    original = api.request

    def vanishing(method: str, path: str, **kwargs: t.Any) -> t.Any:
        if path.endswith(".v2"):
            raise KubeNotFound("gone", 404, "NotFound", "v2")
        return original(method, path, **kwargs)

    api.request = vanishing  # type: ignore[method-assign]
    facts, _errors = gather(t.cast(t.Any, api), driver, GatherOptions(inspect_live=False, history="labels", now=NOW))
    assert [r["revision"] for r in facts[0]["revisions"]] == [1]
    assert facts[0]["status"] == "deployed"


def test_history_finding_says_what_was_not_read() -> None:
    driver, objects = recorded("helm4-secret-deployed")
    api = FakeApi(objects)
    options = GatherOptions(inspect_live=False, history="labels", history_threshold=2, now=NOW)
    facts, _errors = gather(t.cast(t.Any, api), driver, options)
    history = facts[0]["risks"]["history"]
    assert history["sizes_unknown"] == 2
    assert history["total_bytes"] == facts[0]["revisions"][2]["size_bytes"]
    finding = next(f for f in facts[0]["diagnosis"]["findings"] if f["code"] == "history-too-long")
    assert "2 not read" in finding["message"]


@pytest.mark.parametrize("stem", ["helm3-secret-deployed", "helm3-configmap-pending-upgrade"])
def test_the_kinds_of_every_record_are_what_its_manifest_names(stem: str) -> None:
    """orphan_search="history" notes each listed record's kinds while the listing holds it: the kinds its
    decoded manifest names; a payload that cannot be decoded names none (the search narrows, nothing fails)."""
    driver, objects = recorded(stem)
    for obj in objects:
        manifest = codec.decode_payload(codec.payload_text_from_object(obj, driver))["manifest"]
        named = {(key.api_version, key.kind) for key, _doc in parse_manifest(manifest, "ns")}
        assert named and kinds_of_record(obj, driver, "record") == named
    damaged = {**objects[0], "data": {"release": "bm90IGd6aXA="}}
    assert kinds_of_record(damaged, driver, "record") == set()


def test_orphan_search_history_notes_the_kinds_of_every_revision() -> None:
    """The collection keeps only the payloads it reads whole, yet notes the kinds of all of them."""
    driver, objects = recorded("helm3-secret-deployed")
    api = FakeApi(objects)
    releases, _stray = collect(ReleaseStorage(t.cast(t.Any, api), driver), None, None, kinds_ever=True)
    assert len(releases) == 1
    release = next(iter(releases.values()))
    assert ("v1", "ConfigMap") in release.kinds_ever and len(release.objects) < len(objects)
    plain, _stray = collect(ReleaseStorage(t.cast(t.Any, api), driver), None, None)
    assert next(iter(plain.values())).kinds_ever == set()
