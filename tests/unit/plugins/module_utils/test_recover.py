"""helm_release_recover's last look before Helm runs: the newest record must still be the one the
plan read, and the caller's plan must still describe the release (pure parts; the real runs are in
tests/integration/test_guards.py)."""

from __future__ import annotations

import json
import typing as t

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._errors import ModuleError
from ansible_collections.helmops.recovery.plugins.module_utils._helm_cli import HelmCall, HelmFlags, rollback_argv
from ansible_collections.helmops.recovery.plugins.module_utils._recover import (
    RecoverOptions,
    RecoverPlan,
    Refused,
    _refuse_if_moved,
    _refuse_other_chart,
    plan_stuck_pods,
    recheck,
    render_argv,
    rendered_release,
)
from ansible_collections.helmops.recovery.plugins.module_utils._release_codec import (
    ReleaseRecord,
    record_meta_from_object,
)
from ansible_collections.helmops.recovery.plugins.module_utils._rollout import StuckPod
from ansible_collections.helmops.recovery.plugins.module_utils._storage import StoredRecord


def record_object(revision: int, status: str, resource_version: str) -> dict[str, t.Any]:
    return {
        "metadata": {
            "name": f"sh.helm.release.v1.web.v{revision}",
            "namespace": "team-a",
            "uid": f"uid-{revision}",
            "resourceVersion": resource_version,
            "labels": {"owner": "helm", "name": "web", "status": status, "version": str(revision)},
        },
        "type": "helm.sh/release.v1",
    }


class FakeClient:
    """Answers every listing with the given records' metadata."""

    def __init__(self, objects: list[dict[str, t.Any]]) -> None:
        self.objects = objects

    def request(self, method: str, path: str, **_kwargs: t.Any) -> dict[str, t.Any]:
        assert method == "GET" and path.endswith("/secrets"), path
        return {"items": self.objects, "metadata": {}}


def plan_of(revision: int, status: str, resource_version: str, **options: t.Any) -> RecoverPlan:
    obj = record_object(revision, status, resource_version)
    stored = StoredRecord(ReleaseRecord(record_meta_from_object(obj, "secret"), {"info": {"status": status}}), obj)
    opts = RecoverOptions(namespace="team-a", release="web", action="rollback", helm="helm", helm_major=3, **options)
    return RecoverPlan(opts, act=True, reason="", status=status, revision=revision, records=[stored])


RECHECKS = [
    # (case, what the cluster holds right before Helm runs, refused?)
    ("unchanged", [record_object(1, "deployed", "10"), record_object(2, "pending-upgrade", "20")], False),
    ("the newest record was rewritten", [record_object(1, "deployed", "10"), record_object(2, "failed", "21")], True),
    (
        "a newer revision appeared",
        [record_object(2, "pending-upgrade", "20"), record_object(3, "pending-rollback", "30")],
        True,
    ),
    ("the newest record is gone", [record_object(1, "deployed", "10")], True),
]


@pytest.mark.parametrize(("case", "objects", "refused"), RECHECKS, ids=[r[0] for r in RECHECKS])
def test_helm_runs_only_on_the_record_the_plan_read(case: str, objects: list[dict[str, t.Any]], refused: bool) -> None:
    plan = plan_of(2, "pending-upgrade", "20")
    if refused:
        with pytest.raises(Refused, match="changed since it was checked"):
            recheck(t.cast(t.Any, FakeClient(objects)), "secret", plan)
    else:
        recheck(t.cast(t.Any, FakeClient(objects)), "secret", plan)


@pytest.mark.parametrize(
    ("expected", "refused"),
    [
        ({}, False),
        ({"expected_revision": 2, "expected_status": "pending-upgrade"}, False),
        ({"expected_revision": 1}, True),
        ({"expected_status": "failed"}, True),
    ],
)
def test_a_plan_made_from_another_record_is_refused(expected: dict[str, t.Any], refused: bool) -> None:
    plan = plan_of(2, "pending-upgrade", "20", **expected)
    if refused:
        with pytest.raises(Refused, match="changed since the plan was made") as raised:
            _refuse_if_moved(plan)
        assert raised.value.details["refused"] is True
    else:
        _refuse_if_moved(plan)


