"""Comparing a manifest with the live object as the API server returns it (recorded shapes from the
local control plane: Kubernetes omits empty fields and adds defaults)."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._controllers import list_controllers
from ansible_collections.helmops.recovery.plugins.module_utils._k8s import KubeForbidden, KubeNotFound
from ansible_collections.helmops.recovery.plugins.module_utils._live import (
    Discovery,
    added_fields,
    delete_command,
    differences,
)

# A StatefulSet as the API server returned it for tests/charts/database (trimmed to what the cases read):
# hostNetwork, minReadySeconds and subPath, rendered as false / 0 / "", are absent; defaults were added.
LIVE_STATEFULSET: dict[str, t.Any] = {
    "metadata": {"name": "db", "labels": {"app.kubernetes.io/name": "database"}},
    "spec": {
        "replicas": 1,
        "podManagementPolicy": "OrderedReady",
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/name": "database", "helmops.test/behaviour": "slow"}},
            "spec": {
                "dnsPolicy": "ClusterFirst",
                "containers": [
                    {
                        "name": "db",
                        "image": "registry.invalid/db:16.4",
                        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/db"}],
                        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
                    }
                ],
            },
        },
    },
}


def manifest(**changes: t.Any) -> dict[str, t.Any]:
    """The StatefulSet as the chart renders it (scalars as text, as _manifest.py reads them)."""
    pod: dict[str, t.Any] = {
        "hostNetwork": "false",
        "containers": [
            {
                "name": "db",
                "image": changes.get("image", "registry.invalid/db:16.4"),
                "volumeMounts": [{"name": "data", "mountPath": "/var/lib/db", "subPath": ""}],
                "resources": {"requests": {"cpu": "0.25", "memory": "256Mi"}},
            }
        ],
    }
    labels = {"app.kubernetes.io/name": "database", **changes.get("labels", {})}
    return {
        "metadata": {"name": "db", "labels": {"app.kubernetes.io/name": "database"}},
        "spec": {
            "replicas": "1",
            "minReadySeconds": "0",
            "template": {"metadata": {"labels": labels}, "spec": pod},
            **changes.get("spec", {}),
        },
    }


DIFFERENCES = [
    ("zero values the API server omits agree", manifest(), []),
    (
        "a real difference is found",
        manifest(image="registry.invalid/db:16.1"),
        ["spec.template.spec.containers[0].image"],
    ),
    (
        "a non-zero value the live object lacks differs",
        manifest(spec={"revisionHistoryLimit": "3"}),
        ["spec.revisionHistoryLimit"],
    ),
    ("an empty map the live object lacks agrees", manifest(spec={"selector": {}}), []),
]


@pytest.mark.parametrize(("desired", "expected"), [c[1:] for c in DIFFERENCES], ids=[c[0] for c in DIFFERENCES])
def test_differences_with_what_the_api_server_returns(desired: dict[str, t.Any], expected: list[str]) -> None:
    assert differences(desired, LIVE_STATEFULSET) == expected


def test_what_only_the_other_revision_added_tells_the_revisions_apart() -> None:
    """Revision 2 added a pod label; the live object has it. A subset comparison with revision 1 alone
    passes, so the live object looked like both revisions."""
    old, new = manifest(), manifest(labels={"helmops.test/behaviour": "slow"})
    assert differences(old, LIVE_STATEFULSET) == [] and differences(new, LIVE_STATEFULSET) == []
    assert added_fields(new, old, LIVE_STATEFULSET) == ["spec.template.metadata.labels.helmops.test/behaviour"]
    assert added_fields(old, new, LIVE_STATEFULSET) == []


class _ControllerApi:
    """Discovery serves Flux's HelmRelease (a later discovery too, unless the CRD is gone by then); its
    listing answers as given (a CRD deleted since, a 403)."""

    def __init__(self, listing: Exception | dict[str, t.Any], served_later: bool = True) -> None:
        self.listing = listing
        self.served_later = served_later
        self.discoveries = 0

    def request(self, method: str, path: str, *, target: str, **_options: t.Any) -> dict[str, t.Any]:
        if path == "/apis/helm.toolkit.fluxcd.io/v2":
            self.discoveries += 1
            if self.discoveries == 1 or self.served_later:
                return {"resources": [{"name": "helmreleases", "kind": "HelmRelease", "namespaced": True}]}
        if path == "/apis/helm.toolkit.fluxcd.io/v2/helmreleases":
            if isinstance(self.listing, Exception):
                raise self.listing
            return self.listing
        raise KubeNotFound(f"{target} not found", 404, "NotFound", target)


GONE = KubeNotFound("gone", 404, "NotFound", "x")
CONTROLLER_LISTINGS = [
    # (case, what the listing answers, served at a second look, the controller for team-a/web, why unknown)
    (
        "a HelmRelease manages it",
        {"items": [{"metadata": {"name": "web", "namespace": "team-a"}, "spec": {}}]},
        True,
        "Flux helm-controller",
        "",
    ),
    ("its CRD was deleted since discovery: no controller", GONE, False, None, ""),
    ("a 404 while the kind is still served: unknown, so the plan refuses", GONE, True, None, "moved while read"),
    (
        "forbidden: unknown, so the plan refuses",
        KubeForbidden("forbidden (403)", 403, "Forbidden", "x"),
        True,
        None,
        "forbidden (403)",
    ),
]


@pytest.mark.parametrize(
    ("listing", "served_later", "controller", "unknown"),
    [c[1:] for c in CONTROLLER_LISTINGS],
    ids=[c[0] for c in CONTROLLER_LISTINGS],
)
def test_which_controller_manages_a_release(
    listing: t.Any, served_later: bool, controller: str | None, unknown: str
) -> None:
    api = t.cast(t.Any, _ControllerApi(listing, served_later))
    managed = list_controllers(api, Discovery(api)).of("team-a", "web")
    assert (managed.owner or {}).get("controller") == controller
    assert unknown in managed.unknown and bool(managed.unknown) is bool(unknown)


DELETE_COMMANDS = [
    # (case, apiVersion, kind, name, namespace, command)
    ("core kind", "v1", "ConfigMap", "op-legacy", "ops", "kubectl delete configmap op-legacy -n ops"),
    ("grouped kind", "batch/v1", "Job", "op-cleanup", "ops", "kubectl delete job.batch op-cleanup -n ops"),
    (
        "cluster-scoped",
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "op-cleanup-ops",
        "",
        "kubectl delete clusterrole.rbac.authorization.k8s.io op-cleanup-ops",
    ),
    (
        "a kind two groups serve names its own",
        "cert-manager.io/v1",
        "Certificate",
        "web",
        "ops",
        "kubectl delete certificate.cert-manager.io web -n ops",
    ),
    ("a name that needs quoting", "v1", "ConfigMap", "a b", "ops", "kubectl delete configmap 'a b' -n ops"),
]


@pytest.mark.parametrize(
    ("api_version", "kind", "name", "namespace", "command"),
    [c[1:] for c in DELETE_COMMANDS],
    ids=[c[0] for c in DELETE_COMMANDS],
)
def test_the_command_that_deletes_one_object(
    api_version: str, kind: str, name: str, namespace: str, command: str
) -> None:
    assert delete_command(api_version, kind, name, namespace) == command
