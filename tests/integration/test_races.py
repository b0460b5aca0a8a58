"""Races against real Helm and against ourselves, started together and
repeated with different offsets so that they interleave.

- unlock vs a real ``helm upgrade``, a real ``helm rollback``, another unlock:
  exactly one writer releases the lock, no update is lost (every later write is
  based on the earlier one), the loser fails clearly or finds nothing to do;
- prune vs a real ``helm upgrade`` writing a new revision: the new revision
  and the last deployed one survive.

The invariants are asserted over the final history as real Helm reads it and
over the API server's audit log.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import typing as t
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .faultproxy import Rule, for_cluster
from .support import (
    CHART,
    KUBECONFIG,
    ROOT,
    Outcome,
    Scenario,
    audit_events_since,
    helm,
    helm_json,
    kubectl,
    ready,
    run_collection_module,
    run_scenarios,
)
from .test_faults import RECORD

OFFSETS = (0.0, 0.3, 0.6, 0.9)  # how long the second party waits after the first starts
RIVALS = ("helm-upgrade", "helm-rollback", "unlock")
PREFIXES = {"helm-upgrade": "zu", "helm-rollback": "zr", "unlock": "zz"}
RACES = [
    (
        rival,
        index,
        Scenario("pending-upgrade", "3" if index % 2 == 0 else "4", "secret", prefix=f"{PREFIXES[rival]}{index}"),
    )
    for rival in RIVALS
    for index in range(len(OFFSETS))
]
DESCRIPTION = "Unlocked by helmops.recovery: was pending-upgrade (stale lock)"
PENDING_REFUSAL = "another operation (install/upgrade/rollback) is in progress"
CONFLICTS = ("changed since it was read", "changed while it was being checked")
RUNNING = "an operation may still be running"


@pytest.fixture(scope="module")
def race_scenarios(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> dict[Scenario, Outcome]:
    return run_scenarios([scenario for _rival, _index, scenario in RACES], tmp_path_factory.mktemp("races"))


def together(first: t.Callable[[], t.Any], second: t.Callable[[], t.Any], offset: float) -> tuple[t.Any, t.Any]:
    """Start both at once (the second `offset` seconds later); return both results."""
    barrier = threading.Barrier(2)

    def go(call: t.Callable[[], t.Any], delay: float) -> t.Any:
        barrier.wait()
        time.sleep(delay)
        return call()

    with ThreadPoolExecutor(max_workers=2) as pool:
        a = pool.submit(go, first, 0.0)
        b = pool.submit(go, second, offset)
        return a.result(), b.result()


def unlock(scenario: Scenario, backup_dir: Path, kubeconfig: str = KUBECONFIG) -> dict[str, t.Any]:
    return run_collection_module(
        "helm_release_unlock",
        {
            "release": scenario.release,
            "namespace": scenario.namespace,
            "stale_after": 1,
            "backup_dir": str(backup_dir),
        },
        kubeconfig=kubeconfig,
    )


def history(scenario: Scenario) -> list[dict[str, t.Any]]:
    return t.cast(
        list[dict[str, t.Any]],
        helm_json(scenario.helm, "secret", "history", scenario.release, "-n", scenario.namespace),
    )


def lock_releases(started: float, scenario: Scenario) -> list[dict[str, t.Any]]:
    """Our updates of the stuck record that the API server carried out."""
    record = f"sh.helm.release.v1.{scenario.release}.v2"
    return [
        e
        for e in audit_events_since(started)
        if e["verb"] == "update" and e["objectRef"].get("name") == record and 200 <= e["responseStatus"]["code"] < 300
    ]


def unlock_against_unlock(scenario: Scenario, tmp_path: Path, offset: float, *, hold_first_write: bool) -> str:
    """Two unlocks at once; with `hold_first_write` the first write to arrive waits at the
    fault proxy until the other run has read the record too, so they surely overlap."""
    kubeconfig = KUBECONFIG
    with contextlib.ExitStack() as stack:
        if hold_first_write:
            proxy, kubeconfig = for_cluster(KUBECONFIG, ROOT / ".cluster" / "pki", tmp_path)
            stack.enter_context(proxy)
            proxy.add(Rule("PUT", RECORD, "hook", times=1, before=lambda _method, _path: time.sleep(3)))
        first, second = together(
            lambda: unlock(scenario, tmp_path / "a", kubeconfig),
            lambda: unlock(scenario, tmp_path / "b", kubeconfig),
            offset,
        )
    winners = [r for r in (first, second) if r.get("changed") is True]
    assert len(winners) == 1, (first, second)
    outcome = loser_is_clear(second if winners[0] is first else first)
    if hold_first_write:
        assert outcome == "conflict", (first, second)
    return f"one won, the other: {outcome}"


def loser_is_clear(result: dict[str, t.Any], rival_helm: bool = False) -> str:
    """How an unlock that did not release the lock ended; it must say why. Against Helm it may also have read
    the record Helm's rollback had just written (pending-rollback, seconds old): a client running, so it
    refuses (the lock guard, not a conflict)."""
    if result.get("failed"):
        assert "Traceback" not in result["msg"] and not result["msg"].startswith("unexpected error")
        if rival_helm and RUNNING in result["msg"]:
            return "refused: a Helm client is running"
        assert any(text in result["msg"] for text in CONFLICTS), result["msg"]
        return "conflict"
    assert result["changed"] is False and result["locked"] is False, result
    assert "is not locked" in result["reason"]
    return "nothing to do"


@pytest.mark.parametrize(
    ("rival", "index", "scenario"), RACES, ids=[f"{rival}-offset{OFFSETS[i]}-helm{s.helm}" for rival, i, s in RACES]
)
def test_unlock_races(
    race_scenarios: dict[Scenario, Outcome], rival: str, index: int, scenario: Scenario, tmp_path: Path
) -> None:
    ready(race_scenarios[scenario])
    offset = OFFSETS[index]
    ns, release, major = scenario.namespace, scenario.release, scenario.helm
    started = time.time()
    if rival == "unlock":
        outcome = unlock_against_unlock(scenario, tmp_path, offset, hold_first_write=index % 2 == 0)
        final = history(scenario)
        assert [(h["revision"], h["status"]) for h in final] == [(1, "deployed"), (2, "failed")]
        assert final[1]["description"] == DESCRIPTION
        # Exactly one of our writes released the lock; no second write followed it.
        assert len(lock_releases(started, scenario)) == 1
    else:
        helm_args = (
            ["upgrade", release, CHART, "-n", ns, "--set", "revisionNote=race"]
            if rival == "helm-upgrade"
            else ["rollback", release, "1", "-n", ns]
        )
        ours, theirs = together(
            lambda: unlock(scenario, tmp_path), lambda: helm(major, "secret", *helm_args, check=False), offset
        )
        final = history(scenario)
        statuses = [(h["revision"], h["status"]) for h in final]
        if ours.get("changed") is True:
            # We released the lock, exactly once ...
            assert len(lock_releases(started, scenario)) == 1
            assert statuses[1] == (2, "failed") and final[1]["description"] == DESCRIPTION
            if theirs.returncode != 0:
                # ... and Helm read the history before we did, and refused clearly,
                outcome = "unlock won, helm refused"
                assert PENDING_REFUSAL in theirs.stderr, theirs.stderr
                assert statuses == [(1, "deployed"), (2, "failed")]
            else:
                # ... or after, and built on our record (it is still ours, description included).
                outcome = "unlock won, helm went after"
                assert statuses[-1] == (3, "deployed")
        else:
            # Helm went first (a rollback does not wait for a pending release): we write nothing,
            # and say why.
            outcome = f"helm won, unlock: {loser_is_clear(ours, rival_helm=True)}"
            assert theirs.returncode == 0, theirs.stderr
            assert lock_releases(started, scenario) == []
            assert statuses[-1] == (3, "deployed")
            assert final[1]["description"] == "Preparing upgrade"  # never touched by us
        assert [s for _r, s in statuses].count("deployed") == 1
        # Real Helm can go on from here.
        helm(major, "secret", "upgrade", release, CHART, "-n", ns, "--set", "revisionNote=after-race")
    print(f"race unlock vs {rival} (offset {offset}s, helm {major}): {outcome}")


def test_prune_racing_a_real_upgrade_keeps_the_new_and_the_last_deployed_revision(cluster: str) -> None:
    namespace = f"race-prune-{uuid.uuid4().hex[:6]}"
    helm("3", "secret", "install", "web", CHART, "-n", namespace, "--create-namespace")
    outcomes = []
    for round_, offset in enumerate(OFFSETS * 2):
        for note in range(3):
            helm("3", "secret", "upgrade", "web", CHART, "-n", namespace, "--set", f"revisionNote=pre{round_}-{note}")
        before = [(h["revision"], h["status"]) for h in helm_json("3", "secret", "history", "web", "-n", namespace)]
        deployed_before = before[-1][0]
        assert before[-1][1] == "deployed"
        # Alternate who starts first.
        calls = (
            functools.partial(
                run_collection_module, "helm_history_prune", {"namespace": namespace, "release": ["web"], "keep": 1}
            ),
            functools.partial(
                helm, "3", "secret", "upgrade", "web", CHART, "-n", namespace, "--set", f"revisionNote=race{round_}"
            ),
        )
        first, second = together(*(calls if round_ % 2 == 0 else calls[::-1]), offset)
        pruned, upgraded = (first, second) if round_ % 2 == 0 else (second, first)
        assert upgraded.returncode == 0, upgraded.stderr
        assert not pruned.get("failed"), pruned.get("msg")
        final = {h["revision"]: h["status"] for h in helm_json("3", "secret", "history", "web", "-n", namespace)}
        new = deployed_before + 1
        assert final.get(new) == "deployed", final  # the upgrade's revision survives
        seen = pruned["releases"][0]["kept"] + pruned["releases"][0]["deleted"]
        if new in seen:
            outcome = "prune read after the upgrade started"
        else:
            # The prune read the history before the upgrade wrote: what was then the last
            # deployed revision survives (Helm has since marked it superseded).
            outcome = "prune read before the upgrade"
            assert final.get(deployed_before) == "superseded", final
            assert deployed_before not in pruned["releases"][0]["deleted"]
        assert list(final.values()).count("deployed") == 1
        assert not set(pruned["releases"][0]["deleted"]) & {new, max(final)}
        outcomes.append(outcome)
    print(f"prune vs helm upgrade: {outcomes}")
    # Real Helm still works on what is left: an upgrade, then a rollback to the revision before it.
    newest = max(h["revision"] for h in helm_json("3", "secret", "history", "web", "-n", namespace))
    helm("3", "secret", "upgrade", "web", CHART, "-n", namespace, "--set", "revisionNote=after-races")
    helm("3", "secret", "rollback", "web", str(newest), "-n", namespace)
    kubectl("delete", "namespace", namespace, "--wait=false")
