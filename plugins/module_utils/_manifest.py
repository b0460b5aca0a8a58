# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A release's rendered manifest, read the way Helm reads it.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

Helm splits a stored manifest into documents with ``releaseutil.SplitManifests``
(pkg/releaseutil/manifest.go: the pattern ``(?:^|\\s*\\n)---\\s*`` on the trimmed
text) and decodes every document on its own (``SortManifests``, then
``kube.Client.Build``) with sigs.k8s.io/yaml. One document it cannot decode
makes the whole action fail ("corrupted release record"): here it makes the
whole manifest unreadable (``ManifestError``), and every guard that reads the
manifest fails closed. An unreadable manifest never counts as "no objects".

Scalars keep their text: YAML 1.1's implicit types (``=``, dates,
``yes``/``no``/``on``/``off``, octal and sexagesimal numbers) neither change nor
break a document; only ``null``, ``~`` and empty values read as None. Merge
keys (``<<``) work as in Go's YAML. Alias expansion and nesting are bounded
(MAX_NODES, MAX_DEPTH), far above any rendered chart.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass

try:
    import yaml

    HAS_YAML = True
    _PARSER: t.Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
except ImportError:  # pragma: no cover - reported by the module
    HAS_YAML = False

# Go's \s is [\t\n\f\r ]; Python's would also match \v and Unicode spaces.
_DOCUMENT_SEPARATOR = re.compile(r"(?:^|[\t\n\f\r ]*\n)---[\t\n\f\r ]*")
_GO_SPACE = "\t\n\f\r "
HOOK_ANNOTATION = "helm.sh/hook"
# A document whose aliases expand beyond this many nodes, or that nests deeper, is refused.
MAX_NODES = 1_000_000
MAX_DEPTH = 200


class ManifestError(ValueError):
    """A manifest (or one of its documents) that cannot be read as Helm would read it."""


@dataclass(frozen=True)
class ObjectKey:
    api_version: str
    kind: str
    namespace: str  # "" for cluster-scoped objects
    name: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """What Helm matches objects by across two manifests (kube/resource.go isMatchingInfo):
        name, namespace, kind and API group; the version may differ."""
        return (self.group, self.kind, self.namespace, self.name)

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


class _Node:
    """A container being read: the value, its expanded size and height (aliases count whole)."""

    __slots__ = ("anchor", "height", "key", "merges", "size", "value")

    def __init__(self, value: dict[str, t.Any] | list[t.Any], anchor: str | None) -> None:
        self.value = value
        self.key: t.Any = _NO_KEY
        self.size = 1
        self.height = 1
        self.anchor = anchor
        self.merges: list[t.Any] = []


_NO_KEY = object()
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_NULL_TAG = "tag:yaml.org,2002:null"


def load_document(text: str) -> t.Any:
    """One YAML document as Helm's objects read it, or ManifestError naming the cause.

    Built from libyaml's events (its parser keeps an explicit stack) rather than
    PyYAML's composer, which recurses in C and crashes the process on a document
    nested tens of thousands of levels deep. Anchors are shared, never copied;
    their expanded size and depth count against MAX_NODES and MAX_DEPTH.
    """
    documents: list[t.Any] = []
    try:
        _read_events(yaml.parse(text, Loader=_PARSER), documents)
    except yaml.YAMLError as exc:
        raise ManifestError(" ".join(str(exc).split())) from exc
    if len(documents) > 1:
        raise ManifestError("it holds more than one YAML document")
    return documents[0] if documents else None


def _read_events(events: t.Iterable[t.Any], documents: list[t.Any]) -> None:
    stack: list[_Node] = []
    anchors: dict[str, tuple[t.Any, int, int]] = {}  # anchor -> (value, size, height)
    root: list[tuple[t.Any, int, int]] = []
    for event in events:
        kind = event.__class__
        if kind is yaml.ScalarEvent:
            value = _scalar(event)
            if event.anchor:
                anchors[event.anchor] = (value, 1, 0)
            _add(stack, root, value, 1, 0)
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            if len(stack) >= MAX_DEPTH:
                raise ManifestError(f"nested more deeply than {MAX_DEPTH} levels")
            stack.append(_Node({} if kind is yaml.MappingStartEvent else [], event.anchor))
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            _close(stack, root, anchors)
        elif kind is yaml.AliasEvent:
            _alias(stack, root, anchors, event.anchor)
        elif kind is yaml.DocumentEndEvent:
            documents.extend(value for value, _size, _height in root)
            root.clear()
            anchors.clear()


def _close(stack: list[_Node], root: list[tuple[t.Any, int, int]], anchors: dict[str, tuple[t.Any, int, int]]) -> None:
    node = stack.pop()
    for merged in node.merges:  # explicit keys win over merged ones, as in YAML's merge
        for key, item in merged.items():
            node.value.setdefault(key, item)  # type: ignore[union-attr]
    if node.anchor:
        anchors[node.anchor] = (node.value, node.size, node.height)
    _add(stack, root, node.value, node.size, node.height)


