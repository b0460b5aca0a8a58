"""The prune plan: what is kept, what is protected and why, table-driven."""

from __future__ import annotations

import threading

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._errors import ModuleError
from ansible_collections.helmops.recovery.plugins.module_utils._k8s import (
    KubeConflict,
    KubeForbidden,
    KubeNotFound,
    KubeUnreachable,
)
from ansible_collections.helmops.recovery.plugins.module_utils._prune import (
    PruneOptions,
    ReleasePlan,
    _delete_release,
    _Entry,
    _leave_alone,
    _plan_release,
    parse_duration,
)
from ansible_collections.helmops.recovery.plugins.module_utils._release_codec import RecordMeta

NOW = 1_800_000_000.0
DAY = 86400


def entry(revision: int, status: str, age_days: float = 100, label: str | None = None, description: str = "") -> _Entry:
    meta = RecordMeta(
        driver="secret",
        namespace="ns",
        name=f"sh.helm.release.v1.web.v{revision}",
        release="web",
        revision=revision,
        status_label=label or status,
        labels={},
        annotations={},
        uid=f"u{revision}",
        resource_version=str(revision),
        creation_timestamp=None,
        size=1000,
    )
    return _Entry(meta, status, NOW - age_days * DAY, {"kind": "Secret"}, description)


def plan(entries: list[_Entry], **options: object) -> tuple[list[int], list[int], dict[int, list[str]]]:
    result = _plan_release("ns", "web", entries, PruneOptions(now=NOW, **options))  # type: ignore[arg-type]
    protected = {p["revision"]: p["reasons"] for p in result.protected}
    return result.kept, [e.meta.revision for e in result.delete], protected


def history(*statuses: str) -> list[_Entry]:
    return [entry(n, s) for n, s in enumerate(statuses, start=1)]


CASES = [
    ("keeps the newest N", history("superseded", "superseded", "superseded", "deployed"), {"keep": 2}, [3, 4], [1, 2]),
    (
        "last deployed survives beyond keep",
        history("deployed", "failed", "failed", "failed"),
        {"keep": 2},
        [1, 3, 4],
        [2],
    ),
    (
        "pending and uninstalling survive",
        history("superseded", "pending-upgrade", "deployed", "uninstalling"),
        {"keep": 1},
        [2, 3, 4],
        [1],
    ),
    (
        "known-good rollback target survives",
        history("superseded", "deployed", "failed", "failed", "failed"),
        {"keep": 1},
        [2, 5],
        [1, 3, 4],
    ),
    (
        "the revision an interrupted rollback aimed at survives",
        [
            entry(1, "superseded"),
            entry(2, "superseded"),
            entry(3, "superseded"),
            entry(4, "pending-rollback", description="Rollback to 1"),
        ],
        {"keep": 1},
        [1, 3, 4],
        [2],
    ),
    (
        "the last deployed by label and the last deployed by payload both survive",
        [entry(1, "deployed"), entry(2, "deployed", label="pending-upgrade"), entry(3, "failed")],
        {"keep": 1},
        [1, 2, 3],
        [],
    ),
    (
        "a deployed label protects even if the payload disagrees",
        [entry(1, "superseded", label="deployed"), entry(2, "failed"), entry(3, "failed")],
        {"keep": 1},
        [1, 3],
        [2],
    ),
    (
        "statuses filter",
        history("superseded", "failed", "superseded", "failed", "deployed"),
        {"keep": 1, "statuses": ["failed"]},
        [1, 3, 5],
        [2, 4],
    ),
    ("nothing to do", history("superseded", "deployed"), {"keep": 10}, [1, 2], []),
]


@pytest.mark.parametrize(("case", "entries", "options", "kept", "deleted"), CASES, ids=[c[0] for c in CASES])
def test_plan(
    case: str, entries: list[_Entry], options: dict[str, object], kept: list[int], deleted: list[int]
) -> None:
    got_kept, got_deleted, protected = plan(entries, **options)
    assert got_kept == kept
    assert got_deleted == deleted
    newest = max(e.meta.revision for e in entries)
    assert "newest revision" in protected[newest]


def test_older_than_keeps_recent_records() -> None:
    entries = [entry(1, "superseded", 40), entry(2, "superseded", 10), entry(3, "superseded", 1), entry(4, "deployed")]
    kept, deleted, _protected = plan(entries, keep=1, older_than=30 * DAY)
    assert deleted == [1]
    assert kept == [2, 3, 4]


