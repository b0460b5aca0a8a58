# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Recovery steps Helm itself must take: rollback, upgrade, uninstall.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

The plan reads the release's records once and holds every guard to what Helm's
own action will read (see _history.py, _deletions.py, _lock.py):

- the newest revision must be in one of the states the caller expects (and, when
  the caller says so, still be the revision and status its plan was made from);
- no Helm client may still be working on it (the lock verdict; ``force``
  overrides that verdict only);
- an uninstall needs ``allow_destructive``;
- a step whose deletions lose data (a PersistentVolumeClaim, a StatefulSet that
  takes its claims, a CRD, a Namespace), or whose deletions cannot be known,
  needs ``allow_data_loss``. An upgrade's deletions come from the chart Helm
  renders (a dry run of the very same command) against the revision Helm diffs.

Right before Helm runs, the newest record is read again: if it changed since the
plan, nothing runs. After a rollback, pending records Helm leaves behind in the
history are marked failed, each write guarded by its resourceVersion.
"""

from __future__ import annotations

import json
import tempfile
import typing as t
from dataclasses import dataclass, field

from ._backup import private_values_file
from ._deletions import RESOURCE_POLICY_ANNOTATION, DeletionSet, uninstall_deletions, update_deletions
from ._errors import ModuleError
from ._helm_cli import (
    HelmCall,
    HelmFlags,
    chart_is_local,
    helm_error_cause,
    refused_objects,
    rollback_argv,
    uninstall_argv,
    upgrade_argv,
    without_wait,
)
from ._history import KNOWN_GOOD_STATUSES, UNHEALTHY_STATUSES, rollback_target, upgrade_base
from ._k8s import KubeClient
from ._live import Discovery, LiveIndex, delete_command
from ._lock import DEFAULT_CLIENT_TIMEOUT, LockOptions, lock_verdict, newest_record
from ._manifest import ManifestError, ObjectKey, annotations_of, parse_manifest
from ._release_codec import PENDING_STATUSES, Driver, ReleaseRecordError, utc_now, with_status
from ._rollout import StuckPod, duration_seconds, stuck_pods
from ._storage import ReleaseStorage, StoredRecord, corrupt_newer

ACTIONS = ("rollback", "upgrade", "uninstall")
DESTRUCTIVE_ACTIONS = frozenset({"uninstall"})
ANNOTATION_PREFIX = "helmops.recovery"

Runner = t.Callable[[list[str], dict[str, str]], tuple[int, str, str]]


@dataclass
class RecoverOptions:
    namespace: str
    release: str
    action: str
    helm: str
    helm_major: int
    revision: int | None = None
    chart: str | None = None
    chart_version: str | None = None
    values_files: list[str] = field(default_factory=list)
    values_source: str = "newest"  # see _helm_cli.VALUES_SOURCES
    force_replace: bool = False
    no_hooks: bool = True
    keep_history: bool = False
    flags: HelmFlags = field(default_factory=HelmFlags)
    allow_destructive: bool = False
    allow_data_loss: bool = False
    when_status: tuple[str, ...] = UNHEALTHY_STATUSES
    stale_after: int = 600
    client_timeout: int = DEFAULT_CLIENT_TIMEOUT
    force: bool = False  # act despite signs of a running operation (overrides the liveness verdict only)
    expected_revision: int | None = None  # the newest revision the caller's plan was made from
    expected_status: str | None = None
    backup_dir: str = "~/.helmops-recovery/backups"
    replace_stuck_pods: bool = False  # delete a StatefulSet's never-ready pods once Helm applied the template
    workdir: str | None = None  # a private directory for files Helm reads (values); the system's temp dir if None


class Refused(ModuleError):
    """A guard said no: nothing was written."""

    def __init__(self, message: str, **details: t.Any) -> None:
        super().__init__(message, refused=True, **details)


@dataclass
class RecoverPlan:
    options: RecoverOptions
    act: bool
    reason: str
    status: str | None = None
    revision: int | None = None
    target_revision: int | None = None
    call: HelmCall | None = None
    warnings: list[str] = field(default_factory=list)
    overridden: list[str] = field(default_factory=list)
    records: list[StoredRecord] = field(default_factory=list, repr=False)
    deletions: DeletionSet | None = None
    live: LiveIndex | None = field(default=None, repr=False)
    lock: dict[str, t.Any] = field(default_factory=dict)
    values_from_revision: int | None = None  # an upgrade applies the values this revision recorded
    stuck: list[StuckPod] = field(default_factory=list)  # pods the step replaces after Helm ran (_rollout.py)

    @property
    def newest(self) -> StoredRecord | None:
        return self.records[-1] if self.records else None

    def expected_after(self) -> dict[str, t.Any]:
        if not self.act:
            return self.before()
        if self.options.action == "uninstall":
            return {"status": "uninstalled" if self.options.keep_history else "absent", "revision": self.revision}
        return {"status": "deployed", "revision": (self.revision or 0) + 1}

    def before(self) -> dict[str, t.Any]:
        return {"status": self.status or "absent", "revision": self.revision}

    def diff(self) -> dict[str, t.Any]:
        after = self.expected_after()
        if self.act and self.deletions is not None and self.deletions.objects:
            after = {**after, "deleted": [deletion.key.describe() for deletion in self.deletions.objects]}
        return {"before": self.before(), "after": after}


def plan_recover(client: KubeClient, driver: Driver, options: RecoverOptions, now: float) -> RecoverPlan:
    """Decide whether and how to act; raises Refused (or ModuleError) when a guard says no."""
    if options.action not in ACTIONS:
        raise ModuleError(f"unknown action {options.action!r}; use one of {', '.join(ACTIONS)}")
    records, errors = ReleaseStorage(client, driver).history(options.namespace, options.release)
    if not records:
        detail = f" ({len(errors)} corrupt record(s): {errors[0]})" if errors else ""
        if options.action == "uninstall" and not errors:
            return RecoverPlan(options, act=False, reason=f"release {options.release} is not installed")
        raise ModuleError(f"release {options.release!r} not found in namespace {options.namespace}{detail}")
    newest = records[-1]
    _refuse_corrupt_newer(options, newest, errors)
    status = newest.record.status
    plan = RecoverPlan(options, act=False, reason="", status=status, revision=newest.record.revision, records=records)
    _refuse_if_moved(plan)
    if status not in options.when_status:
        plan.reason = (
            f"release {options.release} is {status} (revision {plan.revision}); "
            f"{options.action} runs only when it is {', '.join(options.when_status)}"
        )
        return plan
    plan.live = LiveIndex(client, Discovery(client))
    record = newest_record(options.namespace, newest.record.release, newest.record.meta.written_at, now)
    plan.lock = lock_verdict(record, plan.live, LockOptions(options.stale_after, options.client_timeout), now)
    plan.overridden = _refuse_while_running(plan.lock, options)
    if options.action in DESTRUCTIVE_ACTIONS and not options.allow_destructive:
        raise Refused(
            f"{options.action} of {options.release} is destructive (Helm deletes the release's resources); "
            "set allow_destructive: true to run it"
        )
    builders = {"rollback": _plan_rollback, "upgrade": _plan_upgrade, "uninstall": _plan_uninstall}
    builders[options.action](plan)
    if plan.deletions is not None:
        refuse_data_loss(plan)
    plan.act = True
    return plan


def _refuse_corrupt_newer(options: RecoverOptions, newest: StoredRecord, errors: list[ReleaseRecordError]) -> None:
    newer = corrupt_newer(newest, errors)
    if newer:
        raise Refused(
            f"a newer record of {options.release!r} is corrupt, so the revision Helm would act on is unknown: "
            + "; ".join(str(error) for error in newer)
        )


def _refuse_if_moved(plan: RecoverPlan) -> None:
    """The caller's plan (remediate's decision) was made from another newest record: do not act on this one."""
    options = plan.options
    moved = (options.expected_revision is not None and options.expected_revision != plan.revision) or (
        options.expected_status is not None and options.expected_status != plan.status
    )
    if moved:
        expected = ", ".join(
            f"{what} {value}"
            for what, value in (("revision", options.expected_revision), ("status", options.expected_status))
            if value is not None
        )
        raise Refused(
            f"release {options.release} changed since the plan was made: the plan expected its newest revision at "
            f"{expected}; it is now revision {plan.revision}, status {plan.status}. "
            "Nothing was done; decide again on fresh facts.",
            revision=plan.revision,
            status=plan.status,
        )


def _refuse_while_running(lock: t.Mapping[str, t.Any], options: RecoverOptions) -> list[str]:
    """The evidence force overrode; raises when there is evidence and no force."""
    if lock.get("verdict") != "possibly-running":
        return []
    evidence = [str(line) for line in lock.get("evidence") or []]
    if options.force:
        return evidence
    raise Refused(
        f"refusing to {options.action} {options.release}: an operation may still be running "
        f"({'; '.join(evidence)}); wait for it, or set force: true if you are sure no Helm client is working on it",
        lock=dict(lock),
    )


def refuse_data_loss(plan: RecoverPlan) -> None:
    """Deletions that lose data, or that cannot be known, need allow_data_loss."""
    deletions = plan.deletions
    if deletions is None or plan.options.allow_data_loss:
        return
    why = deletions.refusal()
    if why:
        raise Refused(
            f"refusing to {plan.options.action} {plan.options.release}: {why}. Back up that data, then set "
            "allow_data_loss: true",
            deletions=deletions.as_dict(),
        )


def _manifest(plan: RecoverPlan, revision: int) -> list[tuple[ObjectKey, dict[str, t.Any]]] | str:
    """A revision's parsed manifest, scoped as Helm builds it; the reason when it cannot be read."""
    stored = next((r for r in plan.records if r.record.revision == revision), None)
    if stored is None:
        return f"revision {revision} is not in the history"
    try:
        objects = parse_manifest(
            str(stored.record.release.get("manifest") or ""),
            plan.options.namespace,
            what=f"revision {revision}'s manifest",
        )
    except ManifestError as exc:
        return str(exc)
    live = plan.live
    return [(live.scoped(key), document) for key, document in objects] if live else objects


