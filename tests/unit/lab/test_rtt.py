import socket
import threading
import time

import pytest

from nazbench.lab import rtt


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 11)]
    assert rtt.percentile(values, 90) == 9.0
    assert rtt.percentile(values, 50) == 5.0
    assert rtt.percentile([3.0], 99) == 3.0


def test_summary_fields():
    s = rtt.summarise([150.0, 154.0, 158.0, 154.0])
    assert s == {
        "samples": 4,
        "median_ms": 154.0,
        "p90_ms": 158.0,
        "min_ms": 150.0,
        "max_ms": 158.0,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_probe_against_the_echo_server_on_loopback():
    port = _free_port()
    server = threading.Thread(target=rtt.serve, args=("127.0.0.1", port, 3.0), daemon=True)
    server.start()
    started = time.monotonic()
    result = rtt.probe("127.0.0.1", port, samples=50, timeout=3.0)
    assert result["samples"] == 50
    assert 0 < result["min_ms"] <= result["median_ms"] <= result["p90_ms"] <= result["max_ms"]
    assert result["median_ms"] < 50  # loopback, no delay daemon
    assert time.monotonic() - started < 3.0
    server.join(timeout=5)
    assert not server.is_alive()


def test_probe_gives_up_when_nothing_listens():
    with pytest.raises(OSError):
        rtt.probe("127.0.0.1", _free_port(), samples=1, timeout=0.5)


def test_probe_rejects_zero_samples():
    with pytest.raises(ValueError, match="samples"):
        rtt.probe("127.0.0.1", 1, samples=0)
