# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters the roles use to read helm_release_facts as the decision tree.

``remediation_plan`` picks, for one release, the one named branch of the tree
the remediate role runs (its task file has the same name), the action taken
there, and what the branch promises to leave behind. ``triage_row`` condenses
one release into what a person needs first: its state, what Helm thinks, what
the cluster shows, and the safest next step with its exact command.
"""

from __future__ import annotations

import shlex
import typing as t

from ansible.errors import AnsibleFilterError
from ansible_collections.helmops.recovery.plugins.module_utils._commands import module_argument
from ansible_collections.helmops.recovery.plugins.module_utils._plan import (
    PlanError,
    Policy,
    decide,
    finding_codes,
    step,
)


def _policy(
    chart: t.Any = "",
    include_controller_managed: t.Any = False,
    unlock_method: t.Any = "mark_failed",
    force: t.Any = False,
    **extra: t.Any,
) -> Policy:
    """The plan's policy from a filter's arguments: four positional, the rest by keyword (replace_stuck_pods,
    chart_version, helm_timeout)."""
    try:
        return Policy(
            str(chart or ""),
            bool(include_controller_managed),
            str(unlock_method),
            bool(force),
            bool(extra.get("replace_stuck_pods")),
            str(extra.get("chart_version") or ""),
            str(extra.get("helm_timeout") or ""),
        )
    except PlanError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def remediation_plan(
    facts: t.Mapping[str, t.Any],
    chart: str | None = None,
    include_controller_managed: bool = False,
    unlock_method: str = "mark_failed",
    force: bool = False,
    **policy: t.Any,
) -> dict[str, t.Any]:
    """The branch, action, command and promise for one release's facts (_plan.decide). Keyword options:
    replace_stuck_pods, chart_version, helm_timeout."""
    try:
        return decide(facts, _policy(chart, include_controller_managed, unlock_method, force, **policy))
    except PlanError as exc:
        raise AnsibleFilterError(f"remediation_plan: {exc}") from exc


def at_rest(
    releases: t.Sequence[t.Mapping[str, t.Any]],
    include_controller_managed: bool = False,
    unlock_method: str = "mark_failed",
    force: bool = False,
) -> dict[str, list[dict[str, t.Any]]]:
    """Splits a cluster's releases for the remediate role: those whose plan is to do nothing (deployed or
    uninstalled, nothing to prune), as their outcomes, and the others, which get the per-release tasks.

    A resting release's outcome is known from the facts just read: no step runs, so there is nothing to verify,
    and a fleet of mostly healthy releases costs no task per release. The plan needs no chart for these branches.
    """
    policy = _policy("", include_controller_managed, unlock_method, force)
    resting: list[dict[str, t.Any]] = []
    to_act: list[dict[str, t.Any]] = []
    for facts in releases:
        plan = decide(facts, policy)
        if plan["action"] == "none" and plan["branch"] in ("deployed", "uninstalled"):
            resting.append(
                {
                    "namespace": facts.get("namespace"),
                    "release": facts.get("name"),
                    "status_before": facts.get("status"),
                    "branch": plan["branch"],
                    "action": "none",
                    "destructive": False,
                    "outcome": "healthy",
                    "message": plan["why"],
                    "status_after": facts.get("status"),
                    "command": "",
                    "left_behind": [],
                }
            )
        else:
            to_act.append(dict(facts))
    return {"resting": resting, "to_act": to_act}


def chart_for(
    facts: t.Mapping[str, t.Any], charts: t.Mapping[str, t.Any] | None = None, chart: str = "", version: str = ""
) -> dict[str, str]:
    """The chart an upgrade of this release uses: ``charts`` by "namespace/release", then by the release's
    chart name, then the one ``chart`` for every release; {} when none is given. An entry is a chart
    reference or {chart, version}."""
    charts = charts or {}
    if not isinstance(charts, t.Mapping):
        raise AnsibleFilterError("charts must be a mapping of 'namespace/release' or chart name to a chart")
    name = _chart_name(facts)
    for key in (f"{facts.get('namespace')}/{facts.get('name')}", name):
        entry = charts.get(key) if key else None
        if entry is None:
            continue
        if isinstance(entry, str):
            return {"chart": entry, "version": "", "matched": key}
        if not isinstance(entry, t.Mapping) or not entry.get("chart"):
            raise AnsibleFilterError(f"charts[{key!r}] must be a chart reference or a mapping with a chart key")
        return {"chart": str(entry["chart"]), "version": str(entry.get("version") or ""), "matched": key}
    return {"chart": chart, "version": version, "matched": ""} if chart else {}


def _chart_name(facts: t.Mapping[str, t.Any]) -> str:
    latest = facts.get("latest_revision")
    for entry in facts.get("revisions") or []:
        if entry.get("revision") == latest:
            return str(entry.get("chart") or "")
    return ""


def triage_row(facts: t.Mapping[str, t.Any], *policy_args: t.Any, **policy_options: t.Any) -> dict[str, t.Any]:
    """What a person needs first about one release: the next step is the plan's, the one remediate runs with the
    same policy (the options of remediation_plan)."""
    if not isinstance(facts, t.Mapping):
        raise AnsibleFilterError("triage_row expects one entry of helm_releases")
    policy = _policy(*policy_args, **policy_options)
    try:
        plan = decide(facts, policy)
    except PlanError as exc:
        raise AnsibleFilterError(f"triage_row: {exc}") from exc
    taken = step(facts, plan, policy)
    diagnosis = facts.get("diagnosis") or {}
    live = facts.get("live") or {}
    return {
        "release": facts.get("name"),
        "namespace": facts.get("namespace"),
        "state": diagnosis.get("state") or facts.get("status"),
        "lock": (facts.get("lock") or {}).get("verdict", "none"),
        "helm_thinks": _helm_view(facts),
        "cluster_shows": _cluster_view(live, facts.get("detail")),
        "summary": diagnosis.get("summary", ""),
        "branch": plan["branch"],
        "action": plan["action"],
        "destructive": bool(plan["destructive"]),
        "command": plan["command"],
        "refusal": plan["refusal"],
        "findings": sorted(finding_codes(facts)),
        "data_loss": taken.get("data_loss", False),
        "data_lost": [object_line(o) for o in taken.get("deletes") or [] if o.get("data")],
        "deletes_unknown": taken.get("deletes_unknown") or "",
        "status": facts.get("status"),
        "pending_seconds": facts.get("pending_seconds"),
        "needs_attention": _needs_attention(facts, plan),
    }


# A release resting deployed or uninstalled with nothing to do needs a person only for a finding about its present
# (the findings read from old revisions' descriptions tell how it got here; controller-unknown is a limit of the look).
RESTING_STATES = frozenset({"deployed", "uninstalled"})
PRESENT_PROBLEMS = frozenset(
    {
        "deployed-without-wait",
        "record-near-size-limit",
        "manifest-unreadable",
        "corrupt-records",
        "statefulset-stuck",
        "missing-crd",
        "removed-api",
        "atomic-rollback-failed",
    }
)


def _needs_attention(facts: t.Mapping[str, t.Any], plan: t.Mapping[str, t.Any]) -> bool:
    diagnosis = facts.get("diagnosis") or {}
    state = diagnosis.get("state") or facts.get("status")
    findings = diagnosis.get("findings") or []
    return (
        state not in RESTING_STATES
        or plan.get("action") != "none"
        or any(f.get("code") in PRESENT_PROBLEMS for f in findings)
    )


def object_line(entry: t.Mapping[str, t.Any]) -> str:
    """One object Helm would delete, as a person reads it: Kind namespace/name (why it holds data)."""
    where = f"{entry.get('namespace')}/" if entry.get("namespace") else ""
    line = f"{entry.get('kind')} {where}{entry.get('name')}"
    if entry.get("data"):
        line += f" ({entry['data']})"
    if entry.get("unverified"):
        line += " [not verified]"
    return line


def _helm_view(facts: t.Mapping[str, t.Any]) -> str:
    latest = facts.get("latest_revision")
    status = facts.get("status")
    good = facts.get("last_known_good_revision")
    text = f"revision {latest} {status}"
    if good is not None and good != latest:
        text += f"; last known-good revision {good}"
    if facts.get("upgrade_blocked"):
        text += "; helm upgrade is blocked"
    return text


def _cluster_view(live: t.Mapping[str, t.Any], detail: str | None = None) -> str:
    if not live.get("checked"):
        return "not inspected (brief: healthy by its records)" if detail == "brief" else "not inspected"
    total = live.get("deployed_total")
    missing = len(live.get("deployed_missing") or [])
    ready = live.get("workloads_ready")
    text = f"closer to the {live.get('closer_to', 'unknown')} revision"
    if total:
        text += f"; {int(total) - missing}/{total} objects present"
    elif live.get("objects"):  # no deployed revision (never deployed, or uninstalling): the newest one's objects
        newest = [o for o in live["objects"] if o.get("latest") is not None]
        present = sum(1 for o in newest if o.get("latest") != "missing")
        text += f"; {present}/{len(newest)} objects of the newest revision present"
    if ready is not None:
        text += "; workloads ready" if ready else "; workloads not ready"
    orphans = live.get("orphans") or []
    if orphans:
        text += f"; {len(orphans)} orphan(s)"
    return text


def outcome_line(outcome: t.Mapping[str, t.Any]) -> str:
    """One console line for a remediated release."""
    line = (
        f"{outcome.get('namespace')}/{outcome.get('release')}: {outcome.get('status_before')} -> "
        f"{outcome.get('outcome')} ({outcome.get('branch')}: {outcome.get('action')}"
    )
    line += ", destructive)" if outcome.get("destructive") else ")"
    if outcome.get("outcome") in ("refused", "error", "escalated", "still-running", "skipped"):
        line += f": {outcome.get('message')}"
    elif outcome.get("status_after") and outcome.get("status_after") != outcome.get("status_before"):
        line += f", now {outcome.get('status_after')}"
    left = outcome.get("left_behind") or []
    if left:
        line += "; left in the cluster: " + ", ".join(
            f"{item.get('kind')} {item.get('name')} ({item.get('command') or 'kept by policy'})" for item in left
        )
    return line


def backup_files(step: t.Mapping[str, t.Any]) -> list[str]:
    """The record backups a recovery step wrote first (unlock, prune, rollback, upgrade and uninstall each take
    one); [] when it wrote none (check mode, or nothing to do)."""
    if not isinstance(step, t.Mapping):
        raise AnsibleFilterError(f"backup_files expects a module result, got {type(step).__name__}")
    files = [step.get("backup_file"), *(step.get("backup_files") or [])]
    files += [path for release in step.get("releases") or [] for path in release.get("backup_files") or []]
    return [str(path) for path in files if path and str(path).endswith(".json")]


def restore_command(
    files: t.Sequence[str], kubeconfig: t.Any = "", context: t.Any = "", discard_newer: bool = False
) -> str:
    """The helm_release_restore command that puts back what the backups held before the first of them (the
    oldest copy of each record), in check mode. ``discard_newer``: the steps wrote revisions (a rollback, an
    upgrade) that the restore must delete; not for a prune, whose undo never needs to delete anything.
    '' without backups, and when the command could not name them or the cluster exactly: a kubeconfig given
    inline (a dict) would leave the command acting on whatever cluster the shell has."""
    if isinstance(files, (str, bytes)) or not isinstance(files, t.Sequence):
        raise AnsibleFilterError("restore_command expects a list of backup files")
    if not files or any("," in path for path in files) or not isinstance(kubeconfig, str):
        return ""
    options = ["pick=oldest", "overwrite=true", *(["discard_newer=true"] if discard_newer else [])]
    try:
        arguments = [module_argument("path", ",".join(files)), *options]
        for name, value in (("kubeconfig", kubeconfig), ("context", context)):
            if isinstance(value, str) and value:
                arguments.append(module_argument(name, value))
    except ValueError:
        return ""  # a path holding both kinds of quote: the backups are still named, the command is not
    command = "ansible localhost -m helmops.recovery.helm_release_restore -a " + shlex.quote(" ".join(arguments))
    return f"{command} --check --diff"


def mapped_action(mapping: t.Mapping[str, t.Any] | None, plan: t.Mapping[str, t.Any] | None) -> str:
    """The action a release's outcome reports: its plan's, or in the removed_api branch the mapping and the step
    planned after it ("map_apis, then upgrade")."""
    if not mapping:
        return str((plan or {}).get("action") or "none")
    then = str((mapping.get("then") or {}).get("action") or "none")
    return "map_apis" if then == "none" else f"map_apis, then {then}"


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            "at_rest": at_rest,
            "backup_files": backup_files,
            "restore_command": restore_command,
            "chart_for": chart_for,
            "remediation_plan": remediation_plan,
            "triage_row": triage_row,
            "outcome_line": outcome_line,
            "object_line": object_line,
            "mapped_action": mapped_action,
        }
