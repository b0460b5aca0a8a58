# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What is actually in the cluster: API discovery, live objects of a release's
manifests, and how they compare with what Helm recorded.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

Live objects are fetched per (resource, namespace) with one LIST that every
release in that namespace shares; Secrets are read one by one instead, so a
namespace's Secrets (Helm's own records among them) are never listed here.
"""

from __future__ import annotations

import re
import shlex
import typing as t
from dataclasses import dataclass

from ._apis import unserved
from ._k8s import KubeClient, KubeError, KubeForbidden, KubeNotFound, path_quote
from ._manifest import HOOK_ANNOTATION, ObjectKey
from ._release_model import Release, ReleaseView

try:
    from kubernetes.utils import parse_quantity
except ImportError:  # pragma: no cover - reported by the module
    parse_quantity = None

RELEASE_NAME_ANNOTATION = "meta.helm.sh/release-name"
RELEASE_NAMESPACE_ANNOTATION = "meta.helm.sh/release-namespace"
INSTANCE_LABEL = "app.kubernetes.io/instance"
RESOURCE_POLICY_ANNOTATION = "helm.sh/resource-policy"
# Fields the API server adds or owns; they never count as drift.
_IGNORED_METADATA = {"kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision"}


@dataclass(frozen=True)
class LiveAnswer:
    """A live object (None: it does not exist), or why it could not be read."""

    obj: dict[str, t.Any] | None = None
    unreadable: str = ""


@dataclass(frozen=True)
class Resource:
    group_version: str
    kind: str
    plural: str
    namespaced: bool


class Discovery:
    """Which kinds the API serves (so missing CRDs show), and their resource names."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self._groups: dict[str, dict[str, Resource] | None] = {}
        self._versions: dict[str, list[str]] = {}

    def resource(self, api_version: str, kind: str) -> Resource | None:
        """The resource for apiVersion/kind, or None if the API does not serve it."""
        if api_version not in self._groups:
            self._groups[api_version] = self._load(api_version)
        kinds = self._groups[api_version]
        return kinds.get(kind) if kinds else None

    def group_versions(self, group: str) -> list[str]:
        """The versions the API serves of a group, its preferred one first; [] when the group is not served."""
        if group not in self._versions:
            path = "/api" if not group else f"/apis/{group}"
            try:
                listing = self.client.request("GET", path, target=f"API group {group or 'core'}")
            except KubeNotFound:
                listing = {}
            if not group:
                versions = [str(v) for v in listing.get("versions") or []]
            else:
                preferred = (listing.get("preferredVersion") or {}).get("groupVersion")
                served = [str(v.get("groupVersion")) for v in listing.get("versions") or [] if v.get("groupVersion")]
                versions = sorted(served, key=lambda version: version != preferred)
            self._versions[group] = versions
        return self._versions[group]

    def _load(self, api_version: str) -> dict[str, Resource] | None:
        path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        try:
            listing = self.client.request("GET", path, target=f"API {api_version}")
        except KubeNotFound:
            return None
        kinds: dict[str, Resource] = {}
        for item in listing.get("resources") or []:
            if "/" in item.get("name", ""):
                continue  # subresources
            kinds[item["kind"]] = Resource(api_version, item["kind"], item["name"], bool(item.get("namespaced")))
        return kinds


