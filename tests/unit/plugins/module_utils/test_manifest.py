"""Manifests read as Helm reads them: its document separator, no YAML 1.1 implicit typing, and
bounds on what hostile YAML can cost. Table-driven; the real charts with these corner cases are
installed by real Helm in tests/integration/test_guards.py."""

from __future__ import annotations

import time
import typing as t

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._manifest import (
    MAX_DEPTH,
    ManifestError,
    ObjectKey,
    kinds_named,
    load_document,
    parse_manifest,
    split_documents,
)

SCALARS = [
    # (case, YAML value, what it reads as)
    ("an equals sign (YAML 1.1 'value')", "=", "="),
    ("an impossible date", "0000-00-00", "0000-00-00"),
    ("a date", "2026-12-01", "2026-12-01"),
    ("a timestamp", "2026-12-01T10:00:00Z", "2026-12-01T10:00:00Z"),
    ("yes", "yes", "yes"),
    ("off", "off", "off"),
    ("true", "true", "true"),
    ("an octal-looking number", "0755", "0755"),
    ("a sexagesimal-looking number", "1:20", "1:20"),
    ("a float", "0.50", "0.50"),
    ("a number", "80", "80"),
    ("tilde", "~", None),
    ("null", "null", None),
    ("empty", "", None),
    ("a quoted null", "'null'", "null"),
    ("an explicit timestamp tag", "!!timestamp 2026-12-01", "2026-12-01"),
    ("an explicit binary tag", "!!binary aGk=", "aGk="),
]


@pytest.mark.parametrize(("case", "text", "expected"), SCALARS, ids=[c[0] for c in SCALARS])
def test_scalars_keep_their_text(case: str, text: str, expected: str | None) -> None:
    assert load_document(f"value: {text}\n") == {"value": expected}, case


SPLITS = [
    # (case, manifest, documents): each expectation is what Go's regexp.Split with Helm's pattern gives.
    ("leading separator", "---\na: 1\n---\nb: 2\n", ["a: 1", "b: 2"]),
    ("separator with trailing spaces", "a: 1\n---   \nb: 2", ["a: 1", "b: 2"]),
    ("four dashes split after three, as Go's pattern does", "a: 1\n----\nb: 2", ["a: 1", "-\nb: 2"]),
    ("an indented --- is content", "a: |\n  x\n  ---\n  y\n", ["a: |\n  x\n  ---\n  y"]),
    ("a separator right after another stays in the document", "---\n---\na: 1\n---\n", ["---\na: 1"]),
    ("a separator in mid-line is content", "a: x --- y\n", ["a: x --- y"]),
]


@pytest.mark.parametrize(("case", "manifest", "documents"), SPLITS, ids=[c[0] for c in SPLITS])
def test_documents_split_as_helm_splits_them(case: str, manifest: str, documents: list[str]) -> None:
    assert split_documents(manifest) == documents, case


def test_objects_of_a_manifest_with_unquoted_values_helm_accepts() -> None:
    manifest = (
        "---\n# Source: app/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n"
        "data:\n  SEP: =\n  BUILD_DATE: 0000-00-00\n---\n# Source: app/templates/pvc.yaml\napiVersion: v1\n"
        "kind: PersistentVolumeClaim\nmetadata:\n  name: web-data\n  namespace: other\n"
        "---\n# Source: app/templates/empty.yaml\n# nothing rendered\n"
    )
    objects = parse_manifest(manifest, "team-a")
    assert [key for key, _document in objects] == [
        ObjectKey("v1", "ConfigMap", "team-a", "web-config"),
        ObjectKey("v1", "PersistentVolumeClaim", "other", "web-data"),
    ]
    assert objects[0][1]["data"] == {"SEP": "=", "BUILD_DATE": "0000-00-00"}


def merged() -> str:
    return "base: &base {a: 1, b: 2}\nobj:\n  <<: *base\n  b: 3\n"


BAD = [
    # (case, document, what the error says)
    ("a duplicate key, as Go's YAML refuses", "a: 1\na: 2\n", "defined twice"),
    ("an alias bomb", "", "expand to more than"),
    ("flow nesting 100,000 deep", "v: " + "[" * 100_000 + "]" * 100_000, f"more deeply than {MAX_DEPTH}"),
    ("block nesting deeper than the bound", "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 5)), "deeply"),
    ("an alias to nothing", "a: *nowhere\n", "alias"),
    ("not YAML", "a: [1, 2\n", "expected"),
    ("a mapping as a key", "? {a: 1}\n: x\n", "mapping key is itself"),
]


def alias_bomb() -> str:
    lines = ['l0: &l0 "lol"']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("case", "text", "message"), BAD, ids=[c[0] for c in BAD])
def test_what_cannot_be_read_is_an_error_in_bounded_time(case: str, text: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(ManifestError, match=message):
        load_document(text or alias_bomb())
    assert time.monotonic() - started < 5, case


def test_merge_keys_work_as_in_go_yaml() -> None:
    assert load_document(merged())["obj"] == {"a": "1", "b": "3"}


def test_anchors_are_shared_and_counted_not_copied() -> None:
    document = t.cast(dict[str, t.Any], load_document("a: &x {k: v}\nb: *x\nc: *x\n"))
    assert document["b"] is document["a"] and document["c"] == {"k": "v"}


def test_one_bad_document_makes_the_whole_manifest_unreadable_and_names_it() -> None:
    manifest = "---\n# Source: app/templates/ok.yaml\nkind: ConfigMap\nmetadata: {name: a}\n"
    manifest += "---\n# Source: app/templates/bad.yaml\nkind: ConfigMap\nmetadata: {name: b}\nmetadata: {name: c}\n"
    with pytest.raises(ManifestError) as raised:
        parse_manifest(manifest, "ns", what="revision 2's manifest")
    assert str(raised.value).startswith("revision 2's manifest cannot be read: document 2 (app/templates/bad.yaml)")


@pytest.mark.parametrize("document", ["- a\n- b\n", "just text\n", "metadata: {name: x}\n"])
def test_a_document_that_is_no_object_is_an_error(document: str) -> None:
    with pytest.raises(ManifestError, match="is not a Kubernetes object"):
        parse_manifest(f"---\n{document}", "ns")


KIND_SCANS = [
    # (case, manifest, what parse_manifest would name too)
    ("block style", "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n", {("v1", "ConfigMap")}),
    (
        "nested kinds are not the document's",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nroleRef:\n  kind: Role\n  name: r\n",
        {("rbac.authorization.k8s.io/v1", "RoleBinding")},
    ),
    ("quoted", "apiVersion: \"apps/v1\"\nkind: 'Deployment'\n", {("apps/v1", "Deployment")}),
    (
        "several documents",
        "apiVersion: v1\nkind: Service\n---\napiVersion: batch/v1\nkind: Job\n",
        {("v1", "Service"), ("batch/v1", "Job")},
    ),
    ("a comment-only document", "# Source: chart/templates/empty.yaml\n", set()),
]


@pytest.mark.parametrize(("manifest", "expected"), [c[1:] for c in KIND_SCANS], ids=[c[0] for c in KIND_SCANS])
def test_kinds_named_agrees_with_the_parser(manifest: str, expected: set[tuple[str, str]]) -> None:
    assert kinds_named(manifest) == expected
    assert {(key.api_version, key.kind) for key, _doc in parse_manifest(manifest, "ns")} == expected
