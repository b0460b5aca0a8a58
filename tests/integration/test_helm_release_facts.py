"""helm_release_facts on every scenario, with Helm 3 and Helm 4 and both drivers:
the facts agree with what real `helm status` / `helm history` say, and the
diagnosis picks the right first action."""

from __future__ import annotations

import base64
import json
import subprocess
import typing as t
import uuid
from pathlib import Path

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils import _release_codec as codec

from .support import (
    ALL_SCENARIOS,
    KUBECONFIG,
    ROOT,
    Outcome,
    Scenario,
    helm,
    helm_json,
    kubectl,
    ready,
    run_collection_module,
    write_kubeconfig,
)

# What the diagnosis must recommend first for each state (records are seconds
# old, so the tests call with stale_after=1: only live evidence keeps a lock).
FIRST_ACTION = {
    "deployed": "none",
    "failed-install": "upgrade",  # never deployed: Helm allows an upgrade over a failed install
    "failed-upgrade": "rollback",  # the new pods never became ready
    "pending-install": "unlock",
    "pending-upgrade": "unlock",  # the interrupted rollout finished: keep it, unlock and re-run
    "pending-upgrade-active": "wait",  # the rollout is still in progress
    "pending-rollback": "rollback",
    "uninstalling": "wait",  # the pre-delete hook Job is still running
    "failed-hook": "rollback",  # nothing of the new revision was applied
    "atomic-rolled-back": "none",
    "missing-crd": "none",
    "keep-policy": "none",
    "bloated": "none",
}


def run_module(args: dict[str, t.Any], *, check_mode: bool = False, kubeconfig: str = KUBECONFIG) -> dict[str, t.Any]:
    return run_collection_module("helm_release_facts", args, check_mode=check_mode, kubeconfig=kubeconfig)


def facts_for(scenario: Scenario, **extra: t.Any) -> dict[str, t.Any]:
    result = run_module(
        {
            "release": [scenario.release],
            "namespace": scenario.namespace,
            "driver": scenario.driver,
            "stale_after": 1,
            **extra,
        }
    )
    assert not result.get("failed"), result.get("msg")
    releases = result["ansible_facts"]["helm_releases"]
    assert [r["name"] for r in releases] == [scenario.release]
    return t.cast(dict[str, t.Any], releases[0])


@pytest.mark.parametrize("scenario", ALL_SCENARIOS, ids=[s.id for s in ALL_SCENARIOS])
def test_facts_agree_with_real_helm_and_pick_the_first_action(
    scenarios: dict[Scenario, Outcome], scenario: Scenario
) -> None:
    ready(scenarios[scenario])
    release = facts_for(scenario)
    status = helm_json(scenario.helm, scenario.driver, "status", scenario.release, "-n", scenario.namespace)
    history = helm_json(
        scenario.helm, scenario.driver, "history", scenario.release, "-n", scenario.namespace, "--max", "1000"
    )
    assert release["status"] == status["info"]["status"]
    assert release["latest_revision"] == status["version"]
    assert [(r["revision"], r["status"], r["description"]) for r in release["revisions"]] == [
        (h["revision"], h["status"], h["description"]) for h in history
    ]
    assert [f"{r['chart']}-{r['chart_version']}" for r in release["revisions"]] == [h["chart"] for h in history]
    assert release["upgrade_blocked"] == status["info"]["status"].startswith("pending-")
    assert release["written_by"] == f"helm{scenario.helm}"
    assert release["record_errors"] == []
    assert all(r["size_bytes"] > 0 and not r["status_label_mismatch"] for r in release["revisions"])
    actions = release["diagnosis"]["actions"]
    assert actions[0]["name"] == FIRST_ACTION[scenario.state], release["diagnosis"]["summary"]
    assert "user_values" not in release


