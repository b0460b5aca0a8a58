# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controllers that manage Helm releases (Flux helm-controller, k3s/RKE2
helm-controller, Rancher Fleet): which one manages a release, or why that is
unknown.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ._k8s import KubeClient, KubeError, KubeNotFound
from ._live import Discovery

_FLUX = ("helm.toolkit.fluxcd.io", "HelmRelease")
_K3S = ("helm.cattle.io", "HelmChart")


@dataclass(frozen=True)
class Managed:
    """The controller object that manages a release, or why that is unknown."""

    owner: dict[str, str] | None = None
    unknown: str = ""


@dataclass
class Controllers:
    """(namespace, release) -> the controller object that manages it, from cluster-wide listings.

    A HelmRelease (Flux) or HelmChart (k3s, RKE2) in any namespace may manage a
    release in another, so only a cluster-wide listing rules one out. When that
    listing is forbidden, or was not made, every release's controller is unknown,
    and the plan refuses to act on it (docs/rbac: helmops-cluster-read)."""

    found: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def of(self, namespace: str, release: str) -> Managed:
        owner = self.found.get((namespace, release))
        if owner is not None or not self.errors:
            return Managed(owner)
        return Managed(None, "; ".join(self.errors))


_CONTROLLER_KINDS = (
    (_FLUX[0], ("v2", "v2beta2", "v2beta1"), _FLUX[1], "Flux helm-controller"),
    (_K3S[0], ("v1",), _K3S[1], "k3s helm-controller"),
)


def list_controllers(client: KubeClient, discovery: Discovery) -> Controllers:
    controllers = Controllers()
    for group, versions, kind, controller in _CONTROLLER_KINDS:
        version = next((v for v in versions if discovery.resource(f"{group}/{v}", kind) is not None), None)
        if version is None:
            continue  # the API does not serve the kind: no such controller here
        resource = discovery.resource(f"{group}/{version}", kind)
        path = f"/apis/{group}/{version}/{resource.plural if resource else ''}"
        try:
            listing = client.request("GET", path, target=f"{kind} objects in all namespaces")
        except KubeNotFound:
            # Deleted since discovery? Look again: a controller is ruled out only when the group serves none of
            # its versions any more; otherwise whether one manages a release is unknown (fail closed).
            if any(Discovery(client).resource(f"{group}/{v}", kind) is not None for v in versions):
                controllers.errors.append(f"could not check for a {controller} managing it: {kind} moved while read")
            continue
        except KubeError as exc:
            controllers.errors.append(f"could not check for a {controller} managing it: {exc}")
            continue
        for item in listing.get("items") or []:
            metadata = item.get("metadata") or {}
            spec = item.get("spec") or {}
            controllers.found[_managed_release(kind, metadata, spec)] = {
                "controller": controller,
                "kind": kind,
                "name": metadata.get("name", ""),
                "namespace": metadata.get("namespace", ""),
            }
    return controllers


def _managed_release(kind: str, metadata: dict[str, t.Any], spec: dict[str, t.Any]) -> tuple[str, str]:
    name = str(metadata.get("name", ""))
    namespace = str(metadata.get("namespace", ""))
    if kind == "HelmRelease":  # Flux: release [<targetNamespace>-]<name>, stored in storageNamespace
        target = spec.get("targetNamespace")
        release = spec.get("releaseName") or (f"{target}-{name}" if target else name)
        return str(spec.get("storageNamespace") or namespace), str(release)
    return str(spec.get("targetNamespace") or namespace), name  # k3s HelmChart


def managed_by_labels(desired: dict[str, t.Any]) -> dict[str, str] | None:
    labels = (desired.get("metadata") or {}).get("labels") or {}
    if labels.get("helm.toolkit.fluxcd.io/name"):
        return {
            "controller": "Flux helm-controller",
            "kind": "HelmRelease",
            "name": labels["helm.toolkit.fluxcd.io/name"],
            "namespace": labels.get("helm.toolkit.fluxcd.io/namespace", ""),
        }
    if any(key.startswith("objectset.rio.cattle.io/") for key in labels):
        return {"controller": "Rancher Fleet", "kind": "BundleDeployment", "name": "", "namespace": ""}
    return None
