# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What Helm itself will delete when it uninstalls, rolls back or upgrades a
release, and which of those deletions lose data.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

Pure: the caller passes the parsed manifests of the revisions Helm will read
and a way to look at live objects. Each rule follows Helm's own code (the same
in Helm 3.22 and Helm 4.3):

- ``helm uninstall`` deletes the objects of the **newest** revision's manifest
  (pkg/action/uninstall.go: ``rels[len(rels)-1]``), except documents whose
  *manifest* annotation ``helm.sh/resource-policy``, trimmed and lower-cased,
  is ``keep``; a document with that annotation set to anything else is neither
  kept nor deleted (pkg/action/resource_policy.go), and hook documents are not
  part of the release (pkg/releaseutil/manifest_sorter.go).
- ``helm rollback`` and ``helm upgrade`` delete the objects of the *current*
  manifest that the *target* manifest lacks, matched by API group, kind,
  namespace and name (kube/client.go ``update``, ``ResourceList.Difference``),
  skipping objects that no longer exist and those whose **live** annotation is
  exactly ``keep``. For a rollback the current manifest is the newest
  revision's (pkg/action/rollback.go ``Releases.Last``); for an upgrade it is
  the newest revision labelled deployed, or the newest one when it failed and
  none is deployed (pkg/action/upgrade.go ``prepareUpgrade``). ``--force`` and
  ``--force-replace`` replace objects in place (PUT); they delete nothing more.

A deletion loses data when it removes a PersistentVolumeClaim, a StatefulSet
whose claims are deleted with it, a CustomResourceDefinition (and so every
object of its kind), a Namespace (and everything in it), or a PersistentVolume
whose reclaim policy deletes its storage.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ._live import LiveAnswer
from ._manifest import ObjectKey, annotations_of, is_hook

RESOURCE_POLICY_ANNOTATION = "helm.sh/resource-policy"
KEEP = "keep"

LiveLookup = t.Callable[[ObjectKey], LiveAnswer]


@dataclass(frozen=True)
class Deletion:
    key: ObjectKey
    data: str = ""  # why deleting it loses data; "" when it does not
    unverified: str = ""  # why the live object could not be checked (counted as deleted)
    claims: tuple[str, ...] = ()  # the PersistentVolumeClaims it takes with it (name patterns)

    def as_dict(self) -> dict[str, t.Any]:
        entry = {
            "kind": self.key.kind,
            "namespace": self.key.namespace,
            "name": self.key.name,
            "data": self.data or None,
        }
        if self.unverified:
            entry["unverified"] = self.unverified
        return entry

    def describe(self) -> str:
        text = self.key.describe()
        if self.data:
            text += f" ({self.data})"
        if self.unverified:
            text += f" [not verified: {self.unverified}]"
        return text


@dataclass
class DeletionSet:
    """What one Helm action would delete; ``objects`` is None when it cannot be known."""

    action: str  # "uninstall", "rollback", "upgrade"
    revision: int | None  # the revision whose manifest Helm deletes from
    target: int | None = None  # the revision a rollback goes to
    objects: list[Deletion] | None = field(default_factory=list)
    unknown: str = ""  # why objects is None

    @property
    def data_loss(self) -> list[Deletion]:
        return [deletion for deletion in self.objects or [] if deletion.data]

    @property
    def loses_data(self) -> bool | None:
        """True or False; None when the deletions are unknown (a guard treats that as True)."""
        return None if self.objects is None else bool(self.data_loss)

    def as_dict(self) -> dict[str, t.Any]:
        entry: dict[str, t.Any] = {
            "revision": self.revision,
            "objects": None if self.objects is None else [d.as_dict() for d in self.objects],
            "data_loss": self.loses_data,
            "unknown": self.unknown or None,
        }
        if self.action == "rollback":
            entry["target"] = self.target
        return entry

    def refusal(self) -> str:
        """Why this action needs allow_data_loss, or "" when it loses no data."""
        if self.objects is None:
            return f"the objects it would delete cannot be known ({self.unknown})"
        if not self.data_loss:
            return ""
        return "it would delete " + "; ".join(deletion.describe() for deletion in self.data_loss)


