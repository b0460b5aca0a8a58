# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The recovery decision tree: from a release's facts (what Helm's records say,
what the cluster shows, the lock evidence) to findings and recovery actions,
safest first.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

Pure: no I/O and no Ansible import. ``diagnose`` takes the facts dictionary
helm_release_facts returns for a release (without its diagnosis) and an
optional user context (the error text from a CI log, the operation attempted,
the flags used); the tree reads it through its typed view
(``_release_model.ReleaseFacts``). For a brief entry (``detail: brief``, a
release healthy by its records) the tree also reads the risks that entry does
not report.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import typing as t
from dataclasses import dataclass, field

from ._apis import REMOVALS
from ._commands import Commands, CommandSettings
from ._history import LOCKING_STATUSES, UNHEALTHY_STATUSES
from ._release_codec import PENDING_STATUSES
from ._release_model import Entry, HistoryFacts, ReleaseFacts

ACTION_NAMES = (
    "none",
    "wait",
    "rollback",
    "unlock",
    "upgrade",
    "reinstall",
    "uninstall_no_hooks",
    "delete_revision",
    "mark_deployed",
    "prune_history",
    "map_apis",
    "escalate",
    "leave_to_controller",
    "delete_hook",
)
DESTRUCTIVE_ACTIONS = frozenset({"reinstall", "uninstall_no_hooks", "delete_revision", "mark_deployed", "delete_hook"})
LARGE_RECORD_BYTES = int(0.85 * 1048576)  # 85% of the 1 MiB object limit


@dataclass
class Finding:
    code: str
    severity: str  # info | warning | critical
    message: str
    evidence: list[str] = field(default_factory=list)
    advice: str = ""

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "evidence": list(self.evidence),
            "advice": self.advice,
        }


@dataclass
class Action:
    name: str
    command: str
    why: str
    preconditions: list[str] = field(default_factory=list)
    destructive: bool = False
    revision: int | None = None  # the revision a rollback aims at, so automation need not parse the command
    # The objects Helm deletes when it takes this step (None: not known before it runs), and
    # whether any of them holds data (None: unknown; the step then needs allow_data_loss).
    deletes: list[dict[str, t.Any]] | None = field(default_factory=list)
    data_loss: bool | None = False
    deletes_unknown: str = ""

    def __post_init__(self) -> None:
        if self.name not in ACTION_NAMES:
            raise ValueError(f"unknown action {self.name!r}")
        self.destructive = self.name in DESTRUCTIVE_ACTIONS

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "name": self.name,
            "command": self.command,
            "why": self.why,
            "preconditions": list(self.preconditions),
            "destructive": self.destructive,
            "revision": self.revision,
            "deletes": None if self.deletes is None else list(self.deletes),
            "data_loss": self.data_loss,
            "deletes_unknown": self.deletes_unknown,
        }


@dataclass
class UserContext:
    """What the user tells us about the attempt that went wrong (all optional)."""

    error: str = ""
    operation: str = ""  # install | upgrade | rollback | uninstall
    atomic: bool | None = None
    wait: bool | None = None
    timeout: str = ""
    cleanup_on_fail: bool | None = None


# --- known Helm failure messages -------------------------------------------------


@dataclass(frozen=True)
class KnownError:
    code: str
    pattern: re.Pattern[str]
    severity: str
    meaning: str
    advice: str