class LiveIndex:
    """Live objects by key, fetched lazily and shared between releases."""

    def __init__(self, client: KubeClient, discovery: Discovery) -> None:
        self.client = client
        self.discovery = discovery
        self._lists: dict[tuple[str, str, str], dict[str, dict[str, t.Any]] | None] = {}
        self._singles: dict[ObjectKey, dict[str, t.Any] | None] = {}
        self.errors: list[str] = []

    def _path(self, resource: Resource, namespace: str) -> str:
        prefix = "/api" if "/" not in resource.group_version else "/apis"
        if resource.namespaced:
            return f"{prefix}/{resource.group_version}/namespaces/{path_quote(namespace)}/{resource.plural}"
        return f"{prefix}/{resource.group_version}/{resource.plural}"

    def served(self, key: ObjectKey) -> Resource | None:
        """The resource the API serves the key's kind as: its own apiVersion, else the version it moved to
        (the API server converts a stored object to any version it serves); None when neither is served."""
        resource = self.discovery.resource(key.api_version, key.kind)
        if resource is not None:
            return resource
        moved = unserved(self.discovery, key.api_version, key.kind)
        return self.discovery.resource(moved.served_as, key.kind) if moved and moved.served_as else None

    def get(self, key: ObjectKey) -> dict[str, t.Any] | None:
        """The live object, or None when it does not exist (or cannot be read)."""
        resource = self.served(key)
        if resource is None:
            return None
        namespace = key.namespace if resource.namespaced else ""
        if key.kind == "Secret":
            return self._single(resource, ObjectKey(key.api_version, key.kind, namespace, key.name))
        objects = self.list(resource, namespace)
        if objects is None:
            return self._single(resource, ObjectKey(key.api_version, key.kind, namespace, key.name))
        return objects.get(key.name)

    def answer(self, key: ObjectKey) -> LiveAnswer:
        """The live object, None when it does not exist, or why it could not be read:
        for a guard, an object it may not read is not an object that is absent."""
        errors_before = len(self.errors)
        obj = self.get(key)
        if len(self.errors) > errors_before:
            return LiveAnswer(None, self.errors[-1])
        return LiveAnswer(obj)

    def scoped(self, key: ObjectKey) -> ObjectKey:
        """The key as Helm builds it: cluster-scoped kinds have no namespace."""
        resource = self.served(key)
        if resource is None or resource.namespaced or not key.namespace:
            return key
        return ObjectKey(key.api_version, key.kind, "", key.name)

    def list(self, resource: Resource, namespace: str) -> dict[str, dict[str, t.Any]] | None:
        """All objects of a resource in a namespace by name; None if not allowed."""
        cache_key = (resource.group_version, resource.plural, namespace)
        if cache_key not in self._lists:
            try:
                listing = self.client.request(
                    "GET", self._path(resource, namespace), target=f"{resource.plural} in {namespace or 'cluster'}"
                )
                items = listing.get("items") or []
                for item in items:  # list items carry no kind of their own
                    item.setdefault("apiVersion", resource.group_version)
                    item.setdefault("kind", resource.kind)
                self._lists[cache_key] = {item["metadata"]["name"]: item for item in items}
            except KubeForbidden as exc:
                self.errors.append(str(exc))
                self._lists[cache_key] = None
            except KubeNotFound:
                # Its CRD was deleted since discovery (a list in a namespace that does not exist is empty,
                # not 404): the kind is not served, so no object of it exists.
                self._lists[cache_key] = {}
        elif self._lists[cache_key] is None:
            self.errors.append(f"forbidden to list {resource.plural} in {namespace or 'the cluster'} (earlier)")
        return self._lists[cache_key]

    def listed(self) -> t.Iterator[tuple[str, dict[str, dict[str, t.Any]]]]:
        """(namespace, objects) of every list fetched so far, for orphan search."""
        for (_gv, _plural, namespace), objects in self._lists.items():
            if objects:
                yield namespace, objects

    def _single(self, resource: Resource, key: ObjectKey) -> dict[str, t.Any] | None:
        if key not in self._singles:
            try:
                self._singles[key] = self.client.request(
                    "GET", f"{self._path(resource, key.namespace)}/{path_quote(key.name)}", target=key.describe()
                )
            except KubeNotFound:
                self._singles[key] = None
            except KubeError as exc:
                self.errors.append(str(exc))
                self._singles[key] = None
        return self._singles[key]


def delete_command(api_version: str, kind: str, name: str, namespace: str) -> str:
    """The kubectl command that deletes one object (namespace "": cluster-scoped). The kind is qualified by
    its group (kind.group), so that two groups serving the same kind never mean another object."""
    group = api_version.rpartition("/")[0]
    resource = f"{kind.lower()}.{group}" if group else kind.lower()
    scope = f" -n {shlex.quote(namespace)}" if namespace else ""
    return f"kubectl delete {shlex.quote(resource)} {shlex.quote(name)}{scope}"


def differences(desired: t.Any, live: t.Any, path: str = "", limit: int = 5) -> list[str]:
    """Paths where the live object does not hold what the manifest asked for.

    A subset comparison: fields the API server added (defaults, status) are
    fine; values are compared as text, so 80 and "80" agree. A zero value the
    manifest sets (false, 0, "", [], {}) agrees with a field the live object
    lacks: Kubernetes' API types omit empty fields (`omitempty`), so the API
    server never returns `hostNetwork: false` or `subPath: ""`. Reading the
    defaults the API server would add (a server-side dry run) needs write
    permission; this needs none.
    """
    found: list[str] = []
    _diff_into(desired, live, path, found, limit)
    return found


