import gzip
import json

import pytest

from nazbench import runstatus
from nazbench.nazapp import reconcile


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
        + _line("r/07", 15.5)  # not an index of the run: unexpected, not progress
        + _line(None, 16.0)
        + "not json r/ \n"
    )
    got = runstatus.ledger_progress(ledger, "r", since=10.0)
    assert got == {
        "accepted": 3,
        "unique": 2,
        "rejected": 1,
        "first_ts": 12.0,
        "last_ts": 14.0,
        "unexpected": 1,
        "malformed": 1,
        "null_id": 1,
    }


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
        "unexpected": 0,
        "malformed": 0,
        "null_id": 0,
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


# --------------------------------------------------------------------------- extract

# The SMSC's ledger as it looks after run "r" (started at 10.0): older runs' lines and a
# line torn by an old crash first, then the run's window with its own damage inside.
SHARED_LEDGER = (
    _line("old/0", 1.0)
    + '{"msg_id": "old/1", "comm\n'  # torn by a crash long before the run
    + _line(None, 2.0)
    + _line("r/0", 10.0)  # the window opens here
    + _line("q/0", 10.5)  # a concurrent run's line: in the window
    + '{"msg_id": "r/1", "command_st\n'  # torn inside the window
    + _line(None, 11.0)
    + _line("r/1", 11.5)
    + _line("r/1", 12.0)
    + json.dumps({"ts": 12.5, "msg_id": "r/2", "command_status": "zero"})
    + "\n"
)


def _extract(tmp_path, *ledgers, extra=()):
    out = tmp_path / "out.jsonl"
    argv = ["extract", "--run-id", "r", "--since", "10", "--out", str(out), *extra]
    for path in ledgers:
        argv += ["--ledger", str(path)]
    return runstatus.main(argv), out


def test_extract_writes_the_whole_window_with_its_damage(tmp_path, capsys):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(SHARED_LEDGER)
    rc, out = _extract(tmp_path, ledger)
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {
        "run_id": "r",
        "ledgers": [str(ledger)],
        "out": str(out),
        "since": 10.0,
        "until": None,
        "lines_read": 10,
        "lines_written": 7,
        "first_ts": 10.0,
        "last_ts": 12.5,
        "counts": {
            "ours": 3,
            "other_run": 1,
            "null_id": 1,
            "malformed": 2,
            "receipt": 0,
            "before": 3,
            "after": 0,
        },
    }
    assert out.read_text() == "".join(SHARED_LEDGER.splitlines(keepends=True)[3:])
    assert not (tmp_path / "out.jsonl.part").exists()


def test_reconcile_of_the_extract_counts_the_window_s_damage(tmp_path, capsys):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(SHARED_LEDGER)
    assert _extract(tmp_path, ledger)[0] == 0
    manifest = {"run_id": "r", "count": 2}
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    got = reconcile.reconcile(manifest, lines, since=10.0).counts()
    full = reconcile.reconcile(manifest, SHARED_LEDGER.splitlines(), since=10.0).counts()
    assert got["malformed_lines"] == 2 and got["null_msg_id_lines"] == 1
    assert got["other_run_lines"] == 1 and got["duplicated"] == 1
    # the same numbers as reconciling the whole shared ledger, less what precedes the run
    assert full["before_since_lines"] == 3 and got["before_since_lines"] == 0
    assert {k: v for k, v in got.items() if k not in ("before_since_lines", "ledger_lines")} == {
        k: v for k, v in full.items() if k not in ("before_since_lines", "ledger_lines")
    }
    assert not reconcile.reconcile(manifest, lines, since=10.0).ok


def test_extract_reads_rotated_and_gzipped_files_in_order(tmp_path, capsys):
    lines = SHARED_LEDGER.splitlines(keepends=True)
    older = tmp_path / "ledger.jsonl.1.gz"
    with gzip.open(older, "wt") as fh:
        fh.write("".join(lines[:5]))
    newer = tmp_path / "ledger.jsonl"
    newer.write_text("".join(lines[5:]).removesuffix("\n"))  # last line not yet ended
    rc, out = _extract(tmp_path, older, newer)
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["lines_written"] == 7
    assert out.read_text() == "".join(lines[3:])


