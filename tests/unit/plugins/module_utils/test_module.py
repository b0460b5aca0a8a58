"""Module plumbing that needs no cluster: HELM_DRIVER handling, the exit of a bulk read."""

from __future__ import annotations

import gc
import typing as t

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._errors import ModuleError
from ansible_collections.helmops.recovery.plugins.module_utils._module import _exit, resolve_driver


@pytest.mark.parametrize(
    ("option", "environ", "driver"),
    [
        (None, {}, "secret"),
        (None, {"HELM_DRIVER": ""}, "secret"),
        (None, {"HELM_DRIVER": "secrets"}, "secret"),
        (None, {"HELM_DRIVER": "configmap"}, "configmap"),
        (None, {"HELM_DRIVER": "ConfigMaps"}, "configmap"),
        ("secret", {"HELM_DRIVER": "configmap"}, "secret"),
        ("configmap", {}, "configmap"),
    ],
)
def test_driver_follows_the_option_then_helm_driver(option: str | None, environ: dict[str, str], driver: str) -> None:
    assert resolve_driver({"driver": option}, environ) == driver


@pytest.mark.parametrize("value", ["sql", "memory", "etcd"])
def test_unsupported_helm_driver_is_a_clear_error(value: str) -> None:
    with pytest.raises(ModuleError, match=f"HELM_DRIVER='{value}' is not supported"):
        resolve_driver({"driver": None}, {"HELM_DRIVER": value})


class _ExitRecorder:
    """Stands in for AnsibleModule.exit_json: what the heap looked like when the result left."""

    def __init__(self) -> None:
        self.frozen_objects = -1
        self.result: dict[str, t.Any] = {}

    def exit_json(self, **result: t.Any) -> None:
        self.frozen_objects = gc.get_freeze_count()
        self.result = result


@pytest.mark.parametrize(("bulk_read", "frozen"), [(True, True), (False, False)])
def test_a_bulk_read_exits_with_its_heap_frozen(bulk_read: bool, frozen: bool) -> None:
    module = _ExitRecorder()
    result = {"changed": False, "ansible_facts": {"helm_releases": [{"name": "web"}]}}
    gc.unfreeze()
    try:
        _exit(module, result, bulk_read)
    finally:
        gc.unfreeze()
    assert module.result == result
    assert (module.frozen_objects > 0) is frozen