@pytest.mark.parametrize("helm_major", ["3", "4"])
@pytest.mark.parametrize("driver", ["secret", "configmap"])
class TestEvidence:
    def scenario(self, scenarios: dict[Scenario, Outcome], state: str, helm_major: str, driver: str) -> Scenario:
        return ready(scenarios[Scenario(state, helm_major, driver)]).scenario

    def test_stale_lock_and_its_absent_evidence(self, scenarios, helm_major, driver) -> None:
        release = facts_for(self.scenario(scenarios, "pending-upgrade", helm_major, driver))
        assert release["lock"]["verdict"] == "stale"
        assert release["lock"]["evidence"] == []
        assert release["live"]["closer_to"] == "new"
        assert release["last_known_good_revision"] == 1
        assert release["pending_seconds"] >= 0

    def test_fresh_record_is_possibly_running_with_default_stale_after(self, scenarios, helm_major, driver) -> None:
        scenario = self.scenario(scenarios, "pending-upgrade", helm_major, driver)
        release = facts_for(scenario, stale_after=3600)
        assert release["lock"]["verdict"] == "possibly-running"
        assert "stale after 3600s" in release["lock"]["evidence"][0]

    def test_running_rollout_is_evidence(self, scenarios, helm_major, driver) -> None:
        release = facts_for(self.scenario(scenarios, "pending-upgrade-active", helm_major, driver))
        assert release["lock"]["verdict"] == "possibly-running"
        assert any("is rolling out" in e for e in release["lock"]["evidence"])
        assert release["live"]["workloads_ready"] is False

    def test_running_hook_is_evidence(self, scenarios, helm_major, driver) -> None:
        release = facts_for(self.scenario(scenarios, "uninstalling", helm_major, driver))
        assert any(
            "hook Job r-uninstalling-pre-delete (pre-delete) is still running" in e for e in release["lock"]["evidence"]
        )
        assert release["risks"]["hooks"][0]["events"] == ["pre-delete"]

    def test_interrupted_rollback_resumes_to_its_target(self, scenarios, helm_major, driver) -> None:
        release = facts_for(self.scenario(scenarios, "pending-rollback", helm_major, driver))
        # Pasted, the command must find a ConfigMap-stored release: Helm reads those only with HELM_DRIVER set.
        prefix = "HELM_DRIVER=configmap " if driver == "configmap" else ""
        assert release["diagnosis"]["actions"][0]["command"].startswith(f"{prefix}helm rollback r-pending-rollback 1 ")

    def test_failed_hook_finding(self, scenarios, helm_major, driver) -> None:
        release = facts_for(self.scenario(scenarios, "failed-hook", helm_major, driver))
        codes = {f["code"] for f in release["diagnosis"]["findings"]}
        assert "hook-failed" in codes
        assert release["live"]["closer_to"] in ("old", "same")

    def test_missing_crd_error_text_becomes_a_finding(self, scenarios, helm_major, driver) -> None:
        outcome = ready(scenarios[Scenario("missing-crd", helm_major, driver)])
        release = facts_for(outcome.scenario, error=outcome.result["errors"][-1], operation="upgrade")
        finding = next(f for f in release["diagnosis"]["findings"] if f["code"] == "missing-crd")
        assert "ensure CRDs are installed first" in finding["evidence"][0] or "no matches" in finding["evidence"][0]

    def test_atomic_rollback_is_recognised(self, scenarios, helm_major, driver) -> None:
        outcome = ready(scenarios[Scenario("atomic-rolled-back", helm_major, driver)])
        release = facts_for(outcome.scenario, error=outcome.result["errors"][-1])
        assert "atomic-rolled-back" in {f["code"] for f in release["diagnosis"]["findings"]}
        assert release["last_known_good_revision"] == 3

    def test_keep_policy_risks(self, scenarios, helm_major, driver) -> None:
        release = facts_for(self.scenario(scenarios, "keep-policy", helm_major, driver))
        risks = release["risks"]
        assert [p["name"] for p in risks["pvcs_deleted_on_uninstall"]] == ["r-keep-policy-data"]
        assert {(k["kind"], k["name"]) for k in risks["kept_objects"]} == {
            ("PersistentVolumeClaim", "r-keep-policy-archive"),
            ("ConfigMap", "r-keep-policy-kept"),
        }
        assert "pvc-without-keep" in {f["code"] for f in release["diagnosis"]["findings"]}

    def test_bloated_history(self, scenarios, helm_major, driver) -> None:
        release = facts_for(self.scenario(scenarios, "bloated", helm_major, driver))
        history = release["risks"]["history"]
        assert history["count"] == 30
        assert history["total_bytes"] == sum(r["size_bytes"] for r in release["revisions"])
        assert [r["revision"] for r in release["risks"]["large_records"]] == [20]
        assert [a["name"] for a in release["diagnosis"]["actions"]] == ["none", "prune_history"]
        codes = {f["code"] for f in release["diagnosis"]["findings"]}
        assert {"history-too-long", "record-near-size-limit"} <= codes

    def test_live_objects_match_the_deployed_manifest(self, scenarios, helm_major, driver) -> None:
        release = facts_for(self.scenario(scenarios, "deployed", helm_major, driver))
        assert {(o["kind"], o["latest"]) for o in release["live"]["objects"]} == {
            ("ConfigMap", "present"),
            ("Service", "present"),
            ("Deployment", "present"),
        }
        assert release["live"]["orphans"] == []


