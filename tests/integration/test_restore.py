"""A guarded way back, with real Helm 3 and Helm 4 and both drivers: every destructive step of the collection
takes a backup; helm_release_restore puts that history back (--check first, writing nothing), after which real
`helm history` shows what it showed before the step, and real Helm can act on the release again. A restore
over newer history is refused; a restore runs with exactly the shipped roles."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import typing as t
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from .support import (
    ANSIBLE,
    BIN,
    CHART,
    KUBECONFIG,
    ROOT,
    WORKER_ACCOUNT,
    helm,
    kubectl,
    run_collection_module,
    run_playbook,
    warnings_of,
    writes_by_user_since,
)
from .test_rbac import identity


@dataclass(frozen=True)
class Step:
    """A destructive step of the collection, the state real Helm is driven into first, and what the
    restore must be allowed to do to undo it."""

    name: str
    state: str
    module: str
    args: dict[str, t.Any]
    restore: dict[str, t.Any]


STEPS = [
    Step("unlock", "pending-upgrade", "helm_release_unlock", {"stale_after": 1}, {"overwrite": True}),
    Step(
        "delete_revision",
        "pending-upgrade",
        "helm_release_unlock",
        {"stale_after": 1, "method": "delete_revision", "allow_destructive": True},
        {},
    ),
    Step(
        "mark_deployed",
        "pending-upgrade",
        "helm_release_unlock",
        {"stale_after": 1, "method": "mark_deployed", "allow_destructive": True},
        {"overwrite": True},
    ),
    Step("prune", "bloated", "helm_history_prune", {"keep": 3}, {}),
    Step("uninstall", "failed-upgrade", "helm_release_recover", {"action": "uninstall", "allow_destructive": True}, {}),
    Step(
        "rollback",
        "failed-upgrade",
        "helm_release_recover",
        {"action": "rollback"},
        {"overwrite": True, "discard_newer": True},
    ),
]
# Each step with one of the four Helm x driver pairs, in turn: every pair is used, each major with both drivers.
PAIRS = [("3", "secret"), ("4", "configmap"), ("4", "secret"), ("3", "configmap")]
CASES = [(step, *PAIRS[index % len(PAIRS)]) for index, step in enumerate(STEPS)]


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    major: str
    driver: str

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return helm(self.major, self.driver, *args, "-n", self.namespace, check=check)


def make(state: str, major: str, driver: str) -> Release:
    release = Release("web", f"rs-{state[:10]}-{uuid.uuid4().hex[:5]}", major, driver)
    command = [str(ROOT / "hack" / "scenario"), state, "--release", release.name, "--namespace", release.namespace]
    done = subprocess.run(
        [*command, "--helm", major, "--driver", driver, "--kubeconfig", KUBECONFIG],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"scenario {state} (helm {major}, {driver}) failed: {done.stderr}")
    return release


def what_helm_shows(release: Release) -> list[dict[str, t.Any]]:
    """`helm history` (revision, status, chart, app version, description, time) and each revision's values;
    nothing for a release Helm does not know."""
    listed = release.helm("history", release.name, "-o", "json", "--max", "1000", check=False)
    if listed.returncode != 0 and "not found" in listed.stderr:
        return []
    history = t.cast(list[dict[str, t.Any]], json.loads(listed.stdout))
    for entry in history:
        values = release.helm("get", "values", release.name, "--revision", str(entry["revision"]), "-o", "json")
        entry["values"] = json.loads(values.stdout)
    return history


def act(step: Step, release: Release, backups: Path) -> dict[str, t.Any]:
    args: dict[str, t.Any] = {"namespace": release.namespace, "driver": release.driver, "backup_dir": str(backups)}
    args["release"] = [release.name] if step.module == "helm_history_prune" else release.name
    if step.module == "helm_release_recover":
        args.update(helm_binary=str(BIN / f"helm{release.major}"), timeout="120s", stale_after=1)
    result = run_collection_module(step.module, {**args, **step.args})
    assert result.get("changed") is True, result.get("msg")
    return result


def restore(release: Release, path: Path, *, check_mode: bool = False, **args: t.Any) -> dict[str, t.Any]:
    return run_collection_module(
        "helm_release_restore",
        {"path": str(path), "release": release.name, "namespace": release.namespace, "stale_after": 1, **args},
        check_mode=check_mode,
        diff=True,
    )


@pytest.mark.parametrize(("step", "major", "driver"), CASES, ids=[f"{s.name}-helm{m}-{d}" for s, m, d in CASES])
def test_a_restore_undoes_each_destructive_step(step: Step, major: str, driver: str, tmp_path: Path) -> None:
    release = make(step.state, major, driver)
    time.sleep(1.2)  # the records age past stale_after=1
    before = what_helm_shows(release)
    backups = tmp_path / "b"
    act(step, release, backups)
    after_step = what_helm_shows(release)
    assert after_step != before, f"{step.name} changed nothing Helm shows"
    directory = backups / release.namespace / release.name

    started = time.time()
    check = restore(release, directory, check_mode=True, **step.restore)
    assert check.get("changed") is True, check.get("msg")
    assert writes_by_user_since(started) == [], "a restore in check mode wrote"
    assert what_helm_shows(release) == after_step
    statuses_before = {f"revision {h['revision']}": h["status"] for h in before}
    assert check["diff"]["after"] and all(
        statuses_before.get(k, "absent") == v for k, v in check["diff"]["after"].items()
    )

    done = restore(release, directory, backup_dir=str(tmp_path / "undo"), **step.restore)
    assert done.get("changed") is True, done.get("msg")
    assert what_helm_shows(release) == before
    assert not warnings_of(done), warnings_of(done)
    again = restore(release, directory, **step.restore)
    assert again.get("changed") is False, again
    events = json.loads(kubectl("get", "events.events.k8s.io", "-n", release.namespace, "-o", "json").stdout)
    assert any(e.get("reason") == "HelmReleaseRestored" for e in events["items"])
    kubectl("delete", "namespace", release.namespace, "--wait=false")


def test_a_restore_over_newer_history_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    """A backup taken, then Helm moved on (two more upgrades): the old backup never silently replaces them."""
    release = make("deployed", "4", "secret")
    backups = tmp_path / "b"
    exported = run_collection_module(
        "helm_release_backup", {"release": release.name, "namespace": release.namespace, "backup_dir": str(backups)}
    )
    assert exported.get("changed") is True, exported.get("msg")
    for note in ("r4", "r5"):
        release.helm("upgrade", release.name, CHART, "--set", f"revisionNote={note}", "--wait", "--timeout", "120s")
    before = what_helm_shows(release)
    started = time.time()
    refused = restore(release, backups / release.namespace / release.name)
    assert refused.get("failed") and "were written after the backup was taken" in refused["msg"], refused
    assert "revision(s) 4 (superseded), 5 (deployed)" in refused["msg"], refused["msg"]
    assert writes_by_user_since(started) == [] and what_helm_shows(release) == before
    kubectl("delete", "namespace", release.namespace, "--wait=false")


def test_the_shipped_restore_role_restores_and_the_triage_role_alone_cannot(tmp_path: Path) -> None:
    release = make("pending-upgrade", "3", "secret")
    time.sleep(1.2)
    before = what_helm_shows(release)
    backups = tmp_path / "b"
    act(STEPS[0], release, backups)  # unlock: revision 2 pending-upgrade -> failed
    kubectl("apply", "-f", str(ROOT / "docs" / "rbac"))
    directory = backups / release.namespace / release.name
    # Named as a worker's identities (support.WORKER_ACCOUNT): this file runs beside the main run, whose audit-log
    # witnesses must not count these requests as its own.
    reader = identity(release.namespace, f"{WORKER_ACCOUNT}restore-reader", ["helmops-triage"], tmp_path)
    refused = run_collection_module(
        "helm_release_restore", {"path": str(directory), "overwrite": True, "stale_after": 1}, kubeconfig=reader
    )
    assert refused.get("failed") and "forbidden (403) to update Secret" in refused["msg"], refused
    restorer = identity(release.namespace, f"{WORKER_ACCOUNT}restorer", ["helmops-triage", "helmops-restore"], tmp_path)
    done = run_collection_module(
        "helm_release_restore",
        {"path": str(directory), "overwrite": True, "stale_after": 1, "backup_dir": str(tmp_path / "undo")},
        kubeconfig=restorer,
    )
    assert done.get("changed") is True, done.get("msg")
    assert not warnings_of(done), warnings_of(done)  # the Event too was allowed
    assert what_helm_shows(release) == before
    kubectl("delete", "namespace", release.namespace, "--wait=false")


def test_remediate_names_its_backups_and_the_command_that_undoes_it(tmp_path: Path) -> None:
    """A stale pending-upgrade remediated (every step backs up first); the report's command, run as printed
    (in check mode, then for real), gives back the history Helm showed before the remediation."""
    release = make("pending-upgrade", "4", "configmap")
    time.sleep(1.2)
    before = what_helm_shows(release)
    options = {
        "release": release.name,
        "release_namespace": release.namespace,
        "stale_after": 1,
        "chart": CHART,
        "helm_binary": str(BIN / "helm4"),
        "helm_timeout": "120s",
        "report_dir": str(tmp_path / "reports"),
        "backup_dir": str(tmp_path / "b"),
    }
    done = run_playbook("remediate.yml", "-e", json.dumps(options), env={"HELM_DRIVER": "configmap"})
    assert done.returncode == 0, done.stdout[-4000:]
    (outcome,) = json.loads((tmp_path / "reports" / "localhost" / "remediation.json").read_text())["releases"]
    assert outcome["outcome"] == "recovered" and outcome["backups"], outcome
    assert what_helm_shows(release) != before
    markdown = (tmp_path / "reports" / "localhost" / "remediation.md").read_text()
    assert "## Backups taken first" in markdown and outcome["restore_command"] in markdown

    command = shlex.split(outcome["restore_command"])
    assert command[:3] == ["ansible", "localhost", "-m"] and command[-2:] == ["--check", "--diff"]
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "KUBECONFIG": KUBECONFIG}
    env["HELM_DRIVER"] = "configmap"
    started = time.time()
    ansible = [str(ANSIBLE / "ansible"), *command[1:]]
    looked = subprocess.run(ansible, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert looked.returncode == 0 and "CHANGED" in looked.stdout, looked.stdout[-3000:]
    assert writes_by_user_since(started) == []
    restored = subprocess.run(ansible[:-2], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert restored.returncode == 0 and "CHANGED" in restored.stdout, restored.stdout[-3000:]
    assert what_helm_shows(release) == before
    kubectl("delete", "namespace", release.namespace, "--wait=false")
