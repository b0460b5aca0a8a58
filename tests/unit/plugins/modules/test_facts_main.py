"""helm_release_facts through its real main() against a fake API serving records recorded from real Helm: the
commands it prints name the cluster and the user's options, a pasted error of an operation that left no record is
diagnosed on its own, and bad arguments fail clearly."""

from __future__ import annotations

import json
import shlex
import typing as t
from pathlib import Path

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils import _facts
from ansible_collections.helmops.recovery.plugins.modules import helm_release_facts
from fake_api import FakeApi, recorded
from module_main import KUBECONFIG, WRITES, run_main

MISSING_CRD = (
    "Error: INSTALLATION FAILED: unable to build kubernetes objects from release manifest: resource mapping not "
    'found for name: "w" namespace: "" from "": no matches for kind "Widget" in version "example.com/v1"\n'
    "ensure CRDs are installed first"
)


def facts_of(stem: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **extra: t.Any) -> dict:
    driver, objects = recorded(stem)
    meta = objects[0]["metadata"]
    api = FakeApi(objects)
    args = {"namespace": meta["namespace"], "driver": driver, "inspect_live": False, "as_facts": False, **extra}
    result = run_main(helm_release_facts, args, api, monkeypatch, capsys)
    assert not [r for r in api.requests if r.split()[0] in WRITES], api.requests
    return result


@pytest.mark.parametrize("stem", ["helm3-secret-pending-upgrade", "helm4-configmap-pending-upgrade"])
@pytest.mark.parametrize("inline", [False, True], ids=["file", "inline"])
def test_every_printed_command_names_the_cluster_the_driver_and_the_users_options(
    stem: str, inline: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "prod.kubeconfig"
    path.write_text(json.dumps(KUBECONFIG))
    # Inline, no file names the cluster: a placeholder, so that a pasted command fails instead of acting elsewhere.
    named = "<the kubeconfig given inline>" if inline else str(path)
    kubeconfig = KUBECONFIG if inline else str(path)
    result = facts_of(stem, monkeypatch, capsys, stale_after=1, context="c", kubeconfig=kubeconfig)
    release = result["helm_releases"][0]
    configmap = release["driver"] == "configmap"
    actions = release["diagnosis"]["actions"] + release["diagnosis"].get("if_stale", [])
    assert actions
    for action in actions:
        words = shlex.split(action["command"].split(" && ")[0])
        if words[0] == "ansible":
            options = shlex.split(words[-1])
            assert {f"kubeconfig={named}", "context=c"} <= set(options), action
            assert ("driver=configmap" in options) == configmap
            assert "stale_after=1" in options or "helm_history_prune" in action["command"]
        elif words[0] in ("helm", "HELM_DRIVER=configmap"):
            assert words[0].startswith("HELM_DRIVER") == configmap
            assert words[-4:] == ["--kubeconfig", named, "--kube-context", "c"], action
        else:
            assert words[0] == "kubectl" and words[-4:] == ["--kubeconfig", named, "--context", "c"], action


def test_a_pasted_error_of_an_operation_that_left_no_record_is_diagnosed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = facts_of(
        "helm3-secret-deployed", monkeypatch, capsys, release=["widgets"], error=MISSING_CRD, operation="install"
    )
    assert result["helm_releases"] == []
    [said] = [e for e in result["helm_release_errors"] if "widgets" in e]
    assert "release 'widgets' not found" in said
    assert "no record of release 'widgets': the install failed before Helm stored one (missing-crd: " in said
    assert "Next step: Install the CRDs first" in said


def test_an_unknown_detail_fails_naming_the_option(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    driver, objects = recorded("helm3-secret-deployed")
    result = run_main(
        helm_release_facts, {"detail": "everything", "driver": driver}, FakeApi(objects), monkeypatch, capsys
    )
    assert result["failed"] is True and "detail" in result["msg"] and "everything" in result["msg"]


def test_a_brief_entry_reports_no_evidence_yet_the_tree_reads_its_history(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """detail=brief, a healthy release: no live, lock or risks section is reported (nor computed, save the risks),
    and the diagnosis still sees the long history in them."""

    def not_for_a_brief_entry(*_args: t.Any, **_kwargs: t.Any) -> t.NoReturn:
        raise AssertionError("computed for a brief entry")

    monkeypatch.setattr(_facts, "_lock", not_for_a_brief_entry)
    monkeypatch.setattr(_facts, "live_facts", not_for_a_brief_entry)
    result = facts_of("helm3-secret-deployed", monkeypatch, capsys, detail="brief", history_threshold=2)
    [release] = result["helm_releases"]
    assert release["detail"] == "brief"
    assert not set(_facts.EVIDENCE_SECTIONS) & set(release), sorted(release)
    assert "history-too-long" in {finding["code"] for finding in release["diagnosis"]["findings"]}
    assert [action["name"] for action in release["diagnosis"]["actions"]] == ["none", "prune_history"]
