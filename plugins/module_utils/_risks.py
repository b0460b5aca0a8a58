# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What acting on a release would put at risk: the claims an uninstall deletes,
what a rollback deletes, kept objects, missing CRDs and removed APIs, hooks,
large records and history, and the controller that manages it.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.
"""

from __future__ import annotations

import collections
import typing as t

from ._apis import revisions_helm_reads, unserved
from ._controllers import Managed, managed_by_labels
from ._deletions import DeletionSet, uninstall_deletions, update_deletions
from ._diagnosis import LARGE_RECORD_BYTES
from ._live import RESOURCE_POLICY_ANNOTATION, LiveIndex, scoped
from ._release_model import ReleaseView


def risks(
    view: ReleaseView,
    live: LiveIndex,
    controller: Managed,
    *,
    history_threshold: int,
    sizes_from_labels: bool,
    inspect_live: bool,
    deep: bool = True,
) -> dict[str, t.Any]:
    """``sizes_from_labels``: the history came from labels (history="labels"), so a size is known only where the
    payload was read; ``deep``: the payloads and manifests were read (not a brief look at a healthy release)."""
    ordered = view.ordered
    sizes = [r.meta.size or 0 for r in ordered]
    risks: dict[str, t.Any] = {
        "pvcs_deleted_on_uninstall": [],
        "kept_objects": [],
        "missing_crds": [],
        "removed_apis": [],
        "deletions": {},
        "hooks": [
            {
                "name": hook.get("name"),
                "kind": hook.get("kind"),
                "events": hook.get("events") or [],
                "last_run_phase": (hook.get("last_run") or {}).get("phase") or None,
            }
            for hook in view.latest_release.get("hooks") or []
        ],
        "large_records": [
            {"revision": r.meta.revision, "bytes": r.meta.size}
            for r in ordered
            if (r.meta.size or 0) >= LARGE_RECORD_BYTES
        ],
        "history": {
            "count": len(ordered),
            "total_bytes": sum(sizes),
            "largest_bytes": max(sizes) if sizes else 0,
            "threshold": history_threshold,
            "by_status": dict(collections.Counter(r.status for r in ordered)),
        },
        "managed_by": controller.owner,
    }
    if controller.unknown:
        risks["managed_by_unknown"] = controller.unknown
    if sizes_from_labels:
        # Sizes come with payloads: total and largest cover the revisions read whole.
        risks["history"]["sizes_unknown"] = sum(1 for r in ordered if r.meta.size is None)
    if not deep or view.manifests is None:
        # detail="brief", healthy release: no payload or manifest was read, so these are unknown, not empty.
        risks.update(
            pvcs_deleted_on_uninstall=None,
            kept_objects=None,
            missing_crds=None,
            removed_apis=None,
            hooks=None,
            deletions=None,
        )
        return risks
    looked_at = live if inspect_live else None
    uninstall = _uninstall_set(view, looked_at)
    risks["deletions"]["uninstall"] = uninstall.as_dict()
    risks["pvcs_deleted_on_uninstall"] = [
        {"name": claim, "source": deletion.key.kind if claim == deletion.key.name else deletion.key.describe()}
        for deletion in uninstall.data_loss
        for claim in deletion.claims
    ]
    if view.rollback_target is not None:
        risks["deletions"]["rollback"] = _rollback_set(view, view.rollback_target, looked_at).as_dict()
    if view.manifests.errors:
        risks["unreadable_manifests"] = [view.manifests.errors[n] for n in sorted(view.manifests.errors)]
    for key, desired in view.latest_objects:
        annotations = (desired.get("metadata") or {}).get("annotations") or {}
        if str(annotations.get(RESOURCE_POLICY_ANNOTATION, "")).strip().lower() == "keep":
            risks["kept_objects"].append({"kind": key.kind, "name": key.name})
    if inspect_live:
        risks["removed_apis"] = _removed_apis(view, live)
    removed = {(entry["apiVersion"], entry["kind"]) for entry in risks["removed_apis"]}
    for key, desired in dict([*view.latest_objects, *view.deployed_objects]).items():
        not_served = inspect_live and live.discovery.resource(key.api_version, key.kind) is None
        if not_served and (key.api_version, key.kind) not in removed:
            risks["missing_crds"].append({"apiVersion": key.api_version, "kind": key.kind, "name": key.name})
        if not risks["managed_by"]:
            risks["managed_by"] = managed_by_labels(desired)
    return risks


def _removed_apis(view: ReleaseView, live: LiveIndex) -> list[dict[str, t.Any]]:
    """The objects of the revisions Helm reads next (_apis.revisions_helm_reads) whose apiVersion the API no
    longer serves: a version that went away, not a CRD never installed (that is missing_crds)."""
    manifests = view.manifests
    labelled = [r.meta.revision for r in view.ordered if r.meta.status_label == "deployed"]
    found: dict[tuple[str, str, str, str], dict[str, t.Any]] = {}
    for revision in revisions_helm_reads(view.release.history(), labelled):
        for key, _document in manifests.objects(revision) if manifests else []:
            moved = unserved(live.discovery, key.api_version, key.kind)
            if moved is None or not moved.removed:
                continue
            entry = found.setdefault(
                (key.api_version, key.kind, key.namespace, key.name),
                {
                    "apiVersion": key.api_version,
                    "kind": key.kind,
                    "namespace": key.namespace,
                    "name": key.name,
                    "served_as": moved.served_as,
                    "removed_in": moved.removed_in,
                    "revisions": [],
                },
            )
            entry["revisions"].append(revision)
    return list(found.values())


def _uninstall_set(view: ReleaseView, live: LiveIndex | None) -> DeletionSet:
    """What `helm uninstall` would delete: the newest revision's objects (pkg/action/uninstall.go)."""
    revision = view.latest.meta.revision
    deletions = DeletionSet("uninstall", revision)
    objects = view.manifests.read(revision) if view.manifests else None
    if objects is None:
        deletions.objects, deletions.unknown = None, view.manifests.errors.get(revision, "") if view.manifests else ""
        return deletions
    deletions.objects = uninstall_deletions(scoped(objects, live), live.answer if live else None)
    return deletions


def _rollback_set(view: ReleaseView, target: int, live: LiveIndex | None) -> DeletionSet:
    """What `helm rollback <target>` would delete: the newest revision's objects that the
    target's manifest lacks (pkg/action/rollback.go, kube/client.go update)."""
    revision = view.latest.meta.revision
    deletions = DeletionSet("rollback", revision, target)
    manifests = view.manifests
    current = manifests.read(revision) if manifests else None
    wanted = manifests.read(target) if manifests else None
    if current is None or wanted is None or manifests is None:
        deletions.objects = None
        deletions.unknown = manifests.errors.get(revision) or manifests.errors.get(target, "") if manifests else ""
        return deletions
    if live is None:
        deletions.objects = None
        deletions.unknown = "the live objects were not inspected (inspect_live is false)"
        return deletions
    deletions.objects = update_deletions(scoped(current, live), scoped(wanted, live), live.answer)
    return deletions
