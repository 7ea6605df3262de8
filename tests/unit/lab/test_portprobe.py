import asyncio
import io
import json
import socket

import pytest

from nazbench.lab import portprobe


def test_parse_target():
    t = portprobe.parse_target("smsc=10.0.0.1:2775")
    assert (t.name, t.host, t.port) == ("smsc", "10.0.0.1", 2775)
    for bad in ["smsc", "smsc=host", "=h:1", "s=h:0", "s=h:70000", "s=h:x"]:
        with pytest.raises(ValueError, match="name=host:port"):
            portprobe.parse_target(bad)


def test_watch_sees_a_port_go_down_and_up_on_loopback():
    async def scenario():
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        target = portprobe.Target("svc", "127.0.0.1", port)
        out = io.StringIO()
        watcher = asyncio.create_task(portprobe.watch([target], 0.05, 1.6, out))
        await asyncio.sleep(0.4)
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.5)
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
        await watcher
        server.close()
        return [json.loads(line) for line in out.getvalue().splitlines()]

    records = asyncio.run(scenario())
    assert [r["state"] for r in records] == ["up", "down", "up"]
    down_for = records[2]["t"] - records[1]["t"]
    assert 0.3 < down_for < 0.8


def test_compare_pairs_edges_with_probe_transitions():
    probe = [
        {"t": 100.0, "target": "smsc", "state": "up"},
        {"t": 160.2, "target": "smsc", "state": "down"},
        {"t": 191.1, "target": "smsc", "state": "up"},
    ]
    timeline = [
        {"record": "plan"},
        {
            "record": "edge",
            "service": "s.service",
            "edge": "stop",
            "outcome": "ok",
            "actual_at": 160.0,
        },
        {
            "record": "edge",
            "service": "s.service",
            "edge": "start",
            "outcome": "ok",
            "actual_at": 190.0,
        },
        {
            "record": "edge",
            "service": "r.service",
            "edge": "stop",
            "outcome": "ok",
            "actual_at": 10.0,
        },
        {
            "record": "edge",
            "service": "s.service",
            "edge": "stop",
            "outcome": "failed",
            "actual_at": 5.0,
        },
    ]
    got = portprobe.compare(probe, timeline, {"s.service": "smsc", "r.service": "redis"})
    assert got["edges"] == 3 and got["matched"] == 2
    assert [p["drift_s"] for p in got["pairs"]] == [0.2, 1.1]
    assert got["p50_abs_drift_s"] == 0.2 and got["p99_abs_drift_s"] == 1.1
    assert got["unmatched"] == [{"service": "r.service", "edge": "stop", "actual_at": 10.0}]


def test_cli_rejects_a_bad_target(tmp_path, capsys):
    with pytest.raises(SystemExit):
        portprobe.main(["watch", "--target", "nope", "--out", str(tmp_path / "o")])
    assert "name=host:port" in capsys.readouterr().err


def test_a_closed_port_is_down_from_the_start():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = io.StringIO()
    asyncio.run(portprobe.watch([portprobe.Target("x", "127.0.0.1", port)], 0.05, 0.3, out))
    assert [json.loads(line)["state"] for line in out.getvalue().splitlines()] == ["down"]
