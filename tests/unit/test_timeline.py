"""nazbench.timeline: the one reader of the chaos timeline format."""

import json
from pathlib import Path

import pytest

from nazbench import timeline as tl
from nazbench.timeline import Timeline

ROOT = Path(__file__).resolve().parents[2]
T0 = 1000.0


def edge(service, kind, at, outcome="ok", cause="plan", window=0, run_id="r1", planned=None):
    return {
        "record": "edge",
        "run_id": run_id,
        "service": service,
        "edge": kind,
        "cause": cause,
        "window": window,
        "planned_at": at if planned is None else planned,
        "actual_at": at,
        "drift_s": 0.0,
        "outcome": outcome,
    }


PLAN_WINDOWS = {
    "smsc": [
        {"state": "run", "index": 0, "start_s": 0, "end_s": 60},
        {"state": "stop", "index": 0, "start_s": 60, "end_s": 90},
        {"state": "run", "index": 1, "start_s": 90, "end_s": 150},
        {"state": "stop", "index": 1, "start_s": 150, "end_s": 170},
        {"state": "run", "index": 2, "start_s": 170, "end_s": 600, "final": True},
    ],
    "redis": [
        {"state": "run", "index": 0, "start_s": 0, "end_s": 100},
        {"state": "stop", "index": 0, "start_s": 100, "end_s": 130},
        {"state": "run", "index": 1, "start_s": 130, "end_s": 600, "final": True},
    ],
}


def plan(run_id="r1", host="ams1", at=T0):
    return {"record": "plan", "run_id": run_id, "at": at, "host": host, "plan": PLAN_WINDOWS}


def lines(records):
    return [json.dumps(r) + "\n" for r in records]


def test_torn_and_non_object_lines_are_skipped_and_counted():
    text = lines([plan(), edge("smsc", "stop", T0 + 60)])
    text += ['{"record": "edge", "serv\n', "[1, 2]\n", "3\n", "\n", b'{"record": "end"}\n']
    got = Timeline().add_lines(text)
    assert got.torn == 3  # the torn line, the list, the number; not the blank line
    assert [r["record"] for r in got.records()] == ["plan", "edge", "end"]
    assert len(got.plans()) == 1 and len(got.edges()) == 1 and len(got.ends()) == 1


def test_outage_pairs_stop_and_ok_start_with_planned_times():
    got = Timeline.from_records(
        [
            plan(),
            edge("smsc", "stop", T0 + 60.2, planned=T0 + 60),
            edge("smsc", "start", T0 + 90.1, planned=T0 + 90),
        ]
    )
    assert got.outages() == [
        {
            "service": "smsc",
            "host": "ams1",
            "run_id": "r1",
            "window": 0,
            "kind": "stop",
            "cause": "plan",
            "stop_at": T0 + 60.2,
            "start_at": T0 + 90.1,
            "planned_stop_at": T0 + 60,
            "planned_start_at": T0 + 90,
            "start_failed": False,
            "open": False,
            "duration_s": 29.9,
        }
    ]


def test_a_failed_start_keeps_the_outage_open_and_the_heal_closes_it():
    failed = [plan(), edge("smsc", "stop", T0 + 60), edge("smsc", "start", T0 + 90, "failed")]
    (o,) = Timeline.from_records(failed).outages()
    assert o["open"] and o["start_at"] is None and o["duration_s"] is None
    assert o["start_failed"] and o["cause"] is None
    assert o["planned_start_at"] == T0 + 90  # from the plan record

    healed = [*failed, edge("smsc", "start", T0 + 95, cause="heal", window=None)]
    (o,) = Timeline.from_records(healed).outages()
    assert not o["open"] and o["start_failed"] and o["cause"] == "heal"
    assert o["start_at"] == T0 + 95 and o["duration_s"] == 35.0
    assert o["planned_start_at"] == T0 + 90  # the heal's own planned_at is not the plan's


def test_pairing_ignores_failed_stops_stray_starts_and_second_stops():
    got = Timeline.from_records(
        [
            plan(),
            edge("redis", "start", T0 + 1),  # no outage open
            edge("smsc", "stop", T0 + 5, "failed"),
            edge("smsc", "stop", T0 + 60),
            edge("smsc", "stop", T0 + 61),  # a second stop while down
            edge("smsc", "start", T0 + 90),
        ]
    ).outages()
    assert [(o["stop_at"], o["start_at"]) for o in got] == [(T0 + 60, T0 + 90)]


