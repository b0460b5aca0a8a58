"""helm_release_facts with detail=brief against history=labels, on every scenario
made by real Helm 3 and Helm 4 with both drivers: a healthy deployed release is
reported from its records alone (and the audit log shows no live object read for
it), every other release gets the same deep look and verdicts as before."""

from __future__ import annotations

import collections
import time
import typing as t
import uuid

import pytest

from .support import (
    ALL_SCENARIOS,
    CHART,
    DRIVERS,
    WRITE_VERBS,
    Outcome,
    Scenario,
    audit_events_since,
    helm,
    kubectl,
    ready,
    run_collection_module,
)
from .test_facts_history_labels import verdicts

# Findings only the deep look (payload, manifests, live objects) can make: documented as
# missing from a brief entry.
DEEP_ONLY_FINDINGS = {
    "missing-crd",
    "pvc-without-keep",
    "deployed-without-wait",
    "controller-managed",
    "hook-failed",
    "hook-running",
    "hook-unknown",
}
UNREAD_RISKS = ("pvcs_deleted_on_uninstall", "kept_objects", "missing_crds", "hooks")


def cluster_facts(driver: str, **options: t.Any) -> dict[tuple[str, str], dict[str, t.Any]]:
    result = run_collection_module("helm_release_facts", {"driver": driver, "stale_after": 1, **options})
    assert not result.get("failed"), result.get("msg")
    return {(r["namespace"], r["name"]): r for r in result["ansible_facts"]["helm_releases"]}


def healthy_by_records(release: dict[str, t.Any]) -> bool:
    newest = release["revisions"][-1]
    return release["status"] == "deployed" and newest["status_label"] == "deployed" and not release["record_errors"]


def kept_revisions(release: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    named = {release["latest_revision"], release["last_deployed_revision"], release["last_known_good_revision"]}
    return [entry for entry in release["revisions"] if entry["payload_read"] or entry["revision"] in named]


def finding_codes(release: dict[str, t.Any]) -> set[str]:
    return {finding["code"] for finding in release["diagnosis"]["findings"]}


@pytest.mark.parametrize("driver", DRIVERS)
def test_brief_looks_deep_exactly_where_the_records_show_trouble(
    scenarios: dict[Scenario, Outcome], driver: str
) -> None:
    wanted = [ready(scenarios[s]).scenario for s in ALL_SCENARIOS if s.driver == driver]
    brief = cluster_facts(driver, detail="brief")
    labels = cluster_facts(driver, history="labels")
    looked = collections.Counter()
    for scenario in wanted:
        key = (scenario.namespace, scenario.release)
        short, whole = brief[key], labels[key]
        healthy = healthy_by_records(whole)
        looked[short["detail"]] += 1
        assert short["detail"] == ("brief" if healthy else "full"), scenario.id
        assert short["revisions"] == kept_revisions(whole), scenario.id
        by_status = collections.Counter(entry["status"] for entry in whole["revisions"])
        assert short["risks"]["history"]["by_status"] == dict(by_status), scenario.id
        assert short["risks"]["history"]["count"] == len(whole["revisions"]), scenario.id
        if not healthy:
            assert verdicts(short) == verdicts(whole), scenario.id
            assert short["written_by"] == whole["written_by"], scenario.id
            assert short["risks"] == whole["risks"], scenario.id
            continue
        assert short["live"] == {"checked": False}, scenario.id
        assert short["written_by"] is None, scenario.id
        assert all(short["risks"][name] is None for name in UNREAD_RISKS), scenario.id
        assert short["lock"]["verdict"] == whole["lock"]["verdict"] == "none", scenario.id
        assert short["diagnosis"]["state"] == whole["diagnosis"]["state"] == "deployed", scenario.id
        assert finding_codes(short) <= finding_codes(whole), scenario.id
        assert finding_codes(whole) - finding_codes(short) <= DEEP_ONLY_FINDINGS, scenario.id
        deep_actions = [a for a in whole["diagnosis"]["actions"] if a["name"] != "escalate"]
        assert short["diagnosis"]["actions"] == deep_actions, scenario.id
    # Both kinds are exercised: the table holds healthy and stuck releases.
    assert looked["brief"] >= 3 and looked["full"] >= 8, looked


def live_reads(started: float, namespace: str, storage: str) -> list[tuple[str, str]]:
    """(verb, resource) of our requests in `namespace` that are not listings of Helm's records."""
    found = []
    for event in audit_events_since(started):
        ref = event.get("objectRef") or {}
        if ref.get("namespace") != namespace:
            continue
        if ref.get("resource") == storage and "labelSelector=owner%3Dhelm" in event["requestURI"]:
            continue
        found.append((event["verb"], str(ref.get("resource"))))
    return found


@pytest.mark.parametrize("state", ["deployed", "failed-upgrade"])
def test_brief_reads_live_objects_only_for_a_release_in_trouble(scenarios: dict[Scenario, Outcome], state: str) -> None:
    scenario = ready(scenarios[Scenario(state, "3", "secret")]).scenario
    started = time.time()
    result = run_collection_module(
        "helm_release_facts",
        {"release": [scenario.release], "namespace": scenario.namespace, "detail": "brief"},
        check_mode=True,
    )
    assert not result.get("failed"), result.get("msg")
    [release] = result["ansible_facts"]["helm_releases"]
    time.sleep(1)  # the audit log is written asynchronously
    reads = live_reads(started, scenario.namespace, "secrets")
    if state == "deployed":
        assert release["detail"] == "brief"
        assert reads == []
    else:
        assert release["detail"] == "full" and release["live"]["checked"] is True
        assert ("list", "deployments") in reads
    assert [e for e in audit_events_since(started) if e["verb"] in WRITE_VERBS] == []


def test_brief_refuses_history_full_and_reads_values_when_asked(cluster: str) -> None:
    namespace = f"brief-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    try:
        helm("3", "secret", "install", "web", CHART, "-n", namespace, "--set", "revisionNote=brief-values")
        refused = run_collection_module(
            "helm_release_facts", {"namespace": namespace, "detail": "brief", "history": "full"}
        )
        assert refused.get("failed") is True
        assert "detail=brief reads the history from object labels" in refused["msg"]
        result = run_collection_module(
            "helm_release_facts", {"namespace": namespace, "detail": "brief", "include_values": True}
        )
        [release] = result["ansible_facts"]["helm_releases"]
        assert release["detail"] == "brief"
        assert release["values"] == {"revisionNote": "brief-values"}
        assert release["written_by"] == "helm3"  # decoded for the values, so known
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")