KNOWN_ERRORS: tuple[KnownError, ...] = (
    KnownError(
        "another-operation-in-progress",
        re.compile(r"another operation \(install/upgrade/rollback\) is in progress"),
        "critical",
        "Helm refused because the newest revision is pending: it believes an operation is still running.",
        "Check the lock verdict: wait if the operation may still be running, otherwise unlock the stale record "
        "(mark it failed) or roll back to the last known-good revision.",
    ),
    KnownError(
        "no-deployed-releases",
        re.compile(r"has no deployed releases"),
        "warning",
        "Helm found no deployed revision to upgrade from.",
        "Mark the stuck revision failed (unlock) so 'helm upgrade' can run, or reinstall.",
    ),
    KnownError(
        # Helm's message is the same as for a missing CRD; the version is one Kubernetes removed (_apis.REMOVALS).
        "removed-api",
        re.compile(
            "|".join(
                re.escape(f'no matches for kind "{kind}" in version "{api_version}"')
                for api_version, kind in sorted(REMOVALS)
            )
        ),
        "critical",
        "A stored manifest names an API version the cluster no longer serves (removed by a Kubernetes or CRD "
        "upgrade): Helm cannot build the release's objects, so every upgrade, rollback and uninstall fails. The "
        "objects themselves are still there, served at the newer version.",
        "Map the stored manifests to the served versions (helm_release_map_apis), then upgrade with a chart that "
        "renders them.",
    ),
    KnownError(
        "missing-crd",
        re.compile(r"no matches for kind|resource mapping not found|ensure CRDs are installed first"),
        "critical",
        "A custom resource was applied before its CustomResourceDefinition exists.",
        "Install the CRDs first (a separate CRD chart, or the chart's crds/ directory), then retry the operation.",
    ),
    KnownError(
        "ownership-conflict",
        re.compile(r"invalid ownership metadata|exists and cannot be imported into the current release"),
        "critical",
        "An object the chart renders already exists and belongs to another release (or to none).",
        "Delete or re-annotate the conflicting object (meta.helm.sh/release-name / -namespace), or adopt it "
        "with --take-ownership after checking who owns it.",
    ),
    KnownError(
        "immutable-field",
        re.compile(r"field is immutable"),
        "critical",
        "The upgrade changes a field Kubernetes does not allow to change (a selector, a Job template, ...).",
        "Helm's error names the object and the field. A StatefulSet: delete only it (kubectl delete statefulset "
        "<name> --cascade=orphan) and upgrade again, its pods and claims stay. A bound claim: keep its spec as it "
        "is (only its storage request may grow). Anything else: delete and recreate it after checking it holds no "
        "data. helm upgrade --force does not help: Kubernetes refuses to replace bound claims.",
    ),
    KnownError(
        "record-too-large",
        re.compile(r"Too long: must have at most 1048576 (bytes|characters)|may not be more than 1048576 bytes"),
        "critical",
        "The release record exceeds the 1 MiB object limit, so Helm cannot store the revision.",
        "Shrink the chart (move large files out, split into sub-charts) and prune history.",
    ),
    KnownError(
        "webhook-failure",
        re.compile(r"failed calling webhook|admission webhook .* denied the request"),
        "critical",
        "An admission webhook rejected or did not answer a request Helm made.",
        "Check the webhook's service and endpoints (and its timeoutSeconds), fix it, then retry.",
    ),
    KnownError(
        # pkg/action/upgrade.go (Helm 3 and 4): the upgrade failed and so did the rollback it ran on its own.
        "atomic-rollback-failed",
        re.compile(r"an error occurred while rolling back the release\. original upgrade error"),
        "critical",
        "An --atomic (Helm 4: --rollback-on-failure) upgrade failed, and the rollback it ran on its own failed too; "
        "the rollback's revision stays pending-rollback or failed.",
        "Read the rollback's own error (after the upgrade's, in the same message): often a rollback hook. Fix it, "
        "then decide whether the cluster is closer to the old or the new revision and converge with a rollback or "
        "an upgrade.",
    ),
    KnownError(
        "atomic-rolled-back",
        re.compile(r"has been rolled back due to (atomic|rollback-on-failure) being set"),
        "warning",
        "The upgrade failed and --atomic / --rollback-on-failure rolled it back.",
        "The release runs the previous revision again; fix the cause recorded in the failed revision, then upgrade.",
    ),
    KnownError(
        "hook-failed",
        re.compile(r"(pre|post)-(install|upgrade|rollback|delete) hooks failed|hook .* failed"),
        "critical",
        "A Helm hook (a Job run before or after the operation) failed.",
        "Read the hook Job's logs, fix it, then retry; a failed hook left the release failed (or pending).",
    ),
    KnownError(
        "timeout",
        re.compile(r"timed out waiting for the condition|context deadline exceeded"),
        "warning",
        "Helm gave up waiting for resources to become ready within --timeout.",
        "Find what did not become ready (pods, jobs, PVCs); fix it or raise --timeout, then retry.",
    ),
)


def recognise_errors(texts: t.Iterable[tuple[str, str]]) -> list[Finding]:
    """Findings for every known Helm message in (source, text) pairs, once per code."""
    findings: dict[str, Finding] = {}
    for source, text in texts:
        if not text:
            continue
        matched: set[str] = set()
        for known in KNOWN_ERRORS:
            match = known.pattern.search(text)
            if not match or (known.code == "missing-crd" and "removed-api" in matched):
                continue
            matched.add(known.code)
            quote = _excerpt(text, match.start(), match.end())
            finding = findings.get(known.code)
            if finding is None:
                finding = findings[known.code] = Finding(known.code, known.severity, known.meaning, [], known.advice)
            finding.evidence.append(f"{source}: {quote}")
    return list(findings.values())


def diagnose_error(context: UserContext, release: str) -> str:
    """The pasted error text on its own, for an operation that left no record (an install refused before Helm
    stored anything: a missing CRD, a name in use): the finding, its cause and the next step; '' without one."""
    if not context.error.strip():
        return ""
    operation = context.operation or "operation"
    said = f"no record of release {release!r}: the {operation} failed before Helm stored one"
    findings = recognise_errors([("error", context.error)])
    if not findings:
        return (
            f"{said}; Helm said: {' '.join(context.error.split())[:300]}. Next step: fix that cause, then run it again."
        )
    first = findings[0]
    return f"{said} ({first.code}: {first.message}) Next step: {first.advice or 'fix that cause, then run it again.'}"


