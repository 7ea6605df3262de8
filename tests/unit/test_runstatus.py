import json

import pytest

from nazbench import runstatus


def _line(msg_id, ts, status=0):
    return json.dumps({"ts": ts, "msg_id": msg_id, "command_status": status}) + "\n"


def test_ledger_progress_counts_only_this_run_since_the_start(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(
        _line("r1/0", 5.0)  # before since
        + _line("r2/0", 11.0)  # another run
        + _line("r2/1", 11.5)  # a run whose id shares no prefix with r2/ ... r2 is not r
        + _line("r/0", 12.0)
        + _line("r/1", 13.0)
        + _line("r/1", 14.0)  # a duplicate
        + _line("r/2", 15.0, status=0x58)
        + _line(None, 16.0)
        + "not json r/ \n"
    )
    got = runstatus.ledger_progress(ledger, "r", since=10.0)
    assert got == {"accepted": 3, "unique": 2, "rejected": 1, "first_ts": 12.0, "last_ts": 14.0}


def test_missing_ledger_is_zero_progress(tmp_path):
    assert runstatus.ledger_progress(tmp_path / "none", "r")["accepted"] == 0


def test_bad_run_id_is_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        runstatus.main(["ledger", "--ledger", str(tmp_path / "x"), "--run-id", "a b"])
    assert "run_id" in capsys.readouterr().err


def test_timeline_state_reports_down_units_and_the_next_planned_edge(tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    plan = {
        "smsc": [
            {"state": "run", "start_s": 0, "end_s": 60},
            {"state": "stop", "start_s": 60, "end_s": 90},
            {"state": "run", "start_s": 90, "end_s": 600, "final": True},
        ],
        "redis": [
            {"state": "run", "start_s": 0, "end_s": 100},
            {"state": "stop", "start_s": 100, "end_s": 130},
            {"state": "run", "start_s": 130, "end_s": 600, "final": True},
        ],
    }
    records = [
        {"record": "plan", "at": 1000.0, "plan": plan},
        {"record": "edge", "service": "smsc", "edge": "stop", "outcome": "ok", "actual_at": 1060.2},
    ]
    timeline.write_text("".join(json.dumps(r) + "\n" for r in records))
    state = runstatus.timeline_state(timeline, now=1070.0)
    assert state == {
        "down": ["smsc"],
        "next_edge": {"service": "smsc", "edge": "start", "in_s": 20.0},
        "ended": False,
    }
    with timeline.open("a") as fh:
        fh.write(
            json.dumps({"record": "edge", "service": "smsc", "edge": "start", "outcome": "ok"})
            + "\n"
        )
    later = runstatus.timeline_state(timeline, now=1095.0)
    assert later["down"] == [] and later["next_edge"]["service"] == "redis"
    with timeline.open("a") as fh:
        fh.write(json.dumps({"record": "end", "reason": "duration"}) + "\n")
    assert runstatus.timeline_state(timeline, now=1095.0) == {
        "down": [],
        "next_edge": None,
        "ended": True,
    }


def test_progress_exit_code_follows_the_ledger(tmp_path, capsys):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(_line("r/0", 12.0) + _line("r/1", 13.0))
    base = ["progress", "--ledger", str(ledger), "--run-id", "r", "--exit-when-done"]
    assert runstatus.main([*base, "--expect", "3"]) == 1
    assert json.loads(capsys.readouterr().out)["done"] is False
    assert runstatus.main([*base, "--expect", "2"]) == 0
    assert json.loads(capsys.readouterr().out) | {} == {
        "accepted": 2,
        "unique": 2,
        "rejected": 0,
        "first_ts": 12.0,
        "last_ts": 13.0,
        "expect": 2,
        "queue": None,
        "done": True,
    }


def test_queue_length_and_purge_against_a_real_redis(redis_server, redis_client):
    redis_client.lpush("q", *range(7))
    port = redis_server.port
    assert runstatus.queue_length("127.0.0.1", port, None, "q") == 7
    assert runstatus.queue_length("127.0.0.1", port, None, "q", purge=True) == 7
    assert runstatus.queue_length("127.0.0.1", port, None, "q") == 0
