"""Documentation and argument specs say the same thing (one source of truth is
not possible across the doc fragment and the spec, so a test keeps them equal)."""

from __future__ import annotations

import subprocess
import typing as t
from pathlib import Path

import pytest
import yaml
from ansible_collections.helmops.recovery.plugins.doc_fragments.connection import ModuleDocFragment
from ansible_collections.helmops.recovery.plugins.doc_fragments.lock import ModuleDocFragment as LockFragment
from ansible_collections.helmops.recovery.plugins.doc_fragments.release import ModuleDocFragment as ReleaseFragment
from ansible_collections.helmops.recovery.plugins.module_utils._module import (
    CONNECTION_ARGUMENT_SPEC,
    LOCK_ARGUMENT_SPEC,
    ONE_RELEASE_ARGUMENT_SPEC,
)
from ansible_collections.helmops.recovery.plugins.modules import (
    helm_history_prune,
    helm_release_backup,
    helm_release_facts,
    helm_release_map_apis,
    helm_release_recover,
    helm_release_restore,
    helm_release_unlock,
)

ROOT = Path(__file__).resolve().parents[4]
MODULES = [
    helm_history_prune,
    helm_release_facts,
    helm_release_unlock,
    helm_release_recover,
    helm_release_backup,
    helm_release_restore,
    helm_release_map_apis,
]
FRAGMENT_OPTIONS = {
    "helmops.recovery.release": yaml.safe_load(ReleaseFragment.DOCUMENTATION)["options"],
    "helmops.recovery.lock": yaml.safe_load(LockFragment.DOCUMENTATION)["options"],
}


def _documented(options: dict[str, t.Any]) -> dict[str, tuple[str, tuple[str, ...], t.Any]]:
    return {
        name: (spec["type"], tuple(sorted(spec.get("aliases") or [])), spec.get("default"))
        for name, spec in options.items()
    }


def _specified(spec: dict[str, dict[str, t.Any]]) -> dict[str, tuple[str, tuple[str, ...], t.Any]]:
    return {
        name: (option["type"], tuple(sorted(option.get("aliases") or [])), option.get("default"))
        for name, option in spec.items()
    }


def test_connection_fragment_matches_the_argument_spec() -> None:
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert _documented(documented) == _specified(CONNECTION_ARGUMENT_SPEC)
    for name, option in CONNECTION_ARGUMENT_SPEC.items():
        fallback = option.get("fallback")
        if fallback:
            assert f"E({fallback[1][0]})" in " ".join(documented[name]["description"]), name


def test_lock_fragment_matches_its_argument_spec() -> None:
    assert _documented(FRAGMENT_OPTIONS["helmops.recovery.lock"]) == _specified(LOCK_ARGUMENT_SPEC)


def test_release_fragment_matches_its_argument_spec() -> None:
    documented = FRAGMENT_OPTIONS["helmops.recovery.release"]
    assert _documented(documented) == _specified(ONE_RELEASE_ARGUMENT_SPEC)
    assert all(documented[name]["required"] for name in ONE_RELEASE_ARGUMENT_SPEC)


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__.rsplit(".", 1)[-1] for m in MODULES])
def test_module_documentation_matches_its_argument_spec(module: t.Any) -> None:
    document = yaml.safe_load(module.DOCUMENTATION)
    documented = dict(document["options"])
    for fragment in document.get("extends_documentation_fragment") or []:
        documented.update(FRAGMENT_OPTIONS.get(fragment, {}))
    assert _documented(documented) == _specified(module.ARGUMENT_SPEC)
    yaml.safe_load(module.EXAMPLES)
    yaml.safe_load(module.RETURN)


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__.rsplit(".", 1)[-1] for m in MODULES])
def test_ansible_doc_renders(module: t.Any) -> None:
    name = "helmops.recovery." + module.__name__.rsplit(".", 1)[-1]
    done = subprocess.run(
        [
            str(
                ROOT / ".venv" / "bin" / "ansible-doc",
            ),
            name,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for option in [*module.ARGUMENT_SPEC, *CONNECTION_ARGUMENT_SPEC]:
        assert f"{option}" in done.stdout, option
    assert "K8S_AUTH_API_KEY" in done.stdout


def test_every_module_that_talks_to_a_cluster_is_in_the_action_group() -> None:
    """group/helmops.recovery.helm sets the connection once; the report writers run on the controller only."""
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    paths = sorted((ROOT / "plugins" / "modules").glob("*.py"))
    modules = [p.stem for p in paths if "helmops.recovery.connection\n" in p.read_text()]
    assert {p.stem for p in paths} - set(modules) == {"triage_report", "fleet_report"}
    assert sorted(name.split(".")[-1] for name in runtime["action_groups"]["helm"]) == modules
