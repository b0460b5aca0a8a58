"""What Helm deletes on uninstall, rollback and upgrade, and which deletions lose data: table-driven
on manifests, with live objects given by a lookup table (the integration tests drive real Helm)."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._deletions import (
    DeletionSet,
    holds_data,
    uninstall_deletions,
    update_deletions,
)
from ansible_collections.helmops.recovery.plugins.module_utils._live import LiveAnswer
from ansible_collections.helmops.recovery.plugins.module_utils._manifest import ObjectKey, parse_manifest

NS = "team-a"


def doc(kind: str, name: str, api: str = "v1", annotations: dict[str, str] | None = None, **spec: t.Any) -> str:
    meta = f"  name: {name}\n"
    if annotations:
        meta += "  annotations:\n" + "".join(f"    {k}: {v!r}\n" for k, v in annotations.items())
    body = f"apiVersion: {api}\nkind: {kind}\nmetadata:\n{meta}"
    if spec:
        body += "spec:\n" + "".join(f"  {k}: {v}\n" for k, v in spec.items())
    return body


def manifest(*documents: str) -> list[tuple[ObjectKey, dict[str, t.Any]]]:
    return parse_manifest("---\n" + "\n---\n".join(documents), NS)


CONFIG = doc("ConfigMap", "web-config")
CLAIM = doc("PersistentVolumeClaim", "web-data")
KEPT_CLAIM = doc("PersistentVolumeClaim", "web-archive", annotations={"helm.sh/resource-policy": " Keep "})
ODD_POLICY_CLAIM = doc("PersistentVolumeClaim", "web-odd", annotations={"helm.sh/resource-policy": "retain"})
STS_DELETE = doc(
    "StatefulSet",
    "db",
    api="apps/v1",
    persistentVolumeClaimRetentionPolicy="{whenDeleted: Delete}",
    volumeClaimTemplates="[{metadata: {name: data}}, {metadata: {name: wal}}]",
)
STS_RETAIN = doc("StatefulSet", "cache", api="apps/v1", volumeClaimTemplates="[{metadata: {name: data}}]")
CRD = doc("CustomResourceDefinition", "widgets.example.com", api="apiextensions.k8s.io/v1")
HOOK = doc("Job", "migrate", api="batch/v1", annotations={"helm.sh/hook": "pre-upgrade"})


def live_table(
    rendered: list[tuple[ObjectKey, dict[str, t.Any]]], **objects: dict[str, t.Any] | str | None
) -> t.Callable[[ObjectKey], LiveAnswer]:
    """name -> the live object (a dict), None (absent) or a string (why it cannot be read); unlisted: as rendered."""

    def lookup(key: ObjectKey) -> LiveAnswer:
        if key.name not in objects:
            return LiveAnswer(dict(rendered)[key])
        value = objects[key.name]
        return LiveAnswer(None, value) if isinstance(value, str) else LiveAnswer(value)

    return lookup


UNINSTALLS = [
    # (case, newest manifest, live, [(name, loses data)])
    (
        "a claim without keep is deleted and loses data",
        [CONFIG, CLAIM],
        {},
        [("web-config", False), ("web-data", True)],
    ),
    ("keep (trimmed, any case) is kept", [KEPT_CLAIM], {}, []),
    ("another resource-policy value is neither kept nor deleted, as in Helm", [ODD_POLICY_CLAIM], {}, []),
    ("hooks are not part of the release", [HOOK, CONFIG], {}, [("web-config", False)]),
    ("what no longer exists is not deleted", [CLAIM], {"web-data": None}, []),
    ("a StatefulSet that deletes its claims loses data", [STS_DELETE], {}, [("db", True)]),
    ("a StatefulSet that retains its claims does not", [STS_RETAIN], {}, [("cache", False)]),
    ("a CRD takes every object of its kind", [CRD], {}, [("widgets.example.com", True)]),
    (
        "an object that may not be read counts as deleted, unverified",
        [CLAIM],
        {"web-data": "forbidden (403) to read persistentvolumeclaims"},
        [("web-data", True)],
    ),
]


@pytest.mark.parametrize(("case", "documents", "live", "expected"), UNINSTALLS, ids=[u[0] for u in UNINSTALLS])
def test_uninstall_deletes_the_newest_manifest(
    case: str, documents: list[str], live: dict[str, t.Any], expected: list[tuple[str, bool]]
) -> None:
    objects = manifest(*documents)
    deletions = uninstall_deletions(objects, live_table(objects, **live))
    assert [(d.key.name, bool(d.data)) for d in deletions] == expected, case
    for deletion in deletions:
        assert bool(deletion.unverified) == isinstance(live.get(deletion.key.name), str)


UPDATES = [
    # (case, current manifest, target manifest, live, [(name, loses data)])
    ("the claim the failed revision added", [CONFIG, CLAIM], [CONFIG], {}, [("web-data", True)]),
    ("nothing when the target has every object", [CONFIG, CLAIM], [CLAIM, CONFIG], {}, []),
    (
        "objects match by group, kind, namespace and name; the version may differ",
        [doc("Deployment", "web", api="apps/v1beta2")],
        [doc("Deployment", "web", api="apps/v1")],
        {},
        [],
    ),
    (
        "a live keep annotation (exactly keep) spares it",
        [CLAIM],
        [],
        {"web-data": {"metadata": {"name": "web-data", "annotations": {"helm.sh/resource-policy": "keep"}}}},
        [],
    ),
    (
        "a manifest keep that the live object lost does not",
        [KEPT_CLAIM],
        [],
        {"web-archive": {"metadata": {"name": "web-archive"}}},
        [("web-archive", True)],
    ),
    ("what no longer exists is skipped", [CLAIM], [], {"web-data": None}, []),
    (
        "the live StatefulSet's policy decides",
        [STS_RETAIN],
        [],
        {
            "cache": {
                "metadata": {"name": "cache"},
                "spec": {
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
                },
            }
        },
        [("cache", True)],
    ),
]


@pytest.mark.parametrize(("case", "current", "target", "live", "expected"), UPDATES, ids=[u[0] for u in UPDATES])
def test_rollback_and_upgrade_delete_what_the_target_lacks(
    case: str, current: list[str], target: list[str], live: dict[str, t.Any], expected: list[tuple[str, bool]]
) -> None:
    objects = manifest(*current)
    deletions = update_deletions(objects, manifest(*target) if target else [], live_table(objects, **live))
    assert [(d.key.name, bool(d.data)) for d in deletions] == expected, case


def test_a_deletion_set_says_why_it_needs_the_opt_in() -> None:
    lost = DeletionSet("rollback", 2, 1, uninstall_deletions(manifest(CLAIM, CONFIG)))
    assert lost.loses_data is True
    assert (
        lost.refusal()
        == "it would delete PersistentVolumeClaim team-a/web-data (a PersistentVolumeClaim: its volume's data)"
    )
    assert lost.as_dict()["target"] == 1 and lost.as_dict()["data_loss"] is True
    unknown = DeletionSet("uninstall", 2, objects=None, unknown="revision 2's manifest cannot be read")
    assert unknown.loses_data is None and "cannot be known (revision 2's manifest" in unknown.refusal()
    harmless = DeletionSet("uninstall", 2, objects=uninstall_deletions(manifest(CONFIG)))
    assert harmless.refusal() == "" and harmless.loses_data is False


@pytest.mark.parametrize(
    ("key", "obj", "claims"),
    [
        (ObjectKey("v1", "PersistentVolumeClaim", NS, "d"), {}, ("d",)),
        (
            ObjectKey("apps/v1", "StatefulSet", NS, "db"),
            {
                "spec": {
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
                }
            },
            ("data-db-*",),
        ),
        (ObjectKey("v1", "PersistentVolume", "", "pv"), {"spec": {"persistentVolumeReclaimPolicy": "Delete"}}, ()),
        (ObjectKey("v1", "Namespace", "", "team-b"), {}, ()),
    ],
)
def test_what_holds_data(key: ObjectKey, obj: dict[str, t.Any], claims: tuple[str, ...]) -> None:
    reason, found = holds_data(key, obj)
    assert reason and found == claims


@pytest.mark.parametrize(
    ("key", "obj"),
    [
        (ObjectKey("v1", "PersistentVolume", "", "pv"), {"spec": {"persistentVolumeReclaimPolicy": "Retain"}}),
        (ObjectKey("example.com/v1", "PersistentVolumeClaim", NS, "x"), {}),  # another group's kind of that name
        (ObjectKey("v1", "ConfigMap", NS, "c"), {}),
    ],
)
def test_what_does_not_hold_data(key: ObjectKey, obj: dict[str, t.Any]) -> None:
    assert holds_data(key, obj) == ("", ())
