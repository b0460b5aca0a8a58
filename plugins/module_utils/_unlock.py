# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Releasing a stale "another operation is in progress" lock: plan, then act.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

``plan_unlock`` reads the newest record and the lock evidence and decides;
``apply_unlock`` writes, every write guarded by the resourceVersion (or delete
preconditions) of the record as the plan read it, so a record that changed in
between is never overwritten.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ._backup import save_records, taken_from
from ._errors import GuardRefused, ModuleError
from ._events import ReleaseEvent, post_event
from ._k8s import KubeClient
from ._lock import DEFAULT_CLIENT_TIMEOUT, LockOptions, stale_or_refuse
from ._release_codec import PENDING_STATUSES, Driver, utc_now, with_status
from ._storage import ReleaseStorage, StoredRecord, corrupt_newer, require_preconditions

METHODS = ("mark_failed", "mark_deployed", "delete_revision")
DESTRUCTIVE_METHODS = ("mark_deployed", "delete_revision")
ANNOTATION_PREFIX = "helmops.recovery"


@dataclass
class UnlockOptions:
    namespace: str
    release: str
    method: str = "mark_failed"
    allow_destructive: bool = False
    force: bool = False
    stale_after: int = 600
    client_timeout: int = DEFAULT_CLIENT_TIMEOUT
    backup_dir: str = "~/.helmops-recovery/backups"


@dataclass
class UnlockPlan:
    options: UnlockOptions
    locked: bool
    reason: str
    stuck: StoredRecord | None = None
    previously_deployed: list[StoredRecord] = field(default_factory=list)
    lock: dict[str, t.Any] = field(default_factory=dict)
    overridden: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    resume: bool = False  # finish an interrupted mark_deployed (supersede older deployed records)
    history: list[StoredRecord] = field(default_factory=list)  # every record as read, for the backup's header

    @property
    def previous_status(self) -> str | None:
        return self.stuck.record.status if self.stuck else None

    @property
    def new_status(self) -> str | None:
        if not self.locked:
            return self.previous_status
        return {"mark_failed": "failed", "mark_deployed": "deployed", "delete_revision": None}[self.options.method]

    def diff(self) -> dict[str, t.Any]:
        """A short before/after: revision, status, description; never values or manifests."""
        if not self.stuck:
            return {"before": {}, "after": {}}
        record = self.stuck.record
        before = {"revision": record.revision, "status": record.status, "description": record.description}
        if self.resume:
            superseded = [f"revision {o.record.revision}" for o in self.previously_deployed]
            return {
                "before": {**before, **dict.fromkeys(superseded, "deployed")},
                "after": {**before, **dict.fromkeys(superseded, "superseded")},
            }
        if not self.locked:
            return {"before": before, "after": before}
        after: dict[str, t.Any] = (
            {}
            if self.options.method == "delete_revision"
            else {"revision": record.revision, "status": self.new_status, "description": self.description()}
        )
        for older in self.previously_deployed if self.options.method == "mark_deployed" else []:
            before[f"revision {older.record.revision}"] = older.record.status
            after[f"revision {older.record.revision}"] = "superseded"
        return {"before": before, "after": after}

    def description(self) -> str:
        verb = {"mark_failed": "Unlocked", "mark_deployed": "Marked deployed"}.get(self.options.method, "Deleted")
        return f"{verb} by helmops.recovery: was {self.previous_status} (stale lock)"


def plan_unlock(client: KubeClient, driver: Driver, options: UnlockOptions, now: float) -> UnlockPlan:
    """Decide what to do; raises ModuleError when a guard refuses."""
    if options.method not in METHODS:
        raise ModuleError(f"unknown method {options.method!r}; use one of {', '.join(METHODS)}")
    storage = ReleaseStorage(client, driver)
    records, errors = storage.history(options.namespace, options.release)
    if not records:
        detail = f" ({len(errors)} corrupt record(s): {errors[0]})" if errors else ""
        raise ModuleError(
            f"release {options.release!r} not found in namespace {options.namespace} ({storage.kind} records){detail}"
        )
    stuck = records[-1]
    history = records
    if corrupt_newer(stuck, errors):
        raise ModuleError(
            f"a newer record of {options.release!r} is corrupt, so the newest revision is unknown: "
            + "; ".join(str(error) for error in errors)
        )
    if stuck.record.status not in PENDING_STATUSES:
        reason = (
            f"release {options.release} is not locked: "
            f"its newest revision {stuck.record.revision} is {stuck.record.status}"
        )
        plan = UnlockPlan(options, locked=False, reason=reason, stuck=stuck, history=history)
        _resume_mark_deployed(plan, records)
        return plan
    plan = UnlockPlan(options, locked=True, reason="", stuck=stuck, history=history)
    if stuck.record.status_label_mismatch and not options.force:
        raise ModuleError(
            f"refusing to unlock {options.release} revision {stuck.record.revision}: its status label says "
            f"{stuck.record.meta.status_label!r} but its payload says {stuck.record.status!r}, so the record was "
            "changed outside Helm. Check it with helm_release_facts, or set force: true to rewrite both.",
            revision=stuck.record.revision,
        )
    if options.method in DESTRUCTIVE_METHODS and not options.allow_destructive:
        raise ModuleError(
            f"method {options.method} is destructive ("
            + (
                "it records revision {rev} as deployed without checking the cluster matches it"
                if options.method == "mark_deployed"
                else "Helm forgets revision {rev} and its values"
            ).format(rev=stuck.record.revision)
            + "); set allow_destructive: true to use it",
            revision=stuck.record.revision,
        )
    # The verdict reads the same records the plan acts on; every write then carries their
    # resourceVersion, so a record that moves after this read is never overwritten.
    plan.lock, plan.overridden = stale_or_refuse(
        client,
        options.namespace,
        stuck.record.release,
        stuck.record.meta.written_at,
        options=LockOptions(options.stale_after, options.client_timeout),
        now=now,
        force=options.force,
        refusing=f"refusing to unlock {options.release} revision {stuck.record.revision} ({stuck.record.status})",
    )
    plan.previously_deployed = [r for r in records[:-1] if r.record.status == "deployed"]
    if options.method == "delete_revision" and len(records) == 1:
        plan.warnings.append(
            f"revision {stuck.record.revision} is the release's only record: after deleting it Helm no longer knows "
            f"{options.release}, and its live resources in {options.namespace} become orphaned"
        )
    if options.method == "mark_deployed":
        plan.warnings.append(
            f"revision {stuck.record.revision} is now recorded as deployed; the cluster may not match its manifest "
            "(check with helm_release_facts)"
        )
    plan.reason = f"revision {stuck.record.revision} is {stuck.record.status} and the lock is stale"
    return plan


