"""API versions the cluster no longer serves: which stored objects name one, where their kind is served now, which
revisions Helm reads, and the stored manifest rewritten byte for byte but for the one value."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._apis import (
    REMOVALS,
    MappingError,
    Unserved,
    map_manifest,
    revisions_helm_reads,
    unserved,
)
from ansible_collections.helmops.recovery.plugins.module_utils._diagnosis import recognise_errors
from ansible_collections.helmops.recovery.plugins.module_utils._manifest import parse_manifest


class StubDiscovery:
    """What the API serves: apiVersion -> kinds."""

    def __init__(self, served: dict[str, set[str]]) -> None:
        self.served = served

    def resource(self, api_version: str, kind: str) -> object | None:
        return object() if kind in self.served.get(api_version, set()) else None

    def group_versions(self, group: str) -> list[str]:
        return [v for v in self.served if (v.rsplit("/", 1)[0] if "/" in v else "") == group]


CLUSTER_1_37 = StubDiscovery(
    {
        "v1": {"ConfigMap", "Service"},
        "apps/v1": {"Deployment", "StatefulSet"},
        "policy/v1": {"PodDisruptionBudget"},
        "networking.k8s.io/v1": {"Ingress"},
        "autoscaling/v2": {"HorizontalPodAutoscaler"},
        "cert-manager.io/v1": {"Certificate"},
    }
)

UNSERVED = [
    # (case, apiVersion, kind, expected)
    ("served as it is", "apps/v1", "Deployment", None),
    (
        "same group, by discovery",
        "cert-manager.io/v1alpha2",
        "Certificate",
        Unserved("cert-manager.io/v1alpha2", "Certificate", "cert-manager.io/v1", None),
    ),
    (
        "built-in, same group",
        "policy/v1beta1",
        "PodDisruptionBudget",
        Unserved("policy/v1beta1", "PodDisruptionBudget", "policy/v1", "1.25"),
    ),
    (
        "built-in that moved group",
        "extensions/v1beta1",
        "Ingress",
        Unserved("extensions/v1beta1", "Ingress", "networking.k8s.io/v1", "1.22"),
    ),
    (
        "built-in kind removed",
        "policy/v1beta1",
        "PodSecurityPolicy",
        Unserved("policy/v1beta1", "PodSecurityPolicy", None, "1.25"),
    ),
    ("a CRD never installed", "example.com/v1", "Widget", Unserved("example.com/v1", "Widget", None, None)),
]


@pytest.mark.parametrize("case", UNSERVED, ids=[c[0] for c in UNSERVED])
def test_where_an_unserved_kind_is_served_now(case: tuple[str, str, str, Unserved | None]) -> None:
    _name, api_version, kind, expected = case
    found = unserved(CLUSTER_1_37, api_version, kind)  # type: ignore[arg-type]
    assert found == expected
    assert (found is not None and found.removed) is (expected is not None and expected.api_version != "example.com/v1")


def test_the_removals_table_names_served_replacements_in_other_versions() -> None:
    for (api_version, kind), removal in REMOVALS.items():
        assert removal.replacement != api_version, (api_version, kind)
        assert removal.removed_in.startswith("1."), (api_version, kind)


H = {"deployed": "deployed", "superseded": "superseded", "failed": "failed"}
READS = [
    # (case, revision -> status, labelled deployed, revisions Helm reads)
    ("deployed newest: upgrade, rollback and uninstall read it", {1: "superseded", 2: "deployed"}, [2], [2]),
    (
        "failed newest: upgrade reads the deployed one, rollback both",
        {1: "superseded", 2: "deployed", 3: "failed"},
        [2],
        [2, 3],
    ),
    ("pending newest", {1: "superseded", 2: "deployed", 3: "pending-upgrade"}, [2], [2, 3]),
    ("failed first install", {1: "failed"}, [], [1]),
    ("failed twice after a deployed one", {1: "deployed", 2: "failed", 3: "failed"}, [1], [1, 3]),
    (
        "a label that says deployed (storage.Deployed reads labels)",
        {1: "superseded", 2: "superseded", 3: "failed"},
        [1],
        [1, 2, 3],
    ),
]


@pytest.mark.parametrize("case", READS, ids=[c[0] for c in READS])
def test_the_revisions_helm_reads_next(case: tuple[str, dict[int, str], list[int], list[int]]) -> None:
    _name, statuses, labelled, expected = case
    history = {n: (s, "") for n, s in statuses.items()}
    assert sorted(revisions_helm_reads(history, labelled)) == expected


MANIFEST = """---
# Source: app/templates/pdb.yaml
apiVersion: policy/v1beta1   # kept comment
kind: PodDisruptionBudget
metadata:
  name: web
  annotations:
    note: "apiVersion: policy/v1beta1 stays in a value"
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
---
# Source: app/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: web
        env:
        - {name: RATIO, value: "1.50"}
