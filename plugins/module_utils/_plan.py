# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plan for one release: from its facts (with the decision tree's actions, ``_diagnosis.py``) and the
user's policy to the one branch of the tree that runs, its first step and that step's command.

PRIVATE: this module util is for the collection's own use and may change at any time without notice.

Pure. Triage's next step and remediate's branch both come from ``decide``; the filters are adapters. The
policy adds no decision of its own: ``force`` takes the tree's steps as if the lock were stale (the
diagnosis's ``if_stale``), ``include_controller_managed`` skips the step that leaves a release to its
controller, a missing chart refuses a step that needs one.

promise: deployed (the newest revision ends deployed), unblocked (no longer pending, so `helm upgrade` works),
absent (uninstalled), unchanged.
"""

from __future__ import annotations

import shlex
import typing as t
from dataclasses import dataclass

from ._diagnosis import DESTRUCTIVE_ACTIONS

UNLOCK_METHODS = ("mark_failed", "delete_revision", "mark_deployed")
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
# Branches in which nothing happens to the release: a controller, a running operation or a person has it.
LEAVE_ALONE_BRANCHES = ("controller_managed", "possibly_running", "escalate")


class PlanError(ValueError):
    """The input is not one release's facts, or the policy is not one the plan knows."""


@dataclass(frozen=True)
class Policy:
    """What the user allows: the chart an upgrade uses, and the opt-ins."""

    chart: str = ""
    include_controller_managed: bool = False
    unlock_method: str = "mark_failed"
    force: bool = False  # decide as if the lock were stale
    replace_stuck_pods: bool = False  # a step on a StatefulSet stuck on never-ready pods replaces them
    chart_version: str = ""  # with chart: the version an upgrade installs
    helm_timeout: str = ""  # Helm's --timeout for the steps Helm runs ('' : the modules' default)

    def __post_init__(self) -> None:
        if self.unlock_method not in UNLOCK_METHODS:
            raise PlanError(f"unlock_method must be one of {', '.join(UNLOCK_METHODS)}, not {self.unlock_method!r}")


Facts = t.Mapping[str, t.Any]


def decide(facts: Facts, policy: Policy = Policy()) -> dict[str, t.Any]:
    """The branch, first action, its command and the promise for one release's facts."""
    if not isinstance(facts, t.Mapping) or "status" not in facts:
        raise PlanError("the plan expects one release's facts (an entry of helm_releases)")
    mapping = _named(_actions(facts, policy), "map_apis")
    if mapping is not None:
        # The state's own plan once the manifests are mapped; the mapping goes first unless that plan leaves the
        # release alone (a controller, a running operation, a person).
        then = decide(_forward_only(facts), policy)
        if then["branch"] in LEAVE_ALONE_BRANCHES:
            return then
        return _plan(
            "removed_api",
            "map_apis",
            then["promise"],
            str(mapping.get("why") or ""),
            command=str(mapping.get("command") or ""),
            then=then,
            destructive=then["destructive"],
            refusal=then["refusal"],
        )
    first = _first(facts, policy)
    plan = _leave_alone(facts, first, policy) or _healthy(facts)
    if plan is not None:
        return plan
    unknown = (facts.get("risks") or {}).get("managed_by_unknown")
    if unknown and not policy.include_controller_managed:
        # Fail closed: a controller we could not check for would fight (or undo) a manual recovery.
        why = (
            f"{unknown}; grant list on HelmRelease/HelmChart objects cluster-wide "
            "(docs/rbac: helmops-cluster-read), or set include_controller_managed if nothing manages it"
        )
        return _plan("controller_managed", "none", "unchanged", why, refusal=why)
    return _recovery(BRANCH_OF_STATUS[str(facts.get("status"))], first, policy, _actions(facts, policy))


