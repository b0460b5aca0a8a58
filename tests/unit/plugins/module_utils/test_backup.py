"""Backups keep every value type Helm stores: the values file reads back as the values were."""

from __future__ import annotations

import json
import typing as t

import pytest
import yaml
from ansible_collections.helmops.recovery.plugins.module_utils._backup import values_yaml
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
