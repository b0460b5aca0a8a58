"""The release codec against records written by real Helm 3 and Helm 4.

Fixtures come from hack/capture-fixtures: storage objects as the API served
them, with real `helm history -o json` as the oracle.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import typing as t
from pathlib import Path

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils import _release_codec as codec

FIXTURES = sorted((Path(__file__).resolve().parents[2] / "fixtures" / "records").glob("*.json"))


def load(path: Path) -> dict[str, t.Any]:
    return t.cast(dict[str, t.Any], json.loads(path.read_text()))


def all_objects() -> list[tuple[str, codec.Driver, dict[str, t.Any], dict[str, t.Any]]]:
    """(id, driver, object, helm-history entry) for every recorded revision."""
    cases = []
    for path in FIXTURES:
        fixture = load(path)
        history = {entry["revision"]: entry for entry in fixture["helm_history"]}
        for obj in fixture["objects"]:
            revision = int(obj["metadata"]["labels"]["version"])
            cases.append((f"{path.stem}-v{revision}", fixture["driver"], obj, history[revision]))
    return cases


CASES = all_objects()
IDS = [case[0] for case in CASES]


def test_fixtures_cover_both_helm_majors_and_drivers() -> None:
    names = {path.stem.split("-", 2)[0] + "-" + path.stem.split("-", 2)[1] for path in FIXTURES}
    assert names == {"helm3-secret", "helm3-configmap", "helm4-secret", "helm4-configmap"}


@pytest.mark.parametrize(("case_id", "driver", "obj", "helm_says"), CASES, ids=IDS)
def test_decode_agrees_with_real_helm_history(
    case_id: str, driver: codec.Driver, obj: dict[str, t.Any], helm_says: dict[str, t.Any]
) -> None:
    record = codec.decode_record(obj, driver)
    assert record.revision == helm_says["revision"]
    assert record.status == helm_says["status"]
    assert record.description == helm_says["description"]
    assert f"{record.chart_metadata['name']}-{record.chart_metadata['version']}" == helm_says["chart"]
    assert record.chart_metadata.get("appVersion") == helm_says["app_version"]
    assert not record.status_label_mismatch


def _helm_json(obj: dict[str, t.Any], driver: codec.Driver) -> bytes:
    return gzip.decompress(base64.b64decode(codec.payload_text_from_object(obj, driver)))


@pytest.mark.parametrize(("case_id", "driver", "obj", "helm_says"), CASES, ids=IDS)
def test_reencoding_reproduces_helms_json_byte_for_byte(
    case_id: str, driver: codec.Driver, obj: dict[str, t.Any], helm_says: dict[str, t.Any]
) -> None:
    original = _helm_json(obj, driver)
    release = codec.decode_record(obj, driver).release
    assert codec.go_json_dumps(release).encode() == original
    reencoded = codec.encode_payload(release)
    assert gzip.decompress(base64.b64decode(reencoded)) == original


@pytest.mark.parametrize(("case_id", "driver", "obj", "helm_says"), CASES, ids=IDS)
def test_status_change_keeps_every_other_field(
    case_id: str, driver: codec.Driver, obj: dict[str, t.Any], helm_says: dict[str, t.Any]
) -> None:
    before = json.loads(_helm_json(obj, driver))
    release = codec.decode_record(obj, driver).release
    changed = codec.with_status(release, "failed", "unlocked by a test")
    after = json.loads(gzip.decompress(base64.b64decode(codec.encode_payload(changed))))
    assert after["info"]["status"] == "failed"
    assert after["info"]["description"] == "unlocked by a test"
    for key in ("status", "description"):
        before["info"].pop(key)
        after["info"].pop(key)
    assert after == before
    # the input is not modified
    assert codec.decode_record(obj, driver).status == helm_says["status"]


def test_helm4_only_fields_survive_a_round_trip() -> None:
    fixture = load(next(p for p in FIXTURES if p.stem.startswith("helm4-secret-deployed")))
    release = codec.decode_record(fixture["objects"][-1], "secret").release
    assert release["apply_method"] in ("csa", "ssa")
    changed = json.loads(gzip.decompress(base64.b64decode(codec.encode_payload(codec.with_status(release, "failed")))))
    assert changed["apply_method"] == release["apply_method"]
    assert "schemamodtime" in changed["chart"]
    assert list(changed) == list(release)


def test_helm3_empty_times_survive_a_round_trip() -> None:
    fixture = load(next(p for p in FIXTURES if p.stem.startswith("helm3-secret-deployed")))
    release = codec.decode_record(fixture["objects"][0], "secret").release
    assert release["info"]["deleted"] == ""
    text = codec.go_json_dumps(codec.with_status(release, "failed"))
    assert '"deleted":""' in text
    assert f'"first_deployed":"{release["info"]["first_deployed"]}"' in text


def test_legacy_uncompressed_records_decode() -> None:
    fixture = load(FIXTURES[0])
    obj = copy.deepcopy(fixture["objects"][0])
    driver: codec.Driver = fixture["driver"]
    plain = base64.b64encode(_helm_json(obj, driver)).decode()
    obj["data"]["release"] = codec.payload_value_for_object(plain, driver)
    assert codec.decode_record(obj, driver).revision == int(obj["metadata"]["labels"]["version"])


# --- corrupt and hostile records ------------------------------------------------

SECRET = load(next(p for p in FIXTURES if p.stem == "helm3-secret-deployed"))["objects"][0]
CONFIGMAP = load(next(p for p in FIXTURES if p.stem == "helm4-configmap-deployed"))["objects"][0]


def _with_payload(obj: dict[str, t.Any], driver: codec.Driver, raw: bytes) -> dict[str, t.Any]:
    broken = copy.deepcopy(obj)
    broken["data"]["release"] = codec.payload_value_for_object(base64.b64encode(raw).decode(), driver)
    return broken


def _json_of(obj: dict[str, t.Any], driver: codec.Driver) -> bytes:
    return _helm_json(obj, driver)


def _mutate(obj: dict[str, t.Any], path: str, value: t.Any) -> dict[str, t.Any]:
    broken = copy.deepcopy(obj)
    target = broken
    keys = path.split(".")
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    if value is None:
        target.pop(keys[-1], None)
    else:
        target[keys[-1]] = value
    return broken


def _payload_json(obj: dict[str, t.Any], driver: codec.Driver, edit: t.Callable[[dict[str, t.Any]], t.Any]) -> dict:
    release = json.loads(_json_of(obj, driver))
    edited = edit(release)
    return _with_payload(obj, driver, gzip.compress(json.dumps(edited if edited is not None else release).encode()))


CORRUPT: list[tuple[str, codec.Driver, dict[str, t.Any], str]] = []
for _driver, _obj in (("secret", SECRET), ("configmap", CONFIGMAP)):
    _d = t.cast(codec.Driver, _driver)
    CORRUPT += [
        (
            f"{_driver}-inner-base64",
            _d,
            _mutate(_obj, "data.release", codec.payload_value_for_object("@@@!", _d)),
            "bad-base64",
        ),
        (f"{_driver}-truncated-gzip", _d, _with_payload(_obj, _d, gzip.compress(_json_of(_obj, _d))[:40]), "bad-gzip"),
        (f"{_driver}-truncated-json", _d, _with_payload(_obj, _d, gzip.compress(_json_of(_obj, _d)[:-7])), "bad-json"),
        (f"{_driver}-json-array", _d, _with_payload(_obj, _d, gzip.compress(b"[1, 2]")), "bad-shape"),
        (f"{_driver}-no-info", _d, _payload_json(_obj, _d, lambda r: r.pop("info")), "bad-shape"),
        (f"{_driver}-no-status", _d, _payload_json(_obj, _d, lambda r: r["info"].pop("status")), "bad-shape"),
        (f"{_driver}-version-as-string", _d, _payload_json(_obj, _d, lambda r: r.update(version="1")), "bad-shape"),
        (
            f"{_driver}-payload-other-release",
            _d,
            _payload_json(_obj, _d, lambda r: r.update(name="other")),
            "label-mismatch",
        ),
        (
            f"{_driver}-payload-other-revision",
            _d,
            _payload_json(_obj, _d, lambda r: r.update(version=7)),
            "label-mismatch",
        ),
        (f"{_driver}-name-label", _d, _mutate(_obj, "metadata.labels.name", "other"), "label-mismatch"),
        (f"{_driver}-version-label", _d, _mutate(_obj, "metadata.labels.version", "9"), "label-mismatch"),
        (f"{_driver}-no-owner", _d, _mutate(_obj, "metadata.labels.owner", None), "not-a-release"),
        (f"{_driver}-no-release-key", _d, _mutate(_obj, "data", {"other": "eA=="}), "not-a-release"),
        (f"{_driver}-foreign-name", _d, _mutate(_obj, "metadata.name", "my-app-credentials"), "not-a-release"),
    ]
CORRUPT.append(("secret-outer-base64", "secret", _mutate(SECRET, "data.release", "not base64!"), "bad-base64"))
CORRUPT.append(("secret-opaque-type", "secret", _mutate(SECRET, "type", "Opaque"), "not-a-release"))


@pytest.mark.parametrize(("case_id", "driver", "obj", "reason"), CORRUPT, ids=[c[0] for c in CORRUPT])
def test_corrupt_records_raise_a_typed_error_naming_the_object(
    case_id: str, driver: codec.Driver, obj: dict[str, t.Any], reason: str
) -> None:
    with pytest.raises(codec.ReleaseRecordError) as caught:
        codec.decode_record(obj, driver)
    assert caught.value.reason == reason
    kind = "Secret" if driver == "secret" else "ConfigMap"
    assert str(caught.value).startswith(f"{kind} {obj['metadata']['namespace']}/{obj['metadata']['name']}: ")


def test_status_label_disagreeing_with_payload_is_flagged_not_fatal() -> None:
    obj = _mutate(SECRET, "metadata.labels.status", "deployed")
    record = codec.decode_record(obj, "secret")
    assert record.status == "superseded"
    assert record.status_label_mismatch


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("web", True),
        ("my-app.v2", True),
        ("a" * 53, True),
        ("a" * 54, False),
        ("", False),
        ("Web", False),
        ("-web", False),
        ("web-", False),
        ("../etc/passwd", False),
        ("web/../../x", False),
        ("web_1", False),
    ],
)
def test_release_name_validation(name: str, valid: bool) -> None:
    if valid:
        assert codec.validate_release_name(name) == name
    else:
        with pytest.raises(codec.InvalidNameError):
            codec.validate_release_name(name)


@pytest.mark.parametrize(
    ("name", "valid"),
    [("default", True), ("a" * 63, True), ("a" * 64, False), ("kube/system", False), ("..", False), ("Prod", False)],
)
def test_namespace_name_validation(name: str, valid: bool) -> None:
    if valid:
        assert codec.validate_namespace_name(name) == name
    else:
        with pytest.raises(codec.InvalidNameError):
            codec.validate_namespace_name(name)


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("sh.helm.release.v1.web.v7", ("web", 7)),
        ("sh.helm.release.v1.my.app.v12", ("my.app", 12)),
        ("sh.helm.release.v1.web.v0", None),
        ("sh.helm.release.v1.web", None),
        ("web-credentials", None),
    ],
)
def test_object_names(name: str, parsed: tuple[str, int] | None) -> None:
    assert codec.parse_object_name(name) == parsed
    if parsed:
        assert codec.object_name(*parsed) == name


def test_go_json_escapes_like_go() -> None:
    assert (
        codec.go_json_dumps({"a": '<b>&\u2028\x01\n\t"\\'})
        == '{"a":"\\u003cb\\u003e\\u0026\\u2028\\u0001\\n\\t\\"\\\\"}'
    )
    assert codec.go_json_dumps({"n": codec.RawNumber("1e+06"), "l": [True, None, 3]}) == '{"n":1e+06,"l":[true,null,3]}'


def test_object_size_counts_helms_payload_text() -> None:
    payload = codec.payload_text_from_object(SECRET, "secret")
    assert codec.object_size(SECRET, "secret") == len(payload)
    assert codec.object_size(CONFIGMAP, "configmap") == len(CONFIGMAP["data"]["release"])


@pytest.mark.parametrize(("case_id", "driver", "obj", "helm_says"), CASES, ids=IDS)
def test_summary_decode_matches_the_full_decode(
    case_id: str, driver: codec.Driver, obj: dict[str, t.Any], helm_says: dict[str, t.Any]
) -> None:
    text = codec.payload_text_from_object(obj, driver)
    full = codec.decode_payload(text)
    summary = codec.decode_summary(text)
    assert summary["name"] == full["name"]
    assert summary["info"] == full["info"]
    assert summary["chart"]["metadata"] == full["chart"]["metadata"]


def test_summary_decode_stops_early_on_a_large_record() -> None:
    release = {"name": "big", "info": {"status": "deployed"}, "chart": {"metadata": {"name": "c"}}}
    release["manifest"] = "".join(f"{i:08x}" for i in range(200_000))  # ~1.6 MB, poorly compressible
    text = codec.encode_payload(release)
    summary = codec.decode_summary(text)
    assert summary == {"name": "big", "info": {"status": "deployed"}, "chart": {"metadata": {"name": "c"}}}


@pytest.mark.parametrize(("case_id", "driver", "obj", "helm_says"), CASES, ids=IDS)
def test_summary_from_an_object_prefix_matches_the_summary_decode(
    case_id: str, driver: codec.Driver, obj: dict[str, t.Any], helm_says: dict[str, t.Any]
) -> None:
    expected = codec.decode_summary(codec.payload_text_from_object(obj, driver))
    assert codec.summary_from_object(obj, driver) == expected


def _object_of(release: dict[str, t.Any], driver: codec.Driver) -> dict[str, t.Any]:
    return {"data": {"release": codec.payload_value_for_object(codec.encode_payload(release), driver)}}


@pytest.mark.parametrize("driver", ["secret", "configmap"])
def test_summary_from_an_object_reads_only_a_prefix_of_a_large_record(driver: codec.Driver) -> None:
    release = {"name": "big", "info": {"status": "deployed"}, "chart": {"metadata": {"name": "c"}}}
    release["manifest"] = "".join(f"{i:08x}" for i in range(200_000))
    obj = _object_of(release, driver)
    value = obj["data"]["release"]
    obj["data"]["release"] = value[:20_000] + "!" + value[20_001:]  # damage far behind the summary
    assert codec.summary_from_object(obj, driver) == {
        "name": "big",
        "info": {"status": "deployed"},
        "chart": {"metadata": {"name": "c"}},
    }


@pytest.mark.parametrize("driver", ["secret", "configmap"])
def test_summary_from_an_object_damaged_at_the_start_reports_the_precise_error(driver: codec.Driver) -> None:
    release = {"name": "big", "info": {"status": "deployed"}, "chart": {"metadata": {"name": "c"}}}
    release["manifest"] = "".join(f"{i:08x}" for i in range(200_000))
    obj = _object_of(release, driver)
    obj["data"]["release"] = "!" + obj["data"]["release"][1:]
    with pytest.raises(codec.ReleaseRecordError) as raised:
        codec.summary_from_object(obj, driver, "Secret ns/big")
    assert raised.value.reason == "bad-base64"


@pytest.mark.parametrize(
    "start",
    ['{"info":{"status":"deployed"},"name":"x"', '{"name":"x","info":{"status":"deployed"},"config":{}'],
    ids=["other-order", "no-chart"],
)
def test_summary_from_an_object_falls_back_like_the_summary_decode(start: str) -> None:
    manifest = "".join(f"{i:08x}" for i in range(20_000))  # the value outgrows the first prefixes
    text = base64.b64encode(gzip.compress(f'{start},"manifest":"{manifest}"}}'.encode())).decode()
    obj = {"data": {"release": text}}
    assert len(text) > 8 * 1024
    assert codec.summary_from_object(obj, "configmap") == codec.decode_summary(text)
    assert codec.summary_from_object(obj, "configmap")["manifest"] == manifest


@pytest.mark.parametrize(
    "body",
    [b'{"info":{"status":"deployed"},"name":"x"}', b'{"name":"x","info":{"status":"deployed"},"config":{}}'],
    ids=["other-order", "no-chart"],
)
def test_summary_decode_falls_back_to_a_full_decode(body: bytes) -> None:
    text = base64.b64encode(gzip.compress(body)).decode()
    assert codec.decode_summary(text) == json.loads(body)


@pytest.mark.parametrize(
    ("change", "reason", "message"),
    [
        ({}, None, None),
        ({"version": 7}, "label-mismatch", "payload is revision 7, the object name says"),
        ({"name": "someone-else"}, "label-mismatch", "payload names release 'someone-else'"),
        ({"info": None}, "bad-shape", "payload does not describe a release"),
        ({"version": None}, "label-mismatch", "payload is revision None"),
    ],
)
def test_a_payload_must_describe_the_record_it_is_stored_in(
    change: dict[str, t.Any], reason: str | None, message: str | None
) -> None:
    record = codec.decode_record(SECRET, "secret")
    payload = {**copy.deepcopy(record.release), **change}
    if reason is None:
        codec.check_summary_identity(record.meta, payload)
        return
    with pytest.raises(codec.ReleaseRecordError) as caught:
        codec.check_summary_identity(record.meta, payload)
    assert caught.value.reason == reason and str(message) in str(caught.value)


def test_a_summary_without_a_version_is_checked_for_its_name_only() -> None:
    record = codec.decode_record(SECRET, "secret")
    summary = {"name": record.meta.release, "info": {"status": "deployed"}}
    codec.check_summary_identity(record.meta, summary)
    with pytest.raises(codec.ReleaseRecordError, match="payload names release 'x'"):
        codec.check_summary_identity(record.meta, {**summary, "name": "x"})
