"""A StatefulSet stuck on a pod that never got ready (Kubernetes' forced rollback case): which pods a
rollback or upgrade must replace, and Helm's --timeout read as the module waits for them."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._live import Resource
from ansible_collections.helmops.recovery.plugins.module_utils._manifest import ObjectKey
from ansible_collections.helmops.recovery.plugins.module_utils._rollout import duration_seconds, stuck_pods

STS_UID = "uid-sts"
KEY = ObjectKey("apps/v1", "StatefulSet", "team-a", "db")
TEMPLATE_NOW = {"metadata": {"labels": {"app": "db", "helmops.test/behaviour": "never-ready"}}, "spec": {}}
TEMPLATE_BACK = {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "db:1"}]}}


def pod(name: str, ready: bool, owner: str = STS_UID, revision: str = "db-bad") -> dict[str, t.Any]:
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": "7",
            "labels": {"controller-revision-hash": revision},
            "ownerReferences": [{"uid": owner, "controller": True}],
        },
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


class FakeLive:
    """The two reads stuck_pods makes: the StatefulSet, and the pods of its namespace."""

    def __init__(self, pods: list[dict[str, t.Any]]) -> None:
        self.pods = {p["metadata"]["name"]: p for p in pods}
        self.discovery = self

    def resource(self, api_version: str, kind: str) -> Resource:
        return Resource(api_version, kind, kind.lower() + "s", True)

    def list(self, resource: Resource, namespace: str) -> dict[str, dict[str, t.Any]]:
        assert (resource.kind, namespace) == ("Pod", "team-a")
        return self.pods

    def get(self, key: ObjectKey) -> dict[str, t.Any] | None:
        if key != KEY:
            return None
        live_template = {"metadata": {"labels": {"app": "db", "helmops.test/behaviour": "never-ready"}}}
        return {"metadata": {"uid": STS_UID}, "spec": {"template": live_template}}


STUCK = [
    # (case, target template, pods, the pods to replace)
    ("a never-ready pod the target template changes", TEMPLATE_BACK, [pod("db-0", False)], ["db-0"]),
    ("ready pods are left to the controller", TEMPLATE_BACK, [pod("db-0", True), pod("db-1", False)], ["db-1"]),
    ("the template does not change: nothing to move", TEMPLATE_NOW, [pod("db-0", False)], []),
    ("another controller's pod", TEMPLATE_BACK, [pod("db-0", False, owner="uid-other")], []),
    ("a pod that only looks like it", TEMPLATE_BACK, [pod("db-backup-0", False)], []),
]


@pytest.mark.parametrize(("template", "pods", "expected"), [c[1:] for c in STUCK], ids=[c[0] for c in STUCK])
def test_stuck_pods(template: dict[str, t.Any], pods: list[dict[str, t.Any]], expected: list[str]) -> None:
    target = [(KEY, {"kind": "StatefulSet", "spec": {"template": template}})]
    found = stuck_pods(target, FakeLive(pods))  # type: ignore[arg-type]
    assert [p.name for p in found] == expected
    for stuck in found:  # the delete preconditions: exactly the pod that was read
        assert (stuck.uid, stuck.resource_version, stuck.revision) == (f"uid-{stuck.name}", "7", "db-bad")


@pytest.mark.parametrize(
    ("text", "seconds"), [("5m", 300), ("90s", 90), ("1h30m", 5400), ("2m30.5s", 150.5), ("500ms", 0.5)]
)
def test_helm_timeouts_in_seconds(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "five minutes", "5m garbage", "-5m"])
def test_what_is_not_a_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        duration_seconds(text)