def _update_set(
    plan: RecoverPlan, action: str, current: int, target: t.Any, target_revision: int | None
) -> DeletionSet:
    deletions = DeletionSet(action, current, target_revision)
    before = _manifest(plan, current)
    if isinstance(before, str) or isinstance(target, str) or plan.live is None:
        deletions.objects = None
        deletions.unknown = before if isinstance(before, str) else str(target)
        return deletions
    deletions.objects = update_deletions(before, target, plan.live.answer)
    return deletions


def _plan_rollback(plan: RecoverPlan) -> None:
    options = plan.options
    history = {r.record.revision: (r.record.status, r.record.description) for r in plan.records}
    target = options.revision or rollback_target(history)
    if target is None:
        raise Refused(
            f"release {options.release} has no known-good revision to roll back to "
            "(none was ever deployed); use upgrade with a chart, or uninstall"
        )
    if target not in history:
        raise Refused(f"release {options.release} has no revision {target} to roll back to")
    if target == plan.revision:
        raise Refused(f"revision {target} is the newest revision of {options.release}; nothing to roll back to")
    if history[target][0] not in KNOWN_GOOD_STATUSES:
        plan.warnings.append(f"revision {target} is {history[target][0]}, not a known-good revision")
    plan.target_revision = int(target)
    # pkg/action/rollback.go: current = Releases.Last (the newest), target = that revision.
    target_objects = _manifest(plan, target)
    plan.deletions = _update_set(plan, "rollback", int(plan.revision or 0), target_objects, target)
    plan.call = HelmCall(
        rollback_argv(
            options.helm,
            options.helm_major,
            options.release,
            options.namespace,
            revision=int(target),
            flags=options.flags,
        )
    )
    plan.reason = f"release {options.release} is {plan.status}; rolling back to revision {target}"
    if not isinstance(target_objects, str) and plan.live is not None:
        plan_stuck_pods(plan, stuck_pods(target_objects, plan.live))


