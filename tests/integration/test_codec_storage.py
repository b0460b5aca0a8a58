"""The codec and storage layer on records written by real Helm, and writes
that real Helm then accepts."""

from __future__ import annotations

import base64
import gzip
import typing as t
import uuid
from pathlib import Path

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils import _release_codec as codec
from ansible_collections.helmops.recovery.plugins.module_utils._k8s import (
    ConnectionOptions,
    KubeClient,
    KubeConflict,
    KubeForbidden,
    build_api_client,
)
from ansible_collections.helmops.recovery.plugins.module_utils._storage import ReleaseStorage

from .support import (
    ALL_SCENARIOS,
    CHART,
    ROOT,
    WRITABLE_SCENARIOS,
    Outcome,
    Scenario,
    helm,
    helm_json,
    kubectl,
    ready,
    write_kubeconfig,
)

SECRET_SCENARIOS = [s for s in ALL_SCENARIOS if s.driver == "secret"]


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=[s.id for s in ALL_SCENARIOS])
def test_every_revision_decodes_as_real_helm_reports_it(
    scenarios: dict[Scenario, Outcome], kube_client: t.Any, scenario: Scenario
) -> None:
    ready(scenarios[scenario])
    storage = ReleaseStorage(kube_client, t.cast(codec.Driver, scenario.driver))
    records, errors = storage.history(scenario.namespace, scenario.release)
    assert errors == []
    helm_history = helm_json(
        scenario.helm, scenario.driver, "history", scenario.release, "-n", scenario.namespace, "--max", "1000"
    )
    ours = [(s.record.revision, s.record.status, s.record.description) for s in records]
    theirs = [(h["revision"], h["status"], h["description"]) for h in helm_history]
    assert ours == theirs
    for stored in records:
        original = gzip.decompress(base64.b64decode(codec.payload_text_from_object(stored.obj, storage.driver)))
        assert codec.go_json_dumps(stored.record.release).encode() == original
        assert stored.record.meta.size and stored.record.meta.size > 0


@pytest.mark.parametrize("scenario", SECRET_SCENARIOS, ids=[s.id for s in SECRET_SCENARIOS])
def test_a_protobuf_listing_gives_the_codec_what_the_json_listing_gives(
    scenarios: dict[Scenario, Outcome], kube_client: t.Any, scenario: Scenario
) -> None:
    ready(scenarios[scenario])
    storage = ReleaseStorage(kube_client, "secret")
    as_json = list(storage.list_objects(scenario.namespace, scenario.release))
    as_protobuf = list(storage.list_objects(scenario.namespace, scenario.release, raw_data=True))
    assert as_json and [meta for meta, _obj in as_protobuf] == [meta for meta, _obj in as_json]
    for (meta, from_protobuf), (_meta, from_json) in zip(as_protobuf, as_json, strict=True):
        assert isinstance(meta, codec.RecordMeta)
        assert isinstance(from_protobuf["data"]["release"], memoryview)  # the server did answer in protobuf
        text = codec.payload_text_from_object(from_protobuf, "secret")
        assert text == codec.payload_text_from_object(from_json, "secret")
        assert codec.summary_from_object(from_protobuf, "secret") == codec.summary_from_object(from_json, "secret")
        assert int(codec.decode_payload(text)["version"]) == meta.revision
    helm_history = helm_json("3", "secret", "history", scenario.release, "-n", scenario.namespace, "--max", "1000")
    assert sorted(meta.revision for meta, _obj in as_protobuf) == [h["revision"] for h in helm_history]


def test_a_forbidden_protobuf_listing_fails_with_the_servers_reason(cluster: str, tmp_path: Path) -> None:
    namespace = f"pb-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    try:
        kubectl("create", "serviceaccount", "nobody", "-n", namespace)
        token = kubectl("create", "token", "nobody", "-n", namespace, "--duration", "10m").stdout.strip()
        server = kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
        kubeconfig = write_kubeconfig(tmp_path, server, token, str(ROOT / ".cluster" / "pki" / "ca.crt"))
        storage = ReleaseStorage(KubeClient(build_api_client(ConnectionOptions(kubeconfig=kubeconfig))), "secret")
        with pytest.raises(KubeForbidden) as raised:
            list(storage.list_objects(namespace, raw_data=True))
        message = str(raised.value)
        assert message.startswith(f"forbidden (403) to read secrets in namespace {namespace}: ")
        assert f'User "system:serviceaccount:{namespace}:nobody" cannot list resource "secrets"' in message
        assert raised.value.reason == "Forbidden"
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")


