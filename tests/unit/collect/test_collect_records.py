"""count-records: a run's records in naz's log files, up to a cut-off, in any time zone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nazbench.collect import records
from nazbench.collect.cli import main

CUTOFF = 1_800_000_000  # 2027-01-15T08:00:00Z
RUN = "run-a"


def rec(ts: str | None, run_id: str = RUN, **extra) -> str:
    body = {"timestamp": ts, "level": "INFO", "event": "naz.x", "run_id": run_id, **extra}
    if ts is None:
        del body["timestamp"]
    return json.dumps(body) + "\n"


# (timestamp, counted at or before the cut-off?)
AROUND = [
    ("2027-01-15T10:00:00+02:00", True),  # == cut-off
    ("2027-01-15T10:00:00.000001+02:00", False),
    ("2027-01-15T00:00:00-08:00", True),  # == cut-off
    ("2027-01-15T00:00:01-08:00", False),
    ("2027-01-15T07:59:59Z", True),
    ("2027-01-15T08:00:00.5Z", False),
    ("2027-01-15T08:00:00", True),  # naive is UTC: == cut-off
    ("2027-01-15T07:59:58", True),  # local in Los Angeles would be 15:59:58Z: after
    ("2027-01-15T08:00:02", False),  # local in Tokyo would be 23:00:02Z the day before
    ("2027-01-15T08:00:00.000001", False),
]


def write_logs(tmp_path: Path) -> Path:
    log = tmp_path / "naz.jsonl"
    log.write_text(
        "".join(rec(ts) for ts, _ in AROUND)
        + rec("2027-01-15T07:00:00Z", run_id="run-b")  # another run
        + "Traceback (most recent call last):\n  File 'x', line 1\nValueError: boom\n"
        + "\n"  # a blank line is not JSON either
        + "[1, 2]\n"  # JSON, not an object: neither counted nor non-JSON
        + rec(None)  # the run's, without a timestamp
        + rec("yesterday")  # the run's, timestamp not ISO 8601
        + '{"timestamp": "2027-01-15T07:00:00Z", "run_id": "run-a", "torn'  # last line cut
    )
    rotated = tmp_path / "naz.jsonl.1"
    rotated.write_text(rec("2027-01-15T07:30:00+00:00") + rec("2027-01-15T09:30:00+01:00"))
    (tmp_path / "naz.jsonl.2").write_text(rec("2027-01-14T23:59:59-08:00") + "not json\n")
    os.link(rotated, tmp_path / "naz.jsonl.1.bak")  # one file under two names: read once
    (tmp_path / "other.jsonl").write_text(rec("2027-01-15T07:00:00Z"))  # not naz's file
    return log


EXPECTED = {
    # AROUND's, + naz.jsonl.1's 07:30Z (its 09:30+01:00 is 08:30Z: after) + naz.jsonl.2's
    "records": sum(ok for _, ok in AROUND) + 1 + 1,
    "after_cutoff": sum(not ok for _, ok in AROUND) + 1,
    "no_timestamp": 2,
    "non_json_lines": 3 + 1 + 1 + 1,  # traceback, blank line, torn line, "not json"
}


def test_counts_records_around_the_cutoff_in_any_time_zone(tmp_path: Path, local_tz) -> None:
    result = records.count_records(RUN, write_logs(tmp_path), CUTOFF)
    assert {k: result[k] for k in EXPECTED} == EXPECTED
    assert [Path(f["path"]).name for f in result["files"]] == [
        "naz.jsonl",
        "naz.jsonl.1",
        "naz.jsonl.2",
    ]
    assert result["files"][1]["records"] == 1 and result["files"][2]["records"] == 1


def test_record_time_reads_every_offset_as_the_same_instant(local_tz) -> None:
    instants = {
        records.record_time(ts).timestamp()
        for ts in (
            "2027-01-15T08:00:00Z",
            "2027-01-15T08:00:00+00:00",
            "2027-01-15T10:00:00+02:00",
            "2027-01-15T00:00:00-08:00",
            "2027-01-15T17:00:00+09:00",
            "2027-01-15T08:00:00",
        )
    }
    assert instants == {CUTOFF}
    assert records.record_time("not a time") is None
    assert records.record_time(1_800_000_000) is None


def test_no_log_file_counts_nothing(tmp_path: Path) -> None:
    result = records.count_records(RUN, tmp_path / "naz.jsonl", CUTOFF)
    assert result["records"] == 0 and result["files"] == []


def test_a_run_id_that_is_not_one_is_refused(tmp_path: Path, capsys) -> None:
    assert (
        main(
            ["count-records", "--run-id", "a b", "--log-path", str(tmp_path / "x"), "--cutoff", "1"]
        )
        == 2
    )
    assert "run_id" in capsys.readouterr().err


def test_the_cli_on_a_host_in_tokyo(tmp_path: Path) -> None:
    """The command as collect.yml runs it, in a process whose local time is Tokyo's."""
    log = write_logs(tmp_path)
    src = Path(records.__file__).resolve().parents[2]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "nazbench.collect",
            "count-records",
            "--run-id",
            RUN,
            "--log-path",
            str(log),
            "--cutoff",
            str(CUTOFF),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TZ": "Asia/Tokyo", "PYTHONPATH": str(src)},
    )
    result = json.loads(out.stdout)
    assert {k: result[k] for k in EXPECTED} == EXPECTED
    assert result["cutoff"] == CUTOFF and isinstance(result["cutoff"], int)


def test_cutoff_is_this_hosts_epoch_minus_the_margin(capsys) -> None:
    import time  # noqa: PLC0415

    before = int(time.time())
    assert main(["cutoff", "--margin-s", "5"]) == 0
    cutoff = json.loads(capsys.readouterr().out)
    assert isinstance(cutoff, int) and before - 5 <= cutoff <= int(time.time()) - 5