def _plan_upgrade(plan: RecoverPlan) -> None:
    options = plan.options
    if plan.status in PENDING_STATUSES:
        raise Refused(
            f"helm upgrade of {options.release} would be refused: revision {plan.revision} is {plan.status}. "
            "Unlock it first (helmops.recovery.helm_release_unlock)"
        )
    if not options.chart:
        raise Refused(f"upgrade of {options.release} needs the chart reference (chart) it was installed from")
    if not options.chart_version and not chart_is_local(options.chart):
        raise Refused(
            f"upgrade of {options.release} needs chart_version: the version is never guessed "
            f"(the release's last chart was {_chart_of(plan)})"
        )
    values_files = list(options.values_files)
    if options.values_source == "newest":
        # pkg/action/upgrade.go reuses the values of the last *deployed* revision: after an interrupted or
        # failed upgrade that drops the change the person was making. The newest revision recorded it.
        config = plan.records[-1].record.release.get("config") or {}
        values_files.insert(0, private_values_file(options.workdir or tempfile.gettempdir(), config))
        plan.values_from_revision = plan.revision
    plan.call = HelmCall(
        upgrade_argv(
            options.helm,
            options.helm_major,
            options.release,
            options.namespace,
            options.chart,
            chart_version=options.chart_version,
            values_source=options.values_source,
            values_files=values_files,
            force=options.force_replace,
            flags=options.flags,
        )
    )
    plan.reason = f"release {options.release} is {plan.status}; upgrading it with {options.chart}" + (
        f" and the values revision {plan.revision} recorded" if plan.values_from_revision else ""
    )