---
# Source: app/templates/ingress.yaml
apiVersion: "extensions/v1beta1"
kind: Ingress
metadata: {name: web}
"""
MAPPING = {
    ("policy/v1beta1", "PodDisruptionBudget"): "policy/v1",
    ("extensions/v1beta1", "Ingress"): "networking.k8s.io/v1",
}


def test_a_rewrite_changes_only_the_top_level_api_version_values() -> None:
    rewrite = map_manifest(MANIFEST, MAPPING, "manifest", "revision 3's manifest")
    expected = MANIFEST.replace("apiVersion: policy/v1beta1   #", "apiVersion: policy/v1   #").replace(
        'apiVersion: "extensions/v1beta1"', 'apiVersion: "networking.k8s.io/v1"'
    )
    assert rewrite.text == expected
    assert [c.as_dict() for c in rewrite.changes] == [
        {"kind": "PodDisruptionBudget", "name": "web", "from": "policy/v1beta1", "to": "policy/v1", "in": "manifest"},
        {
            "kind": "Ingress",
            "name": "web",
            "from": "extensions/v1beta1",
            "to": "networking.k8s.io/v1",
            "in": "manifest",
        },
    ]
    before, after = parse_manifest(MANIFEST, "ns"), parse_manifest(rewrite.text, "ns")
    assert [d for _k, d in after] == [
        {**d, "apiVersion": MAPPING.get((k.api_version, k.kind), k.api_version)} for k, d in before
    ]


def test_a_manifest_with_nothing_to_map_is_returned_as_it_is() -> None:
    rewrite = map_manifest(MANIFEST, {("batch/v1beta1", "CronJob"): "batch/v1"}, "manifest", "m")
    assert rewrite.text == MANIFEST and rewrite.changes == []


# Documents our line-based rewrite could read differently from the YAML Helm builds: each is refused, never guessed.
HOSTILE = [
    (
        "flow style",
        '{"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"}}',
        "exactly one plain",
    ),
    (
        "a repeated key (the last one wins in YAML)",
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\napiVersion: policy/v1beta1\nmetadata: {name: web}",
        "defined twice",
    ),
    (
        "a quoted key",
        '"apiVersion": policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: web}',
        "exactly one plain",
    ),
    (
        "a value split over lines",
        "apiVersion: >-\n  policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: web}",
        "line says",
    ),
    ("an unreadable document", "apiVersion: policy/v1beta1\nkind: [PodDisruptionBudget\n", "cannot be read"),
]


@pytest.mark.parametrize("case", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_a_document_that_cannot_be_rewritten_safely_is_refused(case: tuple[str, str, str]) -> None:
    _name, document, words = case
    with pytest.raises(MappingError, match=words):
        map_manifest(
            f"---\n# Source: x.yaml\n{document}\n",
            {("policy/v1beta1", "PodDisruptionBudget"): "policy/v1"},
            "manifest",
            "m",
        )


ERRORS: list[tuple[str, str, set[str]]] = [
    (
        "a version Kubernetes removed",
        'Error: UPGRADE FAILED: resource mapping not found for name: "web" namespace: "" from "": no matches for kind '
        '"PodDisruptionBudget" in version "policy/v1beta1"\nensure CRDs are installed first',
        {"removed-api"},
    ),
    (
        "a CRD not installed",
        'Error: resource mapping not found for name: "w" namespace: "" from "": no matches for kind "Widget" in '
        'version "example.helmops.test/v1"\nensure CRDs are installed first',
        {"missing-crd"},
    ),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c[0] for c in ERRORS])
def test_a_pasted_error_tells_a_removed_version_from_a_missing_crd(case: tuple[str, str, set[str]]) -> None:
    _name, text, codes = case
    assert {f.code for f in recognise_errors([("error text given", text)])} == codes


def test_every_removal_is_recognised_in_helms_words() -> None:
    for api_version, kind in REMOVALS:
        text: t.Any = f'no matches for kind "{kind}" in version "{api_version}"'
        assert {f.code for f in recognise_errors([("e", text)])} == {"removed-api"}
