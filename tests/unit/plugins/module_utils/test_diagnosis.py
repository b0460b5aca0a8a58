"""The decision tree, table-driven over states and evidence."""

from __future__ import annotations

import dataclasses
import typing as t

import pytest
from ansible_collections.helmops.recovery.plugins.filter.recovery import remediation_plan
from ansible_collections.helmops.recovery.plugins.module_utils._diagnosis import (
    ACTION_NAMES,
    DESTRUCTIVE_ACTIONS,
    UserContext,
    diagnose,
    diagnose_error,
    recognise_errors,
)
from tree_facts import DEPLOYED, FAILED_UPGRADE, PENDING_UPGRADE, Rev, facts

TREE = [
    # (case, facts, first action, its target revision or None, summary fragment)
    ("deployed", facts(DEPLOYED), "none", None, "is deployed"),
    ("failed, cluster on the old revision", facts(FAILED_UPGRADE, closer="old"), "rollback", 1, "roll back to it"),
    (
        "failed, cluster on the new revision, ready",
        facts(FAILED_UPGRADE, closer="new"),
        "upgrade",
        None,
        "converge forward",
    ),
    (
        "failed, cluster on the new revision, not ready",
        facts(FAILED_UPGRADE, closer="new", ready=False),
        "rollback",
        1,
        "roll back",
    ),
    (
        "failed first install",
        facts([(1, "failed", 'Release "web" failed: timed out')]),
        "upgrade",
        None,
        "never deployed",
    ),
    (
        "rollback target is the last known-good, not the previous",
        facts([(1, "deployed", "Install complete"), (2, "failed", "x"), (3, "failed", "y")]),
        "rollback",
        1,
        "revision 1",
    ),
    (
        "pending-upgrade, operation may be running",
        facts(PENDING_UPGRADE, lock="possibly-running"),
        "wait",
        None,
        "may still be running",
    ),
    (
        "pending-upgrade, stale, cluster runs the new revision",
        facts(PENDING_UPGRADE, lock="stale", closer="new"),
        "unlock",
        None,
        "unlock it",
    ),
    (
        "pending-upgrade, stale, new revision not ready",
        facts(PENDING_UPGRADE, lock="stale", closer="new", ready=False),
        "rollback",
        1,
        "Roll back to revision 1",
    ),
    (
        "pending-upgrade, stale, nothing applied",
        facts(PENDING_UPGRADE, lock="stale", closer="same"),
        "rollback",
        1,
        "Roll back",
    ),
    (
        "pending-install, stale",
        facts([(1, "pending-install", "Initial install underway")], lock="stale"),
        "unlock",
        None,
        "first install never finished",
    ),
    (
        "pending-install, running",
        facts([(1, "pending-install", "Initial install underway")], lock="possibly-running"),
        "wait",
        None,
        "may still be running",
    ),
    (
        "pending-rollback to a good revision",
        facts(
            [
                (1, "superseded", "Install complete"),
                (2, "deployed", "Upgrade complete"),
                (3, "pending-rollback", "Rollback to 1"),
            ],
            lock="stale",
        ),
        "rollback",
        1,
        "aimed at revision 1",
    ),
    (
        "pending-rollback to a failed revision goes to the known-good one",
        facts(
            [
                (1, "superseded", "a"),
                (2, "failed", "b"),
                (3, "deployed", "c"),
                (4, "pending-rollback", "Rollback to 2"),
            ],
            lock="stale",
        ),
        "rollback",
        3,
        "revision 3",
    ),
    (
        "uninstalling, hook running",
        facts([(1, "uninstalling", "Deletion in progress (or silently failed)")], lock="possibly-running"),
        "wait",
        None,
        "may still be running",
    ),
    (
        "uninstalling, stuck",
        facts([(1, "uninstalling", "Deletion in progress (or silently failed)")], lock="stale"),
        "uninstall_no_hooks",
        None,
        "without hooks",
    ),
    ("uninstalled with history", facts([(1, "uninstalled", "Uninstallation complete")]), "none", None, "uninstalled"),
    ("unknown status", facts([(1, "exploded", "?")]), "escalate", None, "does not define"),
]


