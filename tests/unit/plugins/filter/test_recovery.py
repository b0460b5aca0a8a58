"""The remediate role's branch choice and the triage row, table-driven."""

from __future__ import annotations

import shlex
import typing as t

import pytest
from ansible.errors import AnsibleFilterError
from ansible.parsing.splitter import parse_kv
from ansible_collections.helmops.recovery.plugins.filter.recovery import (
    at_rest,
    backup_files,
    chart_for,
    mapped_action,
    outcome_line,
    remediation_plan,
    restore_command,
    triage_row,
)


def facts(
    status: str,
    first: str,
    *,
    verdict: str = "none",
    revision: int | None = None,
    findings: t.Sequence[str] = (),
    managed_by: dict[str, str] | None = None,
) -> dict[str, t.Any]:
    action: dict[str, t.Any] = {"name": first, "command": f"cmd-{first}", "destructive": False, "why": f"why-{first}"}
    if revision is not None:
        action["revision"] = revision
    return {
        "name": "web",
        "namespace": "team-a",
        "status": status,
        "latest_revision": 3,
        "last_known_good_revision": 2,
        "upgrade_blocked": status.startswith("pending"),
        "lock": {"verdict": verdict},
        "risks": {"managed_by": managed_by},
        "live": {
            "checked": True,
            "closer_to": "old",
            "deployed_total": 3,
            "deployed_missing": [],
            "workloads_ready": True,
        },
        "diagnosis": {
            "state": status,
            "summary": "s",
            "findings": [{"code": code} for code in findings],
            "actions": [action],
        },
    }


FLUX = {"controller": "Flux helm-controller", "kind": "HelmRelease", "name": "web", "namespace": "flux"}

# (facts, chart, include_controller_managed, unlock_method) -> (branch, action, promise, then_upgrade, refused)
CASES = [
    ("deployed", facts("deployed", "none"), None, False, "mark_failed", ("deployed", "none", "deployed", False, False)),
    (
        "bloated",
        facts("deployed", "none", findings=["history-too-long"]),
        None,
        False,
        "mark_failed",
        ("bloated_history", "prune_history", "deployed", False, False),
    ),
    (
        "near-limit",
        facts("deployed", "none", findings=["record-near-size-limit"]),
        None,
        False,
        "mark_failed",
        ("bloated_history", "prune_history", "deployed", False, False),
    ),
    (
        "failed-rollback",
        facts("failed", "rollback", revision=2),
        None,
        False,
        "mark_failed",
        ("failed", "rollback", "deployed", False, False),
    ),
    (
        "failed-forward-no-chart",
        facts("failed", "upgrade"),
        None,
        False,
        "mark_failed",
        ("failed", "upgrade", "deployed", False, True),
    ),
    (
        "failed-forward",
        facts("failed", "upgrade"),
        "./chart",
        False,
        "mark_failed",
        ("failed", "upgrade", "deployed", False, False),
    ),
    (
        "pending-install-unlock",
        facts("pending-install", "unlock", verdict="stale"),
        None,
        False,
        "mark_failed",
        ("pending_install", "unlock", "unblocked", False, False),
    ),
    (
        "pending-install-unlock-then-upgrade",
        facts("pending-install", "unlock", verdict="stale"),
        "./chart",
        False,
        "mark_failed",
        ("pending_install", "unlock", "deployed", True, False),
    ),
    (
        "pending-upgrade-delete",
        facts("pending-upgrade", "unlock", verdict="stale"),
        None,
        False,
        "delete_revision",
        ("pending_upgrade", "delete_revision", "unblocked", False, False),
    ),
    (
        "pending-upgrade-rollback",
        facts("pending-upgrade", "rollback", verdict="stale", revision=2),
        None,
        False,
        "mark_failed",
        ("pending_upgrade", "rollback", "deployed", False, False),
    ),
    (
        "pending-rollback",
        facts("pending-rollback", "rollback", verdict="stale", revision=1),
        None,
        False,
        "mark_failed",
        ("pending_rollback", "rollback", "deployed", False, False),
    ),
    (
        "running",
        facts("pending-upgrade", "wait", verdict="possibly-running"),
        None,
        False,
        "mark_failed",
        ("possibly_running", "wait", "unchanged", False, False),
    ),
    (
        "uninstalling",
        facts("uninstalling", "uninstall_no_hooks", verdict="stale"),
        None,
        False,
        "mark_failed",
        ("uninstalling", "uninstall_no_hooks", "absent", False, False),
    ),
    (
        "uninstalled",
        facts("uninstalled", "none"),
        None,
        False,
        "mark_failed",
        ("uninstalled", "none", "unchanged", False, False),
    ),
    (
        "escalate",
        facts("failed", "escalate"),
        None,
        False,
        "mark_failed",
        ("escalate", "escalate", "unchanged", False, False),
    ),
    (
        "unknown-status",
        facts("superseded", "escalate"),
        None,
        False,
        "mark_failed",
        ("escalate", "escalate", "unchanged", False, False),
    ),
    (
        "flux-left-alone",
        facts("failed", "rollback", revision=2, managed_by=FLUX),
        None,
        False,
        "mark_failed",
        ("controller_managed", "none", "unchanged", False, False),
    ),
    (
        "flux-included",
        facts("failed", "rollback", revision=2, managed_by=FLUX),
        None,
        True,
        "mark_failed",
        ("failed", "rollback", "deployed", False, False),
    ),
]


