"""Integration tests: the real local control plane and real Helm 3 / Helm 4.

The control plane is started (or reused) by `make integration`; a test run
that cannot reach it fails, it never skips.
"""

from __future__ import annotations

import subprocess
import typing as t

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
