"""A built-in API version turned off after the install: the API server restarts with --runtime-config
autoscaling/v1=false (as a cluster upgrade removes a version), so a release's HorizontalPodAutoscaler, stored at
autoscaling/v1, is served only at autoscaling/v2. The checks are test_removed_api.py's.

The API server restarts, so this file runs after every other (hack/integration: the last files, alone); the
default API server is back when it ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import ApiServer, Outcome, Scenario, run_scenarios
from .test_removed_api import check_facts, check_mapping

# The first only installs (autoscaler-v1); the second installs, then restarts the API server without
# autoscaling/v1, which strands both: one restart instead of one per release.
BUILTIN = [
    Scenario("autoscaler-v1", "4", "secret", prefix="ra"),
    Scenario("removed-api-builtin", "3", "configmap", prefix="ra"),
]


@pytest.fixture(scope="module")
def made(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[Scenario, Outcome]]:
    """One after the other: the second's restart turns autoscaling/v1 off for both."""
    tmp = tmp_path_factory.mktemp("removed-builtin-api")
    try:
        outcomes: dict[Scenario, Outcome] = {}
        for case in BUILTIN:
            outcomes.update(run_scenarios([case], tmp))
        yield outcomes
    finally:
        ApiServer().restart()  # the default API server again, for whatever runs next


@pytest.mark.parametrize("case", BUILTIN, ids=[s.id for s in BUILTIN])
def test_facts_say_removed_api_for_a_version_the_api_server_turned_off(
    made: dict[Scenario, Outcome], case: Scenario
) -> None:
    check_facts(made[case], "HorizontalPodAutoscaler", f"{case.release}-web", "autoscaling/v2", [2])


@pytest.mark.parametrize("case", BUILTIN, ids=[s.id for s in BUILTIN])
def test_the_mapping_lets_real_helm_upgrade_and_roll_back(
    made: dict[Scenario, Outcome], case: Scenario, tmp_path: Path
) -> None:
    upgrade = {
        "revisionNote": "r9",
        "autoscaler": {"enabled": True, "apiVersion": "autoscaling/v2", "targetCPUPercent": 70},
    }
    check_mapping(made[case], tmp_path, [2], upgrade)