def test_protection_reasons_are_all_listed() -> None:
    _kept, _deleted, protected = plan(history("superseded", "deployed"), keep=1)
    assert protected[2] == ["newest revision", "last deployed revision", "last known-good revision (rollback target)"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("30d", 30 * DAY), ("12h", 43200), ("90m", 5400), ("3600", 3600), ("15s", 15), (None, None)]
)
def test_durations(text: str | None, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "1y", "-5d", "3 weeks"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ModuleError, match="not a duration"):
        parse_duration(text)


def test_a_status_helm_does_not_define_is_left_alone() -> None:
    kept, deleted, protected = plan(history("superseded", "paused-by-future-helm", "superseded", "deployed"), keep=1)
    assert deleted == [1, 3]
    assert protected[2] == ["unrecognised status 'paused-by-future-helm'"]
    assert 2 in kept


class FailingStorage:
    """Deletes succeed except for the revisions given, which raise the error given."""

    def __init__(self, failures: dict[int, Exception]) -> None:
        self.failures = failures
        self.attempted: list[int] = []

    def delete(self, meta: RecordMeta) -> None:
        self.attempted.append(meta.revision)
        if meta.revision in self.failures:
            raise self.failures[meta.revision]


def deleting(revisions: list[int]) -> ReleasePlan:
    release_plan = ReleasePlan("ns", "web", kept=[9])
    release_plan.delete = [entry(n, "superseded") for n in revisions]
    return release_plan


@pytest.mark.parametrize(
    ("error", "why"),
    [
        (KubeForbidden("forbidden (403) to delete Secret ns/x", 403), "an older delete failed"),
        (KubeUnreachable("cannot reach the Kubernetes API server"), "an older delete failed"),
    ],
)
def test_the_first_failed_delete_ends_the_release_leaving_no_gap(error: Exception, why: str) -> None:
    storage = FailingStorage({2: error})
    release_plan = deleting([1, 2, 3, 4])
    _delete_release(storage, release_plan, threading.Event())  # type: ignore[arg-type]
    assert storage.attempted == [1, 2]
    assert release_plan.deleted == [1]
    assert release_plan.errors == [str(error)]
    assert release_plan.skipped == [{"revision": n, "reason": f"not attempted: {why}; kept"} for n in (3, 4)]
    assert release_plan.result(done=True)["kept"] == [2, 3, 4, 9]


def test_an_unreachable_api_server_stops_every_release() -> None:
    unreachable = threading.Event()
    storage = FailingStorage({1: KubeUnreachable("cannot reach the Kubernetes API server")})
    first, second = deleting([1, 2]), deleting([5, 6])
    _delete_release(storage, first, unreachable)  # type: ignore[arg-type]
    _delete_release(storage, second, unreachable)  # type: ignore[arg-type]
    assert storage.attempted == [1]
    assert second.deleted == [] and [s["revision"] for s in second.skipped] == [5, 6]
    assert second.skipped[0]["reason"] == "not attempted: the API server could not be reached; kept"


def test_conflicts_and_records_already_gone_do_not_stop_the_run() -> None:
    storage = FailingStorage({1: KubeNotFound("gone", 404), 2: KubeConflict("changed", 409)})
    release_plan = deleting([1, 2, 3])
    _delete_release(storage, release_plan, threading.Event())  # type: ignore[arg-type]
    assert storage.attempted == [1, 2, 3]
    assert release_plan.deleted == [1, 3] and release_plan.errors == []
    assert release_plan.skipped == [{"revision": 2, "reason": "changed since it was read; kept"}]


def test_a_release_with_an_unreadable_record_is_left_alone() -> None:
    release_plan = _plan_release("ns", "web", history("superseded", "superseded", "deployed"), PruneOptions(keep=1))
    assert [e.meta.revision for e in release_plan.delete] == [1, 2]
    _leave_alone(release_plan, 1)
    assert release_plan.delete == [] and release_plan.kept == [1, 2, 3]
    assert [s["revision"] for s in release_plan.skipped] == [1, 2]
    assert "1 record(s) of this release cannot be read" in release_plan.skipped[0]["reason"]
    assert release_plan.result(done=True)["deleted"] == []