def _chart_of(plan: RecoverPlan) -> str:
    chart = plan.records[-1].record.chart_metadata
    return f"{chart.get('name')} {chart.get('version')}"


def guard_upgrade(plan: RecoverPlan, rendered: RenderedRelease) -> None:
    """The chart must be the release's own chart, and what the upgrade deletes (the revision Helm diffs
    against less the manifest it rendered, by the same command run with --dry-run) must not lose data
    without allow_data_loss."""
    newest = plan.records[-1].record
    labelled = [r.record.revision for r in plan.records if r.record.meta.status_label == "deployed"]
    base = upgrade_base(newest.status, labelled, newest.revision)
    if base is None:
        raise Refused(f"helm upgrade of {plan.options.release} would fail: it has no deployed revision to upgrade from")
    _refuse_other_chart(plan, rendered, base)
    try:
        target: t.Any = parse_manifest(
            rendered.manifest, plan.options.namespace, what="the manifest the upgrade renders"
        )
        if plan.live is not None:
            target = [(plan.live.scoped(key), document) for key, document in target]
    except ManifestError as exc:
        target = str(exc)
    plan.deletions = _update_set(plan, "upgrade", base, target, None)
    refuse_data_loss(plan)
    if not isinstance(target, str) and plan.live is not None:
        plan_stuck_pods(plan, stuck_pods(target, plan.live))


def plan_stuck_pods(plan: RecoverPlan, stuck: list[StuckPod]) -> None:
    """A StatefulSet waiting on a pod that never got ready cannot move (_rollout.py): without
    replace_stuck_pods, refuse a step that can only time out; with it, Helm applies the template without
    --wait, then the module replaces those pods and waits for the StatefulSets itself."""
    if not stuck:
        return
    names = ", ".join(pod.describe() for pod in stuck)
    if not plan.options.replace_stuck_pods:
        raise Refused(
            f"refusing to {plan.options.action} {plan.options.release}: it changes a StatefulSet that waits on pods "
            f"that never got ready ({names}); the controller replaces no pod until they are ready, so Helm could "
            "only time out (Kubernetes' forced rollback case). Set replace_stuck_pods: true to delete those pods "
            "once Helm applied the new template (the controller recreates them with the same claims)",
            stuck_pods=[pod.name for pod in stuck],
        )
    try:
        duration_seconds(plan.options.flags.timeout)  # the module waits for the StatefulSets itself
    except ValueError as exc:
        raise ModuleError(f"timeout {plan.options.flags.timeout!r} is not a duration such as 5m or 90s") from exc
    plan.stuck = stuck
    if plan.call is not None:
        plan.call = HelmCall(without_wait(plan.call.argv), plan.call.env)
    plan.reason += f"; then replacing {names}, which the StatefulSet waits on"


