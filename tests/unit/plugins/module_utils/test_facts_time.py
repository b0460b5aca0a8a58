"""Kubernetes timestamps are UTC: their parsing must not depend on the host's zone."""

from __future__ import annotations

import os
import time

import pytest
from ansible_collections.helmops.recovery.plugins.module_utils._release_codec import parse_kube_time as _parse_time


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
def test_parse_time_ignores_the_local_zone_and_summer_time(zone: str) -> None:
    previous = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        assert _parse_time("2026-07-01T12:00:00Z") == 1782907200.0  # summer
        assert _parse_time("2026-01-01T12:00:00.123456Z") == 1767268800.0  # winter
        assert _parse_time("") is None
        assert _parse_time("not a time") is None
    finally:
        if previous is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = previous
        time.tzset()
