"""The protobuf reader against answers recorded from a real API server
(hack/capture-fixtures --protobuf): the same Secret listing in protobuf and in
JSON must give the release codec the same records, and a body that is not
what was asked for must fail with a message that says why."""

from __future__ import annotations

import base64
import json
import random
import typing as t
from pathlib import Path

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils import _k8s
from ansible_collections.helmops.recovery.plugins.module_utils import _release_codec as codec
from ansible_collections.helmops.recovery.plugins.module_utils._k8s import (
    KubeClient,
    KubeError,
    KubeForbidden,
    KubeNotFound,
)
from ansible_collections.helmops.recovery.plugins.module_utils._protobuf import (
    MEDIA_TYPE,
    ProtobufError,
    decode_secret_list,
    decode_status,
)

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "protobuf" / "secret-lists.json"
RECORDED = json.loads(FIXTURE.read_text())
LISTINGS = [a for a in RECORDED["answers"] if a["status"] == 200]
ERRORS = [a for a in RECORDED["answers"] if a["status"] != 200]
OBJECT_META_READ = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp", "labels", "annotations")


def protobuf_body(answer: dict[str, t.Any]) -> bytes:
    return base64.b64decode(answer["protobuf"])


def as_read(item: dict[str, t.Any]) -> dict[str, t.Any]:
    """What the reader keeps of a JSON list item, data values as the stored bytes."""
    metadata = item["metadata"]
    read: dict[str, t.Any] = {"metadata": {k: metadata[k] for k in OBJECT_META_READ if k in metadata}}
    for key in ("type", "immutable"):
        if key in item:
            read[key] = item[key]
    if "data" in item:
        read["data"] = {k: base64.b64decode(v) for k, v in item["data"].items()}
    return read


def with_bytes(item: dict[str, t.Any]) -> dict[str, t.Any]:
    if "data" not in item:
        return item
    return {**item, "data": {k: bytes(v) for k, v in item["data"].items()}}


def test_the_recording_covers_what_the_reader_must_handle() -> None:
    items = [i for a in LISTINGS for i in a["json"]["items"]]
    helm_versions = {i["metadata"]["labels"].get("name") for i in items if i["type"] == codec.SECRET_TYPE}
    assert {"fx-h3", "fx-h4"} <= helm_versions
    assert any(i.get("immutable") and i["metadata"].get("annotations") for i in items)
    assert any("data" not in i for i in items)
    assert any(a["json"]["metadata"].get("continue") for a in LISTINGS)
    assert all(i["metadata"].get("managedFields") for i in items)  # skipped by the reader
    assert ERRORS and ERRORS[0]["json"]["kind"] == "Status"


@pytest.mark.parametrize("answer", LISTINGS, ids=lambda a: a["path"].split("?")[1].split("&")[1])
def test_a_secret_list_reads_as_its_json_answer(answer: dict[str, t.Any]) -> None:
    decoded = decode_secret_list(protobuf_body(answer))
    assert decoded["metadata"] == answer["json"]["metadata"]
    assert [with_bytes(item) for item in decoded["items"]] == [as_read(item) for item in answer["json"]["items"]]
    assert all(isinstance(v, memoryview) for item in decoded["items"] for v in item.get("data", {}).values())


def outcome(read: t.Callable[[dict[str, t.Any]], t.Any], obj: dict[str, t.Any]) -> t.Any:
    try:
        return read(obj)
    except codec.ReleaseRecordError as exc:
        return ("error", exc.reason, str(exc))