def _refuse_other_chart(plan: RecoverPlan, rendered: RenderedRelease, base: int) -> None:
    """Helm upgrades a release with whatever chart it is given, and deletes every object the other chart
    lacks. The chart's name must be one the release was installed or upgraded with: its newest revision's
    or that of the revision Helm diffs against."""
    names = {
        str(r.record.chart_metadata.get("name"))
        for r in plan.records
        if r.record.revision in (base, plan.revision) and r.record.chart_metadata.get("name")
    }
    if rendered.chart_name not in names:
        raise Refused(
            f"refusing to upgrade {plan.options.release} with chart {rendered.chart_name!r} "
            f"({plan.options.chart}): the release's chart is {' or '.join(sorted(repr(n) for n in names))}. "
            "Give the chart this release was installed from (remediate: the charts map, per release or per chart name)",
            chart=rendered.chart_name,
            release_charts=sorted(names),
        )


def render_argv(plan: RecoverPlan) -> list[str]:
    """The planned upgrade as a dry run that prints the release it would store (its manifest)."""
    if plan.call is None:
        raise ModuleError("the plan has no Helm command to render")
    # server: templates' lookup() reads the cluster as the real upgrade will; nothing is written.
    return [*without_wait(plan.call.argv), "--dry-run=server", "--output", "json"]


@dataclass
class RenderedRelease:
    """What `helm upgrade --dry-run` says it would store: the manifest and the chart's name and version."""

    manifest: str
    chart_name: str
    chart_version: str


def rendered_release(output: str) -> RenderedRelease:
    """The release `helm upgrade --dry-run --output json` prints; its values and notes are not kept."""
    try:
        release = json.loads(output)
    except ValueError as exc:
        raise ModuleError(f"could not read the release the upgrade renders: {exc}") from exc
    if not isinstance(release, dict) or not isinstance(release.get("manifest"), str):
        raise ModuleError("could not read the release the upgrade renders: Helm printed no release")
    metadata = (release.get("chart") or {}).get("metadata") or {}
    return RenderedRelease(
        str(release["manifest"]), str(metadata.get("name") or ""), str(metadata.get("version") or "")
    )


def _plan_uninstall(plan: RecoverPlan) -> None:
    options = plan.options
    # pkg/action/uninstall.go: the newest revision's manifest is what Helm deletes.
    deletions = DeletionSet("uninstall", plan.revision)
    objects = _manifest(plan, int(plan.revision or 0))
    if isinstance(objects, str):
        deletions.objects, deletions.unknown = None, objects
    else:
        deletions.objects = uninstall_deletions(objects, plan.live.answer if plan.live else None)
    plan.deletions = deletions
    plan.call = HelmCall(
        uninstall_argv(
            options.helm,
            options.helm_major,
            options.release,
            options.namespace,
            no_hooks=options.no_hooks,
            keep_history=options.keep_history,
            flags=options.flags,
        )
    )
    plan.reason = f"release {options.release} is {plan.status}; uninstalling it" + (
        " without running its hooks" if options.no_hooks else ""
    )


def recheck(client: KubeClient, driver: Driver, plan: RecoverPlan) -> None:
    """Right before Helm runs: the newest record must still be the one the plan read."""
    newest = plan.newest
    if newest is None:
        return
    storage = ReleaseStorage(client, driver)
    seen = [m for m in storage.list_meta(plan.options.namespace, plan.options.release) if not isinstance(m, Exception)]
    now_newest = max(seen, key=lambda meta: meta.revision, default=None)
    before = (newest.record.revision, newest.record.meta.resource_version)
    after = (now_newest.revision, now_newest.resource_version) if now_newest else (None, None)
    if after != before:
        raise Refused(
            f"release {plan.options.release} changed since it was checked (newest revision {before[0]} was "
            f"{plan.status}; now revision {after[0]}, status label {now_newest.status_label if now_newest else None}); "
            "Helm was not run, decide again on fresh facts"
        )