@pytest.mark.parametrize(("case", "release", "first", "target", "summary"), TREE, ids=[c[0] for c in TREE])
def test_decision_tree_first_action(
    case: str, release: dict[str, t.Any], first: str, target: int | None, summary: str
) -> None:
    diagnosis = diagnose(release)
    action = diagnosis.actions[0]
    assert action.name == first
    assert summary in diagnosis.summary
    if target is not None:
        assert f"helm rollback web {target} " in action.command
    assert diagnosis.state == release["status"]


def test_as_dict_is_every_field_as_dataclasses_gives_it() -> None:
    context = UserContext(error="Error: UPGRADE FAILED: another operation is in progress")
    diagnoses = [diagnose(release, context) for _case, release, *_rest in TREE]
    for diagnosis in diagnoses:
        assert diagnosis.actions
        expected = dataclasses.asdict(diagnosis)
        if expected["if_stale"] is None:
            del expected["if_stale"]  # only a locked release whose lock is not stale has them
        assert diagnosis.as_dict() == expected
    assert any(finding.evidence for diagnosis in diagnoses for finding in diagnosis.findings)


@pytest.mark.parametrize(("case", "release", "first", "target", "summary"), TREE, ids=[c[0] for c in TREE])
def test_actions_are_named_flagged_and_safest_first(
    case: str, release: dict[str, t.Any], first: str, target: int | None, summary: str
) -> None:
    actions = diagnose(release).actions
    assert all(a.name in ACTION_NAMES for a in actions)
    assert all(a.destructive == (a.name in DESTRUCTIVE_ACTIONS) for a in actions)
    assert all(a.command and a.why for a in actions)
    destructive = [a.destructive for a in actions if a.name != "escalate"]
    assert destructive == sorted(destructive), "non-destructive actions come before destructive ones"


def test_pending_lock_verdict_possibly_running_never_offers_a_write() -> None:
    actions = diagnose(facts(PENDING_UPGRADE, lock="possibly-running")).actions
    assert [a.name for a in actions] == ["wait"]


PVC = {"kind": "PersistentVolumeClaim", "namespace": "team-a", "name": "web-data", "data": "a claim"}
CONFIG = {"kind": "ConfigMap", "namespace": "team-a", "name": "web-config", "data": None}


def deletion_set(objects: list[dict[str, t.Any]] | None, **extra: t.Any) -> dict[str, t.Any]:
    loses = None if objects is None else any(o["data"] for o in objects)
    return {"revision": 2, "objects": objects, "data_loss": loses, "unknown": None, **extra}


DELETIONS = [
    # (case, history, risks.deletions, action, (expected deletes, expected data_loss))
    (
        "uninstall deletes a claim the failed revision added",
        [(1, "failed", "x")],
        {"uninstall": deletion_set([PVC, CONFIG])},
        "reinstall",
        ([PVC, CONFIG], True),
    ),
    (
        "rollback deletes the claim the failed upgrade added",
        FAILED_UPGRADE,
        {"uninstall": deletion_set([PVC]), "rollback": deletion_set([PVC], target=1)},
        "rollback",
        ([PVC], True),
    ),
    (
        "rollback that deletes only a ConfigMap loses no data",
        FAILED_UPGRADE,
        {"uninstall": deletion_set([CONFIG]), "rollback": deletion_set([CONFIG], target=1)},
        "rollback",
        ([CONFIG], False),
    ),
    (
        "a rollback computed for another revision is unknown",
        FAILED_UPGRADE,
        {"uninstall": deletion_set([]), "rollback": deletion_set([], target=7)},
        "rollback",
        (None, None),
    ),
    (
        "an unreadable manifest makes the rollback's deletions unknown",
        FAILED_UPGRADE,
        {"uninstall": deletion_set(None), "rollback": deletion_set(None, target=1)},
        "rollback",
        (None, None),
    ),
    (
        "an upgrade's deletions depend on the chart",
        FAILED_UPGRADE,
        {"uninstall": deletion_set([])},
        "upgrade",
        (None, None),
    ),
    ("a brief entry read no manifest", FAILED_UPGRADE, None, "rollback", (None, None)),
    ("an unlock deletes nothing", PENDING_UPGRADE, {"uninstall": deletion_set([PVC])}, "unlock", ([], False)),
]


