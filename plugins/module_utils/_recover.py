# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Recovery steps Helm itself must take: rollback, forced upgrade, uninstall.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

The plan is made from the same facts helm_release_facts reports, so the guards
see what a person would see: the release must be in one of the states the
caller expects, no Helm operation may be running on it, destructive steps need
the opt-in, and an uninstall that would delete a PVC's data needs a second
opt-in. Before Helm runs, the release's values, manifest and every record are
backed up.
"""

from __future__ import annotations

import contextlib
import typing as t
from dataclasses import dataclass, field

from ._backup import save_records, save_text
from ._errors import ModuleError
from ._facts import GatherOptions, gather
from ._helm_cli import HelmCall, HelmFlags, chart_is_local, rollback_argv, uninstall_argv, upgrade_argv
from ._k8s import KubeClient
from ._release_codec import PENDING_STATUSES, Driver
from ._storage import ReleaseStorage

with contextlib.suppress(ImportError):  # a missing PyYAML is reported by run_module
    import yaml

ACTIONS = ("rollback", "upgrade", "uninstall")
DESTRUCTIVE_ACTIONS = frozenset({"uninstall"})
UNHEALTHY_STATUSES = ("failed", "pending-install", "pending-upgrade", "pending-rollback", "uninstalling")
KNOWN_GOOD_STATUSES = ("deployed", "superseded")

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
    reuse_values: bool = True
    force_replace: bool = True
    no_hooks: bool = True
    keep_history: bool = False
    flags: HelmFlags = field(default_factory=HelmFlags)
    allow_destructive: bool = False
    allow_data_loss: bool = False
    when_status: tuple[str, ...] = UNHEALTHY_STATUSES
    stale_after: int = 600
    force: bool = False  # act despite signs of a running operation (overrides the liveness verdict only)
    backup_dir: str = "~/.helmops-recovery/backups"


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

    def expected_after(self) -> dict[str, t.Any]:
        if not self.act:
            return self.before()
        if self.options.action == "uninstall":
            return {"status": "uninstalled" if self.options.keep_history else "absent", "revision": self.revision}
        return {"status": "deployed", "revision": (self.revision or 0) + 1}

    def before(self) -> dict[str, t.Any]:
        return {"status": self.status or "absent", "revision": self.revision}

    def diff(self) -> dict[str, t.Any]:
        return {"before": self.before(), "after": self.expected_after()}


def _release_facts(client: KubeClient, driver: Driver, options: RecoverOptions) -> dict[str, t.Any] | None:
    facts, _errors = gather(
        client,
        driver,
        GatherOptions(namespace=options.namespace, releases=[options.release], stale_after=options.stale_after),
    )
    return facts[0] if facts else None


def plan_recover(client: KubeClient, driver: Driver, options: RecoverOptions) -> RecoverPlan:
    """Decide whether and how to act; raises ModuleError when a guard refuses."""
    if options.action not in ACTIONS:
        raise ModuleError(f"unknown action {options.action!r}; use one of {', '.join(ACTIONS)}")
    facts = _release_facts(client, driver, options)
    if facts is None:
        if options.action == "uninstall":
            return RecoverPlan(options, act=False, reason=f"release {options.release} is not installed")
        raise ModuleError(f"release {options.release!r} not found in namespace {options.namespace}")
    status = str(facts.get("status"))
    plan = RecoverPlan(options, act=False, reason="", status=status, revision=facts.get("latest_revision"))
    if status not in options.when_status:
        plan.reason = (
            f"release {options.release} is {status} (revision {plan.revision}); "
            f"{options.action} runs only when it is {', '.join(options.when_status)}"
        )
        return plan
    plan.overridden = _refuse_while_running(facts, options)
    if options.action in DESTRUCTIVE_ACTIONS and not options.allow_destructive:
        raise ModuleError(
            f"{options.action} of {options.release} is destructive (Helm deletes the release's resources); "
            "set allow_destructive: true to run it"
        )
    builders = {"rollback": _plan_rollback, "upgrade": _plan_upgrade, "uninstall": _plan_uninstall}
    builders[options.action](plan, facts)
    plan.act = True
    return plan


def _refuse_while_running(facts: t.Mapping[str, t.Any], options: RecoverOptions) -> list[str]:
    """The evidence force overrode; raises when there is evidence and no force."""
    lock = facts.get("lock") or {}
    if lock.get("verdict") != "possibly-running":
        return []
    evidence = [str(line) for line in lock.get("evidence") or []]
    if options.force:
        return evidence
    raise ModuleError(
        f"refusing to {options.action} {options.release}: an operation may still be running "
        f"({'; '.join(evidence)}); wait for it, or set force: true if you are sure no Helm client is working on it",
        lock=dict(lock),
    )


def _plan_rollback(plan: RecoverPlan, facts: t.Mapping[str, t.Any]) -> None:
    options = plan.options
    target = options.revision or facts.get("last_known_good_revision")
    if target is None:
        raise ModuleError(
            f"release {options.release} has no known-good revision to roll back to "
            "(none was ever deployed); use upgrade with a chart, or uninstall"
        )
    statuses = {entry.get("revision"): entry.get("status") for entry in facts.get("revisions") or []}
    if target not in statuses:
        raise ModuleError(f"release {options.release} has no revision {target} to roll back to")
    if target == plan.revision:
        raise ModuleError(f"revision {target} is the newest revision of {options.release}; nothing to roll back to")
    if statuses[target] not in KNOWN_GOOD_STATUSES:
        plan.warnings.append(f"revision {target} is {statuses[target]}, not a known-good revision")
    plan.target_revision = int(target)
    plan.call = HelmCall(rollback_argv(options.helm, options.release, options.namespace, int(target), options.flags))
    plan.reason = f"release {options.release} is {plan.status}; rolling back to revision {target}"


def _plan_upgrade(plan: RecoverPlan, facts: t.Mapping[str, t.Any]) -> None:
    options = plan.options
    if plan.status in PENDING_STATUSES:
        raise ModuleError(
            f"helm upgrade of {options.release} would be refused: revision {plan.revision} is {plan.status}. "
            "Unlock it first (helmops.recovery.helm_release_unlock)"
        )
    if not options.chart:
        raise ModuleError(f"upgrade of {options.release} needs the chart reference (chart) it was installed from")
    if not options.chart_version and not chart_is_local(options.chart):
        raise ModuleError(
            f"upgrade of {options.release} needs chart_version: the version is never guessed "
            f"(the release's last chart was {_chart_of(facts)})"
        )
    plan.call = HelmCall(
        upgrade_argv(
            options.helm,
            options.helm_major,
            options.release,
            options.namespace,
            options.chart,
            chart_version=options.chart_version,
            values_files=options.values_files,
            reuse_values=options.reuse_values,
            force=options.force_replace,
            flags=options.flags,
        )
    )
    plan.reason = f"release {options.release} is {plan.status}; upgrading it with {options.chart}"


def _chart_of(facts: t.Mapping[str, t.Any]) -> str:
    revisions = facts.get("revisions") or [{}]
    newest = revisions[-1]
    return f"{newest.get('chart')} {newest.get('chart_version')}"


def _plan_uninstall(plan: RecoverPlan, facts: t.Mapping[str, t.Any]) -> None:
    options = plan.options
    pvcs = (facts.get("risks") or {}).get("pvcs_deleted_on_uninstall") or []
    if pvcs and not options.allow_data_loss:
        names = ", ".join(str(p.get("name", p)) if isinstance(p, dict) else str(p) for p in pvcs)
        raise ModuleError(
            f"uninstalling {options.release} would delete PersistentVolumeClaim(s) without "
            f"helm.sh/resource-policy: keep: {names}. Back up their data, then set allow_data_loss: true",
            pvcs=pvcs,
        )
    plan.call = HelmCall(
        uninstall_argv(
            options.helm,
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


def backup_release(client: KubeClient, driver: Driver, options: RecoverOptions) -> list[str]:
    """Save every record, and the newest revision's values and manifest (what `helm get` shows)."""
    records, _errors = ReleaseStorage(client, driver).history(options.namespace, options.release)
    if not records:
        return []
    newest = records[-1]
    name = f"sh.helm.release.v1.{options.release}"
    paths = [save_records(options.backup_dir, options.namespace, options.release, name, [r.obj for r in records])]
    values = newest.record.release.get("config") or {}
    paths.append(save_text(options.backup_dir, options.namespace, options.release, "values.yaml", _yaml(values)))
    manifest = str(newest.record.release.get("manifest") or "")
    paths.append(save_text(options.backup_dir, options.namespace, options.release, "manifest.yaml", manifest))
    return paths


def _yaml(values: t.Any) -> str:
    return str(yaml.safe_dump(values, default_flow_style=False, sort_keys=True))


def run_helm(plan: RecoverPlan, runner: Runner, env: dict[str, str]) -> str:
    """Run the planned Helm command; its output, or ModuleError with Helm's own message."""
    if plan.call is None:
        raise ModuleError("the plan has no Helm command to run")
    rc, out, err = runner(plan.call.argv, env)
    if rc != 0:
        message = (err or out).strip().splitlines()
        raise ModuleError(
            f"{plan.call.argv[1]} of {plan.options.release} failed (helm exited {rc}): "
            + (" ".join(message[-3:]) if message else "no output"),
            command=plan.call.command_line,
            rc=rc,
        )
    return out


def state_after(client: KubeClient, driver: Driver, options: RecoverOptions) -> dict[str, t.Any]:
    facts = _release_facts(client, driver, options)
    if facts is None:
        return {"status": "absent", "revision": None}
    return {"status": facts.get("status"), "revision": facts.get("latest_revision")}