def _resume_mark_deployed(plan: UnlockPlan, records: list[StoredRecord]) -> None:
    """A mark_deployed run that stopped between its writes leaves the newest revision
    deployed (and annotated by us) and an older one still deployed: finish it."""
    stuck = _stuck_record(plan)
    annotations = stuck.record.meta.annotations
    if (
        plan.options.method != "mark_deployed"
        or stuck.record.status != "deployed"
        or annotations.get(f"{ANNOTATION_PREFIX}/unlock-method") != "mark_deployed"
    ):
        return
    older = [r for r in records[:-1] if r.record.status == "deployed"]
    if older:
        plan.resume = True
        plan.previously_deployed = older
        revisions = ", ".join(str(r.record.revision) for r in older)
        plan.reason = (
            f"revision {stuck.record.revision} was marked deployed by a run that stopped before it superseded "
            f"revision(s) {revisions}; finishing that"
        )


def _stuck_record(plan: UnlockPlan) -> StoredRecord:
    if plan.stuck is None:
        raise GuardRefused(f"{plan.options.namespace}/{plan.options.release}: the unlock plan has no record to act on")
    return plan.stuck


def _stuck(plan: UnlockPlan) -> StoredRecord:
    if plan.stuck is None or not plan.locked:
        raise GuardRefused(
            f"{plan.options.namespace}/{plan.options.release}: the unlock plan has no locked revision to act on"
        )
    return plan.stuck


def backup(plan: UnlockPlan, cluster: str) -> str:
    """Save the records about to change, as the API returned them (mode 0600)."""
    stuck = _stuck_record(plan) if plan.resume else _stuck(plan)
    objects = [] if plan.resume else [stuck.obj]
    objects += [r.obj for r in plan.previously_deployed if plan.options.method == "mark_deployed"]
    taken = taken_from(cluster, [r.obj for r in plan.history])
    options = plan.options
    name = stuck.record.meta.name
    return save_records(options.backup_dir, options.namespace, options.release, name, objects, taken=taken)


def apply_unlock(client: KubeClient, driver: Driver, plan: UnlockPlan) -> None:
    """Write the plan; every write carries the plan's resourceVersion."""
    stuck = _stuck(plan)
    storage = ReleaseStorage(client, driver)
    for stored in [stuck, *plan.previously_deployed]:  # every record guarded before the first write
        require_preconditions(stored.record.meta)
    now = utc_now()
    annotations = {
        f"{ANNOTATION_PREFIX}/unlocked-at": now,
        f"{ANNOTATION_PREFIX}/unlock-method": plan.options.method,
        f"{ANNOTATION_PREFIX}/previous-status": str(plan.previous_status),
    }
    if plan.options.method == "delete_revision":
        storage.delete(stuck.record.meta)
    else:
        new_status = str(plan.new_status)
        storage.replace(
            stuck, with_status(stuck.record.release, new_status, plan.description()), annotations=annotations
        )
        if plan.options.method == "mark_deployed":
            # After the new deployed record exists: a race here leaves two deployed
            # labels (Helm takes the newest), never none; a second run finishes it.
            supersede_older(client, driver, plan)


def supersede_older(client: KubeClient, driver: Driver, plan: UnlockPlan) -> None:
    """Mark the older deployed records superseded, each guarded by its resourceVersion."""
    storage = ReleaseStorage(client, driver)
    now = utc_now()
    for older in plan.previously_deployed:
        storage.replace(
            older,
            with_status(older.record.release, "superseded", older.record.description),
            annotations={f"{ANNOTATION_PREFIX}/superseded-at": now},
        )


def record_event(client: KubeClient, plan: UnlockPlan) -> str | None:
    """A Kubernetes Event on the unlocked record; returns a warning if it failed."""
    meta = _stuck(plan).record.meta
    event = ReleaseEvent(
        namespace=meta.namespace,
        release=plan.options.release,
        record_name=meta.name,
        driver=meta.driver,
        reason="HelmReleaseUnlocked",
        action=plan.options.method,
        note=(
            f"helmops.recovery {plan.options.method}: release {plan.options.release} revision {meta.revision} "
            f"was {plan.previous_status}"
        ),
        module="helm_release_unlock",
        name_hint="unlock",
    )
    return post_event(client, event)