def test_the_upgrade_is_rendered_by_the_same_command() -> None:
    plan = plan_of(2, "failed", "20")
    plan.call = HelmCall(
        ["helm", "upgrade", "web", "./chart", "--namespace", "team-a", "--force", "--wait", "--timeout", "5m"]
    )
    assert render_argv(plan) == [
        "helm",
        "upgrade",
        "web",
        "./chart",
        "--namespace",
        "team-a",
        "--force",
        "--timeout",
        "5m",
        "--dry-run=server",
        "--output",
        "json",
    ]
    rendered = rendered_release(
        '{"name": "web", "manifest": "---\\nkind: ConfigMap", "config": {"x": 1},'
        ' "chart": {"metadata": {"name": "database", "version": "2.0.0"}}}'
    )
    assert (rendered.manifest, rendered.chart_name, rendered.chart_version) == (
        "---\nkind: ConfigMap",
        "database",
        "2.0.0",
    )
    with pytest.raises(ModuleError, match="printed no release"):
        rendered_release("[]")


@pytest.mark.parametrize("major", [3, 4])
def test_the_template_applied_before_stuck_pods_are_replaced_is_not_waited_on(major: int) -> None:
    """Helm could only time out waiting on a StatefulSet whose pod never gets ready: it applies the template
    without waiting, in either Helm's form of the flag (Helm 4: --wait=legacy), and the module waits itself."""
    plan = plan_of(2, "failed", "20", replace_stuck_pods=True)
    plan.call = HelmCall(rollback_argv("helm", major, "web", "team-a", revision=1, flags=HelmFlags()))
    assert any(arg.startswith("--wait") for arg in plan.call.argv)
    plan_stuck_pods(plan, [StuckPod("team-a", "db", "db-0", "u1", "7", "db-5f7")])
    assert plan.call.argv == ["helm", "rollback", "web", "1", "--namespace", "team-a", "--timeout", "5m"]
    assert [pod.name for pod in plan.stuck] == ["db-0"]


def history_of(*charts: tuple[int, str, str]) -> RecoverPlan:
    """A plan over records (revision, status, chart name)."""
    stored = []
    for revision, status, chart in charts:
        obj = record_object(revision, status, str(revision))
        release = {"info": {"status": status}, "chart": {"metadata": {"name": chart, "version": "1.0.0"}}}
        stored.append(StoredRecord(ReleaseRecord(record_meta_from_object(obj, "secret"), release), obj))
    options = RecoverOptions(namespace="team-a", release="web", action="upgrade", helm="helm", helm_major=3)
    newest = charts[-1]
    return RecoverPlan(options, act=True, reason="", status=newest[1], revision=newest[0], records=stored)


CHART_GUARD = [
    # (case, history, upgrade base, the chart rendered, refused?)
    ("the release's own chart", [(1, "deployed", "database"), (2, "failed", "database")], 1, "database", False),
    ("another release's chart", [(1, "deployed", "monitoring")], 1, "database", True),
    ("renamed by the failed upgrade", [(1, "deployed", "db-old"), (2, "failed", "database")], 1, "database", False),
    ("a chart only an old revision had", [(1, "superseded", "other"), (2, "deployed", "database")], 2, "other", True),
]


@pytest.mark.parametrize(
    ("history", "base", "chart", "refused"), [c[1:] for c in CHART_GUARD], ids=[c[0] for c in CHART_GUARD]
)
def test_an_upgrade_with_another_chart_is_refused(
    history: list[tuple[int, str, str]], base: int, chart: str, refused: bool
) -> None:
    plan = history_of(*history)
    rendered = rendered_release(json.dumps({"manifest": "", "chart": {"metadata": {"name": chart}}}))
    if refused:
        with pytest.raises(Refused, match=f"refusing to upgrade web with chart '{chart}'") as raised:
            _refuse_other_chart(plan, rendered, base)
        assert raised.value.details["refused"] is True
    else:
        _refuse_other_chart(plan, rendered, base)