def test_extract_until_closes_the_window(tmp_path, capsys):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(SHARED_LEDGER + _line("r/1", 30.0) + "torn after the run\n")
    rc, out = _extract(tmp_path, ledger, extra=["--until", "20"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"]["after"] == 2 and summary["lines_written"] == 7
    assert "torn after the run" not in out.read_text()


@pytest.mark.parametrize("damage", ["missing", "directory", "bad-gzip", "second-missing"])
def test_extract_fails_loudly_when_a_ledger_cannot_be_read(tmp_path, capsys, damage):
    good = tmp_path / "ledger.jsonl"
    good.write_text(SHARED_LEDGER)
    out = tmp_path / "out.jsonl"
    out.write_text("a stale extraction\n")
    if damage == "missing":
        ledgers = [tmp_path / "nope.jsonl"]
    elif damage == "directory":
        ledgers = [tmp_path]
    elif damage == "bad-gzip":
        bad = tmp_path / "ledger.jsonl.1.gz"
        bad.write_bytes(b"not gzip")
        ledgers = [bad, good]
    else:
        ledgers = [good, tmp_path / "nope.jsonl"]
    rc, _ = _extract(tmp_path, *ledgers)
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.out == ""
    assert "runstatus extract: error: cannot read ledger" in captured.err
    assert str(ledgers[-1] if damage != "bad-gzip" else ledgers[0]) in captured.err
    assert out.read_text() == "a stale extraction\n"  # untouched, no partial file beside it
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_extract_fails_when_the_output_cannot_be_written(tmp_path, capsys):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(SHARED_LEDGER)
    argv = ["extract", "--ledger", str(ledger), "--run-id", "r", "--since", "10"]
    assert runstatus.main([*argv, "--out", str(tmp_path / "no" / "out.jsonl")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_extract_of_an_empty_window_warns(tmp_path, capsys):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(_line("old/0", 1.0))
    rc, out = _extract(tmp_path, ledger)
    captured = capsys.readouterr()
    assert rc == 0 and out.read_text() == ""
    assert json.loads(captured.out)["counts"]["before"] == 1
    assert "warning: no ledger line at or after --since" in captured.err


@pytest.mark.parametrize(
    "argv",
    [
        ["--run-id", "a b", "--since", "1"],
        ["--run-id", "r"],
        ["--run-id", "r", "--since", "10", "--until", "5"],
    ],
)
def test_extract_rejects_bad_arguments(tmp_path, capsys, argv):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(SHARED_LEDGER)
    base = ["extract", "--ledger", str(ledger), "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as exc:
        runstatus.main([*base, *argv])
    assert exc.value.code == 2
    assert capsys.readouterr().err


def test_timeline_state_keeps_a_unit_down_after_a_failed_start_and_skips(tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    plan = {
        "smsc": [{"state": "stop", "index": 0, "start_s": 60, "end_s": 90}],
        "redis": [{"state": "stop", "index": 0, "start_s": 70, "end_s": 130}],
    }
    records = [
        {"record": "plan", "at": 1000.0, "plan": plan},
        {"record": "edge", "service": "smsc", "edge": "stop", "outcome": "ok", "actual_at": 1060},
        {"record": "edge", "service": "smsc", "edge": "start", "outcome": "failed", "window": 0},
        {"record": "skip", "service": "redis", "window": 0, "edge": "stop", "reason": "stale"},
        "torn line",
    ]
    timeline.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert runstatus.timeline_state(timeline, now=1065.0) == {
        "down": ["smsc"],
        "next_edge": {"service": "smsc", "edge": "start", "in_s": 25.0},
        "ended": False,
    }
    assert runstatus.timeline_state(tmp_path / "none", now=1.0)["down"] == []