@pytest.mark.parametrize("scenario", WRITABLE_SCENARIOS, ids=[s.id for s in WRITABLE_SCENARIOS])
def test_pending_record_rewritten_as_failed_unblocks_real_helm(
    scenarios: dict[Scenario, Outcome], kube_client: t.Any, scenario: Scenario
) -> None:
    ready(scenarios[scenario])
    blocked = helm(
        scenario.helm, scenario.driver, "upgrade", scenario.release, CHART, "-n", scenario.namespace, check=False
    )
    assert "another operation (install/upgrade/rollback) is in progress" in blocked.stderr

    storage = ReleaseStorage(kube_client, t.cast(codec.Driver, scenario.driver))
    records, _errors = storage.history(scenario.namespace, scenario.release)
    latest = records[-1]
    assert latest.record.status == scenario.state
    storage.replace(latest, codec.with_status(latest.record.release, "failed", "marked failed by a test"))

    history = helm_json(scenario.helm, scenario.driver, "history", scenario.release, "-n", scenario.namespace)
    assert history[-1]["revision"] == latest.record.revision
    assert history[-1]["status"] == "failed"
    assert history[-1]["description"] == "marked failed by a test"
    status = helm_json(scenario.helm, scenario.driver, "status", scenario.release, "-n", scenario.namespace)
    assert status["info"]["status"] == "failed"

    helm(
        scenario.helm,
        scenario.driver,
        "upgrade",
        scenario.release,
        CHART,
        "-n",
        scenario.namespace,
        "--wait",
        "--timeout",
        "2m",
    )
    after = helm_json(scenario.helm, scenario.driver, "history", scenario.release, "-n", scenario.namespace)
    assert after[-1]["revision"] == latest.record.revision + 1
    assert after[-1]["status"] == "deployed"


@pytest.mark.parametrize("driver", ["secret", "configmap"])
def test_listing_paginates_and_metadata_only_skips_payloads(
    scenarios: dict[Scenario, Outcome], kube_client: t.Any, driver: str
) -> None:
    scenario = ready(scenarios[Scenario("bloated", "3", driver)]).scenario
    storage = ReleaseStorage(kube_client, t.cast(codec.Driver, driver))
    metas = list(storage.list_meta(scenario.namespace, scenario.release, page_size=7))
    assert sorted(m.revision for m in metas if isinstance(m, codec.RecordMeta)) == list(range(1, 31))
    assert all(isinstance(m, codec.RecordMeta) and m.size is None for m in metas)
    full = [meta for meta, _obj in storage.list_objects(scenario.namespace, scenario.release, page_size=4)]
    assert sorted(m.revision for m in full if isinstance(m, codec.RecordMeta)) == list(range(1, 31))
    assert max(m.size or 0 for m in full if isinstance(m, codec.RecordMeta)) > 600_000


def test_cluster_wide_listing_finds_every_scenario_release(
    scenarios: dict[Scenario, Outcome], kube_client: t.Any
) -> None:
    storage = ReleaseStorage(kube_client, "secret")
    found = {(m.namespace, m.release) for m in storage.list_meta(page_size=50) if isinstance(m, codec.RecordMeta)}
    expected = {(s.namespace, s.release) for s in ALL_SCENARIOS if s.driver == "secret"}
    assert expected <= found


@pytest.mark.parametrize("driver", ["secret", "configmap"])
def test_writes_with_a_stale_resource_version_change_nothing(
    scenarios: dict[Scenario, Outcome], kube_client: t.Any, driver: str
) -> None:
    scenario = ready(scenarios[Scenario("deployed", "4", driver)]).scenario
    storage = ReleaseStorage(kube_client, t.cast(codec.Driver, driver))
    records, _errors = storage.history(scenario.namespace, scenario.release)
    oldest = records[0]
    # Someone else writes the record after we read it.
    storage.replace(oldest, codec.with_status(oldest.record.release, "superseded", "touched by another writer"))

    with pytest.raises(KubeConflict, match="changed since it was read"):
        storage.replace(oldest, codec.with_status(oldest.record.release, "failed", "stale write"))
    with pytest.raises(KubeConflict):
        storage.delete(oldest.record.meta)

    history = helm_json(scenario.helm, scenario.driver, "history", scenario.release, "-n", scenario.namespace)
    assert history[0]["status"] == "superseded"
    assert history[0]["description"] == "touched by another writer"
    assert len(history) == len(records)