@pytest.mark.parametrize(("case", "history", "deletions", "name", "expected"), DELETIONS, ids=[d[0] for d in DELETIONS])
def test_each_action_says_what_helm_would_delete(
    case: str, history: list[Rev], deletions: dict[str, t.Any] | None, name: str, expected: tuple[t.Any, t.Any]
) -> None:
    deletes, data_loss = expected
    release = facts(history, lock="stale", risks={"deletions": deletions})
    action = next(a for a in diagnose(release).as_dict()["actions"] if a["name"] == name)
    assert (action["deletes"], action["data_loss"]) == (deletes, data_loss), case
    assert ("DATA LOSS" in action["why"]) is bool(data_loss)
    if data_loss is None and name != "upgrade":
        assert action["deletes_unknown"] and "allow_data_loss" in action["why"]


def test_long_history_adds_pruning_and_a_preventive_finding() -> None:
    release = facts([(n, "superseded", "u") for n in range(1, 30)] + [(30, "deployed", "u")])
    diagnosis = diagnose(release)
    assert [a.name for a in diagnosis.actions] == ["none", "prune_history"]
    assert "history-too-long" in {f.code for f in diagnosis.findings}


OWNED = {"owned_by_other_release": [{"kind": "ConfigMap", "name": "db-config", "owner": "data/db-replica"}]}
ORPHAN_CLAIM = {"orphans": [{"kind": "PersistentVolumeClaim", "name": "web-old-data"}]}
ALL_GONE = {"deployed_missing": ["ConfigMap a", "Service b", "Deployment c"], "deployed_total": 3}
UNINSTALLING = [(1, "deployed", "Install complete"), (2, "uninstalling", "Deletion in progress")]
ESCALATIONS = [
    # (case, history, lock, live, the actions in order, what the escalation names)
    (
        "an orphaned claim: after the steps",
        FAILED_UPGRADE,
        None,
        ORPHAN_CLAIM,
        ["rollback", "upgrade", "reinstall", "escalate"],
        "web-old-data",
    ),
    (
        "another release's object: before the rollback",
        FAILED_UPGRADE,
        None,
        OWNED,
        ["escalate", "rollback", "upgrade", "reinstall"],
        "multi-release",
    ),
    (
        "every object gone: before the rollback",
        FAILED_UPGRADE,
        None,
        ALL_GONE,
        ["escalate", "rollback", "upgrade", "reinstall"],
        "manual reconstruction",
    ),
    (
        "another release's object: before the uninstall",
        UNINSTALLING,
        "stale",
        OWNED,
        ["escalate", "uninstall_no_hooks"],
        "data/db-replica",
    ),
    (
        "another release's object, a client may be running: before the wait",
        PENDING_UPGRADE,
        "possibly-running",
        OWNED,
        ["escalate", "wait"],
        "db-config",
    ),
    (
        "another release's object of a healthy release: nothing to act on",
        DEPLOYED,
        None,
        OWNED,
        ["none", "escalate"],
        "multi-release",
    ),
]


@pytest.mark.parametrize(
    ("history", "lock", "live", "names", "named"), [c[1:] for c in ESCALATIONS], ids=[c[0] for c in ESCALATIONS]
)
def test_an_escalation_comes_before_any_step_that_would_act_on_what_is_not_the_releases(
    history: list[tuple[int, str, str]], lock: str | None, live: dict[str, t.Any], names: list[str], named: str
) -> None:
    """Helm's rollback, upgrade and uninstall change or delete the manifest's objects whoever owns them: another
    release's object (or a target none of whose objects is left) puts escalate first, so the plan escalates."""
    release = facts(history, lock=lock, live=live) if lock else facts(history, live=live)
    actions = diagnose(release).actions
    assert [a.name for a in actions][: len(names)] == names
    assert named in next(a for a in actions if a.name == "escalate").why


def test_atomic_upgrade_whose_rollback_failed() -> None:
    release = facts([(1, "deployed", "a"), (2, "failed", "b"), (3, "pending-rollback", "Rollback to 1")], lock="stale")
    diagnosis = diagnose(release, UserContext(operation="upgrade", atomic=True))
    assert "atomic-rollback-failed" in {f.code for f in diagnosis.findings}


def test_managed_release_is_flagged() -> None:
    release = facts(
        DEPLOYED,
        risks={
            "managed_by": {
                "controller": "Flux helm-controller",
                "kind": "HelmRelease",
                "name": "web",
                "namespace": "flux-system",
            }
        },
    )
    assert "controller-managed" in {f.code for f in diagnose(release).findings}


