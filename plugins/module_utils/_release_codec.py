# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Decode and encode Helm release records exactly as Helm 3 and Helm 4 do.

PRIVATE: this module util is for the collection's own use and may change at
any time without notice.

Pure code: no Ansible and no Kubernetes client imports, so it can be unit
tested on recorded real records.

A stored record is ``base64(gzip(json(release)))`` (Helm's own layer). Secrets
carry that text base64-encoded once more by the API (``Secret.data``);
ConfigMaps carry it as is. Legacy records may hold uncompressed JSON.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime
import gzip
import json
import re
import time
import typing as t
import zlib
from dataclasses import dataclass, field

STORAGE_PREFIX = "sh.helm.release.v1"
SECRET_TYPE = "helm.sh/release.v1"
OWNER = "helm"
SYSTEM_LABELS = ("name", "owner", "status", "version", "createdAt", "modifiedAt")

STATUSES = (
    "unknown",
    "deployed",
    "uninstalled",
    "superseded",
    "failed",
    "uninstalling",
    "pending-install",
    "pending-upgrade",
    "pending-rollback",
)
PENDING_STATUSES = ("pending-install", "pending-upgrade", "pending-rollback")

MAX_RELEASE_NAME_LENGTH = 53
_RELEASE_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_OBJECT_NAME_RE = re.compile(r"^" + re.escape(STORAGE_PREFIX) + r"\.(?P<release>.+)\.v(?P<revision>[1-9][0-9]*)$")
_GZIP_MAGIC = b"\x1f\x8b\x08"

Driver = t.Literal["secret", "configmap"]
DRIVERS: tuple[Driver, ...] = ("secret", "configmap")


class ReleaseRecordError(Exception):
    """A storage object that is not a valid Helm release record.

    ``reason`` is a stable machine-readable code (``bad-base64``, ``bad-gzip``,
    ``bad-json``, ``bad-shape``, ``label-mismatch``, ``not-a-release``, and for
    hostile records ``too-large`` and ``too-deep``).
    """

    def __init__(self, object_ref: str, reason: str, detail: str) -> None:
        super().__init__(f"{object_ref}: {detail}")
        self.object_ref = object_ref
        self.reason = reason
        self.detail = detail


class InvalidNameError(ValueError):
    """A release or namespace name that Helm or Kubernetes would reject."""


def validate_release_name(name: str) -> str:
    """Return ``name`` if Helm accepts it as a release name, else raise."""
    if not isinstance(name, str) or not name:
        raise InvalidNameError("release name must be a non-empty string")
    if len(name) > MAX_RELEASE_NAME_LENGTH:
        raise InvalidNameError(
            f"invalid release name {name[:60]!r}...: longer than {MAX_RELEASE_NAME_LENGTH} characters"
        )
    if not _RELEASE_NAME_RE.match(name):
        raise InvalidNameError(
            f"invalid release name {name!r}: must be lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return name


def validate_namespace_name(name: str) -> str:
    """Return ``name`` if Kubernetes accepts it as a namespace name, else raise."""
    if not isinstance(name, str) or not name or len(name) > 63 or not _NAMESPACE_RE.match(name):
        shown = name[:70] if isinstance(name, str) else repr(name)
        raise InvalidNameError(
            f"invalid namespace name {shown!r}: must be a DNS label (RFC 1123, at most 63 characters)"
        )
    return name


def object_name(release: str, revision: int) -> str:
    """The storage object name Helm uses for a revision."""
    return f"{history_name(release)}.v{revision}"


def history_name(release: str) -> str:
    """The common prefix of a release's storage object names (names its backups)."""
    return f"{STORAGE_PREFIX}.{release}"


def parse_object_name(name: str) -> tuple[str, int] | None:
    """Split ``sh.helm.release.v1.<release>.v<N>`` into (release, N), or None."""
    match = _OBJECT_NAME_RE.match(name)
    if not match:
        return None
    return match.group("release"), int(match.group("revision"))


# --- payload: base64(gzip(json)) --------------------------------------------


# Kubernetes object times (RFC 3339, UTC, seconds).
KUBE_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_now(fmt: str = KUBE_TIME_FORMAT) -> str:
    """Now, in UTC, as text (Kubernetes' RFC 3339 by default). datetime.timezone.utc, not datetime.UTC:
    the modules run on Python 3.10 (ansible-core 2.17's controllers)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime(fmt)


def parse_kube_time(value: str | None) -> float | None:
    """Seconds since the epoch of a Kubernetes timestamp (RFC 3339, UTC), or None."""
    if not value:
        return None
    try:
        return float(calendar.timegm(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


# Helm's own times (info.first_deployed, info.last_deployed): RFC 3339 with up to nanoseconds and an offset.
_HELM_TIME_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def parse_helm_time(value: t.Any) -> float | None:
    """Seconds since the epoch, to the microsecond, of a time in a Helm release record, or None."""
    match = _HELM_TIME_RE.match(value) if isinstance(value, str) else None
    if not match:
        return None
    try:
        seconds = float(calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None
    fraction = float(f"0.{match.group(2)}") if match.group(2) else 0.0
    zone = match.group(3)
    offset = 0 if zone == "Z" else (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds + fraction - offset


class RawNumber(str):
    """A JSON number kept as the exact text Helm wrote, so re-encoding is lossless."""


# Hostile records are bounded (docs/reliability.md): far above any record Helm writes (the API
# server stores at most 1 MiB; typical chart text inflates 5 to 15 times), far below what would
# take a run down.
MAX_INFLATED_BYTES = 64 * 1024 * 1024  # a payload's JSON once inflated
MAX_JSON_DEPTH = 100  # objects and arrays nested in a release's JSON
_SUMMARY_LIMIT = 1024 * 1024  # JSON inflated while looking for a record's summary


def _loads(text: bytes, object_ref: str = "release record") -> t.Any:
    try:
        value = json.loads(text, parse_float=RawNumber, parse_int=RawNumber, parse_constant=RawNumber)
    except RecursionError as exc:
        raise _too_deep(object_ref) from exc
    if text.count(b"{") + text.count(b"[") >= MAX_JSON_DEPTH:  # fewer cannot nest that deep
        _check_depth(value, object_ref)
    return value


def _check_depth(value: t.Any, object_ref: str) -> None:
    """Refuse JSON nested deeper than MAX_JSON_DEPTH: what reads it later (re-encoding, YAML
    backups, Ansible's results) recurses once per level."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= MAX_JSON_DEPTH:
                    raise _too_deep(object_ref)
                stack.append((child, depth + 1))


def _too_deep(object_ref: str) -> ReleaseRecordError:
    return ReleaseRecordError(
        object_ref, "too-deep", f"release data nests JSON more than {MAX_JSON_DEPTH} levels deep; not read"
    )


def _inflate(raw: bytes, object_ref: str) -> bytes:
    """gunzip, refusing more than MAX_INFLATED_BYTES (a gzip bomb) before it is all in memory."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, MAX_INFLATED_BYTES + 1)
    except zlib.error as exc:
        raise ReleaseRecordError(object_ref, "bad-gzip", f"release data is not valid gzip ({exc})") from exc
    if len(body) > MAX_INFLATED_BYTES:
        raise ReleaseRecordError(
            object_ref,
            "too-large",
            f"release data inflates to more than {MAX_INFLATED_BYTES // (1024 * 1024)} MiB (a gzip bomb?); not read",
        )
    if not inflater.eof:
        raise ReleaseRecordError(object_ref, "bad-gzip", "release data is not valid gzip (truncated)")
    if inflater.unused_data:
        raise ReleaseRecordError(object_ref, "bad-gzip", "release data is not valid gzip (data after its end)")
    return body


def decode_payload(text: str | bytes, object_ref: str = "release record") -> dict[str, t.Any]:
    """Decode Helm's payload text (base64, optionally gzip, then JSON)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReleaseRecordError(object_ref, "bad-base64", f"release data is not valid base64 ({exc})") from exc
    if len(raw) > 3 and raw[:3] == _GZIP_MAGIC:
        raw = _inflate(raw, object_ref)
    try:
        release = _loads(raw, object_ref)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReleaseRecordError(object_ref, "bad-json", f"release data is not valid JSON ({exc})") from exc
    if not isinstance(release, dict):
        raise ReleaseRecordError(object_ref, "bad-shape", "release data is JSON but not an object")
    return release


_SUMMARY_CHUNK = 16 * 1024
_DECODER = json.JSONDecoder(parse_float=RawNumber, parse_int=RawNumber, parse_constant=RawNumber)


def decode_summary(text: str | bytes, object_ref: str = "release record") -> dict[str, t.Any]:
    """Decode only what a history listing needs: ``name``, ``info``, ``version``
    and ``chart.metadata``, inflating no more of the payload than that.

    Go writes a release's fields in declaration order (name, info, chart, ...)
    and a chart's ``metadata`` first, so they sit at the start of the JSON; the
    manifest and templates that make records large come later. Falls back to a
    full decode for anything unexpected (legacy records, other orders).
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReleaseRecordError(object_ref, "bad-base64", f"release data is not valid base64 ({exc})") from exc
    if not (len(raw) > 3 and raw[:3] == _GZIP_MAGIC):
        return decode_payload(text, object_ref)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    buffer = b""
    position = 0
    while True:
        chunk = raw[position : position + _SUMMARY_CHUNK]
        position += len(chunk)
        try:
            buffer += inflater.decompress(chunk, _SUMMARY_LIMIT - len(buffer) + 1)
        except zlib.error as exc:
            raise ReleaseRecordError(object_ref, "bad-gzip", f"release data is not valid gzip ({exc})") from exc
        summary = _summary_from_prefix(buffer)
        if summary is not None:
            return summary
        if not chunk or inflater.eof or len(buffer) > _SUMMARY_LIMIT:
            return decode_payload(text, object_ref)  # bounded, with its precise errors


_VALUE_PREFIX = 8 * 1024  # characters of an object's value decoded first for a summary


def summary_from_object(
    obj: t.Mapping[str, t.Any], driver: Driver, object_ref: str = "release record"
) -> dict[str, t.Any]:
    """``decode_summary`` of a storage object's payload, decoding only the start of it.

    The summary sits in the first few KB of the JSON, so only a growing prefix
    of ``data.release`` is base64-decoded (twice for Secrets served as JSON) and
    inflated; the rest of a large record is never touched. Anything unusual
    (legacy JSON, a prefix that is not clean base64, another field order) falls
    back to the whole-payload path with its precise errors.
    """
    value = (obj.get("data") or {}).get("release")
    if isinstance(value, (str, bytes, memoryview)):
        layers = 2 if driver == "secret" and isinstance(value, str) else 1
        # A Secret's stored bytes (protobuf) are 3/4 of its JSON text: the same windows of
        # Helm's payload are read either way, so a damaged record is judged alike.
        length = _VALUE_PREFIX * 3 // 4 if driver == "secret" and layers == 1 else _VALUE_PREFIX
        while length < len(value):
            summary = _summary_from_value_prefix(value[:length], layers)
            if summary is not None:
                return summary
            length *= 4
    return decode_summary(payload_text_from_object(obj, driver), object_ref)


def _summary_from_value_prefix(prefix: str | bytes | memoryview, layers: int) -> dict[str, t.Any] | None:
    """The summary from the start of a value that is Helm's payload text under
    ``layers`` of base64 (the Secret's own, when served as JSON, and Helm's)."""
    try:
        raw = prefix.encode("ascii") if isinstance(prefix, str) else bytes(prefix)
        for _layer in range(layers):
            raw = base64.b64decode(raw[: len(raw) // 4 * 4], validate=True)
    except (binascii.Error, ValueError):  # UnicodeEncodeError is a ValueError
        return None
    if not raw.startswith(_GZIP_MAGIC):
        return None
    try:
        return _summary_from_prefix(zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, _SUMMARY_LIMIT))
    except zlib.error:
        return None


def _summary_from_prefix(buffer: bytes) -> dict[str, t.Any] | None:
    """Parse name, info and chart.metadata from the start of Helm's JSON, or None
    if the buffer does not hold them yet (or is not laid out as Go writes it)."""
    try:
        text = buffer.decode("utf-8")
    except UnicodeDecodeError as exc:  # cut inside a multi-byte character
        text = buffer[: exc.start].decode("utf-8")
    summary: dict[str, t.Any] = {}
    index = 0
    for key in ("name", "info"):
        marker = f'"{key}":'
        found = text.find(marker, index)
        if found < 0 or (key == "name" and found != 1):
            return None
        try:
            summary[key], index = _DECODER.raw_decode(text, found + len(marker))
        except (ValueError, RecursionError):  # the whole-payload path says precisely what is wrong
            return None
    marker = ',"chart":{"metadata":'
    if not text.startswith(marker, index):
        return None
    try:
        metadata, _end = _DECODER.raw_decode(text, index + len(marker))
    except (ValueError, RecursionError):
        return None
    summary["chart"] = {"metadata": metadata}
    return summary


def encode_payload(release: t.Mapping[str, t.Any]) -> str:
    """Encode a release as Helm does: Go-style JSON, gzip (best), base64."""
    try:
        body = go_json_dumps(release).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, only possible in a hand-edited record
        raise ReleaseRecordError(str(release.get("name")), "bad-json", f"cannot re-encode the release ({exc})") from exc
    return base64.b64encode(gzip.compress(body, compresslevel=9, mtime=0)).decode("ascii")


# Go's encoding/json escapes these besides the JSON-mandated ones.
_GO_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_GO_ESCAPE_RE = re.compile('["\\\\<>&\u2028\u2029\x00-\x1f]')


def _go_string(value: str) -> str:
    def replace(match: re.Match[str]) -> str:
        char = match.group(0)
        return _GO_ESCAPES.get(char) or f"\\u{ord(char):04x}"

    return '"' + _GO_ESCAPE_RE.sub(replace, value) + '"'


def go_json_dumps(value: t.Any) -> str:
    """Serialise like Go's json.Marshal: compact, HTML-safe escapes, key order kept."""
    parts: list[str] = []
    _go_json_into(value, parts)
    return "".join(parts)


def _go_json_into(value: t.Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            out.append("," if index else "")
            out.append(_go_string(str(key)) + ":")
            _go_json_into(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            out.append("," if index else "")
            _go_json_into(item, out)
        out.append("]")
    else:
        out.append(_go_scalar(value))


def _go_scalar(value: t.Any) -> str:
    if isinstance(value, RawNumber):
        return str(value)
    if isinstance(value, str):
        return _go_string(value)
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, (int, float)):
        return repr(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


# --- storage objects (Secret / ConfigMap as the API returns them) ------------


def object_ref(kind: str, namespace: str, name: str) -> str:
    return f"{kind} {namespace}/{name}"


def driver_kind(driver: Driver) -> str:
    return "Secret" if driver == "secret" else "ConfigMap"


def payload_text_from_object(obj: t.Mapping[str, t.Any], driver: Driver) -> str:
    """Helm's payload text from an API object (JSON as the API serves it, or a
    Secret listed in protobuf, whose data values are the stored bytes)."""
    meta = obj.get("metadata") or {}
    ref = object_ref(driver_kind(driver), meta.get("namespace", "?"), meta.get("name", "?"))
    data = obj.get("data") or {}
    value = data.get("release")
    if not isinstance(value, (str, bytes, memoryview)):
        raise ReleaseRecordError(ref, "not-a-release", "has no data.release key, so it is not a Helm release record")
    if driver == "configmap" and isinstance(value, str):
        return value
    try:
        stored = value if not isinstance(value, str) else base64.b64decode(value, validate=True)
        return str(stored, "ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ReleaseRecordError(ref, "bad-base64", f"data.release is not valid base64 ({exc})") from exc


def payload_value_for_object(payload_text: str, driver: Driver) -> str:
    """The value to store in ``data.release`` for the given driver."""
    if driver == "configmap":
        return payload_text
    return base64.b64encode(payload_text.encode("ascii")).decode("ascii")


def object_size(obj: t.Mapping[str, t.Any], driver: Driver) -> int:
    """Bytes counted against the 1 MiB limit: Helm's payload text length."""
    data = obj.get("data") or {}
    value = data.get("release")
    if isinstance(value, (bytes, memoryview)):
        return len(value)  # a Secret listed in protobuf: the stored bytes
    if not isinstance(value, str):
        return 0
    if driver == "configmap":
        return len(value)
    # Length of the decoded bytes, without decoding: base64 is 4 chars per 3 bytes.
    return len(value) * 3 // 4 - value.count("=", -2)


@dataclass
class RecordMeta:
    """What the storage object's metadata alone says about a revision."""

    driver: Driver
    namespace: str
    name: str
    release: str
    revision: int
    status_label: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    uid: str
    resource_version: str
    creation_timestamp: str | None
    size: int | None = None

    @property
    def ref(self) -> str:
        return object_ref(driver_kind(self.driver), self.namespace, self.name)

    @property
    def written_at(self) -> float | None:
        """When Helm last wrote the record: its modifiedAt/createdAt labels (Unix
        seconds), else the object's creation time; None if neither is known."""
        stamps = [float(self.labels[k]) for k in ("modifiedAt", "createdAt") if self.labels.get(k, "").isdigit()]
        if stamps:
            return max(stamps)
        return parse_kube_time(self.creation_timestamp)


def record_meta_from_object(obj: t.Mapping[str, t.Any], driver: Driver) -> RecordMeta:
    """Validate a storage object's metadata as a Helm release record."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    name = meta.get("name") or ""
    ref = object_ref(driver_kind(driver), namespace, name)
    labels = dict(meta.get("labels") or {})
    if labels.get("owner") != OWNER:
        raise ReleaseRecordError(ref, "not-a-release", "has no owner=helm label, so it is not a Helm release record")
    if driver == "secret" and obj.get("type") not in (None, SECRET_TYPE):
        raise ReleaseRecordError(
            ref,
            "not-a-release",
            f"carries owner=helm but has type {obj.get('type')!r}, not {SECRET_TYPE!r}, "
            "so it is not a Helm release record",
        )
    parsed = parse_object_name(name)
    if parsed is None:
        raise ReleaseRecordError(
            ref,
            "not-a-release",
            f"carries owner=helm but its name is not of the form {STORAGE_PREFIX}.<release>.v<revision>, "
            "so it is not a Helm release record",
        )
    release, revision = parsed
    if labels.get("name") != release:
        raise ReleaseRecordError(
            ref,
            "label-mismatch",
            f"name label {labels.get('name')!r} disagrees with the object name (release {release!r})",
        )
    if labels.get("version") != str(revision):
        raise ReleaseRecordError(
            ref,
            "label-mismatch",
            f"version label {labels.get('version')!r} disagrees with the object name (revision {revision})",
        )
    size = object_size(obj, driver) if "data" in obj else None
    return RecordMeta(
        driver=driver,
        namespace=namespace,
        name=name,
        release=release,
        revision=revision,
        status_label=labels.get("status"),
        labels=labels,
        annotations=dict(meta.get("annotations") or {}),
        uid=meta.get("uid") or "",
        resource_version=meta.get("resourceVersion") or "",
        creation_timestamp=meta.get("creationTimestamp"),
        size=size,
    )


@dataclass
class ReleaseRecord:
    """A decoded revision: its storage metadata and Helm's release JSON."""

    meta: RecordMeta
    release: dict[str, t.Any] = field(repr=False)

    @property
    def info(self) -> dict[str, t.Any]:
        info = self.release.get("info")
        return info if isinstance(info, dict) else {}

    @property
    def revision(self) -> int:
        return self.meta.revision

    @property
    def status(self) -> str:
        return str(self.info.get("status") or "unknown")

    @property
    def description(self) -> str:
        return str(self.info.get("description") or "")

    @property
    def chart_metadata(self) -> dict[str, t.Any]:
        chart = self.release.get("chart")
        metadata = chart.get("metadata") if isinstance(chart, dict) else None
        return metadata if isinstance(metadata, dict) else {}

    @property
    def status_label_mismatch(self) -> bool:
        return self.meta.status_label is not None and self.meta.status_label != self.status


def decode_record(obj: t.Mapping[str, t.Any], driver: Driver, meta: RecordMeta | None = None) -> ReleaseRecord:
    """Decode and cross-check a whole storage object (metadata and payload).

    ``meta`` may be passed when the object's metadata was already validated.
    """
    meta = meta or record_meta_from_object(obj, driver)
    release = decode_payload(payload_text_from_object(obj, driver), meta.ref)
    _check_payload_shape(meta, release)
    return ReleaseRecord(meta=meta, release=release)


def _check_payload_shape(meta: RecordMeta, release: dict[str, t.Any]) -> None:
    for key, kind in (("name", str), ("info", dict), ("version", RawNumber)):
        value = release.get(key)
        if not isinstance(value, kind) or (kind is str and isinstance(value, RawNumber)):
            raise ReleaseRecordError(meta.ref, "bad-shape", f"release JSON has no valid {key!r} field")
    if release["name"] != meta.release:
        raise ReleaseRecordError(
            meta.ref,
            "label-mismatch",
            f"payload names release {release['name']!r}, the object name says {meta.release!r}",
        )
    if not str(release["version"]).isdigit() or int(release["version"]) != meta.revision:
        raise ReleaseRecordError(
            meta.ref,
            "label-mismatch",
            f"payload is revision {release['version']}, the object name says {meta.revision}",
        )
    status = release["info"].get("status")
    if not isinstance(status, str) or not status:
        raise ReleaseRecordError(meta.ref, "bad-shape", "release JSON has no info.status")


def check_summary_identity(meta: RecordMeta, summary: t.Mapping[str, t.Any]) -> None:
    """A payload (or its summary) must describe the record it is stored in: the same
    release name and revision as the object name, and an ``info.status``. A record
    copied under another name (a duplicate revision) or rewritten by hand fails here."""
    info = summary.get("info")
    if not isinstance(summary.get("name"), str) or not isinstance(info, dict) or not info.get("status"):
        raise ReleaseRecordError(meta.ref, "bad-shape", "payload does not describe a release (name or info.status)")
    if summary["name"] != meta.release:
        raise ReleaseRecordError(
            meta.ref,
            "label-mismatch",
            f"payload names release {summary['name']!r}, the object name says {meta.release!r}",
        )
    if "version" not in summary:
        return  # a summary read from the start of the payload stops before the version
    version = str(summary["version"])
    if not version.isdigit() or int(version) != meta.revision:
        raise ReleaseRecordError(
            meta.ref, "label-mismatch", f"payload is revision {version}, the object name says {meta.revision}"
        )


def with_status(release: t.Mapping[str, t.Any], status: str, description: str | None = None) -> dict[str, t.Any]:
    """A copy of the release JSON with a new ``info.status`` (and description).

    Every other field, known or not, keeps its value and its position.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown Helm status {status!r}")
    info = dict(release.get("info") or {})
    info["status"] = status
    if description is not None:
        info["description"] = description
    updated = dict(release)
    updated["info"] = info
    return updated
