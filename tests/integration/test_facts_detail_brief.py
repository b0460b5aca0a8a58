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
# The deep look's evidence sections: absent from a brief entry.
BRIEF_OMITTED = {"written_by", "pending_seconds", "live", "lock", "risks"}


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
        if not healthy:
            by_status = collections.Counter(entry["status"] for entry in whole["revisions"])
            assert short["risks"]["history"]["by_status"] == dict(by_status), scenario.id
            assert short["risks"]["history"]["count"] == len(whole["revisions"]), scenario.id
            assert verdicts(short) == verdicts(whole), scenario.id
            assert short["written_by"] == whole["written_by"], scenario.id
            assert short["risks"] == whole["risks"], scenario.id
            continue
        assert not BRIEF_OMITTED & set(short), scenario.id
        assert whole["lock"]["verdict"] == "none", scenario.id
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
        assert release["user_values"] == {"revisionNote": "brief-values"}
        assert not BRIEF_OMITTED & set(release)
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")


def superseded_listings(started: float) -> dict[str, int]:
    """Our listings of records labelled superseded since `started`, by how they were asked for."""
    kinds: collections.Counter[str] = collections.Counter()
    for event in audit_events_since(started):
        uri = event["requestURI"]
        if event["verb"] != "list" or "status%3Dsuperseded" not in uri or "status%21%3D" in uri:
            continue
        if "includeObject=None" in uri:
            kinds["names"] += 1
        elif "metadata.namespace%21%3D" in uri:
            kinds["elsewhere"] += 1
        elif "includeObject=Metadata" in uri:
            kinds["by-release-name"] += 1
        else:
            kinds["metadata"] += 1
    return dict(kinds)


@pytest.fixture
def spread_releases(cluster: str) -> t.Iterator[tuple[list[str], list[str]]]:
    """Real Helm releases whose superseded records a name alone does not place: `twin` in two
    namespaces, `solo` in one, and `ghost`, whose newest record was relabelled superseded so
    that its namespace holds no record labelled otherwise."""
    suffix = uuid.uuid4().hex[:6]
    namespaces = [f"spread-{suffix}-{n}" for n in ("a", "b", "c")]
    twin, solo, ghost = (f"{name}-{suffix}" for name in ("twin", "solo", "ghost"))
    for namespace in namespaces:
        kubectl("create", "namespace", namespace)
    try:
        for major, namespace, release, revisions in (
            ("3", namespaces[0], twin, 3),
            ("4", namespaces[1], twin, 2),
            ("3", namespaces[0], solo, 2),
            ("4", namespaces[2], ghost, 2),
        ):
            helm(major, "secret", "install", release, CHART, "-n", namespace, "--wait")
            for revision in range(2, revisions + 1):
                helm(
                    major,
                    "secret",
                    "upgrade",
                    release,
                    CHART,
                    "-n",
                    namespace,
                    "--set",
                    f"revisionNote=r{revision}",
                    "--wait",
                )
        kubectl(
            "label", "secret", "-n", namespaces[2], f"sh.helm.release.v1.{ghost}.v2", "status=superseded", "--overwrite"
        )
        yield namespaces, [twin, solo, ghost]
    finally:
        for namespace in namespaces:
            kubectl("delete", "namespace", namespace, "--wait=false")


def test_brief_places_superseded_records_named_in_several_or_no_namespaces(
    spread_releases: tuple[list[str], list[str]],
) -> None:
    namespaces, names = spread_releases
    started = time.time()
    brief = cluster_facts("secret", detail="brief", release=names)
    time.sleep(1)  # the audit log is written asynchronously
    listings = superseded_listings(started)
    labels = cluster_facts("secret", history="labels", release=names)
    assert (
        set(brief)
        == set(labels)
        == {
            (namespaces[0], names[0]),
            (namespaces[1], names[0]),
            (namespaces[0], names[1]),
            (namespaces[2], names[2]),
        }
    )
    for key, whole in labels.items():
        short = brief[key]
        assert short["revisions"] == kept_revisions(whole), key
        assert short["diagnosis"] == whole["diagnosis"], key
    ghost = (namespaces[2], names[2])
    assert verdicts(brief[ghost]) == verdicts(labels[ghost])
    assert brief[ghost]["risks"]["history"] == labels[ghost]["risks"]["history"]
    assert brief[(namespaces[2], names[2])]["detail"] == "full"  # its label disagrees with its payload
    assert [brief[(namespaces[0], name)]["detail"] for name in names[:2]] == ["brief", "brief"]
    # Names for every superseded record; their metadata only for the namespace holding no
    # other record (ghost) and for the release in two namespaces (twin); no full listing.
    assert listings == {"names": 1, "elsewhere": 1, "by-release-name": 1}, listings


@pytest.mark.parametrize(
    ("secret_type", "expected"),
    [
        # Another type is read whole by the other-type listing: the names suffice.
        ("Opaque", {"names": 1}),
        # Helm's type under a name that is no record's: the metadata of every superseded record.
        ("helm.sh/release.v1", {"names": 1, "metadata": 1}),
    ],
)
def test_brief_reports_a_lookalike_labelled_superseded_as_labels_does(
    cluster: str, secret_type: str, expected: dict[str, int]
) -> None:
    namespace = f"lookalike-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    try:
        helm("3", "secret", "install", "web", CHART, "-n", namespace)
        helm("3", "secret", "upgrade", "web", CHART, "-n", namespace, "--set", "revisionNote=r2")
        kubectl(
            "create",
            "secret",
            "generic",
            "helm-lookalike",
            "-n",
            namespace,
            f"--type={secret_type}",
            "--from-literal=release=x",
        )
        kubectl("label", "secret", "-n", namespace, "helm-lookalike", "owner=helm", "status=superseded")
        started = time.time()
        brief = run_collection_module("helm_release_facts", {"namespace": namespace, "detail": "brief"})
        time.sleep(1)
        listings = superseded_listings(started)
        labels = run_collection_module("helm_release_facts", {"namespace": namespace, "history": "labels"})
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")
    assert listings == expected, listings
    assert brief["ansible_facts"]["helm_release_errors"] == labels["ansible_facts"]["helm_release_errors"]
    assert any("helm-lookalike" in error for error in brief["ansible_facts"]["helm_release_errors"])
    [short] = brief["ansible_facts"]["helm_releases"]
    [whole] = labels["ansible_facts"]["helm_releases"]
    assert short["revisions"] == kept_revisions(whole)
    assert [entry["revision"] for entry in short["revisions"]] == [2]
    assert whole["risks"]["history"]["by_status"] == {"superseded": 1, "deployed": 1}