def _diff_into(desired: t.Any, live: t.Any, path: str, found: list[str], limit: int) -> None:
    if len(found) >= limit or (live is None and _is_zero(desired)):
        return
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            found.append(path or ".")
            return
        for key, value in desired.items():
            if key in _IGNORED_METADATA or (path == "" and key in ("status", "apiVersion", "kind")):
                continue
            if path == "" and key == "metadata":
                _diff_metadata(value or {}, live.get("metadata") or {}, found, limit)
                continue
            _diff_into(value, live.get(key), f"{path}.{key}" if path else key, found, limit)
    elif isinstance(desired, list):
        if not isinstance(live, list) or len(live) < len(desired):
            found.append(path)
            return
        for index, item in enumerate(desired):
            _diff_into(item, live[index], f"{path}[{index}]", found, limit)
    elif desired is not None and str(desired) != _text(live) and not _same_quantity(desired, live):
        found.append(path)


_ZERO_TEXTS = frozenset({"", "false", "False", "0", "0.0"})


def _is_zero(value: t.Any) -> bool:
    """What an omitempty field of a Kubernetes API type holds when the API server leaves it out."""
    if isinstance(value, dict):
        return all(_is_zero(item) for item in value.values())
    if isinstance(value, list):
        return not value
    if isinstance(value, str):  # a manifest's scalars keep their text (_manifest.py)
        return value in _ZERO_TEXTS
    return value is not None and value in (False, 0)


def added_fields(manifest: t.Any, other: t.Any, live: t.Any, path: str = "", limit: int = 5) -> list[str]:
    """Fields ``manifest`` sets that ``other`` (the other revision's manifest of the same object) lacks,
    and that the live object holds with a value: the live object has what ``manifest`` added, so it is not
    ``other``'s, although a subset comparison with ``other`` alone cannot see it."""
    found: list[str] = []
    if isinstance(manifest, dict) and isinstance(live, dict):
        other = other if isinstance(other, dict) else {}
        for key, value in manifest.items():
            if len(found) >= limit or (key in ("status", "metadata") and path == ""):
                continue
            where = f"{path}.{key}" if path else key
            if key not in other:
                if not _is_zero(value) and live.get(key) is not None and not differences(value, live.get(key)):
                    found.append(where)
            else:
                found += added_fields(value, other[key], live.get(key), where, limit - len(found))
    elif isinstance(manifest, list) and isinstance(live, list) and isinstance(other, list):
        for index, item in enumerate(manifest[: len(live)]):
            if index < len(other):
                found += added_fields(item, other[index], live[index], f"{path}[{index}]", limit - len(found))
            elif not differences(item, live[index]):
                found.append(f"{path}[{index}]")
    return found[:limit]


def _diff_metadata(desired: dict[str, t.Any], live: dict[str, t.Any], found: list[str], limit: int) -> None:
    for field in ("labels", "annotations"):
        for key, value in (desired.get(field) or {}).items():
            if key in _IGNORED_METADATA:
                continue
            if _text((live.get(field) or {}).get(key)) != str(value) and len(found) < limit:
                found.append(f"metadata.{field}.{key}")


def _same_quantity(desired: t.Any, live: t.Any) -> bool:
    """1024Mi and 1Gi, 0.7 and 700m: equal quantities written differently (the API server
    writes its canonical form). kubernetes.utils.parse_quantity knows every suffix."""
    try:
        return bool(parse_quantity(desired) == parse_quantity(live))
    except (ValueError, TypeError, ArithmeticError):
        return False