FORWARD_COMMANDS = [
    # (written by, driver, what the printed forward step starts with)
    (
        "helm3",
        "secret",
        "helm get values web --revision 2 --output yaml --namespace team-a > web-r2-values.yaml && helm upgrade",
    ),
    (
        "helm4",
        "secret",
        "helm get values web --revision 2 --output yaml --namespace team-a > web-r2-values.yaml && helm upgrade",
    ),
    ("helm4", "configmap", "HELM_DRIVER=configmap helm get values web --revision 2"),
]


@pytest.mark.parametrize(("written_by", "driver", "start"), FORWARD_COMMANDS)
def test_the_forward_step_applies_what_the_failed_revision_meant_without_force(
    written_by: str, driver: str, start: str
) -> None:
    """helm_release_recover's values_source newest, as a person would paste it: the failed revision's values
    on the chart's own defaults, never --force / --force-replace (Kubernetes refuses to replace bound claims)."""
    release = facts(FAILED_UPGRADE, closer="new")
    release.update(written_by=written_by, driver=driver)
    command = diagnose(release).actions[0].command
    assert command.startswith(start)
    # helm_release_recover's argv (_helm_cli.upgrade_argv), its default timeout included; Helm 4's waiter is
    # asked for by name (HelmFlags.args)
    wait = "--wait=legacy" if written_by == "helm4" else "--wait"
    assert f"--hide-notes --version 0.1.0 --reset-values --values web-r2-values.yaml {wait} --timeout 5m" in command
    assert "--force" not in command and "--reuse-values" not in command
    if driver == "configmap":
        assert "&& HELM_DRIVER=configmap helm upgrade" in command


# Messages as real Helm 3 / Helm 4 print them (several captured from hack/scenario runs).
KNOWN_MESSAGES = [
    (
        "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress",
        "another-operation-in-progress",
    ),
    ('Error: UPGRADE FAILED: "web" has no deployed releases', "no-deployed-releases"),
    (
        'Error: UPGRADE FAILED: resource mapping not found for name: "r-widget" namespace: "" from "": no matches for '
        'kind "Widget" in version "example.helmops.test/v1"\nensure CRDs are installed first',
        "missing-crd",
    ),
    (
        'Error: INSTALLATION FAILED: Unable to continue with install: Service "web" in namespace "a" exists and cannot '
        "be imported into the current release: invalid ownership metadata; label validation error",
        "ownership-conflict",
    ),
    (
        'Error: UPGRADE FAILED: cannot patch "web" with kind Deployment: Deployment.apps "web" is invalid: '
        "spec.selector: Invalid value: ...: field is immutable",
        "immutable-field",
    ),
    (
        'Error: UPGRADE FAILED: create: failed to create: Secret "sh.helm.release.v1.web.v9" is invalid: data: Too '
        "long: must have at most 1048576 bytes",
        "record-too-large",
    ),
    (
        'Error: INSTALLATION FAILED: Internal error occurred: failed calling webhook "validate.example.com": '
        'Post "https://wh.svc:443/validate?timeout=10s": context deadline exceeded',
        "webhook-failure",
    ),
    (
        "Error: UPGRADE FAILED: release r failed, and has been rolled back due to atomic being set: timed out waiting "
        "for the condition",
        "atomic-rolled-back",
    ),
    (
        "Error: UPGRADE FAILED: release r failed, and has been rolled back due to rollback-on-failure being set: "
        "resource Deployment/ns/r-web not ready. status: InProgress\ncontext deadline exceeded",
        "atomic-rolled-back",
    ),
    (
        "Error: UPGRADE FAILED: pre-upgrade hooks failed: 1 error occurred:\n\t* job r-pre-upgrade failed: "
        "BackoffLimitExceeded",
        "hook-failed",
    ),
    ("Error: INSTALLATION FAILED: timed out waiting for the condition", "timeout"),
    ('Upgrade "web" failed: context deadline exceeded', "timeout"),
    (
        "Error: UPGRADE FAILED: an error occurred while rolling back the release. original upgrade error: context "
        "deadline exceeded: 1 error occurred:\n\t* job ar-pre-rollback failed: BackoffLimitExceeded",
        "atomic-rollback-failed",
    ),
    (
        "Error: UPGRADE FAILED: an error occurred while rolling back the release. original upgrade error: resource "
        "Deployment/ar4b/ar-web not ready. status: InProgress, message: Pending termination: 1\ncontext deadline "
        "exceeded: resource Job/ar4b/ar-pre-rollback not ready. status: Failed, message: Job Failed. failed: 1/1",
        "atomic-rollback-failed",
    ),
]