ITEM_PAIRS = [
    pytest.param(pb, js, id=js["metadata"]["name"])
    for pb, js in zip(
        decode_secret_list(protobuf_body(LISTINGS[0]))["items"], LISTINGS[0]["json"]["items"], strict=True
    )
]
READERS = {
    "meta": lambda obj: codec.record_meta_from_object(obj, "secret"),
    "summary": lambda obj: codec.summary_from_object(obj, "secret"),
    "payload": lambda obj: codec.payload_text_from_object(obj, "secret"),
    "size": lambda obj: codec.object_size(obj, "secret"),
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(("from_protobuf", "from_json"), ITEM_PAIRS)
def test_the_codec_reads_a_protobuf_item_as_the_json_item(
    from_protobuf: dict[str, t.Any], from_json: dict[str, t.Any], reader: str
) -> None:
    assert outcome(READERS[reader], from_protobuf) == outcome(READERS[reader], from_json)


def test_release_records_decode_whole_from_protobuf() -> None:
    records = [i for i in decode_secret_list(protobuf_body(LISTINGS[0]))["items"] if i["type"] == codec.SECRET_TYPE]
    assert len(records) == 5
    for obj in records:
        meta = codec.record_meta_from_object(obj, "secret")
        release = codec.decode_payload(codec.payload_text_from_object(obj, "secret"), meta.ref)
        assert (release["name"], int(release["version"])) == (meta.release, meta.revision)


@pytest.mark.parametrize("answer", ERRORS, ids=lambda a: str(a["status"]))
def test_an_error_reads_as_its_json_status(answer: dict[str, t.Any]) -> None:
    status = decode_status(protobuf_body(answer))
    assert {k: status[k] for k in ("status", "message", "reason", "code")} == {
        k: answer["json"][k] for k in ("status", "message", "reason", "code")
    }


# --- bodies that are not what was asked for --------------------------------------


def varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def envelope(kind: str, raw: bytes, encoding: str = "") -> bytes:
    type_meta = field(1, b"v1") + field(2, kind.encode())
    return b"k8s\x00" + field(1, type_meta) + field(2, raw) + (field(3, encoding.encode()) if encoding else b"")


def secret_list(*secrets: bytes) -> bytes:
    return envelope("SecretList", b"".join(field(2, s) for s in secrets))


def secret(metadata: bytes) -> bytes:
    return field(1, metadata)


REAL_LIST = protobuf_body(LISTINGS[0])
MALFORMED = [
    ("json", json.dumps(LISTINGS[0]["json"]).encode(), "does not start with the Kubernetes protobuf prefix"),
    ("a status", protobuf_body(ERRORS[0]), "holds Status, not SecretList"),
    ("no kind", b"k8s\x00" + field(2, b""), "holds an object of no kind, not SecretList"),
    ("compressed", envelope("SecretList", b"", encoding="gzip"), "encoded as 'gzip'"),
    ("cut short", REAL_LIST[: len(REAL_LIST) // 2], "runs past the end of its message"),
    ("endless varint", b"k8s\x00" + b"\x08" + b"\xff" * 11, "varint longer than ten bytes"),
    ("field 0", b"k8s\x00" + b"\x02\x00", "a field numbered 0"),
    ("group", b"k8s\x00" + b"\x0b", "wire type 3"),
    ("varint for a message", secret_list(field(1, 7)), "a number where a string, bytes or message was expected"),
    ("fixed64 for a name", secret_list(secret(b"\x09" + b"abcdefgh")), "a number where a string, bytes or message"),
    ("message for a number", secret_list(field(5, b"x")), "bytes where a number was expected"),
    ("year 10^11", secret_list(secret(field(8, field(1, 10**18)))), "out of range"),
]


@pytest.mark.parametrize(("body", "cause"), [pytest.param(b, c, id=i) for i, b, c in MALFORMED])
def test_a_body_that_is_not_a_secret_list_fails_and_says_why(body: bytes, cause: str) -> None:
    with pytest.raises(ProtobufError, match=cause):
        decode_secret_list(body)


def test_times_and_empty_strings_read_as_json_writes_them() -> None:
    meta = field(1, b"x") + field(2, b"") + field(5, b"") + field(8, field(1, 1795508667) + field(2, 123))
    (item,) = decode_secret_list(secret_list(secret(meta) + field(3, b"")))["items"]
    assert item == {"metadata": {"name": "x", "creationTimestamp": "2026-11-24T08:24:27Z"}}
    zero_time = field(1, b"y") + field(8, b"")
    (item,) = decode_secret_list(secret_list(secret(zero_time)))["items"]
    assert item["metadata"] == {"name": "y", "creationTimestamp": None}


# --- KubeClient: protobuf offered, whatever the server answers ----------------------


class Answer:
    def __init__(self, status: int, content_type: str, data: bytes) -> None:
        self.status, self.data, self.headers = status, data, {"Content-Type": content_type}

    def read(self) -> bytes:
        return self.data

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


class OneAnswer:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.accept = ""
        self.configuration = type("C", (), {"host": "https://127.0.0.1:1"})()

    def param_serialize(self, **kwargs: t.Any) -> tuple[t.Any, ...]:
        self.accept = kwargs["header_params"]["Accept"]
        return kwargs["method"], kwargs["resource_path"], kwargs["header_params"], kwargs.get("body"), None

    def call_api(self, method: str, url: str, **kwargs: t.Any) -> Answer:
        return self.answer


def ask(answer: Answer) -> tuple[t.Any, str]:
    api = OneAnswer(answer)
    kube = KubeClient(api, _k8s.RetryPolicy(attempts=1))
    try:
        result: t.Any = kube.request(
            "GET", "/api/v1/secrets", target="Secrets in all namespaces", protobuf=decode_secret_list
        )
    except KubeError as exc:
        result = exc
    return result, api.accept


def test_the_client_offers_protobuf_and_decodes_a_protobuf_answer() -> None:
    result, accept = ask(Answer(200, MEDIA_TYPE, REAL_LIST))
    assert accept == f"{MEDIA_TYPE}, application/json"
    assert [i["metadata"]["name"] for i in result["items"]] == [
        i["metadata"]["name"] for i in LISTINGS[0]["json"]["items"]
    ]


def test_strings_that_are_not_utf8_read_as_go_writes_them_in_json() -> None:
    annotation = field(12, field(1, b"note") + field(2, b"caf\xe9"))
    (item,) = decode_secret_list(secret_list(secret(field(1, b"x") + annotation)))["items"]
    assert item["metadata"]["annotations"] == {"note": "caf\ufffd"}


def test_the_client_reads_json_when_the_server_answers_json() -> None:
    result, _accept = ask(Answer(200, "application/json", json.dumps(LISTINGS[0]["json"]).encode()))
    assert result == LISTINGS[0]["json"]


def test_a_protobuf_error_becomes_the_same_error_as_a_json_one() -> None:
    from_protobuf, _accept = ask(Answer(404, MEDIA_TYPE, protobuf_body(ERRORS[0])))
    from_json, _accept = ask(Answer(404, "application/json", json.dumps(ERRORS[0]["json"]).encode()))
    assert isinstance(from_protobuf, KubeNotFound) and type(from_protobuf) is type(from_json)
    assert (str(from_protobuf), from_protobuf.reason) == (str(from_json), from_json.reason)


def test_an_unreadable_protobuf_answer_names_the_target_and_the_cause() -> None:
    error, _accept = ask(Answer(200, MEDIA_TYPE, REAL_LIST[:100]))
    assert isinstance(error, KubeError)
    assert str(error).startswith("the API server answered Secrets in all namespaces with a protobuf body")
    assert "runs past the end" in str(error)


def test_an_unreadable_protobuf_error_keeps_its_status() -> None:
    error, _accept = ask(Answer(403, MEDIA_TYPE, b"k8s\x00\x12\x09cut"))
    assert isinstance(error, KubeForbidden)
    assert "forbidden (403) to read Secrets in all namespaces: (a protobuf body that cannot be read:" in str(error)


# --- records kept from a page are copied out of it ------------------------------------


class Storage:
    driver = "secret"


@pytest.mark.parametrize("detach", [True, False])
def test_records_kept_from_a_paginated_listing_no_longer_point_into_its_page(detach: bool) -> None:
    from ansible_collections.helmops.recovery.plugins.module_utils._listing import _Collected

    collected = _Collected(detach=detach)
    for obj in decode_secret_list(protobuf_body(LISTINGS[0]))["items"]:
        try:
            meta: t.Any = codec.record_meta_from_object(obj, "secret")
        except codec.ReleaseRecordError as exc:
            meta = exc
        collected.add(t.cast(t.Any, Storage()), meta, obj)
    kept = [obj for release in collected.releases.values() for obj in release.objects.values()]
    assert len(kept) == 3  # fx-h3: its latest (deployed); fx-h4: latest (pending) and last deployed
    values = [obj["data"]["release"] for obj in kept]
    assert all(isinstance(v, bytes if detach else memoryview) for v in values)
    assert {codec.payload_text_from_object(obj, "secret") for obj in kept} == {str(v, "ascii") for v in values}


# --- a damaged record is judged alike from either answer ------------------------------


def damaged(item: dict[str, t.Any], start: int) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """The item with 40 bytes of its gzip overwritten at ``start``: as JSON and as protobuf serve it."""
    gz = bytearray(base64.b64decode(base64.b64decode(item["data"]["release"])))
    gz[start : start + 40] = b"\xff" * 40
    helm_text = base64.b64encode(bytes(gz))
    as_json = {**item, "data": {"release": base64.b64encode(helm_text).decode("ascii")}}
    return as_json, {**item, "data": {"release": memoryview(helm_text)}}


def with_long_manifest(item: dict[str, t.Any]) -> dict[str, t.Any]:
    """A recorded record with 12 KB of noise appended to its manifest (after the summary in
    Helm's JSON), so that its gzip is longer than every window the summary reads."""
    release = codec.decode_payload(codec.payload_text_from_object(item, "secret"))
    release["manifest"] = f"{release['manifest']}\n# {random.Random(7).randbytes(12000).hex()}\n"
    helm_text = codec.encode_payload(release).encode("ascii")
    return {**item, "data": {"release": base64.b64encode(helm_text).decode("ascii")}}


BIGGEST = with_long_manifest(next(i for i in LISTINGS[0]["json"]["items"] if i["type"] == codec.SECRET_TYPE))


@pytest.mark.parametrize("start", [250, 3000, 4700, 5250, 7000])
def test_a_damaged_payload_gets_the_same_verdict_from_json_and_protobuf(start: int) -> None:
    as_json, as_protobuf = damaged(BIGGEST, start)
    assert outcome(READERS["summary"], as_protobuf) == outcome(READERS["summary"], as_json)


def test_the_recorded_record_is_long_enough_for_every_window() -> None:
    assert len(base64.b64decode(base64.b64decode(BIGGEST["data"]["release"]))) > 7040


def test_a_stray_record_error_keeps_no_frame_and_so_no_page() -> None:
    from ansible_collections.helmops.recovery.plugins.module_utils._storage import ReleaseStorage

    lookalike = next(i for i in decode_secret_list(REAL_LIST)["items"] if i["type"] != codec.SECRET_TYPE)
    error = ReleaseStorage(t.cast(t.Any, None), "secret").meta_or_error(lookalike)
    assert isinstance(error, codec.ReleaseRecordError) and error.__traceback__ is None