def test_values_only_on_request(scenarios: dict[Scenario, Outcome]) -> None:
    scenario = ready(scenarios[Scenario("deployed", "3", "secret")]).scenario
    plain = run_module({"release": [scenario.release], "namespace": scenario.namespace})
    assert "user_values" not in plain["ansible_facts"]["helm_releases"][0]
    with_values = run_module({"release": [scenario.release], "namespace": scenario.namespace, "include_values": True})
    assert with_values["ansible_facts"]["helm_releases"][0]["user_values"] == {"revisionNote": "r3"}


def test_one_call_covers_a_namespace_and_the_cluster(scenarios: dict[Scenario, Outcome]) -> None:
    cluster_wide = run_module({"driver": "secret", "stale_after": 1})
    found = {(r["namespace"], r["name"]) for r in cluster_wide["ansible_facts"]["helm_releases"]}
    expected = {(s.namespace, s.release) for s in ALL_SCENARIOS if s.driver == "secret"}
    assert expected <= found
    namespace = next(s for s in ALL_SCENARIOS if s.driver == "configmap").namespace
    one_namespace = run_module({"namespace": namespace, "driver": "configmap"})
    assert {r["namespace"] for r in one_namespace["ansible_facts"]["helm_releases"]} == {namespace}


def test_bulk_reports_bad_records_on_their_release_and_keeps_the_others(cluster: str) -> None:
    namespace = f"bulk-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    home = ROOT / ".cluster" / "helm-home"
    for name in ("good-a", "good-b"):
        subprocess.run(
            [
                str(ROOT / ".cluster" / "bin" / "helm3"),
                "install",
                name,
                str(ROOT / "tests" / "charts" / "app"),
                "-n",
                namespace,
            ],
            env={
                "KUBECONFIG": KUBECONFIG,
                "HOME": str(home),
                "HELM_CONFIG_HOME": str(home / "config"),
                "HELM_CACHE_HOME": str(home / "cache"),
                "HELM_DATA_HOME": str(home / "data"),
                "PATH": "/usr/bin",
            },
            check=True,
            capture_output=True,
        )
    corrupt = base64.b64encode(b"H4sIAAAAAAAC/not really gzip").decode()
    good = json.loads(kubectl("get", "secret", "sh.helm.release.v1.good-a.v1", "-n", namespace, "-o", "json").stdout)
    weird_release = codec.decode_record(good, "secret").release
    weird_release["name"] = "weird"
    weird_release["info"]["status"] = "exploded"
    weird = base64.b64encode(codec.encode_payload(weird_release).encode()).decode()
    manifests = [
        # a corrupt record of a third release
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "helm.sh/release.v1",
            "metadata": {
                "name": "sh.helm.release.v1.broken.v1",
                "namespace": namespace,
                "labels": {"owner": "helm", "name": "broken", "status": "deployed", "version": "1"},
            },
            "data": {"release": corrupt},
        },
        # a record whose status is not one Helm defines
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "helm.sh/release.v1",
            "metadata": {
                "name": "sh.helm.release.v1.weird.v1",
                "namespace": namespace,
                "labels": {"owner": "helm", "name": "weird", "status": "exploded", "version": "1"},
            },
            "data": {"release": weird},
        },
        # an object that carries owner=helm but is no release record
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": "registry-credentials", "namespace": namespace, "labels": {"owner": "helm"}},
            "data": {"token": base64.b64encode(b"x").decode()},
        },
    ]
    for manifest in manifests:
        subprocess.run(
            [str(ROOT / ".cluster" / "bin" / "kubectl"), "--kubeconfig", KUBECONFIG, "apply", "-f", "-"],
            input=json.dumps(manifest),
            text=True,
            check=True,
            capture_output=True,
        )
    result = run_module({"namespace": namespace})
    releases = {r["name"]: r for r in result["ansible_facts"]["helm_releases"]}
    assert set(releases) == {"good-a", "good-b", "broken", "weird"}
    assert releases["weird"]["record_errors"][0]["reason"] == "unknown-status"
    assert "payload status 'exploded' is not one of Helm's" in releases["weird"]["record_errors"][0]["message"]
    assert releases["good-a"]["status"] == releases["good-b"]["status"] == "deployed"
    broken = releases["broken"]
    assert broken["record_errors"][0]["object"] == f"Secret {namespace}/sh.helm.release.v1.broken.v1"
    assert broken["record_errors"][0]["reason"] in ("bad-gzip", "bad-base64")
    assert broken["diagnosis"]["actions"][0]["name"] == "escalate"
    errors = result["ansible_facts"]["helm_release_errors"]
    assert any(f"Secret {namespace}/registry-credentials" in e and "not a Helm release record" in e for e in errors)
    kubectl("delete", "namespace", namespace, "--wait=false")