def test_hosts_keep_their_outages_apart():
    got = Timeline()
    got.add_records([plan(host="ams1"), edge("smsc", "stop", T0 + 60)])
    got.add_records([plan(host="sfo1"), edge("smsc", "start", T0 + 70)])
    (o,) = got.outages()
    assert o["host"] == "ams1" and o["open"]
    named = Timeline().add_records([edge("smsc", "stop", 1.0)], host="x")
    assert named.outages()[0]["host"] == "x"


def test_a_leftover_start_closes_the_killed_runs_outage_and_run_id_filters():
    records = [
        plan("r1"),
        edge("smsc", "stop", T0 + 60, run_id="r1"),
        # r1 was killed; r2 starts smsc first, then plans
        {**edge("smsc", "start", T0 + 300, cause="leftover", run_id="r2"), "window": None},
        plan("r2", at=T0 + 301),
    ]
    (o,) = Timeline.from_records(records).outages()
    assert o["cause"] == "leftover" and o["start_at"] == T0 + 300
    only_r1 = Timeline.from_records(records, run_id="r1")
    assert only_r1.outages()[0]["open"] and len(only_r1.plans()) == 1


def test_skips_are_read():
    skip = {"record": "skip", "service": "redis", "window": 0, "edge": "stop", "reason": "stale"}
    assert Timeline.from_records([plan(), skip]).skips() == [skip]


def test_state_down_next_edge_and_end():
    got = Timeline.from_records([plan(), edge("smsc", "stop", T0 + 60.2)])
    assert got.state(T0 + 70) == {
        "down": ["smsc"],
        "faults": {"smsc": "stop"},  # a timeline from before fault kinds: the seed's stop
        "next_edge": {"service": "smsc", "edge": "start", "window": 0, "at": T0 + 90, "in_s": 20.0},
        "ended": False,
        "end": None,
    }
    got.add_records([edge("smsc", "start", T0 + 90, outcome="failed")])
    assert got.state(T0 + 91)["down"] == ["smsc"]  # a failed start: still down
    got.add_records([edge("smsc", "start", T0 + 92)])
    later = got.state(T0 + 95)
    assert later["down"] == [] and later["next_edge"]["service"] == "redis"
    # a skipped outage is no next edge
    skip = {"record": "skip", "service": "redis", "window": 0, "edge": "stop"}
    got.add_records([skip])
    assert got.state(T0 + 95)["next_edge"] == {
        "service": "smsc",
        "edge": "stop",
        "window": 1,
        "at": T0 + 150,
        "in_s": 55.0,
    }
    end = {"record": "end", "reason": "duration"}
    got.add_records([end])
    assert got.state(T0 + 95) == {
        "down": [],
        "faults": {},
        "next_edge": None,
        "ended": True,
        "end": end,
    }


def test_state_reads_only_the_last_run():
    records = [plan("r1"), edge("smsc", "stop", T0 + 60), {"record": "end", "reason": "signal"}]
    records += [plan("r2", at=T0 + 500)]
    got = Timeline.from_records(records).state(T0 + 510)
    assert got["down"] == [] and not got["ended"]
    assert got["next_edge"]["at"] == T0 + 560


def test_read_files_with_hosts(tmp_path):
    a, b = tmp_path / "timeline-ams1.jsonl", tmp_path / "timeline-sfo1.jsonl"
    a.write_text("".join(lines([edge("smsc", "stop", 1.0)])))
    b.write_text("".join(lines([edge("redis", "stop", 2.0)])) + "torn")
    got = tl.read([a, b], host_of=lambda p: p.stem.removeprefix("timeline-"))
    assert [o["host"] for o in got.outages()] == ["ams1", "sfo1"] and got.torn == 1
    with pytest.raises(FileNotFoundError):
        Timeline.from_path(tmp_path / "none")


def test_the_module_util_is_this_file():
    shipped = ROOT / "plugins" / "module_utils" / "chaos_timeline.py"
    source = ROOT / "src" / "nazbench" / "timeline.py"
    assert shipped.read_bytes() == source.read_bytes()
    assert shipped.resolve() == source.resolve()  # a symlink, so they cannot drift


def test_stdlib_only():
    source = (ROOT / "src" / "nazbench" / "timeline.py").read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["from __future__ import annotations", "import json", "import math"]
