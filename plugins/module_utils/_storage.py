# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helm release storage on Kubernetes: the Secret and ConfigMap drivers.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

Listing is paginated and label-selected like Helm's own reads
(``owner=helm[,name=<release>]``); the next page is fetched while the
current one is processed. ``list_meta`` asks the API for object
metadata only (no payloads); ``list_objects`` pages through whole objects so a
caller can keep just the payloads it needs. Every write carries the record's
resourceVersion (updates) or uid + resourceVersion preconditions (deletes).
"""

from __future__ import annotations

import copy
import typing as t
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ._errors import GuardRefused
from ._k8s import FIELD_MANAGER, KubeClient, KubeError, delete_options, path_quote
from ._protobuf import decode_secret_list
from ._release_codec import (
    OWNER,
    Driver,
    RecordMeta,
    ReleaseRecord,
    ReleaseRecordError,
    decode_record,
    driver_kind,
    encode_payload,
    object_name,
    object_ref,
    payload_value_for_object,
    record_meta_from_object,
)

PAGE_SIZE = 250
_METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
# Server-side printing: a row per object, its name and (Secrets) type, no labels.
_TABLE = "application/json;as=Table;g=meta.k8s.io;v=v1"


@dataclass(frozen=True)
class ListedRow:
    """One row of a table listing: the object's name, its type (Secrets only) and,
    when asked for, its metadata (else None: the row does not say its namespace)."""

    name: str
    type: str | None
    metadata: dict[str, t.Any] | None


@dataclass
class StoredRecord:
    """A decoded revision together with the API object it was read from."""

    record: ReleaseRecord
    obj: dict[str, t.Any]


def corrupt_newer(newest: StoredRecord, errors: t.Iterable[ReleaseRecordError]) -> list[ReleaseRecordError]:
    """The corrupt records of a release newer than its newest readable one: with any, the revision Helm would act
    on is unknown, so a guard that reads the newest record refuses."""
    return [error for error in errors if _revision_of_ref(error.object_ref) > newest.record.revision]


def _revision_of_ref(object_ref: str) -> int:
    tail = object_ref.rsplit(".v", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def selector(release: str | None = None, status: str | None = None) -> str:
    parts = [f"owner={OWNER}"]
    if release:
        parts.append(f"name={release}")
    if status:
        parts.append(f"status={status}")
    return ",".join(parts)


class ReleaseStorage:
    """One Helm storage driver over the Kubernetes API."""

    def __init__(self, client: KubeClient, driver: Driver) -> None:
        self.client = client
        self.driver = driver
        self.kind = driver_kind(driver)
        self._resource = "secrets" if driver == "secret" else "configmaps"

    # --- paths -----------------------------------------------------------

    def _collection_path(self, namespace: str | None) -> str:
        if namespace is None:
            return f"/api/v1/{self._resource}"
        return f"/api/v1/namespaces/{path_quote(namespace)}/{self._resource}"

    def _object_path(self, namespace: str, name: str) -> str:
        return f"{self._collection_path(namespace)}/{path_quote(name)}"

    def ref(self, namespace: str, name: str) -> str:
        return object_ref(self.kind, namespace, name)

    # --- reads -----------------------------------------------------------

    def _pages(
        self,
        namespace: str | None,
        label_selector: str,
        metadata_only: bool,
        page_size: int | None,
        *,
        field_selector: str | None = None,
        raw_data: bool = False,
    ) -> t.Iterator[list[dict[str, t.Any]]]:
        """Pages of the listing; the next page is requested while the caller reads this one.

        ``page_size=None`` asks for one unpaginated response, which the API server
        answers from its watch cache (fast for small, selective listings)."""
        where = f"{self._resource} in namespace {namespace}" if namespace else f"{self._resource} in all namespaces"
        headers = {"Accept": _METADATA_ONLY} if metadata_only else None
        protobuf = decode_secret_list if raw_data and self.driver == "secret" and not metadata_only else None

        def fetch(token: str) -> dict[str, t.Any]:
            query = [("labelSelector", label_selector)]
            if field_selector:
                query.append(("fieldSelector", field_selector))
            if page_size:
                query.append(("limit", str(page_size)))
            if token:
                query.append(("continue", token))
            return self.client.request(
                "GET", self._collection_path(namespace), target=where, query=query, headers=headers, protobuf=protobuf
            )

        with ThreadPoolExecutor(max_workers=1) as prefetch:
            pending = prefetch.submit(fetch, "")
            while True:
                page = pending.result()
                token = (page.get("metadata") or {}).get("continue") or ""
                if token:
                    pending = prefetch.submit(fetch, token)
                items = page.get("items") or []
                for item in items:
                    # List items carry no kind of their own; backups and writes need it.
                    item.setdefault("apiVersion", "v1")
                    item.setdefault("kind", self.kind)
                    item.setdefault("metadata", {}).setdefault("namespace", namespace or "")
                yield items
                if not token:
                    return

    def list_meta(
        self, namespace: str | None = None, release: str | None = None, page_size: int = PAGE_SIZE
    ) -> t.Iterator[RecordMeta | ReleaseRecordError]:
        """Every record's metadata, without payloads (sizes are unknown)."""
        for items in self._pages(namespace, selector(release), True, page_size):
            for item in items:
                yield self.meta_or_error(item)

    def list_objects(
        self,
        namespace: str | None = None,
        release: str | None = None,
        page_size: int | None = PAGE_SIZE,
        label_selector: str | None = None,
        *,
        field_selector: str | None = None,
        metadata_only: bool = False,
        raw_data: bool = False,
    ) -> t.Iterator[tuple[RecordMeta | ReleaseRecordError, dict[str, t.Any]]]:
        """Every record's metadata (with size) and its whole object, one page at a time.

        ``label_selector`` replaces the default ``owner=helm[,name=<release>]``.
        With ``metadata_only`` the objects carry metadata alone (no payload, size unknown).
        With ``raw_data`` Secrets are listed in protobuf where the server offers it
        (about twice as fast for payloads); their data values are then memoryviews
        of the stored bytes, which the release codec reads, but which are not JSON:
        such objects are for reading only, never written back or saved.
        """
        label_selector = label_selector or selector(release)
        for items in self._pages(
            namespace, label_selector, metadata_only, page_size, field_selector=field_selector, raw_data=raw_data
        ):
            for item in items:
                yield self.meta_or_error(item), item

    def list_rows(
        self,
        namespace: str | None,
        label_selector: str,
        *,
        field_selector: str | None = None,
        with_metadata: bool = False,
    ) -> list[ListedRow]:
        """One unpaginated table listing (``as=Table``): names and types, metadata only if asked.

        Without metadata a row is a few dozen bytes, but it does not say which namespace
        it is in."""
        query = [("labelSelector", label_selector), ("includeObject", "Metadata" if with_metadata else "None")]
        if field_selector:
            query.append(("fieldSelector", field_selector))
        where = f"{self._resource} in namespace {namespace}" if namespace else f"{self._resource} in all namespaces"
        table = self.client.request(
            "GET", self._collection_path(namespace), target=where, query=query, headers={"Accept": _TABLE}
        )
        columns = [str(column.get("name") or "").lower() for column in table.get("columnDefinitions") or []]
        if table.get("kind") != "Table" or "name" not in columns:
            raise KubeError(f"the API server answered a table listing of {where} with no table", 406)
        name_at = columns.index("name")
        type_at = columns.index("type") if self.driver == "secret" and "type" in columns else None
        rows = []
        for row in table.get("rows") or []:
            cells = row.get("cells") or []
            metadata = (row.get("object") or {}).get("metadata") if with_metadata else None
            rows.append(
                ListedRow(
                    name=str(cells[name_at]) if len(cells) > name_at else "",
                    type=str(cells[type_at]) if type_at is not None and len(cells) > type_at else None,
                    metadata=dict(metadata) if isinstance(metadata, dict) else None,
                )
            )
        return rows

    def meta_or_error(self, item: dict[str, t.Any]) -> RecordMeta | ReleaseRecordError:
        try:
            return record_meta_from_object(item, self.driver)
        except ReleaseRecordError as exc:
            # Kept without its traceback: its frames hold the listed object, and with it a
            # whole page when the page was read in protobuf.
            return exc.with_traceback(None)

    def get_object(self, namespace: str, name: str) -> dict[str, t.Any]:
        return self.client.request("GET", self._object_path(namespace, name), target=self.ref(namespace, name))

    def get(self, namespace: str, release: str, revision: int) -> StoredRecord:
        """One revision, decoded (raises ReleaseRecordError or KubeNotFound)."""
        obj = self.get_object(namespace, object_name(release, revision))
        return StoredRecord(record=self.decode(obj), obj=obj)

    def decode(self, obj: dict[str, t.Any], meta: RecordMeta | None = None) -> ReleaseRecord:
        return decode_record(obj, self.driver, meta)

    def history(self, namespace: str, release: str) -> tuple[list[StoredRecord], list[ReleaseRecordError]]:
        """Every revision of one release, decoded, oldest first; bad records apart."""
        records: list[StoredRecord] = []
        errors: list[ReleaseRecordError] = []
        for meta, obj in self.list_objects(namespace, release):
            if isinstance(meta, ReleaseRecordError):
                errors.append(meta)
                continue
            try:
                records.append(StoredRecord(record=self.decode(obj, meta), obj=obj))
            except ReleaseRecordError as exc:
                errors.append(exc)
        records.sort(key=lambda stored: stored.record.revision)
        return records, errors

    # --- writes ----------------------------------------------------------

    def replace(
        self,
        stored: StoredRecord,
        release: dict[str, t.Any],
        *,
        annotations: dict[str, str] | None = None,
        dry_run: bool = False,
        keep_status_label: bool = False,
    ) -> dict[str, t.Any]:
        """Rewrite a record's payload and status label, guarded by its resourceVersion.

        Everything else on the object (custom labels, createdAt, type) is kept.
        A record changed since it was read makes the API answer 409.
        """
        require_preconditions(stored.record.meta)
        obj = copy.deepcopy(stored.obj)
        meta = obj.setdefault("metadata", {})
        for volatile in ("managedFields", "creationTimestamp", "generation"):
            meta.pop(volatile, None)
        meta["resourceVersion"] = stored.record.meta.resource_version
        labels = meta.setdefault("labels", {})
        if not keep_status_label:  # storage.Deployed selects by this label: a rewrite of the manifest alone keeps it
            labels["status"] = str((release.get("info") or {}).get("status"))
        if annotations:
            meta.setdefault("annotations", {}).update(annotations)
        obj["data"] = dict(obj.get("data") or {})
        obj["data"]["release"] = payload_value_for_object(encode_payload(release), self.driver)
        query = [("fieldManager", FIELD_MANAGER)]
        if dry_run:
            query.append(("dryRun", "All"))
        namespace, name = stored.record.meta.namespace, stored.record.meta.name
        return self.client.request(
            "PUT", self._object_path(namespace, name), target=self.ref(namespace, name), query=query, body=obj
        )

    def create_object(self, obj: dict[str, t.Any]) -> dict[str, t.Any]:
        """Create a record; the API answers 409 if one of that name exists (appeared since it was read)."""
        meta = obj["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        return self.client.request(
            "POST",
            self._collection_path(namespace),
            target=self.ref(namespace, name),
            query=[("fieldManager", FIELD_MANAGER)],
            body=obj,
        )

    def update_object(self, obj: dict[str, t.Any], resource_version: str) -> dict[str, t.Any]:
        """Replace a whole record, guarded by the resourceVersion it was read at."""
        meta = obj["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        if not resource_version:
            raise GuardRefused(
                f"{self.ref(namespace, name)} was read without a resourceVersion; refusing to replace it",
                record=self.ref(namespace, name),
            )
        body = {**obj, "metadata": {**meta, "resourceVersion": resource_version}}
        return self.client.request(
            "PUT",
            self._object_path(namespace, name),
            target=self.ref(namespace, name),
            query=[("fieldManager", FIELD_MANAGER)],
            body=body,
        )

    def delete_object(self, obj: dict[str, t.Any]) -> None:
        """Delete an object (a record, or one that is not valid) only if it is still exactly the one read."""
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        uid, resource_version = str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")
        if not uid or not resource_version:
            raise GuardRefused(
                f"{self.ref(namespace, name)} was read without uid/resourceVersion; refusing a delete",
                record=self.ref(namespace, name),
            )
        body = delete_options(uid, resource_version)
        self.client.request("DELETE", self._object_path(namespace, name), target=self.ref(namespace, name), body=body)

    def delete(self, meta: RecordMeta, *, dry_run: bool = False) -> None:
        """Delete a record only if it is still exactly the one that was read."""
        require_preconditions(meta)
        body = delete_options(meta.uid, meta.resource_version, dry_run)
        self.client.request("DELETE", self._object_path(meta.namespace, meta.name), target=meta.ref, body=body)


def require_preconditions(meta: RecordMeta) -> None:
    """An empty resourceVersion or uid would make the write unconditional: refuse."""
    if not meta.resource_version or not meta.uid:
        raise GuardRefused(
            f"{meta.ref} was read without uid/resourceVersion; refusing an unconditional write", record=meta.ref
        )
