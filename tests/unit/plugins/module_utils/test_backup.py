"""Backups keep every value type Helm stores: the values file reads back as the values were."""

from __future__ import annotations

import json
import os
import re
import stat
import typing as t
from pathlib import Path

import pytest
import yaml
from ansible_collections.helmops.recovery.plugins.module_utils._backup import (
    Taken,
    save_records,
    save_text,
    values_yaml,
)
from ansible_collections.helmops.recovery.plugins.module_utils._release_codec import _loads

VALUES = [
    # (case, the values as Helm's JSON stores them)
    ("numbers", '{"replicas": 3, "ratio": 0.75, "port": 8080, "big": 12345678901234567890, "negative": -1}'),
    ("booleans and null", '{"enabled": true, "debug": false, "nothing": null}'),
    ("nested maps and lists", '{"db": {"pool": {"min": 1, "max": 10}, "hosts": ["a", "b"], "weights": [0.5, 1.5]}}'),
    ("strings that look like other types", '{"version": "1.10", "flag": "yes", "date": "2026-12-01", "sep": "="}'),
    ("an exponent", '{"tiny": 1e-7}'),
]


@pytest.mark.parametrize(("case", "stored"), VALUES, ids=[v[0] for v in VALUES])
def test_values_round_trip_through_the_backup(case: str, stored: str) -> None:
    values = _loads(stored.encode())  # numbers come back as RawNumber, as the codec reads them
    text = values_yaml(values)
    assert yaml.safe_load(text) == json.loads(stored), case


def test_numbers_keep_their_exact_text() -> None:
    values = t.cast(dict[str, t.Any], _loads(b'{"a": 1.10, "b": 100000000000000000001}'))
    assert values_yaml(values) == "a: 1.10\nb: 100000000000000000001\n"


def test_backups_are_private_files_named_by_the_time_they_were_taken(tmp_path: t.Any) -> None:
    """Each backup is a new 0600 file, stamped in UTC to the microsecond (two in one second never collide),
    in a 0700 <namespace>/<release> directory; on every Python the modules support (3.10 has no datetime.UTC)."""
    taken = Taken(cluster="https://k8s.example:6443", history=(("sh.helm.release.v1.web.v3", "uid-3"),))
    records = save_records(
        str(tmp_path), "team-a", "web", "sh.helm.release.v1.web.v3", [{"kind": "Secret"}], taken=taken
    )
    values = save_text(str(tmp_path), "team-a", "web", "values.yaml", "replicas: 2\n")
    assert re.fullmatch(r"sh\.helm\.release\.v1\.web\.v3\.\d{8}T\d{6}\.\d{6}Z\.json", os.path.basename(records))
    assert re.fullmatch(r"values\.\d{8}T\d{6}\.\d{6}Z\.yaml", os.path.basename(values))
    saved = json.loads(Path(records).read_text())
    assert saved["items"] == [{"kind": "Secret"}]
    header = saved["helmopsRecovery"]  # where, when, and the release's records then: what a restore goes back to
    assert header["cluster"] == "https://k8s.example:6443" and header["export"] is False
    assert header["history"] == [{"name": "sh.helm.release.v1.web.v3", "uid": "uid-3"}]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", header["takenAt"])
    assert header["takenAt"].replace("-", "").replace(":", "") in os.path.basename(records)
    assert sorted(os.listdir(os.path.dirname(records))) == sorted(map(os.path.basename, (records, values)))
    for path in (records, values):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(records)).st_mode) == 0o700
