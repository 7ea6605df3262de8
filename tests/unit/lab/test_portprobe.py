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


def test_a_down_line_says_why(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = io.StringIO()
    asyncio.run(portprobe.watch([portprobe.Target("x", "127.0.0.1", port)], 0.05, 0.2, out))
    (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert line["state"] == "down" and line["why"] == "refused"

    def failing(exc):
        async def connect(host, port):
            raise exc

        return connect

    for exc, why in [
        (TimeoutError(), "timeout"),
        (OSError(113, "No route to host"), "unreachable"),
    ]:
        monkeypatch.setattr(portprobe.asyncio, "open_connection", failing(exc))
        out = io.StringIO()
        target = portprobe.Target("x", "192.0.2.1", 1)
        asyncio.run(portprobe._attempt(target, 10.0, 1.0, out))
        assert json.loads(out.getvalue()) == {"t": 10.0, "target": "x", "state": "down", "why": why}


def _edge(service, kind, at, outcome="ok"):
    return {"record": "edge", "service": service, "edge": kind, "outcome": outcome, "actual_at": at}


def test_compare_lists_outages_no_timeline_outage_explains():
    probe = [
        {"t": 100.0, "target": "smsc", "state": "up"},
        {"t": 160.2, "target": "smsc", "state": "down", "why": "refused"},  # planned 160-190
        {"t": 191.1, "target": "smsc", "state": "up"},
        {"t": 300.0, "target": "smsc", "state": "down", "why": "refused"},  # a crash
        {"t": 303.5, "target": "smsc", "state": "up"},  # ... restarted by systemd
        {"t": 100.0, "target": "redis", "state": "up"},
        {"t": 400.0, "target": "redis", "state": "down"},  # stop at 400, start failed
        {"t": 500.0, "target": "other", "state": "down"},  # not mapped
    ]
    timeline = [
        {"record": "plan", "host": "ams1"},
        _edge("s.service", "stop", 160.0),
        _edge("s.service", "start", 190.0),
        _edge("r.service", "stop", 399.9),
        _edge("r.service", "start", 420.0, outcome="failed"),
    ]
    got = portprobe.compare(probe, timeline, {"s.service": "smsc", "r.service": "redis"})
    assert got["unplanned"] == [
        {"target": "smsc", "down_at": 300.0, "up_at": 303.5, "duration_s": 3.5}
    ]
    assert got["matched"] == 3 and got["unmatched"] == []
    # a probe outage that outlasts its timeline outage by more than 5 s is not explained
    late = [*probe[:2], {"t": 197.0, "target": "smsc", "state": "up"}]
    got = portprobe.compare(late, timeline, {"s.service": "smsc"})
    assert got["unplanned"] == [
        {"target": "smsc", "down_at": 160.2, "up_at": 197.0, "duration_s": 36.8}
    ]
    # still down at the end of the probe, with no outage at all
    got = portprobe.compare([{"t": 1.0, "target": "smsc", "state": "down"}], [], {"s": "smsc"})
    assert got["unplanned"] == [
        {"target": "smsc", "down_at": 1.0, "up_at": None, "duration_s": None}
    ]


def test_compare_cli_reads_timelines_per_host(tmp_path, capsys):
    probe = tmp_path / "probe.jsonl"
    probe.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {"t": 10.0, "target": "smsc", "state": "down"},
                {"t": 20.0, "target": "smsc", "state": "up"},
            ]
        )
    )
    t1 = tmp_path / "timeline-ams1.jsonl"
    t1.write_text(json.dumps(_edge("s.service", "stop", 9.9)) + "\n{torn\n")
    t2 = tmp_path / "timeline-sfo1.jsonl"
    t2.write_text(json.dumps(_edge("s.service", "start", 19.9)) + "\n")
    args = ["compare", "--probe", str(probe), "--map", "s.service=smsc"]
    assert portprobe.main([*args, "--timeline", str(t1), "--timeline", str(t2)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["matched"] == 2
    # the start is in sfo1's file, so ams1's outage stays open: it explains the probe's
    assert got["unplanned"] == []


def test_compare_leaves_pause_edges_out_and_lists_them():
    # a paused SMSC still accepts connects: the probe saw it up throughout
    probe = [{"t": 100.0, "target": "smsc", "state": "up"}]
    edge = {"record": "edge", "service": "s.service", "outcome": "ok", "kind": "pause"}
    timeline = [
        {**edge, "edge": "stop", "actual_at": 160.0},
        {**edge, "edge": "start", "actual_at": 190.0},
    ]
    result = portprobe.compare(probe, timeline, {"s.service": "smsc"})
    assert result["edges"] == result["matched"] == 0 and result["unmatched"] == []
    assert [(e["edge"], e["kind"]) for e in result["not_visible"]] == [
        ("stop", "pause"),
        ("start", "pause"),
    ]
    assert result["unplanned"] == []
    # the same edges as a stop are matched (or missed) as before
    stopped = [{**e, "kind": "stop"} for e in timeline]
    result = portprobe.compare(probe, stopped, {"s.service": "smsc"})
    assert result["edges"] == 2 and len(result["unmatched"]) == 2 and result["not_visible"] == []


def test_compare_checks_why_the_probe_saw_each_kind_down():
    edge = {"record": "edge", "service": "s.service", "outcome": "ok"}
    timeline = []
    probe = []
    # (kind, why the probe's connect failed): a reset seen as a timeout is a mismatch
    for i, (kind, why) in enumerate(
        [("blackhole", "timeout"), ("reset", "refused"), ("half_open", "timeout"),
         ("stop", "refused"), ("reset", "timeout")]
    ):  # fmt: skip
        t = 100.0 * (i + 1)
        timeline += [
            {**edge, "edge": "stop", "kind": kind, "actual_at": t},
            {**edge, "edge": "start", "kind": kind, "actual_at": t + 20},
        ]
        probe += [
            {"t": t + 0.1, "target": "smsc", "state": "down", "why": why},
            {"t": t + 20.2, "target": "smsc", "state": "up"},
        ]
    result = portprobe.compare(probe, timeline, {"s.service": "smsc"})
    assert result["matched"] == result["edges"] == 10
    downs = [p for p in result["pairs"] if p["edge"] == "stop"]
    assert [(p["kind"], p["why"]) for p in downs][:4] == [
        ("blackhole", "timeout"),
        ("reset", "refused"),
        ("half_open", "timeout"),
        ("stop", "refused"),
    ]
    assert [(m["kind"], m["why"], m["expected"]) for m in result["why_mismatches"]] == [
        ("reset", "timeout", "refused")
    ]
