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

DESTRUCTIVE_ACTIONS = frozenset({"reinstall", "uninstall_no_hooks", "delete_revision", "mark_deployed"})
PENDING = ("pending-install", "pending-upgrade", "pending-rollback")
BRANCH_OF_STATUS = {
    "deployed": "deployed",
    "failed": "failed",
    "pending-install": "pending_install",
    "pending-upgrade": "pending_upgrade",
    "pending-rollback": "pending_rollback",
    "uninstalling": "uninstalling",
    "uninstalled": "uninstalled",
}
BLOAT_FINDINGS = ("history-too-long", "record-near-size-limit")


def _first_action(facts: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    actions = (facts.get("diagnosis") or {}).get("actions") or []
    return dict(actions[0]) if actions else {"name": "escalate", "command": "", "destructive": False}


def _mapping_action(facts: t.Mapping[str, t.Any]) -> dict[str, t.Any] | None:
    actions = (facts.get("diagnosis") or {}).get("actions") or []
    return next((dict(action) for action in actions if action.get("name") == "map_apis"), None)


def _forward_only(facts: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The facts as the tree reads them once the manifests are mapped: without the mapping, and without a rollback
    to a mapped revision. The mapping changes only the apiVersion, so a mapped revision keeps the fields of the
    removed version (an extensions/v1beta1 Ingress's serviceName); Helm would apply them at the served version,
    which rejects or drops them. Forward, an upgrade with a chart that renders the served versions."""
    mapped = {n for item in (facts.get("risks") or {}).get("removed_apis") or [] for n in item.get("revisions") or []}
    diagnosis = dict(facts.get("diagnosis") or {})
    diagnosis["actions"] = [
        a
        for a in diagnosis.get("actions") or []
        if a.get("name") != "map_apis" and not (a.get("name") == "rollback" and a.get("revision") in mapped)
    ]
    return {**facts, "diagnosis": diagnosis}


def _finding_codes(facts: t.Mapping[str, t.Any]) -> set[str]:
    return {str(f.get("code")) for f in (facts.get("diagnosis") or {}).get("findings") or []}


def _plan(branch: str, action: str, promise: str, why: str, **extra: t.Any) -> dict[str, t.Any]:
    plan = {
        "branch": branch,
        "action": action,
        "destructive": action in DESTRUCTIVE_ACTIONS,
        "promise": promise,
        "why": why,
        "revision": None,
        "then_upgrade": False,
        "refusal": "",
    }
    plan.update(extra)
    return plan


def remediation_plan(
    facts: t.Mapping[str, t.Any],
    chart: str | None = None,
    include_controller_managed: bool = False,
    unlock_method: str = "mark_failed",
    force: bool = False,
) -> dict[str, t.Any]:
    """The branch, action and promise for one release's facts.

    promise: deployed (the newest revision ends deployed), unblocked (no longer
    pending, so `helm upgrade` works), absent (uninstalled), unchanged.
    """
    if not isinstance(facts, t.Mapping) or "status" not in facts:
        raise AnsibleFilterError("remediation_plan expects one entry of helm_releases")
    mapping = _mapping_action(facts)
    if mapping is not None:
        # The state's own plan once the manifests are mapped; the mapping goes first unless that plan leaves the
        # release alone (a controller, a running operation, a person).
        then = remediation_plan(_forward_only(facts), chart, include_controller_managed, unlock_method, force)
        if then["branch"] in ("controller_managed", "possibly_running", "escalate"):
            return then
        why = str(mapping.get("why") or "")
        return _plan(
            "removed_api",
            "map_apis",
            then["promise"],
            why,
            then=then,
            destructive=then["destructive"],
            refusal=then["refusal"],
        )
    first = _first_action(facts)
    if force and first["name"] == "wait":
        first = _forced_action(facts)
    plan = _plan_without_recovery(facts, first, include_controller_managed)
    if plan is not None:
        return plan
    unknown = (facts.get("risks") or {}).get("managed_by_unknown")
    if unknown and not include_controller_managed:
        # Fail closed: a controller we could not check for would fight (or undo) a manual recovery.
        why = (
            f"{unknown}; grant list on HelmRelease/HelmChart objects cluster-wide "
            "(docs/rbac: helmops-cluster-read), or set include_controller_managed if nothing manages it"
        )
        return _plan("controller_managed", "none", "unchanged", why, refusal=why)
    branch = BRANCH_OF_STATUS[str(facts.get("status"))]
    return _recovery_plan(branch, first, chart, unlock_method)


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
    resting: list[dict[str, t.Any]] = []
    to_act: list[dict[str, t.Any]] = []
    for facts in releases:
        plan = remediation_plan(facts, None, include_controller_managed, unlock_method, force)
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


def _plan_without_recovery(
    facts: t.Mapping[str, t.Any], first: dict[str, t.Any], include_controller_managed: bool
) -> dict[str, t.Any] | None:
    """The branches that leave the release alone (or only prune it); None when it needs recovering."""
    status = str(facts.get("status"))
    managed_by = (facts.get("risks") or {}).get("managed_by")
    if managed_by and not include_controller_managed:
        why = (
            f"managed by {managed_by.get('controller', 'a controller')} ({managed_by.get('kind', '')} "
            f"{managed_by.get('name', '')}); the controller would fight a manual recovery "
            "(set include_controller_managed to override)"
        )
        return _plan("controller_managed", "none", "unchanged", why)
    if first["name"] == "wait":
        return _plan("possibly_running", "wait", "unchanged", "an operation may still be running on it")
    branch = BRANCH_OF_STATUS.get(status, "escalate")
    if first["name"] == "escalate" or branch == "escalate":
        return _plan("escalate", "escalate", "unchanged", first.get("why") or f"status {status} needs a person")
    return _healthy_plan(branch, facts)


def _forced_action(facts: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """With force, a possibly running operation is treated as stale: the step a stale lock gets."""
    status = str(facts.get("status"))
    why = "forced: the signs of a running operation were overridden"
    if status == "uninstalling":
        return {"name": "uninstall_no_hooks", "why": why}
    if status in PENDING:
        return {"name": "unlock", "why": why}
    return {"name": "wait", "why": why}


def _healthy_plan(branch: str, facts: t.Mapping[str, t.Any]) -> dict[str, t.Any] | None:
    if branch == "deployed":
        if _finding_codes(facts) & set(BLOAT_FINDINGS):
            return _plan("bloated_history", "prune_history", "deployed", "the history is long or records are large")
        return _plan("deployed", "none", "deployed", "nothing to recover")
    if branch == "uninstalled":
        return _plan("uninstalled", "none", "unchanged", "uninstalled with kept history; nothing to recover")
    return None


def _recovery_plan(branch: str, first: dict[str, t.Any], chart: str | None, unlock_method: str) -> dict[str, t.Any]:
    name = first["name"]
    why = str(first.get("why") or "")
    if name == "rollback":
        return _plan(branch, "rollback", "deployed", why, revision=first.get("revision"))
    if name == "uninstall_no_hooks":
        return _plan(branch, "uninstall_no_hooks", "absent", why)
    if name == "upgrade":
        return _plan(branch, "upgrade", "deployed", why, refusal="" if chart else _needs_chart())
    if name == "unlock":
        action = "unlock" if unlock_method == "mark_failed" else unlock_method
        # After delete_revision the previous revision is newest again; only an upgrade makes it deployed.
        promise = "deployed" if chart else "unblocked"
        return _plan(branch, action, promise, why, then_upgrade=bool(chart))
    return _plan("escalate", "escalate", "unchanged", f"no automated step for {name}: {why}")


def _needs_chart() -> str:
    return "converging forward needs the chart: set chart and chart_version (the latest version is never guessed)"


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


def triage_row(facts: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """What a person needs first about one release."""
    if not isinstance(facts, t.Mapping):
        raise AnsibleFilterError("triage_row expects one entry of helm_releases")
    diagnosis = facts.get("diagnosis") or {}
    first = _first_action(facts)
    live = facts.get("live") or {}
    return {
        "release": facts.get("name"),
        "namespace": facts.get("namespace"),
        "state": diagnosis.get("state") or facts.get("status"),
        "lock": (facts.get("lock") or {}).get("verdict", "none"),
        "helm_thinks": _helm_view(facts),
        "cluster_shows": _cluster_view(live, facts.get("detail")),
        "summary": diagnosis.get("summary", ""),
        "action": first.get("name"),
        "destructive": bool(first.get("destructive")),
        "command": first.get("command", ""),
        "findings": sorted(_finding_codes(facts)),
        "data_loss": first.get("data_loss", False),
        "data_lost": [object_line(o) for o in first.get("deletes") or [] if o.get("data")],
        "deletes_unknown": first.get("deletes_unknown") or "",
        "status": facts.get("status"),
        "pending_seconds": facts.get("pending_seconds"),
        "needs_attention": _needs_attention(facts, first),
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


def _needs_attention(facts: t.Mapping[str, t.Any], first: t.Mapping[str, t.Any]) -> bool:
    diagnosis = facts.get("diagnosis") or {}
    state = diagnosis.get("state") or facts.get("status")
    findings = diagnosis.get("findings") or []
    return (
        state not in RESTING_STATES
        or first.get("name") != "none"
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
    if total is not None:
        text += f"; {int(total) - missing}/{total} objects present"
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


def _key_value(name: str, value: str) -> str:
    """One key=value of an ad-hoc module's -a string, quoted as Ansible's parse_kv reads it back."""
    if not any(c.isspace() or c in "'\"\\=" for c in value):
        return f"{name}={value}"
    quote = '"' if '"' not in value else "'"
    if quote in value or "\\" in value:
        raise ValueError(f"cannot quote {name} for an ad-hoc command: {value!r}")
    return f"{name}={quote}{value}{quote}"


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
        arguments = [_key_value("path", ",".join(files)), *options]
        for name, value in (("kubeconfig", kubeconfig), ("context", context)):
            if isinstance(value, str) and value:
                arguments.append(_key_value(name, value))
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
