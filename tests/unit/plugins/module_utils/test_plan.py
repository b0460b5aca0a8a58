"""One decision: for every state of the tree and every policy, triage's next step is the step remediate runs,
and its command is the argv the module runs (_helm_cli), pinned to the cluster the facts were read from."""

from __future__ import annotations

import itertools
import os
import shlex
import typing as t
from pathlib import Path

import pytest
import yaml
from ansible_collections.helmops.recovery.plugins.filter.recovery import remediation_plan, triage_row
from ansible_collections.helmops.recovery.plugins.module_utils._commands import ClusterPin, CommandSettings
from ansible_collections.helmops.recovery.plugins.module_utils._diagnosis import diagnose
from ansible_collections.helmops.recovery.plugins.module_utils._helm_cli import (
    HelmFlags,
    rollback_argv,
    uninstall_argv,
    upgrade_argv,
)
from ansible_collections.helmops.recovery.plugins.module_utils._k8s import default_kubeconfig
from ansible_collections.helmops.recovery.plugins.module_utils._plan import UNLOCK_METHODS
from tree_facts import DEPLOYED, FAILED_UPGRADE, PENDING_UPGRADE, facts

ROLE_DEFAULTS = yaml.safe_load((Path(__file__).parents[4] / "roles/remediate/defaults/main.yml").read_text())
FLAGS = HelmFlags(wait=True, timeout=ROLE_DEFAULTS["remediate_helm_timeout"])
PIN = ClusterPin(kubeconfig="/etc/clusters/prod-eu.yaml", context="prod-eu")
SETTINGS = CommandSettings(PIN, stale_after=300)
FLUX = {"controller": "Flux helm-controller", "kind": "HelmRelease", "name": "web", "namespace": "flux-system"}
PENDING_ROLLBACK = [
    (1, "superseded", "Install complete"),
    (2, "deployed", "Upgrade complete"),
    (3, "pending-rollback", "Rollback to 1"),
]
UNINSTALLING = [(1, "superseded", "Install complete"), (2, "uninstalling", "Deletion in progress")]

# The states hack/scenario makes, as their facts read.
STATES: dict[str, dict[str, t.Any]] = {
    "deployed": facts(DEPLOYED),
    "bloated": facts(DEPLOYED, risks={"history": {"count": 40, "threshold": 20, "total_bytes": 1000}}),
    "failed-upgrade": facts(FAILED_UPGRADE, closer="old"),
    "failed-upgrade, new revision runs": facts(FAILED_UPGRADE, closer="new"),
    "failed-install": facts([(1, "failed", 'Release "web" failed: timed out')]),
    "pending-install": facts([(1, "pending-install", "Initial install underway")], lock="stale"),
    "pending-install, running": facts([(1, "pending-install", "Initial install underway")], lock="possibly-running"),
    "pending-upgrade": facts(PENDING_UPGRADE, lock="stale", closer="old"),
    "pending-upgrade, new revision runs": facts(PENDING_UPGRADE, lock="stale", closer="new"),
    "pending-upgrade, running": facts(PENDING_UPGRADE, lock="possibly-running", closer="old"),
    "pending-rollback": facts(PENDING_ROLLBACK, lock="stale"),
    "pending-rollback, running": facts(PENDING_ROLLBACK, lock="possibly-running"),
    "uninstalling": facts(UNINSTALLING, lock="stale"),
    "uninstalling, running": facts(UNINSTALLING, lock="possibly-running"),
    "uninstalled": facts([(1, "uninstalled", "Uninstallation complete")]),
    "failed-upgrade, Flux": facts(FAILED_UPGRADE, closer="old", risks={"managed_by": FLUX}),
    "pending-upgrade, running, Flux": facts(PENDING_UPGRADE, lock="possibly-running", risks={"managed_by": FLUX}),
    "failed-upgrade, objects of another release": facts(
        FAILED_UPGRADE, live={"owned_by_other_release": [{"kind": "ConfigMap", "name": "c", "owner": "api"}]}
    ),
}
CHARTS = ({"chart": ""}, {"chart": "oci://charts/app", "chart_version": "1.2.3", "helm_timeout": "90s"})
POLICIES = [
    {**chart, "include_controller_managed": managed, "unlock_method": method, "force": force}
    for chart, managed, method, force in itertools.product(CHARTS, (False, True), UNLOCK_METHODS, (False, True))
]


def diagnosed(state: str, driver: str = "secret", written_by: str = "helm3") -> dict[str, t.Any]:
    release = {**STATES[state], "driver": driver, "written_by": written_by}
    release["diagnosis"] = diagnose(release, settings=SETTINGS).as_dict()
    return release


