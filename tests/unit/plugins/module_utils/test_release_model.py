"""The typed view of a release's facts the decision tree reads: what it makes of facts that are not as
helm_release_facts builds them (they also arrive as JSON that went through Ansible)."""

from __future__ import annotations

import math
import typing as t

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._diagnosis import diagnose
from ansible_collections.helmops.recovery.plugins.module_utils._history import (
    DEFAULT_HISTORY_THRESHOLD,
    DEFAULT_STALE_AFTER,
)
from ansible_collections.helmops.recovery.plugins.module_utils._release_model import ReleaseFacts

BASE: dict[str, t.Any] = {"name": "web", "namespace": "team-a", "status": "pending-upgrade", "latest_revision": 2}


def _lock(r: ReleaseFacts) -> t.Any:
    return (r.lock.verdict, r.lock.age_seconds, r.lock.client_bound, r.lock.stale_after)


def _history(r: ReleaseFacts) -> t.Any:
    return (r.risks.history.count, r.risks.history.threshold, r.risks.history.bloated)


@pytest.mark.parametrize(
    ("extra", "read", "expected"),
    [
        ({}, _lock, (None, None, None, DEFAULT_STALE_AFTER)),
        ({}, _history, (0, DEFAULT_HISTORY_THRESHOLD, False)),
        ({"lock": {"age_seconds": "soon", "stale_after": None}}, _lock, (None, None, None, DEFAULT_STALE_AFTER)),
        ({"lock": {"age_seconds": math.nan, "client_bound": True}}, _lock, (None, None, None, DEFAULT_STALE_AFTER)),
        ({"lock": {"verdict": "stale", "age_seconds": 61.9, "stale_after": 0}}, _lock, ("stale", 61, None, 0)),
        ({"risks": {"history": {"count": "30", "threshold": 0}}}, _history, (30, 0, True)),
        (
            {"risks": [], "live": "not a section", "lock": None},
            lambda r: (r.risks.hooks, r.live.closer_to),
            ((), "unknown"),
        ),
        ({"risks": {"hooks": [None, "x", {"name": "h"}]}}, lambda r: r.risks.hooks, ({"name": "h"},)),
        ({"latest_revision": "2"}, lambda r: r.latest_revision, 2),
        ({"latest_revision": [2]}, lambda r: r.latest_revision, None),
    ],
)
def test_odd_facts_read_as_unknown_never_as_an_error(
    extra: dict[str, t.Any], read: t.Callable[[ReleaseFacts], t.Any], expected: t.Any
) -> None:
    assert read(ReleaseFacts.of({**BASE, **extra})) == expected


def test_a_controller_that_cannot_be_read_is_unknown_so_the_plan_refuses() -> None:
    """A managed_by that is not an object fails closed: the controller is unknown (finding controller-unknown),
    never "not managed"."""
    facts = {**BASE, "status": "failed", "last_known_good_revision": 1, "risks": {"managed_by": ["flux"]}}
    release = ReleaseFacts.of(facts)
    assert release.risks.managed_by is None
    assert "managed_by is not readable" in release.risks.managed_by_unknown
    codes = [finding.code for finding in diagnose(facts).findings]
    assert "controller-unknown" in codes
