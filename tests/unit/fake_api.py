"""A stand-in Kubernetes API for unit tests: it serves records recorded from real Helm 3 and Helm 4, applies
label selectors, field selectors and metadata-only listings as the API server does, and records every request."""

from __future__ import annotations

import copy
import json
import typing as t
from pathlib import Path

from ansible_collections.helmops.recovery.plugins.module_utils import _release_codec as codec
from ansible_collections.helmops.recovery.plugins.module_utils._k8s import KubeNotFound

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "records"
NOW = 1.9e9  # every record is long stale


def recorded(stem: str) -> tuple[codec.Driver, list[dict[str, t.Any]]]:
    fixture = json.loads((FIXTURES / f"{stem}.json").read_text())
    return fixture["driver"], copy.deepcopy(fixture["objects"])


class FakeApi:
    """Lists and GETs of storage objects; every request is recorded."""

    def __init__(self, objects: list[dict[str, t.Any]]) -> None:
        self.objects = objects
        self.requests: list[str] = []

    def request(
        self, method: str, path: str, *, target: str, query: t.Any = None, headers: t.Any = None, **_options: t.Any
    ) -> dict[str, t.Any]:
        params = dict(query or [])
        metadata_only = bool(headers and "PartialObjectMetadata" in headers.get("Accept", ""))
        parts = path.strip("/").split("/")
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
        items = [copy.deepcopy(o) for o in self.objects if matches(o, label, field)]
        if metadata_only:
            items = [{"metadata": o["metadata"]} for o in items]
        return {"metadata": {}, "items": items}


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