def _unpinned(command: str) -> list[str]:
    """A printed helm command as argv: without the driver setting and the cluster (the module hands Helm both
    in its environment)."""
    argv = shlex.split(command)
    if argv[0].startswith("HELM_DRIVER="):
        argv = argv[1:]
    for flag in ("--kubeconfig", "--kube-context"):
        index = argv.index(flag)
        del argv[index : index + 2]
    return argv


def _runs(plan: dict[str, t.Any], release: dict[str, t.Any], policy: dict[str, t.Any]) -> list[str] | str:
    """What the remediate role runs for the plan's first step: the module's argv for a Helm step (built as
    helm_release_recover builds it, with the role's defaults), else the module and its method."""
    name, namespace, action = release["name"], release["namespace"], plan["action"]
    major = 4 if release["written_by"] == "helm4" else 3  # the Helm that wrote it is the one run (helm_binary)
    flags = HelmFlags(wait=True, timeout=policy.get("helm_timeout") or FLAGS.timeout)
    if action == "rollback":
        return rollback_argv("helm", major, name, namespace, revision=plan["revision"], flags=flags)
    if action == "uninstall_no_hooks":
        return uninstall_argv("helm", major, name, namespace, no_hooks=True, keep_history=False, flags=flags)
    if action == "upgrade":
        values = f"{name}-r{release['latest_revision']}-values.yaml"
        return upgrade_argv(
            "helm",
            major,
            name,
            namespace,
            policy["chart"] or "<repo>/app",
            chart_version=policy.get("chart_version") or "0.1.0",
            values_source=ROLE_DEFAULTS["remediate_values_source"],
            values_files=[values],
            force=ROLE_DEFAULTS["remediate_force_replace"],
            flags=flags,
        )
    modules = {
        "unlock": "helm_release_unlock",
        "delete_revision": "helm_release_unlock method=delete_revision",
        "mark_deployed": "helm_release_unlock method=mark_deployed",
        "prune_history": "helm_history_prune",
        "map_apis": "helm_release_map_apis",
    }
    return modules.get(action, "")


@pytest.mark.parametrize("written_by", ["helm3", "helm4"])
@pytest.mark.parametrize("driver", ["secret", "configmap"])
@pytest.mark.parametrize(
    "policy", POLICIES, ids=lambda p: "-".join(str(v) for k, v in p.items() if k != "helm_timeout")
)
@pytest.mark.parametrize("state", list(STATES))
def test_triage_shows_the_step_remediate_runs(
    state: str, policy: dict[str, t.Any], driver: str, written_by: str
) -> None:
    release = diagnosed(state, driver, written_by)
    plan = remediation_plan(release, **policy)
    row = triage_row(release, **policy)
    assert (row["branch"], row["action"], row["command"], row["destructive"]) == (
        plan["branch"],
        plan["action"],
        plan["command"],
        plan["destructive"],
    )
    runs = _runs(plan, release, policy)
    if isinstance(runs, list):  # a Helm step: the same argv, apart from the connection
        command = plan["command"].split(" && ")[-1] if plan["action"] == "upgrade" else plan["command"]
        assert _unpinned(command) == runs
        assert command.startswith("HELM_DRIVER=configmap ") == (driver == "configmap")
    elif runs:  # a module step: that module with the release, its driver, the facts' lock options and cluster
        words = shlex.split(shlex.split(plan["command"])[-1])
        module, *method = runs.split()
        assert f"helmops.recovery.{module}" in plan["command"]
        assert {"release=web", "namespace=team-a", *method} <= set(words)
        assert ("driver=configmap" in words) == (driver == "configmap")
        assert {"kubeconfig=/etc/clusters/prod-eu.yaml", "context=prod-eu"} <= set(words)
        if module != "helm_history_prune":
            assert "stale_after=300" in words
            assert ("force=true" in words) == (policy["force"] and release["lock"]["verdict"] != "stale")


@pytest.mark.parametrize("state", [s for s in STATES if "running" in s and "Flux" not in s])
def test_force_is_the_trees_step_for_a_stale_lock(state: str) -> None:
    """force decides as if the lock were stale: the step the tree gives the same release with a stale lock."""
    release = diagnosed(state)
    stale = {**release, "lock": {**release["lock"], "verdict": "stale"}}
    stale["diagnosis"] = diagnose(stale, settings=SETTINGS).as_dict()
    forced, decided = remediation_plan(release, force=True), remediation_plan(stale)
    assert (forced["branch"], forced["action"], forced.get("revision")) == (
        decided["branch"],
        decided["action"],
        decided.get("revision"),
    )
    assert remediation_plan(release)["action"] == "wait"


