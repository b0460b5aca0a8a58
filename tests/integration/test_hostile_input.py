"""The hostile and broken input corpus (tests/hostile): every entry, through
every module. One table-driven test: records are loaded into one namespace next
to releases installed by real Helm; facts (bulk and single), unlock and prune
run against each; invalid names and unusable kubeconfigs go to every module;
broken, foreign and hand-edited backup files go to helm_release_restore.
Each gives a clear error on that release (the good ones are still returned in
bulk), never a traceback, and nothing is written (audit log)."""

from __future__ import annotations

import json
import re
import subprocess
import time
import typing as t
import uuid
from pathlib import Path

import pytest
import yaml

from .support import (
    BIN,
    CHART,
    KUBECONFIG,
    ROOT,
    WRITE_VERBS,
    audit_events_since,
    helm,
    kubectl,
    run_collection_module,
    write_kubeconfig,
)

CORPUS = ROOT / "tests" / "hostile"
MODULES = ("helm_release_facts", "helm_release_unlock", "helm_history_prune")


def load_corpus() -> list[dict[str, t.Any]]:
    entries = []
    for path in sorted(CORPUS.glob("*/*.json")):
        entry = json.loads(path.read_text())
        entry["name"] = path.stem
        assert entry["kind"] == path.parent.name, path
        entries.append(entry)
    return entries


def documented_count() -> int:
    match = re.search(r"The corpus has (\d+) entries", (CORPUS / "README.md").read_text())
    assert match, "tests/hostile/README.md must state how many entries the corpus has"
    return int(match.group(1))


def assert_clear(result: dict[str, t.Any], case: str) -> None:
    text = json.dumps(result)
    assert "Traceback" not in text, f"{case}: {text[:2000]}"
    assert "exception" not in result, f"{case}: {result.get('exception')}"
    assert not str(result.get("msg", "")).startswith("unexpected error"), f"{case}: {result['msg']}"


def load_records(namespace: str, entries: list[dict[str, t.Any]]) -> None:
    for entry in entries:
        for stored in entry["objects"]:
            obj = {**stored, "metadata": {**stored["metadata"], "namespace": namespace}}
            subprocess.run(
                [str(BIN / "kubectl"), "--kubeconfig", KUBECONFIG, "create", "-f", "-"],
                input=json.dumps(obj),
                text=True,
                check=True,
                capture_output=True,
            )


def check_bulk(entry: dict[str, t.Any], bulk: dict[str, t.Any], namespace: str) -> None:
    case = entry["name"]
    releases = {r["name"]: r for r in bulk["ansible_facts"]["helm_releases"]}
    if entry["release"] is None:
        errors = bulk["ansible_facts"]["helm_release_errors"]
        wanted = f"Secret {namespace}/{entry['object']}"
        assert any(wanted in e and "not a Helm release record" in e for e in errors), f"{case}: {errors}"
        return
    assert entry["release"] in releases, f"{case}: not reported in bulk mode"
    release = releases[entry["release"]]
    errors = release["record_errors"]
    if entry["reason"]:
        assert entry["reason"] in [e["reason"] for e in errors], f"{case}: {errors}"
        prefix = f"Secret {namespace}/sh.helm.release.v1.{entry['release']}.v"
        assert all(e["object"].startswith(prefix) and e["message"].startswith(prefix) for e in errors), errors
        return
    assert errors == [], f"{case}: {errors}"
    if entry.get("large"):
        assert release["risks"]["large_records"], f"{case}: a record near 1 MiB is not flagged"
    if entry.get("label_mismatch"):
        flagged = [r["revision"] for r in release["revisions"] if r["status_label_mismatch"]]
        assert flagged == [entry["label_mismatch"]], f"{case}: {release['revisions']}"
    if entry.get("revisions"):
        assert [r["revision"] for r in release["revisions"]] == entry["revisions"], case
    if entry.get("unreadable_manifest"):
        # A manifest that cannot be read is named, and the guards that read it fail closed.
        unreadable = " ".join(release["risks"].get("unreadable_manifests") or [])
        assert entry["unreadable_manifest"] in unreadable, f"{case}: {unreadable}"
        assert f"Secret {namespace}/sh.helm.release.v1.{entry['release']}.v2" in unreadable, unreadable
        assert release["lock"]["verdict"] == "possibly-running", f"{case}: {release['lock']}"
        assert release["risks"]["deletions"]["uninstall"]["objects"] is None, case


def check_single(entry: dict[str, t.Any], namespace: str) -> None:
    case, release = entry["name"], entry["release"]
    result = run_collection_module("helm_release_facts", {"namespace": namespace, "release": [release]})
    assert_clear(result, case)
    if entry["single"] == "invalid":
        assert result.get("failed") and "invalid release name" in result["msg"], f"{case}: {result}"
        return
    facts = result["ansible_facts"]
    if entry["single"] == "not-found":
        assert facts["helm_releases"] == [], case
        assert any("not found" in e for e in facts["helm_release_errors"]), f"{case}: {facts}"
        return
    assert [r["name"] for r in facts["helm_releases"]] == [release], case
    if entry["reason"]:
        assert entry["reason"] in [e["reason"] for e in facts["helm_releases"][0]["record_errors"]], case


def check_unlock(entry: dict[str, t.Any], namespace: str, backup_dir: Path) -> None:
    case = entry["name"]
    result = run_collection_module(
        "helm_release_unlock",
        {"namespace": namespace, "release": entry["release"], "stale_after": 1, "backup_dir": str(backup_dir)},
    )
    assert_clear(result, case)
    assert not result.get("changed"), f"{case}: {result}"
    said = result["msg"] if result.get("failed") else result["reason"]
    assert entry["unlock"] in said, f"{case}: {said}"


