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


@pytest.mark.parametrize(("bulk_read", "quiet"), [(True, True), (False, False)])
def test_a_bulk_read_leaves_through_exit_json_with_the_collector_quiet(
    bulk_read: bool, quiet: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """exit_json copies a fleet's result for its no_log scan and encodes it: a bulk read does that with the
    collector paused; a module that writes keeps its collector."""
    from ansible_collections.helmops.recovery.plugins.module_utils import _module

    seen: dict[str, bool] = {}

    class Module:
        def __init__(self, **_kwargs: t.Any) -> None:
            self.params = {"request_timeout": 60}

        def exit_json(self, **_result: t.Any) -> None:
            seen["enabled"] = gc.isenabled()
            raise SystemExit(0)

    monkeypatch.setattr(_module, "AnsibleModule", Module)
    monkeypatch.setattr(_module, "_run", lambda _module_, _run_: {"changed": False})
    gc.enable()
    with pytest.raises(SystemExit):
        _module.run_module({}, lambda _context: {}, bulk_read=bulk_read)
    assert seen == {"enabled": not quiet}
    assert gc.isenabled()