def test_a_stale_pending_upgrade_forced_rolls_back_as_the_tree_says() -> None:
    """The divergence this replaced: a forced run unlocked, where the tree (and a stale verdict) rolls back."""
    plan = remediation_plan(diagnosed("pending-upgrade, running"), force=True)
    assert (plan["action"], plan["revision"]) == ("rollback", 1)


def test_a_controller_managed_release_is_left_to_its_controller_in_triage_as_in_remediate() -> None:
    release = diagnosed("failed-upgrade, Flux")
    row, plan = triage_row(release), remediation_plan(release)
    assert (
        (row["branch"], row["action"])
        == (plan["branch"], plan["action"])
        == (
            "controller_managed",
            "leave_to_controller",
        )
    )
    assert shlex.split(row["command"]) == [
        "kubectl",
        "patch",
        "helmreleases.helm.toolkit.fluxcd.io",
        "web",
        "--type",
        "merge",
        "--patch",
        '{"spec":{"suspend":true}}',
        "--namespace",
        "flux-system",
        "--kubeconfig",
        "/etc/clusters/prod-eu.yaml",
        "--context",
        "prod-eu",
    ]
    included = remediation_plan(release, include_controller_managed=True)
    assert (included["branch"], included["action"]) == ("failed", "rollback")
    assert remediation_plan(diagnosed("deployed"))["action"] == "none"  # nothing to do: nothing to suspend


def test_two_clusters_get_two_commands() -> None:
    """The same release on two inventory hosts: each command names its own cluster."""
    release = STATES["failed-upgrade"]
    commands = {
        diagnose(release, settings=CommandSettings(ClusterPin(kubeconfig=path))).actions[0].command
        for path in ("/k/eu.yaml", "/k/us.yaml")
    }
    assert len(commands) == 2 and all("--kubeconfig /k/" in command for command in commands)


@pytest.mark.parametrize(
    ("params", "helm", "module"),
    [
        (
            {"kubeconfig": "/k/a b.yaml", "context": "prod"},
            ["--kubeconfig", "/k/a b.yaml", "--kube-context", "prod"],
            ['kubeconfig="/k/a b.yaml"', "context=prod"],
        ),
        (
            {"kubeconfig": {"clusters": []}},
            ["--kubeconfig", "<the kubeconfig given inline>"],
            ['kubeconfig="<the kubeconfig given inline>"'],
        ),
        (
            {"host": "https://10.0.0.1:6443"},
            ["--kube-apiserver", "https://10.0.0.1:6443"],
            ["host=https://10.0.0.1:6443"],
        ),
        (  # the client takes host over the kubeconfig's server: so does the command
            {"kubeconfig": "/k/a.yaml", "host": "https://10.0.0.2:6443"},
            ["--kubeconfig", "/k/a.yaml", "--kube-apiserver", "https://10.0.0.2:6443"],
            ["kubeconfig=/k/a.yaml", "host=https://10.0.0.2:6443"],
        ),
    ],
    ids=["file and context", "inline", "host", "file and host"],
)
def test_the_cluster_pin_of_each_way_to_connect(params: dict[str, t.Any], helm: list[str], module: list[str]) -> None:
    pin = ClusterPin.from_params(params)
    assert pin.helm_args() == helm
    command = diagnose(STATES["pending-upgrade"], settings=CommandSettings(pin)).actions[1].command  # the unlock
    assert all(word in command for word in module), command


def test_the_default_kubeconfig_is_pinned_by_its_current_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "staging", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "staging",
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    from kubernetes.config import kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    # The file too: context names (kubernetes-admin@kubernetes, default) are alike on every cluster.
    pinned = ["--kubeconfig", str(path), "--kube-context", "staging"]
    assert ClusterPin.from_params({}, default_kubeconfig).helm_args() == pinned
    assert ClusterPin.from_params({"context": "prod"}, default_kubeconfig).helm_args()[-2:] == [
        "--kube-context",
        "prod",
    ]
    monkeypatch.setenv("KUBECONFIG", f"{path}{os.pathsep}{path}")  # a list: no one file to name
    assert ClusterPin.from_params({}, default_kubeconfig).helm_args() == ["--kube-context", "staging"]
    # In a pod (no kubeconfig): a placeholder, never the shell's default cluster.
    assert ClusterPin.from_params({}, lambda: ("", "")).helm_args() == [
        "--kubeconfig",
        "<the in-cluster service account>",
    ]