@pytest.mark.parametrize(
    ("release_facts", "chart", "include_managed", "unlock_method", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_remediation_plan(
    release_facts: dict[str, t.Any],
    chart: str | None,
    include_managed: bool,
    unlock_method: str,
    expected: tuple[str, str, str, bool, bool],
) -> None:
    plan = remediation_plan(release_facts, chart, include_managed, unlock_method)
    assert (plan["branch"], plan["action"], plan["promise"], plan["then_upgrade"], bool(plan["refusal"])) == expected
    assert plan["destructive"] == (plan["action"] in {"uninstall_no_hooks", "delete_revision", "mark_deployed"})


@pytest.mark.parametrize(
    ("status", "if_stale", "expected"),
    [
        ("uninstalling", "uninstall_no_hooks", ("uninstalling", "uninstall_no_hooks", "absent")),
        ("pending-upgrade", "rollback", ("pending_upgrade", "rollback", "deployed")),
        ("pending-rollback", "rollback", ("pending_rollback", "rollback", "deployed")),
        ("pending-install", "unlock", ("pending_install", "unlock", "unblocked")),
    ],
)
def test_force_takes_the_trees_step_for_a_stale_lock(
    status: str, if_stale: str, expected: tuple[str, str, str]
) -> None:
    """force decides as if the lock were stale: the tree's own step for that (its if_stale actions), with
    their command; the plan adds no step of its own."""
    running = facts(status, "wait", verdict="possibly-running")
    running["diagnosis"]["if_stale"] = [{"name": if_stale, "command": f"cmd-{if_stale}", "why": "w", "revision": 2}]
    assert remediation_plan(running)["branch"] == "possibly_running"
    plan = remediation_plan(running, force=True)
    assert (plan["branch"], plan["action"], plan["promise"], plan["command"]) == (*expected, f"cmd-{if_stale}")
    assert triage_row(running, force=True)["command"] == f"cmd-{if_stale}"
    assert triage_row(running)["action"] == "wait"


def test_rollback_carries_its_target_revision() -> None:
    assert remediation_plan(facts("failed", "rollback", revision=2))["revision"] == 2


def test_controller_message_names_the_controller() -> None:
    plan = remediation_plan(facts("failed", "rollback", managed_by=FLUX))
    assert "Flux helm-controller" in plan["why"] and "include_controller_managed" in plan["why"]


def test_triage_row_says_what_helm_thinks_and_what_the_cluster_shows() -> None:
    row = triage_row(facts("pending-upgrade", "unlock", verdict="stale"))
    assert row["helm_thinks"] == "revision 3 pending-upgrade; last known-good revision 2; helm upgrade is blocked"
    assert row["cluster_shows"] == "closer to the old revision; 3/3 objects present; workloads ready"
    assert (row["action"], row["command"], row["lock"]) == ("unlock", "cmd-unlock", "stale")


def finding(code: str, severity: str) -> dict[str, str]:
    return {"code": code, "severity": severity}


@pytest.mark.parametrize(
    ("status", "first", "findings", "attention"),
    [
        ("deployed", "none", [], False),
        ("uninstalled", "none", [], False),
        # a limit of the look (controllers not checked) or a risk for later is not a problem now
        ("deployed", "none", [finding("controller-unknown", "warning"), finding("pvc-without-keep", "warning")], False),
        ("deployed", "none", [finding("never-deployed", "info")], False),
        ("deployed", "none", [finding("record-near-size-limit", "warning")], True),
        # an old revision's timeout tells how the release got here; it rests deployed now
        ("deployed", "none", [finding("timeout", "warning"), finding("hook-failed", "critical")], False),
        ("deployed", "none", [finding("statefulset-stuck", "critical")], True),
        ("deployed", "prune_history", [finding("history-too-long", "warning")], True),
        ("failed", "rollback", [], True),
        ("pending-upgrade", "wait", [], True),
        ("uninstalling", "wait", [], True),
    ],
)
def test_triage_row_says_whether_a_person_is_needed(
    status: str, first: str, findings: list[dict[str, str]], attention: bool
) -> None:
    release = facts(status, first)
    release["diagnosis"]["findings"] = findings
    release["pending_seconds"] = 42 if status.startswith("pending") else None
    row = triage_row(release)
    assert row["needs_attention"] is attention
    assert (row["status"], row["pending_seconds"]) == (status, release["pending_seconds"])


@pytest.mark.parametrize(
    ("live", "detail", "shows"),
    [
        # A brief entry carries no live, lock or risks section at all.
        (None, "brief", "not inspected (brief: healthy by its records)"),
        ({"checked": False}, "full", "not inspected"),
        ({"checked": False}, None, "not inspected"),
    ],
)
def test_triage_row_says_why_the_cluster_was_not_inspected(
    live: dict[str, t.Any] | None, detail: str | None, shows: str
) -> None:
    release = {**facts("deployed", "none"), "live": live, "detail": detail}
    if live is None:
        for section in ("live", "lock", "risks"):
            release.pop(section, None)
    row = triage_row(release)
    assert row["cluster_shows"] == shows
    assert (row["state"], row["lock"], row["action"]) == ("deployed", "none", "none")


@pytest.mark.parametrize("bad", [None, "web", {"name": "web"}])
def test_bad_input_is_a_clear_filter_error(bad: t.Any) -> None:
    with pytest.raises(AnsibleFilterError, match="helm_releases"):
        remediation_plan(bad)


DB = {
    "name": "db",
    "namespace": "team-a",
    "latest_revision": 2,
    "revisions": [{"revision": 1, "chart": "database"}, {"revision": 2, "chart": "database"}],
}
CHARTS_FOR = [
    # (case, charts, chart for every release, expected)
    ("nothing given", {}, "", {}),
    ("one chart for every release", {}, "./database", {"chart": "./database", "version": "", "matched": ""}),
    (
        "by namespace/release first",
        {"team-a/db": {"chart": "oci://r/database", "version": "2.0.0"}, "database": "repo/database"},
        "./other",
        {"chart": "oci://r/database", "version": "2.0.0", "matched": "team-a/db"},
    ),
    (
        "then by chart name",
        {"database": "repo/database"},
        "./other",
        {"chart": "repo/database", "version": "", "matched": "database"},
    ),
    ("another release's entry is not this one's", {"team-b/db": "repo/database", "app": "repo/app"}, "", {}),
]


@pytest.mark.parametrize(("charts", "chart", "expected"), [c[1:] for c in CHARTS_FOR], ids=[c[0] for c in CHARTS_FOR])
def test_chart_for_picks_the_chart_of_this_release(
    charts: dict[str, t.Any], chart: str, expected: dict[str, str]
) -> None:
    assert chart_for(DB, charts, chart) == expected


@pytest.mark.parametrize("charts", [["repo/database"], {"database": {"version": "1.0.0"}}, {"database": 3}])
def test_chart_for_bad_entries_are_clear_errors(charts: t.Any) -> None:
    with pytest.raises(AnsibleFilterError, match="chart"):
        chart_for(DB, charts)


def test_outcome_line_names_what_an_uninstall_left() -> None:
    line = outcome_line(
        {
            "namespace": "team-a",
            "release": "op",
            "status_before": "uninstalling",
            "outcome": "recovered",
            "branch": "uninstalling",
            "action": "uninstall_no_hooks",
            "destructive": True,
            "status_after": "absent",
            "left_behind": [
                {"kind": "Job", "name": "op-cleanup", "command": "kubectl delete job op-cleanup -n team-a"},
                {"kind": "CustomResourceDefinition", "name": "backups.ops.test", "command_if_unneeded": "..."},
            ],
        }
    )
    assert line.endswith(
        "now absent; left in the cluster: Job op-cleanup (kubectl delete job op-cleanup -n team-a), "
        "CustomResourceDefinition backups.ops.test (kept by policy)"
    )


def managed(status: str, first: str) -> dict[str, t.Any]:
    return facts(status, first, managed_by=FLUX)


@pytest.mark.parametrize(
    ("release", "force", "resting"),
    [
        (facts("deployed", "none"), False, True),
        (facts("uninstalled", "none"), False, True),
        (facts("deployed", "prune_history", findings=["history-too-long"]), False, False),
        (facts("failed", "rollback", revision=2), False, False),
        (facts("pending-upgrade", "wait", verdict="possibly-running"), False, False),
        (facts("pending-upgrade", "wait", verdict="possibly-running"), True, False),
        (managed("deployed", "none"), False, False),  # its branch says it is left to its controller
        (facts("deployed", "escalate"), False, False),
    ],
)
def test_at_rest_gives_the_outcome_of_a_release_with_nothing_to_do(
    release: dict[str, t.Any], force: bool, resting: bool
) -> None:
    split = at_rest([release], force=force)
    assert [o["release"] for o in split["resting"]] == (["web"] if resting else [])
    assert [r["name"] for r in split["to_act"]] == ([] if resting else ["web"])
    for outcome in split["resting"]:
        assert outcome["outcome"] == "healthy" and outcome["action"] == "none"
        assert outcome["status_after"] == outcome["status_before"] == release["status"]


BACKUP_STEPS = [
    # (case, a module's result, the record backups it names)
    ("unlock", {"changed": True, "backup_file": "/b/ns/web/sh.helm.release.v1.web.v2.1.json"}, ["v2.1"]),
    (
        "rollback (records, values, manifest)",
        {"backup_files": ["/b/ns/web/sh.helm.release.v1.web.2.json", "/b/ns/web/values.2.yaml", "/b/m.2.yaml"]},
        ["web.2"],
    ),
    ("prune", {"releases": [{"backup_files": ["/b/a.v1.json", "/b/a.v2.json"]}, {"deleted": []}]}, ["v1", "v2"]),
    ("check mode or skipped", {"changed": True, "skipped": True}, []),
]


@pytest.mark.parametrize("case", BACKUP_STEPS, ids=[c[0] for c in BACKUP_STEPS])
def test_backup_files_are_the_record_backups_a_step_wrote(case: tuple[str, dict[str, t.Any], list[str]]) -> None:
    _name, step, wanted = case
    found = backup_files(step)
    assert len(found) == len(wanted) and all(f.endswith(".json") and w in f for f, w in zip(found, wanted, strict=True))


def test_the_restore_command_goes_back_before_the_first_backup_and_quotes_what_it_is_given() -> None:
    files = ["/b/team a/web/sh.helm.release.v1.web.v2.1.json", "/b/team a/web/sh.helm.release.v1.web.2.json"]
    command = shlex.split(
        restore_command(files, kubeconfig="/k/it's.yaml", context={"not": "text"}, discard_newer=True)
    )
    assert command[:4] == ["ansible", "localhost", "-m", "helmops.recovery.helm_release_restore"]
    assert command[-2:] == ["--check", "--diff"]
    assert parse_kv(command[5]) == {  # as ansible reads the -a string
        "path": ",".join(files),
        "pick": "oldest",
        "overwrite": "true",
        "discard_newer": "true",
        "kubeconfig": "/k/it's.yaml",
    }
    assert "discard_newer" not in restore_command(files)  # a prune's undo never deletes anything
    assert restore_command([]) == ""
    assert restore_command(files, kubeconfig={"clusters": []}) == ""  # inline: the command could not name it
    assert restore_command(["/b/a,b.json"]) == ""  # a comma would split the path in two
    assert restore_command(["/b/a'b\"c.json"]) == ""  # no quoting reads back: no command rather than a wrong one
    with pytest.raises(AnsibleFilterError):
        restore_command("/b/one.json")


def mapped_first(base: dict[str, t.Any]) -> dict[str, t.Any]:
    """The facts with the diagnosis' map_apis step before the state's own (removed-api)."""
    mapping = {"name": "map_apis", "command": "cmd-map", "destructive": False, "why": "why-map"}
    return {**base, "diagnosis": {**base["diagnosis"], "actions": [mapping, *base["diagnosis"]["actions"]]}}


# (case, facts, chart) -> (branch, action, the state's branch and action then, promise)
MAPPING_CASES = [
    (
        "deployed: map only",
        mapped_first(facts("deployed", "none")),
        None,
        ("removed_api", "map_apis", "deployed", "none", "deployed"),
    ),
    (
        "failed: map, then roll back",
        mapped_first(facts("failed", "rollback", revision=2)),
        None,
        ("removed_api", "map_apis", "failed", "rollback", "deployed"),
    ),
    (
        "pending: map, then unlock and upgrade",
        mapped_first(facts("pending-upgrade", "unlock", verdict="stale")),
        "repo/app",
        ("removed_api", "map_apis", "pending_upgrade", "unlock", "deployed"),
    ),
    (
        "a controller's release is left alone",
        mapped_first(facts("failed", "rollback", revision=2, managed_by=FLUX)),
        None,
        ("controller_managed", "none", None, None, "unchanged"),
    ),
]


@pytest.mark.parametrize("case", MAPPING_CASES, ids=[c[0] for c in MAPPING_CASES])
def test_removed_api_maps_first_then_runs_the_branch_of_its_state(
    case: tuple[str, dict[str, t.Any], str | None, tuple[str, str, str | None, str | None, str]],
) -> None:
    _name, release, chart, (branch, action, then_branch, then_action, promise) = case
    plan = remediation_plan(release, chart)
    assert (plan["branch"], plan["action"], plan["promise"]) == (branch, action, promise)
    then = plan.get("then")
    assert (then or {}).get("branch") == then_branch and (then or {}).get("action") == then_action
    if then:  # triage shows the step remediate runs first
        assert triage_row(release)["action"] == "map_apis"


def test_a_rollback_to_a_mapped_revision_is_never_the_step_after_the_mapping() -> None:
    """A mapped revision keeps the removed version's fields (an Ingress's serviceName): forward only, with the chart."""
    release = mapped_first(facts("failed", "rollback", revision=2))
    release["risks"]["removed_apis"] = [{"revisions": [2, 3], "served_as": "networking.k8s.io/v1"}]
    release["diagnosis"]["actions"].append({"name": "upgrade", "command": "cmd-up", "destructive": False, "why": "w"})
    without_chart = remediation_plan(release)
    assert (without_chart["branch"], without_chart["then"]["action"]) == ("removed_api", "upgrade")
    assert "needs the chart" in without_chart["refusal"]  # refused before anything is mapped
    with_chart = remediation_plan(release, "repo/app")
    assert (with_chart["then"]["action"], with_chart["refusal"]) == ("upgrade", "")


MAPPED_ACTIONS = [
    ({}, {"action": "rollback"}, "rollback"),
    ({"then": {"action": "none"}}, {"action": "none"}, "map_apis"),
    ({"then": {"action": "upgrade"}}, {"action": "upgrade"}, "map_apis, then upgrade"),
]


@pytest.mark.parametrize("case", MAPPED_ACTIONS, ids=[c[2] for c in MAPPED_ACTIONS])
def test_the_reported_action_names_the_mapping_and_the_step_after_it(
    case: tuple[dict[str, t.Any], dict[str, t.Any], str],
) -> None:
    mapping, plan, expected = case
    assert mapped_action(mapping, plan) == expected
