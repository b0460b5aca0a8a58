# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Backups of release records before any destructive write.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

Records hold release values (often secrets): every directory created here is
mode 0700 and every file 0600, created exclusively (never overwritten).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import typing as t
from dataclasses import dataclass

from ._release_codec import RawNumber, history_name, utc_now

with contextlib.suppress(ImportError):  # a missing PyYAML is reported by run_module
    import yaml

    class _ValuesDumper(yaml.SafeDumper):
        """Values as Helm stored them: a number stays the number it was (RawNumber keeps its text)."""

    def _represent_number(dumper: yaml.SafeDumper, value: RawNumber) -> t.Any:
        tag = "tag:yaml.org,2002:int" if value.lstrip("-").isdigit() else "tag:yaml.org,2002:float"
        return dumper.represent_scalar(tag, str(value))

    _ValuesDumper.add_representer(RawNumber, _represent_number)


# The middle part of the name of a backup that helm_release_restore takes of the records it replaces: a restore
# of a whole backup directory leaves these out (restoring one of them undoes that restore).
BEFORE_RESTORE = "before-restore"
# ... and of an export (helm_release_backup export: true), records without this cluster's identity for them.
EXPORT = "export"


class _Stored(t.Protocol):
    """A record as the storage layer returns it (_storage.StoredRecord)."""

    obj: dict[str, t.Any]

    @property
    def record(self) -> t.Any:
        """The decoded record."""


def backup_directory(backup_dir: str, namespace: str, release: str) -> str:
    """<backup_dir>/<namespace>/<release>: every level this creates is mode 0700, and
    the per-release directory always is; a backup_dir the user already has is left as it is."""
    directory = os.path.expanduser(backup_dir)
    for part in ("", namespace, release):
        directory = os.path.join(directory, part) if part else directory
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o700)
            os.chmod(directory, 0o700)  # makedirs' mode is subject to the umask
        elif part:
            os.chmod(directory, 0o700)  # ours: <namespace>/<release> hold release values
    return directory


# The key of a backup's own header, next to the List's items: where and when it was taken, and which records the
# release had then (names and uids), so a restore knows the history it goes back to and what came after.
HEADER = "helmopsRecovery"


@dataclass(frozen=True)
class Taken:
    """Where a backup is taken: the API server, and the release's records there at that moment."""

    cluster: str
    history: tuple[tuple[str, str], ...]  # (object name, uid) of every record of the release
    export: bool = False


def taken_from(cluster: str, objects: t.Iterable[t.Mapping[str, t.Any]], export: bool = False) -> Taken:
    """The Taken of a release whose records are the given API objects."""
    history = []
    for obj in objects:
        metadata = obj.get("metadata") or {}
        history.append((str(metadata.get("name") or ""), str(metadata.get("uid") or "")))
    return Taken(cluster=cluster, history=tuple(sorted(history)), export=export)


def save_records(
    backup_dir: str, namespace: str, release: str, name: str, objects: list[dict[str, t.Any]], *, taken: Taken
) -> str:
    """Write the API objects as a Kubernetes List with this collection's header; return the file's path.
    Written whole under a temporary name, then linked to its own (never over another file), so an
    interrupted write leaves no half file that a restore would meet."""
    directory = backup_directory(backup_dir, namespace, release)
    stamp = utc_now("%Y%m%dT%H%M%S.%fZ")
    path = os.path.join(directory, f"{name}.{stamp}.json")
    header = {
        "cluster": taken.cluster,
        "takenAt": f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:]}",
        "export": taken.export,
        "history": [{"name": object_name, "uid": uid} for object_name, uid in taken.history],
    }
    descriptor, partial = tempfile.mkstemp(prefix=".partial-", suffix=".json", dir=directory)  # mode 0600
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"apiVersion": "v1", "kind": "List", HEADER: header, "items": objects}, handle, indent=1)
        os.link(partial, path)  # fails if the name exists: a backup is never overwritten
    finally:
        os.unlink(partial)
    return path


def save_text(backup_dir: str, namespace: str, release: str, filename: str, text: str) -> str:
    """Write one text file (values, manifest) next to the records; return its path."""
    directory = backup_directory(backup_dir, namespace, release)
    stamp = utc_now("%Y%m%dT%H%M%S.%fZ")
    stem, _dot, extension = filename.rpartition(".")
    path = os.path.join(directory, f"{stem}.{stamp}.{extension}")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    return path


def values_yaml(values: t.Any) -> str:
    """Release values as YAML: every value type Helm stores (numbers, booleans, nulls, nesting)."""
    return str(yaml.dump(values, Dumper=_ValuesDumper, default_flow_style=False, sort_keys=True))


def private_values_file(workdir: str, values: t.Any) -> str:
    """Values Helm must read (``--values``), in a new 0700 directory under ``workdir`` as a 0600
    file: values often hold secrets, so they travel in a file and never on a command line."""
    directory = tempfile.mkdtemp(prefix="values-", dir=workdir)  # mkdtemp creates it 0700
    path = os.path.join(directory, "values.yaml")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(values_yaml(values))
    return path


def export_release(backup_dir: str, namespace: str, release: str, records: t.Sequence[_Stored], cluster: str) -> str:
    """Save every record without this API server's identity for it (uid, resourceVersion, times, managed
    fields), for helm_release_restore to import on another cluster."""
    objects = []
    for stored in records:
        metadata = stored.obj.get("metadata") or {}
        kept = {key: metadata[key] for key in ("name", "namespace", "labels", "annotations") if key in metadata}
        objects.append({**{k: v for k, v in stored.obj.items() if k != "metadata"}, "metadata": kept})
    taken = taken_from(cluster, [stored.obj for stored in records], export=True)
    return save_records(backup_dir, namespace, release, f"{history_name(release)}.{EXPORT}", objects, taken=taken)


def backup_release(
    backup_dir: str, namespace: str, release: str, records: t.Sequence[_Stored], cluster: str
) -> list[str]:
    """Save every record as read, and the newest revision's values and manifest (what `helm get` shows)."""
    if not records:
        return []
    newest = records[-1].record.release
    objects = [r.obj for r in records]
    taken = taken_from(cluster, objects)
    paths = [save_records(backup_dir, namespace, release, history_name(release), objects, taken=taken)]
    paths.append(save_text(backup_dir, namespace, release, "values.yaml", values_yaml(newest.get("config") or {})))
    paths.append(save_text(backup_dir, namespace, release, "manifest.yaml", str(newest.get("manifest") or "")))
    return paths