@pytest.mark.parametrize(
    ("message", "code"), KNOWN_MESSAGES, ids=[f"{c}-{i}" for i, (_m, c) in enumerate(KNOWN_MESSAGES)]
)
def test_known_helm_messages_become_findings(message: str, code: str) -> None:
    findings = recognise_errors([("error text given", message)])
    assert code in {f.code for f in findings}
    finding = next(f for f in findings if f.code == code)
    assert finding.advice or finding.code == "timeout"
    assert finding.evidence[0].startswith("error text given: ")


def test_user_error_text_reaches_the_diagnosis() -> None:
    message = KNOWN_MESSAGES[2][0]
    diagnosis = diagnose(facts(DEPLOYED), UserContext(error=message, operation="upgrade"))
    assert "missing-crd" in {f.code for f in diagnosis.findings}
    assert "CRD is missing" in diagnosis.summary


def test_failed_revision_descriptions_are_read() -> None:
    diagnosis = diagnose(facts(FAILED_UPGRADE))
    assert "timeout" in {f.code for f in diagnosis.findings}


def test_unrelated_text_gives_no_finding() -> None:
    assert recognise_errors([("log", "Release web upgraded successfully. Happy Helming!")]) == []


def test_cleanup_on_fail_is_explained() -> None:
    diagnosis = diagnose(facts(FAILED_UPGRADE), UserContext(cleanup_on_fail=True))
    assert "cleaned-up-on-fail" in {f.code for f in diagnosis.findings}
    assert diagnosis.actions[0].name == "rollback"


def test_deployed_without_wait_but_not_ready() -> None:
    release = facts(DEPLOYED, ready=False)
    assert "deployed-without-wait" in {f.code for f in diagnose(release, UserContext(wait=False)).findings}
    assert "deployed-without-wait" not in {f.code for f in diagnose(release, UserContext(wait=True)).findings}
    assert "deployed-without-wait" not in {f.code for f in diagnose(facts(DEPLOYED), UserContext(wait=False)).findings}


def test_timeout_flag_is_added_to_the_timeout_evidence() -> None:
    diagnosis = diagnose(facts(FAILED_UPGRADE), UserContext(timeout="5m"))
    timeout = next(f for f in diagnosis.findings if f.code == "timeout")
    assert "the operation ran with --timeout 5m" in timeout.evidence


HOSTILE_CHARTS = ["app$(touch${IFS}PWNED)", "app`touch PWNED`", "app;touch PWNED", "app' ; touch PWNED; '"]


@pytest.mark.parametrize("chart", HOSTILE_CHARTS)
def test_printed_commands_run_nothing_but_the_tool_when_pasted(chart: str, tmp_path: t.Any) -> None:
    """A chart name from a record is data: every command of every branch, pasted into a shell
    (helm, kubectl and ansible stubbed), creates no file."""
    import subprocess

    histories = [
        FAILED_UPGRADE,
        PENDING_UPGRADE,
        [(1, "failed", "x")],
        [(1, "deployed", "x"), (2, "uninstalling", "x")],
    ]
    commands: list[str] = []
    for history in histories:
        release = facts(history, lock="stale")
        for entry in release["revisions"]:
            entry["chart"], entry["chart_version"] = chart, f"1.0.0;touch PWNED-{len(commands)}"
        commands += [action.command for action in diagnose(release).actions]
    stubs = "helm() { :; }; kubectl() { :; }; ansible() { :; };"
    for command in commands:
        subprocess.run(["bash", "-c", f"{stubs} {command}"], cwd=tmp_path, check=True, capture_output=True)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("PWNED")], commands


HOOK_PHASES = [
    # (case, phase the record kept, phase in the cluster, finding code, message ending)
    ("Helm died while the hook ran; it succeeded since", "Running", "Succeeded", None, None),
    ("still running in the cluster", "Running", "Running", "hook-running", "is Running in the cluster."),
    ("failed in the cluster", "Running", "Failed", "hook-failed", "is Failed in the cluster."),
    ("the hook Job is gone: the record is all there is", "Failed", "absent", "hook-failed", "(as recorded)."),
    ("not read (inspect_live false)", "Running", None, "hook-running", "(as recorded)."),
]


