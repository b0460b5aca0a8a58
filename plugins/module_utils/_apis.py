# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""API versions the cluster no longer serves: which stored objects name one, the served
version they map to, and the stored manifest rewritten to it.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

Helm builds every object of a stored manifest through the API's discovery before it acts
(pkg/kube/client.go Build): `helm upgrade` the revision it diffs against
(pkg/action/upgrade.go performUpgrade), `helm rollback` the newest revision and its target
(pkg/action/rollback.go performRollback, and the target's hooks in hooks.go execHook),
`helm uninstall` the newest revision (pkg/action/uninstall.go deleteRelease); Helm 4's
`helm status` too. One object whose apiVersion is not served fails the whole operation with
"resource mapping not found ... no matches for kind ... ensure CRDs are installed first".
The objects themselves are fine: the API server converts stored objects to any version it
serves, so only the record's text is stuck.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass, field

from ._errors import ModuleError
from ._history import ROLLBACK_STATUSES, History, rollback_target, upgrade_base
from ._manifest import ManifestError, document_spans, load_document

if t.TYPE_CHECKING:  # pragma: no cover
    from ._live import Discovery


@dataclass(frozen=True)
class Removal:
    """A built-in group/version/kind Kubernetes stopped serving, and where the kind is served now."""

    replacement: str | None  # None: the kind itself was removed (PodSecurityPolicy)
    removed_in: str


def _removals() -> dict[tuple[str, str], Removal]:
    """Kubernetes' deprecated API migration guide (kubernetes.io/docs/reference/using-api/deprecation-guide),
    as (apiVersion, kind) -> Removal. Discovery finds a replacement in the same group on its own; the table
    adds kinds that moved group (extensions/v1beta1 Ingress) and names the release that removed them."""
    table: dict[tuple[str, str], Removal] = {}

    def removed(release: str, old: str, new: str | None, *kinds: str) -> None:
        for kind in kinds:
            table[(old, kind)] = Removal(new, release)

    removed("1.16", "extensions/v1beta1", "apps/v1", "Deployment", "DaemonSet", "ReplicaSet")
    removed("1.16", "extensions/v1beta1", "networking.k8s.io/v1", "NetworkPolicy")
    removed("1.16", "apps/v1beta1", "apps/v1", "Deployment", "StatefulSet", "ReplicaSet")
    removed("1.16", "apps/v1beta2", "apps/v1", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
    removed("1.22", "extensions/v1beta1", "networking.k8s.io/v1", "Ingress")
    removed("1.22", "networking.k8s.io/v1beta1", "networking.k8s.io/v1", "Ingress", "IngressClass")
    removed(
        "1.22",
        "admissionregistration.k8s.io/v1beta1",
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    )
    removed("1.22", "apiextensions.k8s.io/v1beta1", "apiextensions.k8s.io/v1", "CustomResourceDefinition")
    removed("1.22", "apiregistration.k8s.io/v1beta1", "apiregistration.k8s.io/v1", "APIService")
    removed("1.22", "certificates.k8s.io/v1beta1", "certificates.k8s.io/v1", "CertificateSigningRequest")
    removed("1.22", "coordination.k8s.io/v1beta1", "coordination.k8s.io/v1", "Lease")
    removed(
        "1.22",
        "rbac.authorization.k8s.io/v1beta1",
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    )
    removed("1.22", "scheduling.k8s.io/v1beta1", "scheduling.k8s.io/v1", "PriorityClass")
    removed(
        "1.22",
        "storage.k8s.io/v1beta1",
        "storage.k8s.io/v1",
        "CSIDriver",
        "CSINode",
        "StorageClass",
        "VolumeAttachment",
    )
    removed("1.25", "batch/v1beta1", "batch/v1", "CronJob")
    removed("1.25", "discovery.k8s.io/v1beta1", "discovery.k8s.io/v1", "EndpointSlice")
    removed("1.25", "events.k8s.io/v1beta1", "events.k8s.io/v1", "Event")
    removed("1.25", "autoscaling/v2beta1", "autoscaling/v2", "HorizontalPodAutoscaler")
    removed("1.25", "policy/v1beta1", "policy/v1", "PodDisruptionBudget")
    removed("1.25", "policy/v1beta1", None, "PodSecurityPolicy")
    removed("1.25", "node.k8s.io/v1beta1", "node.k8s.io/v1", "RuntimeClass")
    removed("1.26", "autoscaling/v2beta2", "autoscaling/v2", "HorizontalPodAutoscaler")
    removed(
        "1.26",
        "flowcontrol.apiserver.k8s.io/v1beta1",
        "flowcontrol.apiserver.k8s.io/v1",
        "FlowSchema",
        "PriorityLevelConfiguration",
    )
    removed("1.27", "storage.k8s.io/v1beta1", "storage.k8s.io/v1", "CSIStorageCapacity")
    removed(
        "1.29",
        "flowcontrol.apiserver.k8s.io/v1beta2",
        "flowcontrol.apiserver.k8s.io/v1",
        "FlowSchema",
        "PriorityLevelConfiguration",
    )
    removed(
        "1.32",
        "flowcontrol.apiserver.k8s.io/v1beta3",
        "flowcontrol.apiserver.k8s.io/v1",
        "FlowSchema",
        "PriorityLevelConfiguration",
    )
    return table


REMOVALS = _removals()


def group_of(api_version: str) -> str:
    """The API group of an apiVersion ("" for the core group's "v1")."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


@dataclass(frozen=True)
class Unserved:
    """A stored object whose apiVersion the API does not serve; served_as is where the API serves its kind now."""

    api_version: str
    kind: str
    served_as: str | None
    removed_in: str | None  # the Kubernetes release that removed it, for built-in kinds

    @property
    def removed(self) -> bool:
        """A version that went away (its kind is served at another version, or Kubernetes removed it), as
        opposed to a custom resource whose CRD is not installed at all."""
        return self.served_as is not None or self.removed_in is not None


def unserved(discovery: Discovery, api_version: str, kind: str) -> Unserved | None:
    """None when the API serves apiVersion/kind; else where it serves the kind now (same group first, by
    discovery, then the built-in removals), or nowhere."""
    if discovery.resource(api_version, kind) is not None:
        return None
    removal = REMOVALS.get((api_version, kind))
    for version in discovery.group_versions(group_of(api_version)):
        if version != api_version and discovery.resource(version, kind) is not None:
            return Unserved(api_version, kind, version, removal.removed_in if removal else None)
    if removal and removal.replacement and discovery.resource(removal.replacement, kind) is not None:
        return Unserved(api_version, kind, removal.replacement, removal.removed_in)
    return Unserved(api_version, kind, None, removal.removed_in if removal else None)


def revisions_helm_reads(history: History, labelled_deployed: t.Sequence[int]) -> dict[int, list[str]]:
    """The revisions whose manifests Helm builds on its next operation, with which operation reads each."""
    ordered = sorted(history)
    if not ordered:
        return {}
    newest = ordered[-1]
    if history[newest][0] == "uninstalled":
        return {}  # helm uninstall says "already deleted", helm upgrade installs anew: neither builds it
    reads: dict[int, list[str]] = {newest: ["helm rollback (its current release)", "helm uninstall"]}
    base = upgrade_base(history[newest][0], labelled_deployed, newest)
    if base is not None:
        reads.setdefault(base, []).insert(0, "helm upgrade (the revision it diffs against)")
    # The target remediate rolls back to; `helm rollback N` to any other revision reads N too (map it by name).
    target = rollback_target(history) if history[newest][0] in ROLLBACK_STATUSES else None
    if target is not None:
        reads.setdefault(target, []).append("helm rollback (its target)")
    return dict(sorted(reads.items()))


# --- rewriting a stored manifest --------------------------------------------------------------------------------

_TOP_LEVEL_API_VERSION = re.compile(
    r"^apiVersion:[ \t]*(?P<quote>[\"']?)(?P<value>[^\"'\s#]+)(?P=quote)[ \t]*(?:#[^\r\n]*)?\r?$", re.MULTILINE
)
_ANY_TOP_LEVEL_API_VERSION = re.compile(r"^[\"']?apiVersion[\"']?[ \t]*:", re.MULTILINE)


class MappingError(ModuleError):
    """A stored document that cannot be rewritten safely: the mapping refuses rather than guess."""


@dataclass(frozen=True)
class Change:
    """One object whose apiVersion a rewrite changes."""

    kind: str
    name: str
    old: str
    new: str
    where: str  # "manifest" or "hook <name>"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "from": self.old, "to": self.new, "in": self.where}


@dataclass
class Rewrite:
    """A manifest's text after mapping, and what changed."""

    text: str
    changes: list[Change] = field(default_factory=list)


def map_manifest(text: str, mapping: t.Mapping[tuple[str, str], str], where: str, what: str) -> Rewrite:
    """The manifest with every document whose (apiVersion, kind) is in mapping moved to the mapped apiVersion.

    Only the top-level apiVersion value changes; every other byte stays. Each rewritten document is parsed
    again and must equal the original with that one field changed, or the rewrite is refused."""
    pieces: list[str] = []
    changes: list[Change] = []
    kept = 0
    for start, end in document_spans(text):
        document = text[start:end]
        try:
            parsed = load_document(document)
        except ManifestError as exc:
            raise MappingError(f"{what}: a document cannot be read, so it is not rewritten: {exc}") from exc
        if not isinstance(parsed, dict):
            continue
        key = (str(parsed.get("apiVersion") or ""), str(parsed.get("kind") or ""))  # as parse_manifest keys it
        if key not in mapping:
            continue
        name = str((parsed.get("metadata") or {}).get("name") or "")
        rewritten = _rewrite_document(document, parsed, mapping[key], f"{what}: {key[1]} {name}")
        pieces += [text[kept:start], rewritten]
        kept = end
        changes.append(Change(key[1], name, key[0], mapping[key], where))
    pieces.append(text[kept:])
    return Rewrite("".join(pieces), changes)


def _rewrite_document(document: str, parsed: dict[str, t.Any], new: str, what: str) -> str:
    lines = list(_TOP_LEVEL_API_VERSION.finditer(document))
    if len(lines) != 1 or len(_ANY_TOP_LEVEL_API_VERSION.findall(document)) != 1:
        raise MappingError(
            f"{what}: the document does not have exactly one plain top-level 'apiVersion:' line (flow style, "
            "a repeated key or a quoted key), so it is not rewritten; map it by hand"
        )
    line = lines[0]
    if line.group("value") != parsed.get("apiVersion"):
        raise MappingError(
            f"{what}: its apiVersion line says {line.group('value')!r}, the document reads "
            f"{parsed.get('apiVersion')!r}; not rewritten"
        )
    rewritten = document[: line.start("value")] + new + document[line.end("value") :]
    expected = {**parsed, "apiVersion": new}
    try:
        again = load_document(rewritten)
    except ManifestError as exc:  # pragma: no cover - only the value changed
        raise MappingError(f"{what}: the rewritten document cannot be read: {exc}") from exc
    if again != expected:
        raise MappingError(f"{what}: the rewritten document reads differently from the original; not rewritten")
    return rewritten
