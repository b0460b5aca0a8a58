"""Module plumbing that needs no cluster: HELM_DRIVER handling."""

from __future__ import annotations

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._errors import ModuleError
from ansible_collections.helmops.recovery.plugins.module_utils._module import resolve_driver


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
