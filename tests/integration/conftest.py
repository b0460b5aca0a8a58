"""Integration tests: the real local control plane and real Helm 3 / Helm 4.

The control plane is started (or reused) by `make integration`; a test run
that cannot reach it fails, it never skips.
"""

from __future__ import annotations

import os
import subprocess
import typing as t
from pathlib import Path

import pytest

from .support import ALL_SCENARIOS, EXTRA_SCENARIOS, KUBECONFIG, ROOT, Outcome, Scenario, run_scenarios


@pytest.fixture(scope="session")
def cluster() -> str:
    status = subprocess.run([str(ROOT / "hack" / "cluster"), "status"], check=False)
    if status.returncode != 0:
        pytest.fail("the local control plane is not running: start it with 'make cluster'")
    return KUBECONFIG


@pytest.fixture(scope="session")
def scenarios(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> dict[Scenario, Outcome]:
    """Every state, with Helm 3 and Helm 4, with both drivers; produced once per run."""
    return run_scenarios(ALL_SCENARIOS + EXTRA_SCENARIOS, tmp_path_factory.mktemp("scenarios"))


@pytest.fixture(scope="session")
def kube_client(cluster: str) -> t.Any:
    from ansible_collections.helmops.recovery.plugins.module_utils._k8s import (
        ConnectionOptions,
        KubeClient,
        build_api_client,
    )

    return KubeClient(build_api_client(ConnectionOptions(kubeconfig=cluster)))


# The tests that read the session's scenarios run first, while those releases are young: some verdicts depend on
# age (a rollout stuck for longer than its progress deadline no longer counts as running). The slow tests that make
# their own releases (faults, restarts, races, playbooks, a second cluster, the benchmark) follow.
FIRST = (
    "test_control_plane.py",
    "test_codec_storage.py",
    "test_scenarios.py",
    "test_helm_release_facts.py",
    "test_facts_history_labels.py",
    "test_helm_release_unlock.py",
    "test_helm_history_prune.py",
    "test_check_mode.py",
)


# Then the tests that read, change or time the whole cluster (a fleet-wide triage reports every release, a CRD
# the controllers listing sees, the benchmark times every release against Helm): before hack/integration starts
# its parallel workers, whose releases and load would be theirs too. Playbook runs scoped to releases of their
# own are in test_playbooks_scoped.py, which runs beside the workers.
BEFORE_WORKERS = ("test_facts_detail_brief.py", "test_bench.py", "test_playbooks.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        if name in FIRST:
            return FIRST.index(name)
        if name in BEFORE_WORKERS:
            return len(FIRST) + BEFORE_WORKERS.index(name)
        return len(FIRST) + len(BEFORE_WORKERS)

    items.sort(key=rank)  # stable: the order within a file is kept


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    """Once the young-scenario and whole-cluster tests are done, say so (HELMOPS_FIRST_DONE names the file):
    hack/integration starts the workers that run beside the rest only then, so those verdicts are read on an
    unloaded machine and the whole cluster holds none of the workers' releases."""
    done = os.environ.get("HELMOPS_FIRST_DONE")
    name = Path(location[0]).name
    if done and name not in FIRST and name not in BEFORE_WORKERS and not Path(done).exists():
        Path(done).touch()
