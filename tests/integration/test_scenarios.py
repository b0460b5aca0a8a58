"""The scenario factory drives real Helm 3 and Helm 4 into every state, with
both storage drivers; real Helm confirms each state independently."""

from __future__ import annotations

import json

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._release_codec import object_size

from .support import ALL_SCENARIOS, CHART, EXPECTED_STATUS, Outcome, Scenario, helm, helm_json, kubectl, ready

PENDING = {"pending-install", "pending-upgrade", "pending-upgrade-active", "pending-rollback"}


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=[s.id for s in ALL_SCENARIOS])
def test_real_helm_reports_the_state(scenarios: dict[Scenario, Outcome], scenario: Scenario) -> None:
    ready(scenarios[scenario])
    status = helm_json(scenario.helm, scenario.driver, "status", scenario.release, "-n", scenario.namespace)
    assert status["info"]["status"] == EXPECTED_STATUS[scenario.state]
    history = helm_json(scenario.helm, scenario.driver, "history", scenario.release, "-n", scenario.namespace)
    assert history[-1]["status"] == EXPECTED_STATUS[scenario.state]


PENDING_SCENARIOS = [s for s in ALL_SCENARIOS if s.state in PENDING]


@pytest.mark.parametrize("scenario", PENDING_SCENARIOS, ids=[s.id for s in PENDING_SCENARIOS])
def test_pending_states_block_a_real_upgrade(scenarios: dict[Scenario, Outcome], scenario: Scenario) -> None:
    ready(scenarios[scenario])
    refused = helm(
        scenario.helm, scenario.driver, "upgrade", scenario.release, CHART, "-n", scenario.namespace, check=False
    )
    assert refused.returncode != 0
    assert "another operation (install/upgrade/rollback) is in progress" in refused.stderr


def _deployment(scenario: Scenario) -> dict:
    out = kubectl("get", "deployment", f"{scenario.release}-web", "-n", scenario.namespace, "-o", "json").stdout
    return json.loads(out)


@pytest.mark.parametrize("helm_major", ["3", "4"])
@pytest.mark.parametrize("driver", ["secret", "configmap"])
class TestStateDetails:
    """What distinguishes each state beyond its status."""

    def outcome(self, scenarios: dict[Scenario, Outcome], state: str, helm_major: str, driver: str) -> Outcome:
        return ready(scenarios[Scenario(state, helm_major, driver)])

    def test_quiescent_pending_upgrade_finished_its_rollout(self, scenarios, helm_major, driver) -> None:
        scenario = self.outcome(scenarios, "pending-upgrade", helm_major, driver).scenario
        status = _deployment(scenario)["status"]
        assert status.get("updatedReplicas") == status.get("readyReplicas") == 1
        assert not status.get("unavailableReplicas")

    def test_active_pending_upgrade_is_still_rolling_out(self, scenarios, helm_major, driver) -> None:
        scenario = self.outcome(scenarios, "pending-upgrade-active", helm_major, driver).scenario
        deployment = _deployment(scenario)
        pods = json.loads(
            kubectl(
                "get", "pods", "-n", scenario.namespace, "-l", "helmops.test/behaviour=never-ready", "-o", "json"
            ).stdout
        )["items"]
        assert pods, "the interrupted upgrade's new pods should exist"
        assert all(p["status"]["phase"] == "Running" for p in pods)
        assert deployment["status"].get("unavailableReplicas", 0) >= 1 or deployment["status"]["updatedReplicas"] < 2

    def test_uninstalling_has_a_pre_delete_hook_still_running(self, scenarios, helm_major, driver) -> None:
        scenario = self.outcome(scenarios, "uninstalling", helm_major, driver).scenario
        job = json.loads(
            kubectl("get", "job", f"{scenario.release}-pre-delete", "-n", scenario.namespace, "-o", "json").stdout
        )
        assert job["status"].get("active") == 1
        assert not job["status"].get("succeeded")

    def test_failed_hook_names_the_failed_job(self, scenarios, helm_major, driver) -> None:
        outcome = self.outcome(scenarios, "failed-hook", helm_major, driver)
        assert "pre-upgrade hooks failed" in outcome.result["errors"][-1]
        assert outcome.result["history"][-1]["status"] == "failed"

    def test_atomic_upgrade_left_failed_then_rollback(self, scenarios, helm_major, driver) -> None:
        outcome = self.outcome(scenarios, "atomic-rolled-back", helm_major, driver)
        assert [h["status"] for h in outcome.result["history"]] == ["superseded", "failed", "deployed"]
        assert outcome.result["history"][-1]["description"] == "Rollback to 1"

    def test_missing_crd_upgrade_error_is_recorded(self, scenarios, helm_major, driver) -> None:
        outcome = self.outcome(scenarios, "missing-crd", helm_major, driver)
        assert 'no matches for kind "Widget"' in outcome.result["errors"][-1]
        assert len(outcome.result["history"]) == 1

    def test_keep_policy_has_kept_and_unprotected_claims(self, scenarios, helm_major, driver) -> None:
        scenario = self.outcome(scenarios, "keep-policy", helm_major, driver).scenario
        claims = json.loads(kubectl("get", "pvc", "-n", scenario.namespace, "-o", "json").stdout)["items"]
        policy = {
            c["metadata"]["name"]: (c["metadata"].get("annotations") or {}).get("helm.sh/resource-policy")
            for c in claims
        }
        assert policy == {f"{scenario.release}-data": None, f"{scenario.release}-archive": "keep"}

    def test_bloated_keeps_every_revision_with_some_large_records(self, scenarios, helm_major, driver) -> None:
        outcome = self.outcome(scenarios, "bloated", helm_major, driver)
        assert len(outcome.result["history"]) == 30
        kind = "secrets" if driver == "secret" else "configmaps"
        items = json.loads(
            kubectl("get", kind, "-n", outcome.scenario.namespace, "-l", "owner=helm", "-o", "json").stdout
        )["items"]
        sizes = sorted(object_size(item, driver) for item in items)  # bytes counted against the 1 MiB limit
        assert len(items) == 30
        assert 0.85 * 1_048_576 < sizes[-1] < 1_048_576, "the largest revision should be near the 1 MiB limit"