@pytest.mark.parametrize(
    ("history", "never_deployed"),
    [
        ([(1, "uninstalling", "Deletion in progress")], False),  # Helm uninstalls the deployed record in place
        ([(1, "uninstalled", "Uninstallation complete")], False),
        ([(1, "failed", "Release failed")], True),
        ([(1, "pending-install", "Initial install underway")], True),
    ],
)
def test_never_deployed_only_where_no_deploy_completed(
    history: list[tuple[int, str, str]], never_deployed: bool
) -> None:
    codes = {f.code for f in diagnose(facts(history, lock="stale")).findings}
    assert ("never-deployed" in codes) == never_deployed


def test_a_record_near_the_size_limit_gets_the_prune_command() -> None:
    """The plan's bloated_history branch prunes; the step triage shows has its command (it said "none" with an
    empty command)."""
    release = facts(DEPLOYED, risks={"large_records": [{"revision": 2, "bytes": 1000000}]})
    release["diagnosis"] = diagnose(release).as_dict()
    row = triage_row(release)
    assert (row["branch"], row["action"]) == ("bloated_history", "prune_history")
    assert "helmops.recovery.helm_history_prune" in row["command"], row


def test_the_summary_counts_the_newest_revisions_objects_when_none_was_deployed() -> None:
    release = facts(UNINSTALLING, lock="stale")
    release["live"].update(
        deployed_total=0,
        objects=[
            {"kind": "Deployment", "name": "web", "latest": "present"},
            {"kind": "Service", "name": "web", "latest": "missing"},
        ],
    )
    release["diagnosis"] = diagnose(release).as_dict()
    assert "1/2 objects of the newest revision present" in triage_row(release)["cluster_shows"]


def test_an_explicit_zero_stale_after_is_carried() -> None:
    """stale_after 0 (every pending record stale at once) is the user's choice, not "unset"."""
    settings = CommandSettings.from_params({"stale_after": 0, "client_timeout": 900, "kubeconfig": "/k"})
    command = diagnose(STATES["pending-upgrade"], settings=settings).actions[1].command
    assert "stale_after=0" in command


def test_force_with_include_controller_managed_takes_the_stale_step() -> None:
    """Both opt-ins: the controller's step is skipped, and the wait is decided as if the lock were stale."""
    release = diagnosed("pending-upgrade, running, Flux")
    plan = remediation_plan(release, include_controller_managed=True, force=True)
    assert (plan["branch"], plan["action"]) == ("pending_upgrade", "rollback")
    assert remediation_plan(release, force=True)["branch"] == "controller_managed"


def test_a_step_that_replaces_stuck_pods_is_refused_without_the_opt_in() -> None:
    """helm_release_recover refuses it without replace_stuck_pods; triage says so instead of showing it as runnable."""
    release = {
        **STATES["failed-upgrade"],
        "live": {
            **STATES["failed-upgrade"]["live"],
            "stuck_pods": [{"statefulset": "web-db", "pod": "web-db-0", "revision": "web-db-5c"}],
        },
    }
    release["diagnosis"] = diagnose(release).as_dict()
    refused, allowed = triage_row(release), triage_row(release, replace_stuck_pods=True)
    assert refused["action"] == allowed["action"] == "rollback"
    assert "replace_stuck_pods" in refused["refusal"] and allowed["refusal"] == ""


@pytest.mark.parametrize(("age", "outlived"), [(2000, True), (500, False)], ids=["past the bound", "within it"])
def test_a_hook_no_client_waits_on_gets_its_steps(age: int, outlived: bool) -> None:
    """An uninstall stuck behind a pre-delete hook Job that will never finish: past the client bound the tree says
    so, offers the hook-level step (destructive) and says what force takes; within it, only the wait."""
    release = facts(UNINSTALLING, lock="possibly-running")
    release["lock"].update(age_seconds=age, client_bound=960)
    release["risks"]["hooks"] = [
        {"kind": "Job", "name": "web-cleanup", "events": ["pre-delete"], "live_phase": "Running"}
    ]
    diagnosis = diagnose(release, settings=SETTINGS)
    names = [a.name for a in diagnosis.actions]
    codes = {f.code for f in diagnosis.findings}
    assert names[0] == "wait"
    assert ("delete_hook" in names) == outlived and ("hook-outlived-client" in codes) == outlived
    if outlived:
        hook = diagnosis.actions[1]
        assert hook.destructive and shlex.split(hook.command)[:4] == ["kubectl", "delete", "job", "web-cleanup"]
        assert "kubectl logs job/web-cleanup" in hook.why
        finding = next(f for f in diagnosis.findings if f.code == "hook-outlived-client")
        assert "allow_destructive" in finding.advice and "uninstall_no_hooks" in finding.advice
    release["diagnosis"] = diagnosis.as_dict()
    assert remediation_plan(release)["action"] == "wait"
    assert remediation_plan(release, force=True)["action"] == "uninstall_no_hooks"