def run_helm(plan: RecoverPlan, runner: Runner, env: dict[str, str], argv: list[str] | None = None) -> str:
    """Run the planned Helm command (or ``argv``); its output, or ModuleError with Helm's own cause
    and, for each object the API server refused to change, its field and what the person can do."""
    if plan.call is None:
        raise ModuleError("the plan has no Helm command to run")
    argv = argv or plan.call.argv
    rc, out, err = runner(argv, env)
    if rc != 0:
        output = err or out
        refused = refused_objects(output, plan.options.namespace)
        advice = "".join(
            f" {o['kind']} {o['name']} cannot change {o['field']}: {o['what_to_do']}."
            for o in refused
            if o["immutable"]
        )
        raise ModuleError(
            f"{argv[1]} of {plan.options.release} failed (helm exited {rc}): "
            + (helm_error_cause(output) or "no output")
            + advice,
            command=plan.call.command_line,
            rc=rc,
            refused_objects=refused,
        )
    return out


def settle_pending(client: KubeClient, driver: Driver, plan: RecoverPlan) -> list[int]:
    """After a rollback: mark the pending records Helm left behind failed (never the newest),
    each write guarded by the resourceVersion it was read with; the revisions marked."""
    storage = ReleaseStorage(client, driver)
    records, _errors = storage.history(plan.options.namespace, plan.options.release)
    now = utc_now()
    marked = []
    for stored in records[:-1]:
        status = stored.record.status
        if status not in PENDING_STATUSES:
            continue
        description = f"Marked failed by helmops.recovery after the rollback to {plan.target_revision}: was {status}"
        storage.replace(
            stored,
            with_status(stored.record.release, "failed", description),
            annotations={f"{ANNOTATION_PREFIX}/marked-failed-at": now, f"{ANNOTATION_PREFIX}/previous-status": status},
        )
        marked.append(stored.record.revision)
    return marked


def left_behind(client: KubeClient, plan: RecoverPlan) -> list[dict[str, str]]:
    """After an uninstall: what of the release is still in the cluster, why, and how to remove it.
    `helm uninstall --no-hooks` neither runs nor deletes the release's hooks (pkg/action/uninstall.go
    deletes the manifest's objects only), so a hook that was running stays, with its ServiceAccount and
    roles; objects kept by `helm.sh/resource-policy: keep` stay by design."""
    newest = plan.newest
    if newest is None or plan.options.action != "uninstall":
        return []
    namespace = plan.options.namespace
    live = LiveIndex(client, Discovery(client))
    found: list[dict[str, str]] = []
    for hook in newest.record.release.get("hooks") or []:
        events = ", ".join(str(event) for event in hook.get("events") or [])
        why = f"a {events} hook: helm uninstall --no-hooks neither runs nor deletes hooks"
        found += _still_there(str(hook.get("manifest") or ""), namespace, live, why, removable=True)
    kept = "kept by helm.sh/resource-policy: keep (it may hold data; delete it only when nothing needs it)"
    for key, document in _parsed(str(newest.record.release.get("manifest") or ""), namespace):
        if annotations_of(document).get(RESOURCE_POLICY_ANNOTATION) is not None:
            found += _present(live.scoped(key), live, kept, removable=False)
    return found


def _parsed(manifest: str, namespace: str) -> list[tuple[ObjectKey, dict[str, t.Any]]]:
    try:
        return parse_manifest(manifest, namespace, what="a manifest")
    except ManifestError:
        return []


def _still_there(manifest: str, namespace: str, live: LiveIndex, why: str, removable: bool) -> list[dict[str, str]]:
    return [e for key, _doc in _parsed(manifest, namespace) for e in _present(live.scoped(key), live, why, removable)]


def _present(key: ObjectKey, live: LiveIndex, why: str, removable: bool) -> list[dict[str, str]]:
    if live.get(key) is None:
        return []
    entry = {"kind": key.kind, "namespace": key.namespace, "name": key.name, "why": why}
    command = delete_command(key.api_version, key.kind, key.name, key.namespace)
    entry["command" if removable else "command_if_unneeded"] = command
    return [entry]


def state_after(client: KubeClient, driver: Driver, options: RecoverOptions) -> dict[str, t.Any]:
    records, _errors = ReleaseStorage(client, driver).history(options.namespace, options.release)
    if not records:
        return {"status": "absent", "revision": None}
    return {"status": records[-1].record.status, "revision": records[-1].record.revision}