def _text(value: t.Any) -> str:
    """A live (JSON) scalar as a manifest writes it: true, false, 80, 0.5."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def rollout_in_progress(obj: dict[str, t.Any]) -> str | None:
    """Why a Deployment/StatefulSet/DaemonSet is still rolling out, or None."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    name = (obj.get("metadata") or {}).get("name")
    generation = (obj.get("metadata") or {}).get("generation", 0)
    if status.get("observedGeneration", generation) < generation:
        return f"{kind} {name} has a newer spec than its controller has seen"
    if kind == "Deployment":
        for condition in status.get("conditions") or []:
            if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
                return None  # the controller gave up: nothing is rolling out any more
        wanted = spec.get("replicas", 1)
        updated = status.get("updatedReplicas", 0)
        available = status.get("availableReplicas", 0)
        if updated < wanted or available < wanted or status.get("replicas", 0) > wanted:
            return f"Deployment {name} is rolling out ({updated}/{wanted} updated, {available} available)"
    elif kind == "StatefulSet":
        wanted = spec.get("replicas", 1)
        if status.get("updateRevision") != status.get("currentRevision") or status.get("readyReplicas", 0) < wanted:
            return f"StatefulSet {name} is rolling out ({status.get('readyReplicas', 0)}/{wanted} ready)"
    elif kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled", 0)
        if status.get("updatedNumberScheduled", 0) < desired or status.get("numberUnavailable", 0) > 0:
            return f"DaemonSet {name} is rolling out ({status.get('updatedNumberScheduled', 0)}/{desired} updated)"
    return None


def pod_ready(status: t.Mapping[str, t.Any]) -> bool:
    """A pod's Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def workload_ready(obj: dict[str, t.Any]) -> bool:
    """A workload whose rollout is complete and whose replicas are available."""
    if obj.get("kind") not in ("Deployment", "StatefulSet", "DaemonSet"):
        return True
    if rollout_in_progress(obj):
        return False
    status = obj.get("status") or {}
    if obj.get("kind") == "Deployment":
        wanted = (obj.get("spec") or {}).get("replicas", 1)
        return bool(status.get("availableReplicas", 0) >= wanted and not status.get("unavailableReplicas"))
    return True


# --- a release's live objects against its manifests ----------------------------


def live_facts(view: ReleaseView, live: LiveIndex, stuck_pods: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    """The release's live objects against its newest and last deployed manifests: which one the cluster is
    closer to, drift, orphans, objects another release owns. ``stuck_pods``: the StatefulSet pods a rollback
    or upgrade cannot move on its own (_rollout.py), found by the caller."""
    release = view.release
    latest_by_key = dict(view.latest_objects)
    deployed_by_key = dict(view.deployed_objects)
    objects = []
    new_votes = old_votes = 0
    owned_elsewhere = []
    workloads_ready = True
    for key in list(dict.fromkeys([*latest_by_key, *deployed_by_key])):
        obj = live.get(key)
        entry: dict[str, t.Any] = {"kind": key.kind, "name": key.name, "namespace": key.namespace}
        desired_latest, desired_deployed = latest_by_key.get(key), deployed_by_key.get(key)
        if obj is not None and obj.get("apiVersion") != key.api_version:
            # Read through the version the API serves now (removed_apis): the same object, converted.
            entry["served_as"] = obj.get("apiVersion")
            desired_latest, desired_deployed = (
                {**d, "apiVersion": obj.get("apiVersion")} if d is not None else None
                for d in (desired_latest, desired_deployed)
            )
        matches_latest = _compare(entry, "latest", desired_latest, obj, desired_deployed)
        matches_deployed = _compare(entry, "deployed", desired_deployed, obj, desired_latest)
        if latest_by_key.get(key) != deployed_by_key.get(key):
            new_votes += int(matches_latest and not matches_deployed)
            old_votes += int(matches_deployed and not matches_latest)
        if obj is not None:
            owner = _owner(obj)
            if owner and owner != (release.namespace, release.name):
                owned_elsewhere.append({"kind": key.kind, "name": key.name, "owner": f"{owner[0]}/{owner[1]}"})
            if not workload_ready(obj):
                workloads_ready = False
        objects.append(entry)
    closer = "same"
    if new_votes or old_votes:
        closer = "new" if new_votes > old_votes else "old" if old_votes > new_votes else "both"
    deployed_missing = [f"{e['kind']} {e['name']}" for e in objects if e.get("deployed") == "missing"]
    unreadable = sorted(set(view.manifests.errors.values())) if view.manifests else []
    list_kinds_ever(release, live)
    facts = {
        "checked": True,
        "objects": objects,
        "stuck_pods": stuck_pods,
        "closer_to": closer if not unreadable else "unknown",
        "workloads_ready": workloads_ready,
        # Without every manifest, an object in none of them is not known to be an orphan.
        "orphans": [] if unreadable else _orphans(release, set(latest_by_key) | set(deployed_by_key), live),
        "owned_by_other_release": owned_elsewhere,
        "deployed_missing": deployed_missing,
        "deployed_total": len(deployed_by_key),
    }
    if unreadable:
        facts["unreadable_manifests"] = unreadable
    return facts


def _compare(
    entry: dict[str, t.Any], which: str, desired: dict[str, t.Any] | None, obj: dict | None, other: t.Any
) -> bool:
    """Whether the live object is this revision's: it holds what the manifest asks for, and nothing
    the other revision's manifest added to the same object."""
    if desired is None:
        return False
    if obj is None:
        entry[which] = "missing"
        return False
    diff = differences(desired, obj)
    if other is not None and other != desired:
        diff += [f"{path} (the other revision's)" for path in added_fields(other, desired, obj)]
    entry[which] = "differs" if diff else "present"
    if diff:
        entry[f"{which}_differences"] = diff
    return not diff