def _alias(
    stack: list[_Node], root: list[tuple[t.Any, int, int]], anchors: dict[str, tuple[t.Any, int, int]], anchor: str
) -> None:
    if anchor not in anchors:
        raise ManifestError(f"alias *{anchor} refers to no anchor before it")
    value, size, height = anchors[anchor]
    if len(stack) + height > MAX_DEPTH:
        raise ManifestError(f"nested more deeply than {MAX_DEPTH} levels")
    _add(stack, root, value, size, height)


def _scalar(event: t.Any) -> str | None:
    if event.tag == _NULL_TAG or (not event.tag and not event.style and event.value in _NULLS):
        return None
    return str(event.value)


def _add(stack: list[_Node], root: list[tuple[t.Any, int, int]], value: t.Any, size: int, height: int) -> None:
    if not stack:
        root.append((value, size, height))
        return
    parent = stack[-1]
    parent.size += size
    if parent.size > MAX_NODES:
        raise ManifestError(f"its aliases expand to more than {MAX_NODES} nodes")
    parent.height = max(parent.height, height + 1)
    if isinstance(parent.value, list):
        parent.value.append(value)
    elif parent.key is _NO_KEY:
        if isinstance(value, (dict, list)):
            raise ManifestError("a mapping key is itself a mapping or sequence")
        parent.key = "" if value is None else value
    else:
        key, parent.key = parent.key, _NO_KEY
        if key == "<<" and isinstance(value, (dict, list)):
            merged = value if isinstance(value, list) else [value]
            if not all(isinstance(item, dict) for item in merged):
                raise ManifestError("a merge key (<<) refers to something that is not a mapping")
            parent.merges.extend(merged)
        elif key in parent.value:
            raise ManifestError(f"mapping key {key!r} is defined twice")
        else:
            parent.value[key] = value


def document_spans(manifest: str) -> list[tuple[int, int]]:
    """(start, end) of each document between the separators releaseutil.SplitManifests cuts at, so that a
    rewrite of one document keeps every other byte of the manifest."""
    spans, start = [], 0
    for separator in _DOCUMENT_SEPARATOR.finditer(manifest):
        spans.append((start, separator.start()))
        start = separator.end()
    spans.append((start, len(manifest)))
    return spans


def split_documents(manifest: str) -> list[str]:
    """The documents of a manifest, as releaseutil.SplitManifests cuts them."""
    documents = _DOCUMENT_SEPARATOR.split(manifest.strip(_GO_SPACE))
    return [document.strip(_GO_SPACE) for document in documents if document]


def parse_manifest(
    manifest: str, default_namespace: str, *, what: str = "the manifest"
) -> list[tuple[ObjectKey, dict[str, t.Any]]]:
    """The objects of a rendered manifest, in order; ManifestError when any document
    cannot be read (``what`` names the manifest in the message: "revision 3's manifest")."""
    objects: list[tuple[ObjectKey, dict[str, t.Any]]] = []
    for index, text in enumerate(split_documents(manifest or "")):
        try:
            document = load_document(text)
        except ManifestError as exc:
            raise ManifestError(f"{what} cannot be read: document {index + 1} ({_source(text)}): {exc}") from exc
        if document is None:
            continue  # only comments: Helm builds nothing from it either
        if not isinstance(document, dict) or not document.get("kind"):
            raise ManifestError(
                f"{what} cannot be read: document {index + 1} ({_source(text)}) is not a Kubernetes object"
            )
        metadata = document.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        key = ObjectKey(
            str(document.get("apiVersion") or ""),
            str(document["kind"]),
            str(metadata.get("namespace") or default_namespace),
            str(metadata.get("name") or ""),
        )
        objects.append((key, document))
    return objects


def _source(text: str) -> str:
    """The template a document came from (Helm writes '# Source: <path>' above it)."""
    match = re.search(r"^# Source: (.{1,200})$", text, re.MULTILINE)
    return match.group(1) if match else text[:60].replace("\n", " ")


def annotations_of(document: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    metadata = document.get("metadata")
    found = metadata.get("annotations") if isinstance(metadata, dict) else None
    return found if isinstance(found, dict) else {}


def is_hook(document: t.Mapping[str, t.Any]) -> bool:
    """A document Helm sorts as a hook, not as part of the release (releaseutil manifest_sorter.go)."""
    return HOOK_ANNOTATION in annotations_of(document)


_TOP_LEVEL_API_VERSION = re.compile(r"^apiVersion:[ \t]*[\"']?([\w./-]+)", re.MULTILINE)
_TOP_LEVEL_KIND = re.compile(r"^kind:[ \t]*[\"']?(\w+)", re.MULTILINE)


def kinds_named(manifest: str) -> set[tuple[str, str]]:
    """The (apiVersion, kind) pairs a manifest's documents name at their top level, without parsing them:
    for the manifests of older revisions, whose objects only matter by kind (which kinds to search for
    leftovers). Reading them whole would cost what parse_manifest costs per revision, for every revision of
    every release; this only scans the text. A document written in flow
    style is missed, which only narrows the search."""
    found = set()
    for document in _DOCUMENT_SEPARATOR.split(manifest.strip(_GO_SPACE)):
        api_version, kind = _TOP_LEVEL_API_VERSION.search(document), _TOP_LEVEL_KIND.search(document)
        if api_version and kind:
            found.add((api_version.group(1), kind.group(1)))
    return found