def _actions(facts: Facts, policy: Policy) -> list[dict[str, t.Any]]:
    """The tree's actions under the policy: with force, those it gives as if the lock were stale."""
    diagnosis = facts.get("diagnosis") or {}

    def under_policy(actions: t.Sequence[t.Mapping[str, t.Any]]) -> list[dict[str, t.Any]]:
        skipped = ("leave_to_controller",) if policy.include_controller_managed else ()
        return [dict(a) for a in actions if a.get("name") not in skipped]

    actions = under_policy(diagnosis.get("actions") or [])
    if policy.force and actions and actions[0].get("name") == "wait" and diagnosis.get("if_stale") is not None:
        actions = under_policy(diagnosis["if_stale"])
    return actions


def step(facts: Facts, plan: t.Mapping[str, t.Any], policy: Policy) -> dict[str, t.Any]:
    """The tree's action the plan takes (what it would delete, whether data is lost); {} when it takes none."""
    for action in _actions(facts, policy):
        if action.get("name") == plan["action"] and action.get("command") == plan["command"]:
            return action
    return {}


def _first(facts: Facts, policy: Policy) -> dict[str, t.Any]:
    actions = _actions(facts, policy)
    return actions[0] if actions else {"name": "escalate", "command": "", "why": "the tree gave no step"}


def _named(actions: list[dict[str, t.Any]], name: str) -> dict[str, t.Any] | None:
    return next((action for action in actions if action.get("name") == name), None)


def _forward_only(facts: Facts) -> dict[str, t.Any]:
    """The facts as the tree reads them once the manifests are mapped: without the mapping, and without a rollback
    to a mapped revision. The mapping changes only the apiVersion, so a mapped revision keeps the fields of the
    removed version (an extensions/v1beta1 Ingress's serviceName); Helm would apply them at the served version,
    which rejects or drops them. Forward, an upgrade with a chart that renders the served versions."""
    mapped = {n for item in (facts.get("risks") or {}).get("removed_apis") or [] for n in item.get("revisions") or []}

    def kept(actions: t.Sequence[t.Mapping[str, t.Any]]) -> list[t.Mapping[str, t.Any]]:
        return [
            a
            for a in actions
            if a.get("name") != "map_apis" and not (a.get("name") == "rollback" and a.get("revision") in mapped)
        ]

    diagnosis = dict(facts.get("diagnosis") or {})
    diagnosis["actions"] = kept(diagnosis.get("actions") or [])
    if diagnosis.get("if_stale") is not None:
        diagnosis["if_stale"] = kept(diagnosis["if_stale"])
    return {**facts, "diagnosis": diagnosis}


def finding_codes(facts: Facts) -> set[str]:
    return {str(f.get("code")) for f in (facts.get("diagnosis") or {}).get("findings") or []}


def _plan(branch: str, action: str, promise: str, why: str, **extra: t.Any) -> dict[str, t.Any]:
    plan = {
        "branch": branch,
        "action": action,
        "command": "",
        "destructive": action in DESTRUCTIVE_ACTIONS,
        "promise": promise,
        "why": why,
        "revision": None,
        "then_upgrade": False,
        "refusal": "",
    }
    plan.update(extra)
    return plan


def _leave_alone(facts: Facts, first: dict[str, t.Any], policy: Policy) -> dict[str, t.Any] | None:
    """The branches in which nothing happens to the release; None when something may."""
    status = str(facts.get("status"))
    managed_by = (facts.get("risks") or {}).get("managed_by")
    if managed_by and not policy.include_controller_managed:
        why = (
            f"managed by {managed_by.get('controller', 'a controller')} ({managed_by.get('kind', '')} "
            f"{managed_by.get('name', '')}); the controller would fight a manual recovery "
            "(set include_controller_managed to override)"
        )
        leave = first["name"] == "leave_to_controller"
        return _plan(
            "controller_managed",
            "leave_to_controller" if leave else "none",
            "unchanged",
            why,
            command=str(first.get("command") or "") if leave else "",
        )
    if first["name"] == "wait":
        return _plan(
            "possibly_running", "wait", "unchanged", "an operation may still be running on it", command=first["command"]
        )
    if first["name"] == "escalate" or status not in BRANCH_OF_STATUS:
        why = str(first.get("why") or f"status {status} needs a person")
        return _plan("escalate", "escalate", "unchanged", why, command=str(first.get("command") or ""))
    return None


