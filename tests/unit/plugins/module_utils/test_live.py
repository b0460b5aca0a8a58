"""Comparing a manifest with the live object as the API server returns it (recorded shapes from the
local control plane: Kubernetes omits empty fields and adds defaults)."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._live import added_fields, differences

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
