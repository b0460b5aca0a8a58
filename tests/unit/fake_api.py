"""A stand-in Kubernetes API for unit tests: it serves records recorded from real Helm 3 and Helm 4, applies
label selectors, field selectors and metadata-only listings as the API server does, and records every request."""

from __future__ import annotations

import copy
import json
import typing as t
from pathlib import Path

from ansible_collections.helmops.recovery.plugins.module_utils import _release_codec as codec
from ansible_collections.helmops.recovery.plugins.module_utils._k8s import KubeConflict, KubeNotFound

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "records"
NOW = 1.9e9  # every record is long stale


def recorded(stem: str) -> tuple[codec.Driver, list[dict[str, t.Any]]]:
    fixture = json.loads((FIXTURES / f"{stem}.json").read_text())
    return fixture["driver"], copy.deepcopy(fixture["objects"])


class FakeApi:
    """Lists, GETs and guarded writes of storage objects, Namespace GETs and Event POSTs, as the API server
    answers them (409 on a stale resourceVersion or an existing name, 404 on a missing object or namespace);
    every request is recorded."""

    retries_done = 0
    host = "https://fake-api.example:6443"

    def __init__(
        self,
        objects: list[dict[str, t.Any]],
        namespaces: t.Iterable[str] | None = None,
        served: dict[str, list[str]] | None = None,
    ) -> None:
        self.objects = objects
        self.served = served  # discovery: apiVersion -> the kinds it serves (None: no discovery)
        self.requests: list[str] = []
        self.events: list[dict[str, t.Any]] = []
        self.namespaces = set(namespaces or ()) | {o["metadata"].get("namespace", "") for o in objects}
        self._version = 1000

    def request(
        self,
        method: str,
        path: str,
        *,
        target: str,
        query: t.Any = None,
        headers: t.Any = None,
        body: t.Any = None,
        **_options: t.Any,
    ) -> dict[str, t.Any]:
        if method != "GET":
            return self._write(method, path.strip("/").split("/"), target, body)
        params = dict(query or [])
        metadata_only = bool(headers and "PartialObjectMetadata" in headers.get("Accept", ""))
        parts = path.strip("/").split("/")
        if self.served is not None and len(parts) <= 3 and "namespaces" not in parts:
            return self._discovery(parts, target)
        if len(parts) == 4 and parts[2] == "namespaces":
            self.requests.append(f"GET namespace {parts[3]}")
            if parts[3] in self.namespaces:
                return {"kind": "Namespace", "metadata": {"name": parts[3]}}
            raise KubeNotFound(f"{target} not found", 404, "NotFound", target)
        if len(parts) == 6:  # /api/v1/namespaces/<ns>/<resource>/<name>
            self.requests.append(f"GET {parts[5]}")
            for obj in self.objects:
                if obj["metadata"]["name"] == parts[5]:
                    return copy.deepcopy(obj)
            raise KubeNotFound(f"{target} not found", 404, "NotFound", target)
        if parts[-1] not in ("secrets", "configmaps"):
            raise KubeNotFound(f"{target} not found", 404, "NotFound", target)
        label = params.get("labelSelector", "")
        field = params.get("fieldSelector", "")
        self.requests.append(f"LIST {label}{' ' + field if field else ''}{' (metadata)' if metadata_only else ''}")
        kind = {"secrets": "Secret", "configmaps": "ConfigMap"}[parts[-1]]
        items = [copy.deepcopy(o) for o in self.objects if o.get("kind", kind) == kind and matches(o, label, field)]
        if metadata_only:
            items = [{"metadata": o["metadata"]} for o in items]
        return {"metadata": {}, "items": items}

    def _discovery(self, parts: list[str], target: str) -> dict[str, t.Any]:
        """/api, /api/v1, /apis/<group> and /apis/<group>/<version>, as the API server answers them."""
        self.requests.append(f"GET /{'/'.join(parts)}")
        served = self.served or {}
        core = parts[0] == "api"
        group = "" if core else parts[1]
        versions = [v for v in served if (v.rsplit("/", 1)[0] if "/" in v else "") == group]
        if (core and len(parts) == 1) or (not core and len(parts) == 2):
            if not versions:
                raise KubeNotFound(f"{target} not found", 404, "NotFound", target)
            if core:
                return {"kind": "APIVersions", "versions": versions}
            listed = [{"groupVersion": v, "version": v.rsplit("/", 1)[1]} for v in versions]
            return {"kind": "APIGroup", "name": group, "versions": listed, "preferredVersion": listed[0]}
        api_version = parts[1] if core else f"{parts[1]}/{parts[2]}"
        if api_version not in served:
            raise KubeNotFound(f"{target} not found", 404, "NotFound", target)
        resources = [{"name": f"{k.lower()}s", "kind": k, "namespaced": True} for k in served[api_version]]
        return {"kind": "APIResourceList", "groupVersion": api_version, "resources": resources}

    def _write(self, method: str, parts: list[str], target: str, body: t.Any) -> dict[str, t.Any]:
        if parts[-1] == "events":
            self.requests.append("POST event")
            self.events.append(copy.deepcopy(body))
            return copy.deepcopy(body)
        if method == "POST":  # /api/v1/namespaces/<ns>/<resource>
            name = body["metadata"]["name"]
            self.requests.append(f"POST {name}")
            if parts[3] not in self.namespaces:
                raise KubeNotFound(f"namespaces {parts[3]!r} not found", 404, "NotFound", target)
            if self._find(parts[3], name) is not None:
                raise KubeConflict(f"{target} already exists", 409, "AlreadyExists", target)
            created = self._stamped(body, uid=f"uid-{name}")
            self.objects.append(created)
            return copy.deepcopy(created)
        name = parts[5]
        self.requests.append(f"{method} {name}")
        index = self._find(parts[3], name)
        if index is None:
            raise KubeNotFound(f"{target} not found", 404, "NotFound", target)
        current = self.objects[index]["metadata"]
        if method == "PUT":
            if body["metadata"].get("resourceVersion") != current.get("resourceVersion"):
                raise KubeConflict(f"{target} was changed", 409, "Conflict", target)
            self.objects[index] = self._stamped(body, uid=current.get("uid", ""))
            return copy.deepcopy(self.objects[index])
        wanted = (body or {}).get("preconditions") or {}
        if any(current.get(key) != value for key, value in wanted.items()):
            raise KubeConflict(f"{target} precondition failed", 409, "Conflict", target)
        del self.objects[index]
        return {}

    def _find(self, namespace: str, name: str) -> int | None:
        for index, obj in enumerate(self.objects):
            meta = obj["metadata"]
            if meta["name"] == name and meta.get("namespace", namespace) == namespace:
                return index
        return None

    def _stamped(self, body: dict[str, t.Any], uid: str) -> dict[str, t.Any]:
        self._version += 1
        obj = copy.deepcopy(body)
        obj["metadata"].update(uid=uid, resourceVersion=str(self._version))
        return obj


def matches(obj: dict[str, t.Any], label: str, field: str) -> bool:
    labels = obj["metadata"].get("labels") or {}
    for term in filter(None, label.split(",")):
        if "!=" in term:
            key, value = term.split("!=")
            if labels.get(key) == value:
                return False
        elif labels.get(term.split("=")[0]) != term.split("=")[1]:
            return False
    if field.startswith("type!="):
        return obj.get("type", "") != field[len("type!=") :]
    return True