def uninstall_deletions(
    objects: t.Sequence[tuple[ObjectKey, dict[str, t.Any]]], live: LiveLookup | None = None
) -> list[Deletion]:
    """What `helm uninstall` deletes, from the newest revision's parsed manifest."""
    deletions = []
    for key, document in objects:
        if is_hook(document):
            continue
        policy = annotations_of(document).get(RESOURCE_POLICY_ANNOTATION)
        if policy is not None:
            # kept when "keep" (trimmed, any case); any other value: neither kept nor deleted.
            continue
        answer = live(key) if live else LiveAnswer(document)
        if answer.obj is None and not answer.unreadable:
            continue  # nothing left to delete
        deletions.append(_deletion(key, document, answer))
    return deletions


def update_deletions(
    current: t.Sequence[tuple[ObjectKey, dict[str, t.Any]]],
    target: t.Sequence[tuple[ObjectKey, dict[str, t.Any]]],
    live: LiveLookup,
) -> list[Deletion]:
    """What a rollback or upgrade from ``current`` to ``target`` deletes."""
    wanted = {key.identity for key, _document in target}
    deletions = []
    for key, document in current:
        if key.identity in wanted:
            continue
        answer = live(key)
        if answer.obj is None and not answer.unreadable:
            continue  # Helm skips what it cannot get
        if answer.obj is not None and annotations_of(answer.obj).get(RESOURCE_POLICY_ANNOTATION) == KEEP:
            continue
        deletions.append(_deletion(key, document, answer))
    return deletions


def _deletion(key: ObjectKey, document: dict[str, t.Any], answer: LiveAnswer) -> Deletion:
    reason, claims = holds_data(key, answer.obj or document)
    return Deletion(key, reason, answer.unreadable, claims)


def holds_data(key: ObjectKey, obj: t.Mapping[str, t.Any]) -> tuple[str, tuple[str, ...]]:
    """Why deleting this object (live where known, else as rendered) loses data ("" if it
    does not), and the claims deleted with it."""
    spec = obj.get("spec")
    rule = _DATA_RULES.get((key.group, key.kind))
    return rule(key, spec if isinstance(spec, dict) else {}) if rule else ("", ())


def _claim(key: ObjectKey, spec: dict[str, t.Any]) -> tuple[str, tuple[str, ...]]:
    return "a PersistentVolumeClaim: its volume's data", (key.name,)


def _statefulset(key: ObjectKey, spec: dict[str, t.Any]) -> tuple[str, tuple[str, ...]]:
    policy = spec.get("persistentVolumeClaimRetentionPolicy")
    templates = [
        str((template.get("metadata") or {}).get("name"))
        for template in spec.get("volumeClaimTemplates") or []
        if isinstance(template, dict)
    ]
    if not (isinstance(policy, dict) and policy.get("whenDeleted") == "Delete" and templates):
        return "", ()
    claims = tuple(f"{name}-{key.name}-*" for name in templates)
    return f"its claims {', '.join(claims)} are deleted with it (whenDeleted: Delete)", claims


def _custom_resource_definition(key: ObjectKey, spec: dict[str, t.Any]) -> tuple[str, tuple[str, ...]]:
    return "every object of this custom resource is deleted with it", ()


def _namespace(key: ObjectKey, spec: dict[str, t.Any]) -> tuple[str, tuple[str, ...]]:
    return "everything in the namespace is deleted with it", ()


def _volume(key: ObjectKey, spec: dict[str, t.Any]) -> tuple[str, tuple[str, ...]]:
    if spec.get("persistentVolumeReclaimPolicy") != "Delete":
        return "", ()
    return "its storage is deleted with it (persistentVolumeReclaimPolicy: Delete)", ()


_DATA_RULES: dict[tuple[str, str], t.Callable[[ObjectKey, dict[str, t.Any]], tuple[str, tuple[str, ...]]]] = {
    ("", "PersistentVolumeClaim"): _claim,
    ("apps", "StatefulSet"): _statefulset,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _custom_resource_definition,
    ("", "Namespace"): _namespace,
    ("", "PersistentVolume"): _volume,
}