def check_prune(entry: dict[str, t.Any], namespace: str) -> None:
    case = entry["name"]
    result = run_collection_module(
        "helm_history_prune", {"namespace": namespace, "release": [entry["release"]], "keep": 1}
    )
    assert_clear(result, case)
    if entry["single"] == "invalid":
        assert result.get("failed") and entry["prune"] in result["msg"], f"{case}: {result}"
        return
    assert result["changed"] is False and result["totals"]["deleted"] == 0, f"{case}: {result}"
    if entry["prune"]:
        assert any(entry["prune"] in e for e in result["errors"]), f"{case}: {result['errors']}"
    else:
        assert result["errors"] == [], f"{case}: {result['errors']}"


def check_names(entry: dict[str, t.Any], namespace: str) -> None:
    for module in MODULES:
        args: dict[str, t.Any] = {"namespace": namespace, "release": "web", **entry["args"]}
        if module != "helm_release_unlock":
            args["release"] = [args["release"]]
        result = run_collection_module(module, args)
        assert_clear(result, f"{entry['name']} ({module})")
        assert result.get("failed") and entry["message"] in result["msg"], f"{entry['name']} ({module}): {result}"


def check_connection(entry: dict[str, t.Any], namespace: str, tmp_path: Path) -> None:
    config = yaml.safe_load(Path(KUBECONFIG).read_text())
    change = entry["kubeconfig"]
    server = change.get("server", config["clusters"][0]["cluster"]["server"])
    token = change.get("token", config["users"][0]["user"]["token"])
    ca = change.get("ca", str(ROOT / ".cluster" / "pki" / "ca.crt"))
    kubeconfig = write_kubeconfig(tmp_path, server, token, ca)
    for module in MODULES:
        args: dict[str, t.Any] = {"namespace": namespace, "release": "good-a", "backup_dir": str(tmp_path / "b")}
        if module != "helm_release_unlock":
            args = {"namespace": namespace, "release": ["good-a"]}
        result = run_collection_module(module, args, kubeconfig=kubeconfig)
        case = f"{entry['name']} ({module})"
        assert_clear(result, case)
        assert result.get("failed") and entry["message"] in result["msg"], f"{case}: {result}"
        assert token not in json.dumps(result), f"{case}: the token is in the output"


def check_backup(entry: dict[str, t.Any], tmp_path: Path) -> None:
    """A hostile file given to helm_release_restore as a backup, with every write it could make allowed."""
    case = entry["name"]
    path = tmp_path / "given" / f"{case}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(entry["text"])
    args = {"path": str(path), "overwrite": True, "discard_newer": True, "force": True, "backup_dir": str(tmp_path)}
    result = run_collection_module("helm_release_restore", args)
    assert_clear(result, case)
    assert result.get("failed") and entry["message"] in result["msg"] and str(path) in result["msg"], (
        f"{case}: {result}"
    )


def test_every_corpus_entry_fails_clearly_and_writes_nothing(cluster: str, tmp_path: Path) -> None:
    entries = load_corpus()
    documented = documented_count()
    namespace = f"hostile-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    helm("3", "secret", "install", "good-a", CHART, "-n", namespace)
    helm("4", "secret", "install", "good-b", CHART, "-n", namespace)
    records = [e for e in entries if e["kind"] == "records"]
    load_records(namespace, records)
    started = time.time()
    exercised: list[str] = []

    bulk = run_collection_module("helm_release_facts", {"namespace": namespace})
    assert_clear(bulk, "bulk facts")
    assert not bulk.get("failed"), bulk.get("msg")
    good = {r["name"]: r for r in bulk["ansible_facts"]["helm_releases"] if r["name"] in ("good-a", "good-b")}
    assert {n: (r["status"], r["record_errors"]) for n, r in good.items()} == {
        "good-a": ("deployed", []),
        "good-b": ("deployed", []),
    }
    # history=labels reads these payloads too: none of the corpus records is labelled superseded.
    labels = run_collection_module("helm_release_facts", {"namespace": namespace, "history": "labels"})
    assert_clear(labels, "bulk facts, history=labels")
    assert not labels.get("failed"), labels.get("msg")
    everywhere = run_collection_module("helm_history_prune", {"namespace": namespace, "keep": 1})
    assert_clear(everywhere, "prune over the namespace")
    deleted = [(r["release"], r["deleted"]) for r in everywhere["releases"] if r["deleted"]]
    assert everywhere["changed"] is False and deleted == [], deleted

    for entry in entries:
        if entry["kind"] == "records":
            check_bulk(entry, bulk, namespace)
            check_bulk(entry, labels, namespace)
            if entry["single"] is not None:
                check_single(entry, namespace)
            if entry["unlock"] is not None:
                check_unlock(entry, namespace, tmp_path / "backups")
            if entry["single"] is not None:
                check_prune(entry, namespace)
        elif entry["kind"] == "names":
            check_names(entry, namespace)
        elif entry["kind"] == "connections":
            check_connection(entry, namespace, tmp_path)
        elif entry["kind"] == "backups":
            check_backup(entry, tmp_path)
        else:
            pytest.fail(f"unknown corpus kind {entry['kind']!r} in {entry['name']}")
        exercised.append(entry["name"])

    events = audit_events_since(started)
    assert events, "the audit log must show the modules' requests, or the no-write check proves nothing"
    assert [e for e in events if e["verb"] in WRITE_VERBS] == []
    assert not (tmp_path / "backups").exists(), "no backup: nothing was about to be written"
    assert not list(tmp_path.glob("fixture-*")), "no backup of what a restore replaces: nothing was"
    assert len(exercised) == len(entries) >= documented, (len(exercised), documented)
    print(f"hostile corpus: {len(exercised)} entries exercised (documented: {documented})")
    kubectl("delete", "namespace", namespace, "--wait=false")
