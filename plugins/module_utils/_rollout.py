# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""StatefulSets a rollback or upgrade cannot move on its own.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

A StatefulSet whose rolling update reached a pod that never became Ready waits
for that pod before it replaces any pod, also after its template is reverted:
Kubernetes documents this as the "forced rollback" case (StatefulSet,
"Rolling Updates: Forced rollback": after reverting the template, delete the
Pods the StatefulSet had already tried to run with the bad configuration). A
`helm rollback --wait` or `helm upgrade --wait` that changes such a
StatefulSet's template can therefore only time out. The step that makes it
converge is deleting those pods once Helm has applied the new template: the
controller recreates each at the new revision, with the same claims.
"""

from __future__ import annotations

import re
import time
import typing as t
from dataclasses import dataclass

from ._k8s import KubeClient, KubeNotFound, delete_options, path_quote
from ._live import LiveIndex, differences, pod_ready
from ._manifest import ObjectKey


@dataclass(frozen=True)
class StuckPod:
    """A StatefulSet's pod that is not Ready, which the controller waits for before replacing any pod."""

    namespace: str
    statefulset: str
    name: str
    uid: str
    resource_version: str
    revision: str

    def describe(self) -> str:
        return f"Pod {self.namespace}/{self.name} of StatefulSet {self.statefulset} (revision {self.revision})"


def stuck_pods(target: t.Sequence[tuple[ObjectKey, dict[str, t.Any]]], live: LiveIndex) -> list[StuckPod]:
    """The not-Ready pods of every StatefulSet whose pod template the target manifest changes."""
    found: list[StuckPod] = []
    for key, document in target:
        if key.kind != "StatefulSet":
            continue
        statefulset = live.get(key)
        if statefulset is None or not _template_changes(document, statefulset):
            continue
        found += not_ready_pods(key, statefulset, live)
    return found


def _template_changes(document: dict[str, t.Any], statefulset: dict[str, t.Any]) -> bool:
    desired = ((document.get("spec") or {}).get("template")) or {}
    return bool(differences(desired, (statefulset.get("spec") or {}).get("template") or {}))


def not_ready_pods(key: ObjectKey, statefulset: dict[str, t.Any], live: LiveIndex) -> list[StuckPod]:
    """The StatefulSet's own pods (by controller reference and name) that are not Ready."""
    uid = (statefulset.get("metadata") or {}).get("uid")
    resource = live.discovery.resource("v1", "Pod")
    pods = (live.list(resource, key.namespace) if resource else None) or {}
    found = []
    for name, pod in sorted(pods.items()):
        metadata = pod.get("metadata") or {}
        owners = {ref.get("uid") for ref in metadata.get("ownerReferences") or [] if ref.get("controller")}
        ordinal = re.fullmatch(rf"{re.escape(key.name)}-\d+", name)
        if uid not in owners or not ordinal or pod_ready(pod.get("status") or {}):
            continue
        found.append(
            StuckPod(
                key.namespace,
                key.name,
                name,
                str(metadata.get("uid") or ""),
                str(metadata.get("resourceVersion") or ""),
                str((metadata.get("labels") or {}).get("controller-revision-hash") or "unknown"),
            )
        )
    return found


def replace_pods(client: KubeClient, pods: t.Sequence[StuckPod]) -> list[str]:
    """Delete each pod only if it is still the one that was read (uid and resourceVersion preconditions);
    the StatefulSet controller recreates it at its current revision. The pods deleted."""
    deleted = []
    for pod in pods:
        path = f"/api/v1/namespaces/{path_quote(pod.namespace)}/pods/{path_quote(pod.name)}"
        body = delete_options(pod.uid, pod.resource_version)
        try:
            client.request("DELETE", path, target=f"Pod {pod.namespace}/{pod.name}", body=body)
        except KubeNotFound:
            continue  # gone already: the controller replaced it
        deleted.append(pod.name)
    return deleted


def wait_ready(client: KubeClient, pods: t.Sequence[StuckPod], timeout: float, poll: float = 2.0) -> list[str]:
    """Wait until every StatefulSet of ``pods`` has all its replicas ready at its update revision; the
    StatefulSets still not ready when ``timeout`` seconds have passed."""
    names = sorted({(pod.namespace, pod.statefulset) for pod in pods})
    deadline = time.monotonic() + timeout
    while True:
        waiting = [f"{ns}/{name}" for ns, name in names if not _rolled_out(client, ns, name)]
        if not waiting or time.monotonic() >= deadline:
            return waiting
        time.sleep(poll)


def _rolled_out(client: KubeClient, namespace: str, name: str) -> bool:
    path = f"/apis/apps/v1/namespaces/{path_quote(namespace)}/statefulsets/{path_quote(name)}"
    try:
        obj = client.request("GET", path, target=f"StatefulSet {namespace}/{name}")
    except KubeNotFound:
        return True
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    replicas = int(spec.get("replicas", 1) or 0)
    return (
        int(status.get("observedGeneration") or 0) >= int((obj.get("metadata") or {}).get("generation") or 0)
        and int(status.get("readyReplicas") or 0) >= replicas
        and int(status.get("updatedReplicas") or 0) >= replicas
    )


def duration_seconds(text: str) -> float:
    """Seconds in a Go duration as Helm's --timeout takes it (5m, 90s, 1h30m, 2m30.5s)."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text.strip())
    if not parts or "".join(f"{n}{u}" for n, u in parts) != text.strip():
        raise ValueError(f"not a duration: {text!r}")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(number) * scale[unit] for number, unit in parts)
