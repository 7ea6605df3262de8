"""The controller's (or host's) time zone, switched for a test and restored after it."""

from __future__ import annotations

import time

import pytest

ZONES = ["UTC", "America/Los_Angeles", "Asia/Tokyo"]


@pytest.fixture(params=ZONES)
def local_tz(request, monkeypatch):
    """TZ set for this process (time.tzset), so local time is really that zone's."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    # proves the switch took: UTC 0, Los Angeles +8 h (PST) west, Tokyo -9 h
    assert (
        time.timezone
        == {"UTC": 0, "America/Los_Angeles": 28_800, "Asia/Tokyo": -32_400}[request.param]
    )
    yield request.param
    monkeypatch.undo()
    time.tzset()