def _healthy(facts: Facts) -> dict[str, t.Any] | None:
    branch = BRANCH_OF_STATUS[str(facts.get("status"))]
    if branch == "deployed":
        if finding_codes(facts) & set(BLOAT_FINDINGS):
            prune = _named(list((facts.get("diagnosis") or {}).get("actions") or []), "prune_history") or {}
            return _plan(
                "bloated_history",
                "prune_history",
                "deployed",
                "the history is long or records are large",
                command=str(prune.get("command") or ""),
            )
        return _plan("deployed", "none", "deployed", "nothing to recover")
    if branch == "uninstalled":
        return _plan("uninstalled", "none", "unchanged", "uninstalled with kept history; nothing to recover")
    return None


def _recovery(
    branch: str, first: dict[str, t.Any], policy: Policy, actions: list[dict[str, t.Any]]
) -> dict[str, t.Any]:
    name = first["name"]
    why = str(first.get("why") or "")
    command = with_policy(str(first.get("command") or ""), policy)
    stuck = _stuck_pods_refusal(first, policy)
    if name == "rollback":
        revision = first.get("revision")
        return _plan(branch, "rollback", "deployed", why, command=command, revision=revision, refusal=stuck)
    if name == "uninstall_no_hooks":
        return _plan(branch, "uninstall_no_hooks", "absent", why, command=command)
    if name == "upgrade":
        return _plan(
            branch, "upgrade", "deployed", why, command=command, refusal=stuck if policy.chart else NEEDS_CHART
        )
    if name == "unlock":
        action = "unlock" if policy.unlock_method == "mark_failed" else policy.unlock_method
        command = str((_named(actions, action) or {}).get("command") or command)
        # After delete_revision the previous revision is newest again; only an upgrade makes it deployed.
        promise = "deployed" if policy.chart else "unblocked"
        return _plan(branch, action, promise, why, command=command, then_upgrade=bool(policy.chart))
    return _plan("escalate", "escalate", "unchanged", f"no automated step for {name}: {why}", command=command)


def with_policy(command: str, policy: Policy) -> str:
    """The printed command with what the policy sets for the step remediate runs: the chart and version of an
    upgrade (the diagnosis prints the release's own chart behind a <repo>/ placeholder) and Helm's timeout. Each
    helm part is changed as argv and quoted again (the driver setting and the cluster stay as printed)."""
    if not (policy.chart or policy.helm_timeout) or "helm " not in command:
        return command
    return " && ".join(_helm_part_with_policy(part, policy) for part in command.split(" && "))


def _helm_part_with_policy(part: str, policy: Policy) -> str:
    try:
        argv = shlex.split(part)
    except ValueError:
        return part
    verb = next((i for i, word in enumerate(argv) if word == "helm"), None)
    if verb is None or verb + 1 >= len(argv) or argv[verb + 1] not in ("upgrade", "rollback", "uninstall"):
        return part
    if policy.helm_timeout and "--timeout" in argv:
        argv[argv.index("--timeout") + 1] = policy.helm_timeout
    if argv[verb + 1] == "upgrade" and policy.chart and len(argv) > verb + 3:
        argv[verb + 3] = policy.chart
        if "--version" in argv:
            at = argv.index("--version")
            if policy.chart_version:
                argv[at + 1] = policy.chart_version
            else:  # a local chart carries its version (helm_release_recover refuses a remote one without it)
                del argv[at : at + 2]
    return shlex.join(argv)


def _stuck_pods_refusal(action: t.Mapping[str, t.Any], policy: Policy) -> str:
    """helm_release_recover refuses a rollback or upgrade that changes a StatefulSet waiting on never-ready pods
    unless replace_stuck_pods (_recover.py plan_stuck_pods): the printed step replaces them, so it needs it too."""
    if policy.replace_stuck_pods or "kubectl delete pod" not in str(action.get("command") or ""):
        return ""
    return (
        "it changes a StatefulSet that waits on pods that never got ready; the step replaces them once Helm "
        "applied the template: set replace_stuck_pods"
    )


NEEDS_CHART = "converging forward needs the chart: set chart and chart_version (the latest version is never guessed)"