def _excerpt(text: str, start: int, end: int, width: int = 160) -> str:
    left = max(0, start - width // 2)
    snippet = " ".join(text[left : end + width // 2].split())
    return ("..." if left else "") + snippet


# --- the decision tree -----------------------------------------------------------


@dataclass
class Diagnosis:
    state: str
    summary: str
    findings: list[Finding]
    actions: list[Action]
    # A locked release whose lock is not judged stale: the actions as if it were, which `force` takes.
    if_stale: list[Action] | None = None

    def as_dict(self) -> dict[str, t.Any]:
        # By hand: dataclasses.asdict deep-copies every value, a tenth of a fleet's facts.
        found = {
            "state": self.state,
            "summary": self.summary,
            "findings": [finding.as_dict() for finding in self.findings],
            "actions": [action.as_dict() for action in self.actions],
        }
        if self.if_stale is not None:
            found["if_stale"] = [action.as_dict() for action in self.if_stale]
        return found


class _Commands(Commands):
    """The exact commands a person would run for this release (_commands.py builds them from the argv the modules
    run, pinned to the cluster). Every value that comes from a record (a chart name, a version) is shell-quoted: a
    command printed here is safe to paste, whatever the record holds."""

    def __init__(self, release: ReleaseFacts, settings: CommandSettings | None = None) -> None:
        # Printed with the flags of the Helm that wrote the newest record (Helm 4: --wait=legacy).
        major = 4 if release.written_by == "helm4" else 3
        super().__init__(release.name, release.namespace, release.driver, settings, major)
        latest = release.revision(release.latest_revision) or {}
        self.chart = str(latest.get("chart") or "<chart>")
        self.chart_version = str(latest.get("chart_version") or "<version>")
        self.latest_revision = release.latest_revision
        self.stuck_pods = list(release.live.stuck_pods)

    def rollback(self, revision: int, *, wait: bool = True) -> str:
        if not self.stuck_pods:
            return super().rollback(revision)
        # helm_release_recover with replace_stuck_pods: Helm applies the template, then the pods the
        # StatefulSet waits on are replaced and the rollout waited for (_rollout.py).
        return " && ".join([super().rollback(revision, wait=False), *self.replace_stuck_pods()])

    def replace_stuck_pods(self) -> list[str]:
        pods = [str(p["pod"]) for p in self.stuck_pods]
        timeout = self.settings.helm_flags.timeout
        waits = [
            self.kubectl("rollout", "status", f"statefulset/{name}", "--timeout", timeout)
            for name in dict.fromkeys(str(p["statefulset"]) for p in self.stuck_pods)
        ]
        return [self.kubectl("delete", "pod", *pods), *waits]

    def forward(self) -> str:
        """The forward step helm_release_recover runs (values_source newest): the values the newest revision
        recorded (the change the failed or interrupted operation was making) on the chart's own defaults,
        without --force (Kubernetes refuses to replace bound claims)."""
        values = f"{self.name}-r{self.latest_revision}-values.yaml"
        get_values = self.helm("get values", "--revision", str(self.latest_revision), "--output", "yaml")
        upgrade = self.upgrade(f"<repo>/{self.chart}", self.chart_version, values, wait=not self.stuck_pods)
        return " && ".join(
            [f"{get_values} > {shlex.quote(values)}", upgrade, *(self.replace_stuck_pods() if self.stuck_pods else [])]
        )


def diagnose(
    facts: t.Mapping[str, t.Any], context: UserContext | None = None, settings: CommandSettings | None = None
) -> Diagnosis:
    """Follow the decision tree for one release's facts. ``settings``: the cluster and options every printed
    command carries (the module's own)."""
    context = context or UserContext()
    release = ReleaseFacts.of(facts)
    commands = _Commands(release, settings)
    findings = _merged(_error_findings(release, context) + _risk_findings(release) + _preventive_findings(release))
    findings = _removed_not_missing(release, findings)
    summary, actions = _actions(release, commands, findings, context)
    if_stale = None
    if release.status in LOCKING_STATUSES and release.lock.verdict != "stale":
        # What `force` runs: the tree decided as if the lock were stale (docs/safety.md), never a step of its own.
        forced = _Commands(release, dataclasses.replace(commands.settings, force=True))
        as_if_stale = dataclasses.replace(release, lock=dataclasses.replace(release.lock, verdict="stale"))
        _summary, if_stale = _actions(as_if_stale, forced, findings, context)
        outlived = _hooks_outliving_the_client(release)
        if outlived and actions and actions[0].name == "wait":
            finding, steps = _outlived_hook_steps(release, commands, outlived, if_stale)
            findings.append(finding)
            summary += " " + finding.message
            actions = [actions[0], *steps, *actions[1:]]
    return Diagnosis(state=release.status, summary=summary, findings=findings, actions=actions, if_stale=if_stale)


def _actions(
    release: ReleaseFacts, commands: _Commands, findings: list[Finding], context: UserContext
) -> tuple[str, list[Action]]:
    branch = _BRANCHES.get(release.status, _unknown)
    summary, actions = branch(release, commands, findings, context)
    actions = _escalations(release, commands, actions)
    actions = _mapping_first(release, commands, actions)
    actions = _controller_first(release, commands, actions)
    for action in actions:
        _attach_deletions(action, release.risks.deletions)
    if _needs_pruning(release, findings) and not any(a.name == "prune_history" for a in actions):
        actions.append(
            Action(
                "prune_history",
                commands.module("helm_history_prune", ("keep", "10")),
                "History is long; pruning old records (never the deployed or newest ones) keeps Helm and etcd fast.",
            )
        )
    return summary, actions


def _hooks_outliving_the_client(release: ReleaseFacts) -> list[Entry]:
    """Hook Jobs or Pods still running on a locked release older than the client bound: Helm waits on a hook at most
    --timeout (pkg/action/hooks.go execHook), so no client waits on them any more; they hold the lock alone."""
    bound, age = release.lock.client_bound, release.lock.age_seconds
    if bound is None or age is None or age <= bound:
        return []
    return [hook for hook in release.risks.hooks if hook.get("live_phase") == "Running"]


def _outlived_hook_steps(
    release: ReleaseFacts, commands: _Commands, hooks: list[Entry], if_stale: list[Action]
) -> tuple[Finding, list[Action]]:
    """The hook-level steps for a lock held only by hooks no client waits on: inspect, delete the hook, or take the
    step force takes (an uninstall without hooks is destructive)."""
    names = [f"{hook.get('kind')} {hook.get('name')} ({', '.join(hook.get('events') or [])})" for hook in hooks]
    forced = next((a for a in if_stale if a.name not in ("escalate", "leave_to_controller")), None)
    finding = Finding(
        "hook-outlived-client",
        "critical",
        f"Hook {', '.join(names)} still runs, but the {release.status} record is {release.lock.age_seconds}s "
        f"old, past the client bound ({release.lock.client_bound}s): no Helm client waits on it, and it may never "
        "finish.",
        [f"{name} is Running in the cluster" for name in names],
        "Inspect the hook (its events and logs). If it will never finish, delete it (the lock is then judged "
        "stale and the tree's next step follows), or take the forced step: remediate with force"
        + (" and allow_destructive" if forced is not None and forced.destructive else "")
        + (f" runs {forced.name}." if forced is not None else "."),
    )
    steps = []
    for hook in hooks:
        kind = str(hook.get("kind") or "Job").lower()
        name = str(hook.get("name"))
        inspect = commands.kubectl("describe", kind, name) + " && " + commands.kubectl("logs", f"{kind}/{name}")
        steps.append(
            Action(
                "delete_hook",
                commands.kubectl("delete", kind, name),
                f"Ends hook {kind} {name}, which no Helm client waits on; what it was doing stops. Inspect it first: "
                f"{inspect}",
                ["the hook's work is not needed, or was done"],
            )
        )
    return finding, steps


def _controller_first(release: ReleaseFacts, commands: _Commands, actions: list[Action]) -> list[Action]:
    """A release a controller manages is its controller's to recover: any manual step would be fought or undone.
    The first step is to suspend the controller (or to fix the release through it); the tree's steps follow,
    for after that (remediate runs them only with include_controller_managed)."""
    owner = release.risks.managed_by
    if not owner or not actions or actions[0].name == "none":
        return actions
    controller = str(owner.get("controller") or "a controller")
    kind, name, namespace = (str(owner.get(key) or "") for key in ("kind", "name", "namespace"))
    where = f"{kind} {namespace + '/' if namespace else ''}{name}".strip()
    if kind == "HelmRelease" and name:
        command = commands.kubectl_in(
            namespace or commands.namespace,
            "patch",
            "helmreleases.helm.toolkit.fluxcd.io",
            name,
            "--type",
            "merge",
            "--patch",
            '{"spec":{"suspend":true}}',
        )
        why = (
            f"Managed by {controller} ({where}), which would fight or undo a manual recovery: suspend it first "
            "(this command; `flux suspend helmrelease` does the same), take the next step, fix the cause in Git, "
            "then resume it. Or leave the recovery to its remediation settings."
        )
    else:
        command = commands.kubectl_in(namespace or commands.namespace, "get", kind or "all", *([name] if name else []))
        why = (
            f"Managed by {controller} ({where}), which reconciles it and would undo a manual recovery: fix it "
            "through that object (or stop its controller) before taking the next step."
        )
    return [Action("leave_to_controller", command, why), *actions]


# Newest statuses that, with no known-good revision before them, mean no deploy ever completed.
_NEVER_DEPLOYED_STATUSES = frozenset({"failed", *PENDING_STATUSES})

# Statuses whose branch takes no step on the release's objects.
_NOTHING_TO_RECOVER = frozenset({"deployed", "uninstalled", "superseded"})

# Steps that delete no live object: records only, or nothing at all.
_DELETES_NOTHING = frozenset(
    {
        "none",
        "wait",
        "escalate",
        "leave_to_controller",
        "unlock",
        "mark_deployed",
        "delete_revision",
        "prune_history",
        "map_apis",
    }
)


def _removed_not_missing(release: ReleaseFacts, findings: list[Finding]) -> list[Finding]:
    """Helm says "ensure CRDs are installed first" for a version that went away too: when the cluster shows the
    kinds served at another version and no CRD is missing, the error text is evidence of removed-api."""
    by_code = {finding.code: finding for finding in findings}
    if "removed-api" not in by_code or "missing-crd" not in by_code or release.risks.missing_crds:
        return findings
    by_code["removed-api"].evidence += by_code["missing-crd"].evidence
    return [finding for finding in findings if finding.code != "missing-crd"]


def _mapping_first(release: ReleaseFacts, commands: _Commands, actions: list[Action]) -> list[Action]:
    """Map the stored manifests before any step that makes Helm read them; after a wait or an escalation,
    which come first whatever the manifests say."""
    removed = release.risks.removed_apis
    if not removed or not all(item.get("served_as") for item in removed) or release.risks.missing_crds:
        return actions  # a kind served nowhere, or a CRD missing: the mapping would refuse; the finding says why
    revisions = sorted({n for item in removed for n in item["revisions"]})
    mapping = Action(
        "map_apis",
        commands.module("helm_release_map_apis", lock=True),
        "Rewrite the apiVersion of "
        + ", ".join(f"{item['kind']} {item['name']}" for item in removed)
        + f" in the stored manifests of revision {', '.join(str(n) for n in revisions)} to the version the cluster "
        "serves (a backup first; statuses and history unchanged), so Helm can build the release's objects again.",
    )
    first = next((i for i, action in enumerate(actions) if action.name not in ("wait", "escalate")), len(actions))
    return [*actions[:first], mapping, *actions[first:]]


def _attach_deletions(action: Action, deletions: t.Mapping[str, t.Any] | None) -> None:
    """What Helm deletes when it takes this step, from the facts' deletion sets (_deletions.py)."""
    if action.name in _DELETES_NOTHING:
        return
    chosen: t.Mapping[str, t.Any] | None = None
    if deletions is None:
        unknown = "the manifests were not read (detail=brief)"
    elif action.name == "rollback":
        chosen = deletions.get("rollback")
        if not chosen or chosen.get("target") != action.revision:
            chosen, unknown = None, f"not computed for revision {action.revision}"
        else:
            unknown = ""
    elif action.name in ("uninstall_no_hooks", "reinstall"):
        chosen, unknown = deletions.get("uninstall"), ""
    else:  # upgrade: what the chart renders decides it
        unknown = "it depends on what the chart renders; helm_release_recover computes it before Helm runs"
    if chosen is None or chosen.get("objects") is None:
        action.deletes, action.data_loss = None, None
        action.deletes_unknown = unknown or str((chosen or {}).get("unknown") or "unknown")
        if action.name != "upgrade":
            action.why += f" What it would delete is unknown ({action.deletes_unknown}): it needs allow_data_loss."
        return
    action.deletes = [dict(entry) for entry in chosen["objects"]]
    action.data_loss = bool(chosen.get("data_loss"))
    lost = [f"{e['kind']} {e['name']}" for e in action.deletes if e.get("data")]
    if lost:
        action.why += f" DATA LOSS: Helm would delete {', '.join(lost)}; it needs allow_data_loss."


Branch = t.Callable[[ReleaseFacts, _Commands, list[Finding], UserContext], tuple[str, list[Action]]]


def _deployed(
    release: ReleaseFacts, commands: _Commands, findings: list[Finding], context: UserContext
) -> tuple[str, list[Action]]:
    summary = f"Revision {release.latest_revision} is deployed; no recovery is needed."
    if any(f.code == "removed-api" for f in findings):
        summary += (
            " Its stored manifest names API versions the cluster no longer serves: the next upgrade, rollback or "
            "uninstall fails until they are mapped."
        )
    elif any(f.code == "missing-crd" for f in findings):
        summary += " The last attempted change failed because a CRD is missing: install the CRDs, then retry."
    if any(f.code == "atomic-rolled-back" for f in findings):
        summary += " An earlier upgrade failed and was rolled back automatically."
    return summary, [Action("none", commands.status(), "The newest revision is deployed and Helm is not locked.")]


def _failed(
    release: ReleaseFacts, commands: _Commands, findings: list[Finding], context: UserContext
) -> tuple[str, list[Action]]:
    good = release.last_known_good_revision
    latest = release.latest_revision
    if good is None:
        summary = (
            f"Revision {latest} failed and the release was never deployed successfully. Fix the cause, then upgrade "
            "(Helm allows an upgrade from a failed first install) or reinstall."
        )
        return summary, [
            Action(
                "upgrade",
                commands.forward(),
                "Re-applies the chart over the partial install; 'helm upgrade' is allowed after a failed install.",
                ["the cause of the failure (see findings) is fixed", "the chart reference and version are known"],
            ),
            _reinstall(commands),
        ]
    rollback = Action(
        "rollback",
        commands.rollback(good),
        f"Revision {good} is the last known-good revision; rolling back restores what last worked.",
        [f"revision {good}'s objects still exist or can be recreated"],
        revision=good,
    )
    upgrade = Action(
        "upgrade",
        commands.forward(),
        "Re-applies the new revision over the partial state, converging forward.",
        ["the cause of the failure (see findings) is fixed", "the chart reference and version are known"],
    )
    if _runs_new_revision_healthily(release):
        summary = (
            f"Revision {latest} failed, but the cluster mostly matches it and its workloads are ready: converge "
            f"forward with an upgrade, or roll back to revision {good}."
        )
        return summary, [upgrade, rollback, _reinstall(commands)]
    summary = f"Revision {latest} failed; revision {good} is the last known-good revision: roll back to it."
    if release.live.closer_to == "both":
        summary += " The cluster is a mix of both revisions; check the live-resource comparison first."
    return summary, [rollback, upgrade, _reinstall(commands)]


def _reinstall(commands: _Commands) -> Action:
    why = "Removes the release and installs it afresh: the last resort when neither direction converges."
    values = "values-backup.yaml"
    return Action(
        "reinstall",
        " && ".join(
            [
                f"{commands.helm('get values', '--output', 'yaml')} > {values}",
                commands.uninstall(no_hooks=False),
                commands.install(f"<repo>/{commands.chart}", commands.chart_version, values),
            ]
        ),
        why,
        ["values and records are backed up", "no PVC without resource-policy keep holds data you need"],
    )


def _pending(
    release: ReleaseFacts, commands: _Commands, findings: list[Finding], context: UserContext
) -> tuple[str, list[Action]]:
    status, latest, lock = release.status, release.latest_revision, release.lock
    good = release.last_known_good_revision
    age = lock.age_seconds
    if lock.verdict != "stale":
        reasons = "; ".join(lock.evidence) or "the pending record is recent"
        summary = (
            f"Revision {latest} is {status} and an operation may still be running ({reasons}). Wait and check again "
            "before breaking the lock."
        )
        return summary, [
            Action(
                "wait",
                commands.status(),
                "Breaking a lock under a running operation corrupts the release; re-check once it is older than "
                f"{lock.stale_after}s with no activity.",
            )
        ]
    unlock = Action(
        "unlock",
        commands.module("helm_release_unlock", lock=True),
        f"Marks the stale {status} revision {latest} failed (label and payload), so 'helm upgrade' and "
        "'helm rollback' work again; nothing in the cluster changes.",
        [f"no Helm client is still working on revision {latest}", "the lock is stale (see evidence)"],
    )
    delete = Action(
        "delete_revision",
        commands.module("helm_release_unlock", ("method", "delete_revision"), ("allow_destructive", "true"), lock=True),
        f"Makes Helm forget revision {latest}: its recorded values are lost"
        + ("; the release's objects become orphaned (no earlier revision)." if good is None else "."),
        ["the record is backed up"],
    )
    mark_deployed = Action(
        "mark_deployed",
        commands.module("helm_release_unlock", ("method", "mark_deployed"), ("allow_destructive", "true"), lock=True),
        f"Records revision {latest} as deployed; only right if the cluster fully matches its manifest.",
        ["the live resources match the pending revision's manifest"],
    )
    stale = f"Revision {latest} is {status} and the lock is stale" + (f" ({int(age)}s old, no activity)" if age else "")
    if status == "pending-install" or good is None:
        summary = f"{stale}. The first install never finished: unlock it, then run 'helm upgrade --install' again."
        return summary, [unlock, delete, _reinstall(commands), mark_deployed]
    rollback_target = release.rollback_target_revision or good
    rollback = Action(
        "rollback",
        commands.rollback(rollback_target),
        f"Rolls back to revision {rollback_target}, the last known-good revision; Helm allows a rollback while "
        "the newest revision is pending.",
        [f"revision {rollback_target}'s objects still exist or can be recreated"],
        revision=rollback_target,
    )
    if status == "pending-rollback":
        summary = f"{stale}. The interrupted rollback aimed at revision {rollback_target}: resume it."
        return summary, [rollback, unlock, delete, mark_deployed]
    if _runs_new_revision_healthily(release):
        summary = (
            f"{stale}. The cluster already runs revision {latest} and its workloads are ready: unlock it and "
            f"re-run the upgrade, or roll back to revision {good}."
        )
        return summary, [unlock, rollback, mark_deployed, delete]
    summary = f"{stale}. Roll back to revision {good} (the last known-good revision), or unlock and retry the upgrade."
    return summary, [rollback, unlock, delete, mark_deployed]


def _runs_new_revision_healthily(release: ReleaseFacts) -> bool:
    """The cluster mostly matches the newest revision and its workloads are ready:
    converging forward keeps what runs; otherwise the known-good revision is safer."""
    return release.live.closer_to == "new" and bool(release.live.workloads_ready)


def _uninstalling(
    release: ReleaseFacts, commands: _Commands, findings: list[Finding], context: UserContext
) -> tuple[str, list[Action]]:
    if release.lock.verdict == "possibly-running":
        summary = "The uninstall may still be running (a hook is active or the record is recent): wait."
        return summary, [Action("wait", commands.status(), "Uninstalls are often just slow; hooks may be running.")]
    summary = (
        "The uninstall stopped part-way (usually a pre-delete hook that never finished). Check the hooks, then "
        "uninstall again without hooks."
    )
    return summary, [
        Action(
            "uninstall_no_hooks",
            commands.uninstall(no_hooks=True),
            "Finishes the uninstall without running the blocking hooks; deletes the release's resources.",
            ["the hook's job is not needed for a clean teardown", "no PVC without resource-policy keep holds data"],
        )
    ]


def _uninstalled(
    release: ReleaseFacts, commands: _Commands, findings: list[Finding], context: UserContext
) -> tuple[str, list[Action]]:
    return "The release was uninstalled with --keep-history; nothing is stuck.", [
        Action("none", commands.status(), "An uninstalled release with kept history needs no recovery.")
    ]


def _superseded(
    release: ReleaseFacts, commands: _Commands, findings: list[Finding], context: UserContext
) -> tuple[str, list[Action]]:
    return _deployed(release, commands, findings, context)


def _unknown(
    release: ReleaseFacts, commands: _Commands, findings: list[Finding], context: UserContext
) -> tuple[str, list[Action]]:
    status = release.status
    return f"The newest revision has status {status!r}, which Helm does not define: inspect it by hand.", [
        Action("escalate", commands.status(), f"Status {status!r} is not one of Helm's; do not automate a fix.")
    ]


_BRANCHES: dict[str, Branch] = {
    "deployed": _deployed,
    "superseded": _superseded,
    "failed": _failed,
    "pending-install": _pending,
    "pending-upgrade": _pending,
    "pending-rollback": _pending,
    "uninstalling": _uninstalling,
    "uninstalled": _uninstalled,
}


# --- findings ----------------------------------------------------------------------


def _error_findings(release: ReleaseFacts, context: UserContext) -> list[Finding]:
    texts: list[tuple[str, str]] = [
        (f"revision {entry.get('revision')} description", str(entry.get("description") or ""))
        for entry in release.revisions
        if entry.get("status") in UNHEALTHY_STATUSES or entry.get("revision") == release.latest_revision
    ]
    texts.append(("error text given", context.error))
    findings = recognise_errors(texts)
    if context.operation == "upgrade" and context.atomic and release.status == "pending-rollback":
        findings.append(
            Finding(
                "atomic-rollback-failed",
                "critical",
                "An --atomic upgrade failed and its automatic rollback did not finish: the release is "
                "pending-rollback.",
                [f"operation={context.operation}", "atomic=true"],
                "Decide whether the cluster is closer to the old or the new revision, then converge with a rollback "
                "or an upgrade.",
            )
        )
    findings += _flag_findings(release, context, findings)
    if release.upgrade_blocked:
        findings.append(
            Finding(
                "upgrade-blocked",
                "critical",
                "'helm upgrade' would refuse: another operation (install/upgrade/rollback) is in progress.",
                [f"revision {release.latest_revision} is {release.status}"],
            )
        )
    return findings


def _flag_findings(release: ReleaseFacts, context: UserContext, found: list[Finding]) -> list[Finding]:
    """What the flags of the attempted operation add to the picture."""
    status = release.status
    flags: list[Finding] = []
    if context.cleanup_on_fail and status == "failed":
        flags.append(
            Finding(
                "cleaned-up-on-fail",
                "info",
                "--cleanup-on-fail deleted the objects the failed revision created; objects it changed keep the "
                "change, so the cluster is mostly on the previous revision.",
                ["cleanup_on_fail=true"],
                "Roll back to the last known-good revision to undo the changes to existing objects.",
            )
        )
    if context.wait is False and status == "deployed" and release.live.workloads_ready is False:
        flags.append(
            Finding(
                "deployed-without-wait",
                "warning",
                "Helm did not wait (no --wait), so 'deployed' only means the objects were applied: workloads are "
                "not ready.",
                ["wait=false", "live workloads not ready"],
                "Check the pods; use --wait (and --atomic) in CI to get a failure instead.",
            )
        )
    if context.timeout:
        for finding in found:
            if finding.code == "timeout":
                finding.evidence.append(f"the operation ran with --timeout {context.timeout}")
    return flags


def _risk_findings(release: ReleaseFacts) -> list[Finding]:
    risks = release.risks
    findings: list[Finding] = _stuck_findings(release)
    removed = risks.removed_apis
    if removed:
        findings.append(
            Finding(
                "removed-api",
                "critical",
                "The manifests Helm reads next name API versions the cluster no longer serves: every upgrade, "
                "rollback and uninstall fails until they are mapped. The objects are still there.",
                [
                    f"{item['apiVersion']} {item['kind']} {item['name']} (revision "
                    f"{', '.join(str(n) for n in item['revisions'])}): "
                    + (f"served as {item['served_as']}" if item.get("served_as") else "no served version")
                    + (f", removed in Kubernetes {item['removed_in']}" if item.get("removed_in") else "")
                    for item in removed
                ],
                "Map them with helm_release_map_apis (a backup first, only the revisions Helm reads), then upgrade "
                "with a chart that renders the served versions."
                if all(item.get("served_as") for item in removed)
                else "A kind with no served version (PodSecurityPolicy) cannot be mapped: remove it from the chart "
                "and the stored manifests by hand, after a backup.",
            )
        )
    missing_crds = risks.missing_crds
    if missing_crds:
        findings.append(
            Finding(
                "missing-crd",
                "critical",
                "The release's manifest holds custom resources whose CRD is not installed.",
                [f"{item['apiVersion']} {item['kind']} {item['name']}" for item in missing_crds],
                "Install the CRDs first, then retry.",
            )
        )
    large = risks.large_records
    if large:
        findings.append(
            Finding(
                "record-near-size-limit",
                "warning",
                "Release records are close to the 1 MiB object limit; the next revision may fail to store.",
                [f"revision {item['revision']}: {item['bytes']} bytes" for item in large],
                "Shrink the chart or split it into sub-charts.",
            )
        )
    controller = risks.managed_by
    if controller:
        findings.append(
            Finding(
                "controller-managed",
                "warning",
                f"The release is managed by {controller['controller']}; a manual fix may fight that controller.",
                [f"{controller['kind']} {controller.get('namespace', '')}/{controller['name']}".replace(" /", " ")],
                "Suspend the controller's object or recover through it.",
            )
        )
    if risks.managed_by_unknown and not controller:
        findings.append(
            Finding(
                "controller-unknown",
                "warning",
                "Whether a controller (Flux HelmRelease, k3s HelmChart) manages the release is unknown; "
                "remediation does not act on it until that can be checked.",
                [risks.managed_by_unknown],
                "Grant list on those kinds cluster-wide (the helmops-cluster-read ClusterRole in docs/rbac).",
            )
        )
    unreadable = risks.unreadable_manifests
    if unreadable:
        findings.append(
            Finding(
                "manifest-unreadable",
                "critical",
                "A manifest Helm will act on cannot be read, so what an uninstall, rollback or upgrade would "
                "delete is unknown; every guard that reads it refuses.",
                list(unreadable),
                "Inspect the record (helm get manifest); Helm itself fails on a manifest it cannot parse.",
            )
        )
    for hook in risks.hooks:
        finding = _hook_finding(hook, release.latest_revision)
        if finding:
            findings.append(finding)  # one per code: diagnose merges them
    if release.record_errors:
        findings.append(
            Finding(
                "corrupt-records",
                "critical",
                "Some of the release's storage objects are not valid Helm records.",
                [str(item.get("message")) for item in release.record_errors],
                "Back them up and remove or repair them; Helm skips (v4) or crashes on (v3) such records.",
            )
        )
    return findings


def _merged(findings: list[Finding]) -> list[Finding]:
    """One finding per code: Helm's text and the cluster may both show the same failure (a hook that
    failed); the evidence of both is kept."""
    by_code: dict[str, Finding] = {}
    for finding in findings:
        first = by_code.setdefault(finding.code, finding)
        if first is not finding:
            first.evidence += [line for line in finding.evidence if line not in first.evidence]
    return list(by_code.values())


def _stuck_findings(release: ReleaseFacts) -> list[Finding]:
    stuck = release.live.stuck_pods
    if not stuck:
        return []
    return [
        Finding(
            "statefulset-stuck",
            "critical",
            "A StatefulSet waits on pods that never got ready; it replaces no pod until they are, also after a "
            "rollback or upgrade changes its template (Kubernetes' forced rollback case), so Helm --wait can only "
            "time out.",
            [f"StatefulSet {p['statefulset']}: pod {p['pod']} (revision {p['revision']}) is not ready" for p in stuck],
            "Roll back or upgrade with replace_stuck_pods: true (remediate: -e replace_stuck_pods=true): once Helm "
            "applied the template, those pods are deleted and recreated with the same claims.",
        )
    ]


def _hook_finding(hook: Entry, revision: int | None) -> Finding | None:
    """A hook that runs, failed or is unknown: as the cluster shows it when its Job or Pod was read (the
    record keeps the phase Helm last wrote, Running forever when Helm died while the hook ran)."""
    recorded, live = hook.get("last_run_phase"), hook.get("live_phase")
    phase = recorded if live in (None, "absent") else live
    if phase not in ("Failed", "Running", "Unknown"):
        return None
    events = ", ".join(hook.get("events") or [])
    if live in (None, "absent"):
        message = f"Hook {hook['kind']} {hook['name']} ({events}) last ran with phase {phase} (as recorded)."
    else:
        message = f"Hook {hook['kind']} {hook['name']} ({events}) is {phase} in the cluster."
    return Finding("hook-" + str(phase).lower(), "warning", message, [f"revision {revision} hooks"])


def _needs_pruning(release: ReleaseFacts, findings: list[Finding]) -> bool:
    """A long history, or records near the 1 MiB limit (the remediate role's bloated_history branch prunes
    both; the plan shows this step's command)."""
    return release.risks.history.bloated or any(f.code == "record-near-size-limit" for f in findings)


def _history_bytes(history: HistoryFacts) -> str:
    if not history.sizes_unknown:
        return f"{history.total_bytes} bytes"
    # history="labels": records listed from metadata alone have no known size.
    return f"{history.total_bytes} bytes in the revisions read whole, {history.sizes_unknown} not read"


def _preventive_findings(release: ReleaseFacts) -> list[Finding]:
    history = release.risks.history
    findings: list[Finding] = []
    if history.bloated:
        findings.append(
            Finding(
                "history-too-long",
                "info",
                f"{history.count} revisions are kept ({_history_bytes(history)}): no --history-max.",
                [f"threshold {history.threshold}"],
                "Set --history-max 20 on upgrades and prune old revisions.",
            )
        )
    pvcs = release.risks.pvcs_deleted_on_uninstall
    if pvcs:
        findings.append(
            Finding(
                "pvc-without-keep",
                "warning",
                "PersistentVolumeClaims in the release lack helm.sh/resource-policy: keep; an uninstall deletes them.",
                [str(item.get("name")) for item in pvcs],
                "Annotate data-holding PVC templates with helm.sh/resource-policy: keep.",
            )
        )
    # Helm uninstalls the newest record in place (pkg/action/uninstall.go sets its status to uninstalling, then
    # uninstalled): a deployed release being uninstalled has no deployed record left, and was deployed.
    if release.last_known_good_revision is None and release.status in _NEVER_DEPLOYED_STATUSES:
        findings.append(
            Finding(
                "never-deployed",
                "info",
                "The release has never been deployed successfully.",
                [f"{len(release.revisions)} revision(s), none deployed or superseded after a deploy"],
            )
        )
    return findings


def _escalations(release: ReleaseFacts, commands: _Commands, actions: list[Action]) -> list[Action]:
    """The actions with `escalate` added when the evidence needs a person. It goes first, before any step that
    acts, when that step would act on what is not clearly the release's own: objects another release owns
    (Helm's rollback, upgrade and uninstall change or delete the manifest's objects whoever owns them), or a
    last known-good revision none of whose objects is left; before a wait too. Orphaned claims only add it after
    the steps: no recovery step touches them, and the data in them needs a person before any cleanup."""
    live = release.live
    blocking: list[str] = []
    good = release.last_known_good_revision
    gone = live.deployed_missing
    if good is not None and release.status != "deployed" and gone and len(gone) == live.deployed_total:
        blocking.append(f"every object of revision {good} is gone (deleted out-of-band): manual reconstruction")
    owned_elsewhere = live.owned_by_other_release
    if owned_elsewhere:
        blocking.append(
            "objects are owned by another release (multi-release dependency): "
            + ", ".join(f"{o['kind']} {o['name']} -> {o['owner']}" for o in owned_elsewhere)
        )
    advisory = []
    orphan_pvcs = [o for o in live.orphans if o.get("kind") == "PersistentVolumeClaim"]
    if orphan_pvcs:
        advisory.append(
            "orphaned PVCs may hold production data: "
            + ", ".join(str(o.get("name")) for o in orphan_pvcs)
            + " (data recovery before cleanup)"
        )
    reasons = blocking + advisory
    if not reasons:
        return actions
    escalate = Action(
        "escalate", commands.status(), "Escalate to the chart owner and coordinate: " + "; ".join(reasons) + "."
    )
    if not blocking or release.status in _NOTHING_TO_RECOVER:
        return [*actions, escalate]
    # First, before a wait too: whatever the running operation does, a person has to look, and a forced run
    # (which replaces the wait with the stale tree's step) must not act instead.
    return [escalate, *actions]
