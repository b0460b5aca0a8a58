"""The collector while a cluster's facts are built (the module) or arrive (the controller's worker)."""

from __future__ import annotations

import gc
import typing as t
import weakref

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._collector import quiet_collector


@pytest.fixture(autouse=True)
def _restore_collector() -> t.Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


def _parsed_result() -> dict[str, t.Any]:
    releases = [{"name": f"app-{n}", "revisions": [{"revision": n}]} for n in range(50)]
    return {"ansible_facts": {"helm_releases": releases}}


@pytest.mark.parametrize("enabled_before", [True, False])
def test_the_collector_is_paused_inside_and_restored_after(enabled_before: bool) -> None:
    if enabled_before:
        gc.enable()
    else:
        gc.disable()
    with quiet_collector():
        paused = not gc.isenabled()
        result = _parsed_result()
    assert paused
    assert gc.isenabled() is enabled_before
    # What was built inside is frozen: later collections do not walk it (gc.get_objects
    # lists the generations a collection walks, not the permanent one).
    assert gc.is_tracked(result)
    assert not any(obj is result for obj in gc.get_objects())


def test_the_collector_is_restored_when_the_module_fails() -> None:
    gc.enable()
    with pytest.raises(RuntimeError, match="module failed"), quiet_collector():
        raise RuntimeError("module failed")
    assert gc.isenabled()


def test_frozen_results_are_still_freed_by_reference_counting() -> None:
    class Marker:
        pass

    with quiet_collector():
        marker = Marker()
        watched = weakref.ref(marker)
    del marker
    assert watched() is None


@pytest.mark.parametrize("enabled_before", [True, False])
def test_an_inactive_quiet_leaves_the_collector_alone(enabled_before: bool) -> None:
    """Modules that write keep the collector as it is, and freeze nothing."""
    if enabled_before:
        gc.enable()
    else:
        gc.disable()
    gc.unfreeze()
    with quiet_collector(active=False):
        inside = gc.isenabled()
        result = _parsed_result()
    assert inside is enabled_before and gc.isenabled() is enabled_before
    assert gc.get_freeze_count() == 0
    assert any(obj is result for obj in gc.get_objects())


def test_the_facts_action_and_the_module_share_the_one_helper() -> None:
    from ansible_collections.helmops.recovery.plugins.action import helm_release_facts
    from ansible_collections.helmops.recovery.plugins.module_utils import _module

    assert helm_release_facts.quiet_collector is quiet_collector
    assert _module.quiet_collector is quiet_collector