BAD_INPUT = [
    ({"release": ["Not_Valid"]}, "invalid release name 'Not_Valid'"),
    ({"release": ["../../etc"]}, "invalid release name '../../etc'"),
    ({"release": ["x" * 60]}, "longer than 53 characters"),
    ({"namespace": "kube/system"}, "invalid namespace name 'kube/system'"),
    ({"namespace": "no-such-namespace"}, "namespace 'no-such-namespace' does not exist"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[m for _a, m in BAD_INPUT])
def test_bad_input_fails_with_a_clear_message(cluster: str, args: dict[str, t.Any], message: str) -> None:
    result = run_module(args)
    assert result.get("failed") is True
    assert message in result["msg"]


def test_a_release_that_does_not_exist_is_reported(scenarios: dict[Scenario, Outcome]) -> None:
    namespace = Scenario("deployed", "3", "secret").namespace
    result = run_module({"namespace": namespace, "release": ["r-deployed", "ghost"]})
    assert [r["name"] for r in result["ansible_facts"]["helm_releases"]] == ["r-deployed"]
    assert result["ansible_facts"]["helm_release_errors"] == [
        f"release 'ghost' not found in namespace {namespace} (Secret records, owner=helm)"
    ]


def test_unreachable_unauthorised_and_untrusted_clusters(cluster: str, tmp_path: Path) -> None:
    server = kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
    ca = str(ROOT / ".cluster" / "pki" / "ca.crt")
    dead = run_module({}, kubeconfig=write_kubeconfig(tmp_path, "https://127.0.0.1:9", "token-for-a-dead-port", ca))
    assert dead["failed"] and "cannot reach the Kubernetes API server https://127.0.0.1:9" in dead["msg"]
    bad_token = run_module({}, kubeconfig=write_kubeconfig(tmp_path, server, "not-a-token", ca))
    assert bad_token["failed"] and "rejected the credentials (401 Unauthorized)" in bad_token["msg"]
    assert "not-a-token" not in json.dumps(bad_token)
    wrong_ca = run_module(
        {}, kubeconfig=write_kubeconfig(tmp_path, server, "token-for-a-wrong-ca", "/etc/ssl/certs/ca-certificates.crt")
    )
    assert wrong_ca["failed"] and "cannot verify the TLS certificate" in wrong_ca["msg"]


def test_forbidden_identity_gets_a_message_naming_verb_and_resource(cluster: str, tmp_path: Path) -> None:
    namespace = f"nobody-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    token = kubectl("create", "token", "nobody", "-n", namespace).stdout.strip()
    server = kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
    result = run_module(
        {"namespace": namespace},
        kubeconfig=write_kubeconfig(tmp_path, server, token, str(ROOT / ".cluster" / "pki" / "ca.crt")),
    )
    assert result["failed"]
    assert "forbidden (403) to read secrets in namespace" in result["msg"]
    assert (
        'cannot list resource \\"secrets\\"' in json.dumps(result["msg"])
        or 'cannot list resource "secrets"' in result["msg"]
    )
    assert token not in json.dumps(result)
    kubectl("delete", "namespace", namespace, "--wait=false")


CRDS = {
    "helmreleases.helm.toolkit.fluxcd.io": ("helm.toolkit.fluxcd.io", "v2", "HelmRelease", "helmreleases"),
    "helmcharts.helm.cattle.io": ("helm.cattle.io", "v1", "HelmChart", "helmcharts"),
}


def _apply(manifest: dict[str, t.Any]) -> None:
    subprocess.run(
        [str(ROOT / ".cluster" / "bin" / "kubectl"), "--kubeconfig", KUBECONFIG, "apply", "-f", "-"],
        input=json.dumps(manifest),
        text=True,
        check=True,
        capture_output=True,
    )


def test_releases_managed_by_flux_or_k3s_are_flagged(scenarios: dict[Scenario, Outcome]) -> None:
    for name, (group, version, kind, plural) in CRDS.items():
        _apply(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": name},
                "spec": {
                    "group": group,
                    "scope": "Namespaced",
                    "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": kind + "List"},
                    "versions": [
                        {
                            "name": version,
                            "served": True,
                            "storage": True,
                            "schema": {
                                "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                            },
                        }
                    ],
                },
            }
        )
        kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    flux = ready(scenarios[Scenario("deployed", "4", "secret")]).scenario
    k3s = ready(scenarios[Scenario("keep-policy", "3", "secret")]).scenario
    _apply(
        {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "app", "namespace": flux.namespace},
            "spec": {"releaseName": flux.release},
        }
    )
    _apply(
        {
            "apiVersion": "helm.cattle.io/v1",
            "kind": "HelmChart",
            "metadata": {"name": k3s.release, "namespace": "default"},
            "spec": {"targetNamespace": k3s.namespace},
        }
    )
    try:
        managed = facts_for(flux)["risks"]["managed_by"]
        assert managed == {
            "controller": "Flux helm-controller",
            "kind": "HelmRelease",
            "name": "app",
            "namespace": flux.namespace,
        }
        assert facts_for(k3s)["risks"]["managed_by"]["controller"] == "k3s helm-controller"
        codes = {f["code"] for f in facts_for(flux)["diagnosis"]["findings"]}
        assert "controller-managed" in codes
        assert facts_for(ready(scenarios[Scenario("deployed", "3", "secret")]).scenario)["risks"]["managed_by"] is None
    finally:
        for name in CRDS:
            kubectl("delete", "crd", name, "--wait=false")


def test_one_call_over_a_namespace_with_many_releases(cluster: str) -> None:
    namespace = f"many-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    names = [f"app-{index:02d}" for index in range(15)]
    for name in names:
        helm(
            "4" if int(name[-1]) % 2 else "3",
            "secret",
            "install",
            name,
            str(ROOT / "tests" / "charts" / "app"),
            "-n",
            namespace,
        )
    result = run_module({"namespace": namespace, "stale_after": 1})
    releases = result["ansible_facts"]["helm_releases"]
    assert [r["name"] for r in releases] == names
    assert {r["status"] for r in releases} == {"deployed"}
    assert {r["written_by"] for r in releases} == {"helm3", "helm4"}
    assert result["ansible_facts"]["helm_release_errors"] == []
    kubectl("delete", "namespace", namespace, "--wait=false")