@pytest.mark.parametrize(
    ("recorded", "live", "code", "ending"), [c[1:] for c in HOOK_PHASES], ids=[c[0] for c in HOOK_PHASES]
)
def test_hook_findings_follow_the_cluster(
    recorded: str, live: str | None, code: str | None, ending: str | None
) -> None:
    release = facts(FAILED_UPGRADE)
    hook = {"name": "web-migrate", "kind": "Job", "events": ["pre-upgrade"], "last_run_phase": recorded}
    if live is not None:
        hook["live_phase"] = live
    release["risks"] = {"hooks": [hook]}
    found = [f for f in diagnose(release).findings if f.code.startswith("hook-")]
    if code is None:
        assert found == []
    else:
        assert [f.code for f in found] == [code] and found[0].message.endswith(str(ending))


def test_a_hook_failure_helm_printed_and_the_cluster_shows_is_one_finding() -> None:
    release = facts(FAILED_UPGRADE)
    release["risks"] = {
        "hooks": [{"name": "web-migrate", "kind": "Job", "events": ["pre-upgrade"], "live_phase": "Failed"}]
    }
    context = UserContext(error="Error: UPGRADE FAILED: pre-upgrade hooks failed: job web-migrate failed")
    assert [f.code for f in diagnose(release, context).findings].count("hook-failed") == 1


def test_a_statefulset_stuck_on_a_never_ready_pod_is_named_with_the_step() -> None:
    release = facts(FAILED_UPGRADE)
    release["live"] = {"stuck_pods": [{"statefulset": "web-db", "pod": "web-db-0", "revision": "web-db-5c"}]}
    diagnosis = diagnose(release)
    stuck = next(f for f in diagnosis.findings if f.code == "statefulset-stuck")
    assert stuck.evidence == ["StatefulSet web-db: pod web-db-0 (revision web-db-5c) is not ready"]
    rollback = next(a for a in diagnosis.actions if a.name == "rollback")
    assert rollback.command == (
        "helm rollback web 1 --namespace team-a --timeout 5m && kubectl delete pod web-db-0 --namespace team-a && "
        "kubectl rollout status statefulset/web-db --timeout 5m --namespace team-a"
    )


@pytest.mark.parametrize(
    ("history", "lock", "status"),
    [(PENDING_UPGRADE, "possibly-running", "pending-upgrade"), (UNINSTALLING, "possibly-running", "uninstalling")],
    ids=["pending-upgrade", "uninstalling"],
)
def test_force_never_acts_on_another_releases_objects(
    history: list[tuple[int, str, str]], lock: str, status: str
) -> None:
    """force replaces a wait with the stale tree's step (the rollback to the known-good revision, uninstall without
    hooks); with an object another release owns, the plan escalates all the same."""
    release = facts(history, lock=lock, live=OWNED)
    release["diagnosis"] = diagnose(release).as_dict()
    for force in (False, True):
        plan = remediation_plan(release, chart="oci://charts/app", force=force)
        assert (plan["branch"], plan["action"], plan["then_upgrade"]) == ("escalate", "escalate", False), (force, plan)
    plain = facts(history, lock=lock)
    plain["diagnosis"] = diagnose(plain).as_dict()
    forced = remediation_plan(plain, chart="oci://charts/app", force=True)["action"]
    assert forced == ("rollback" if status == "pending-upgrade" else "uninstall_no_hooks")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            "Error: INSTALLATION FAILED: unable to build kubernetes objects from release manifest: resource mapping "
            'not found for name: "w" namespace: "" from "": no matches for kind "Widget" in version '
            '"example.com/v1"\nensure CRDs are installed first',
            "(missing-crd: ",
        ),
        ("Error: INSTALLATION FAILED: something nobody has seen", "Helm said: Error: INSTALLATION FAILED: something"),
        ("", ""),
    ],
    ids=["known", "unknown", "none"],
)
def test_an_error_of_an_operation_that_left_no_record_is_diagnosed_on_its_own(error: str, expected: str) -> None:
    said = diagnose_error(UserContext(error=error, operation="install"), "web")
    assert expected in said if expected else said == ""
    if said:
        assert said.startswith("no record of release 'web': the install failed before Helm stored one")
        assert "Next step: " in said