def _owner(obj: dict[str, t.Any]) -> tuple[str, str] | None:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    name = annotations.get(RELEASE_NAME_ANNOTATION)
    if not name:
        return None
    return str(annotations.get(RELEASE_NAMESPACE_ANNOTATION) or ""), str(name)


def list_kinds_ever(release: Release, live: LiveIndex) -> None:
    """With orphan_search="history", list the kinds older revisions had and the current manifests may lack (an
    object a revision kept by policy, or failed to delete, then dropped from the chart): in the release's
    namespace, or cluster-wide for cluster-scoped kinds; LiveIndex lists each once, for every release there.
    Helm's upgrade skips deleting a kept object and only logs a failed delete (pkg/kube/client.go, Update)."""
    for api_version, kind in sorted(release.kinds_ever):
        resource = live.discovery.resource(api_version, kind)
        if resource is None or kind == "Secret":  # not served (any more); Secrets are never listed whole (LiveIndex)
            continue
        try:
            live.list(resource, release.namespace if resource.namespaced else "")
        except KubeError as exc:  # the search narrows; the release's facts stand
            live.errors.append(f"orphans of {release.namespace}/{release.name} not searched among {kind}: {exc}")


def _orphans(release: Release, known: set[ObjectKey], live: LiveIndex) -> list[dict[str, str]]:
    """Objects that carry the release's ownership but are in none of its manifests (nor hooks). A StatefulSet's claims
    (<template>-<statefulset>-<ordinal>, labelled with its selector) belong to the StatefulSet."""
    known_names = {(k.kind, k.namespace, k.name) for k in known}
    claims_of = [
        (k.namespace, re.compile(rf"^[a-z0-9.-]+-{re.escape(k.name)}-\d+$")) for k in known if k.kind == "StatefulSet"
    ]
    orphans = []
    for namespace, objects in live.listed():
        for name, obj in objects.items():
            metadata = obj.get("metadata") or {}
            if (obj.get("kind"), namespace, name) in known_names or HOOK_ANNOTATION in (
                metadata.get("annotations") or {}
            ):
                continue  # the release's own, or one of its hooks (hooks are not in the manifest)
            if obj.get("kind") == "PersistentVolumeClaim" and any(
                ns == namespace and claim.match(name) for ns, claim in claims_of
            ):
                continue
            owned = _owner(obj) == (release.namespace, release.name)
            labelled = (metadata.get("labels") or {}).get(
                INSTANCE_LABEL
            ) == release.name and namespace == release.namespace
            if (owned or labelled) and not metadata.get("ownerReferences"):
                api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
                orphans.append(
                    {
                        "apiVersion": api_version,
                        "kind": kind,
                        "namespace": namespace,
                        "name": name,
                        "command_if_unneeded": delete_command(api_version, kind, name, namespace),
                    }
                )
    return orphans


def scoped(
    objects: list[tuple[ObjectKey, dict[str, t.Any]]], live: LiveIndex | None
) -> list[tuple[ObjectKey, dict[str, t.Any]]]:
    """Manifest objects keyed as Helm keys them: a cluster-scoped kind without its namespace."""
    return objects if live is None else [(live.scoped(key), document) for key, document in objects]
