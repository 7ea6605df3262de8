"""pick: which run collect.yml works on (newest by default, unfinished runs, compare)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nazbench.collect import cli as cli_mod
from nazbench.collect.cli import main
from nazbench.collect.pick import PickError, known_runs, pick


def make_run(root: Path, run_id: str, at: float, *, run: dict | None = None, finished=True):
    d = root / run_id
    d.mkdir(parents=True)
    (d / "params.json").write_text(json.dumps({"run_id": run_id}))
    marker = d / "start.json"
    marker.write_text(json.dumps({"started_at": 1000.0}))
    if finished:
        marker = d / "run.json"
        marker.write_text(json.dumps(run or {"started_at": 1000.0, "duration_s": 60.0}))
    os.utime(marker, (at, at))
    return d


def test_the_newest_run_is_the_default(tmp_path: Path) -> None:
    make_run(tmp_path, "old", 100)
    make_run(tmp_path, "new", 200)
    got = pick(tmp_path)
    assert got["run_id"] == "new" and got["known"] == ["new", "old"]
    assert got["unfinished"] is False and got["mode"] == "run"
    assert got["start"] == 1000.0 and got["end"] == 1060.0
    assert got["remote_dir"] == "/var/tmp/nazbench-collect/new"
    assert got["report_args"] == ["build", str(tmp_path / "new")]


def test_ended_at_wins_over_started_plus_duration(tmp_path: Path) -> None:
    make_run(tmp_path, "r", 1, run={"started_at": "1000.5", "duration_s": 60, "ended_at": 1070})
    got = pick(tmp_path)
    assert (got["start"], got["end"]) == (1000.5, 1070.0)


def test_an_unfinished_run_is_the_default_only_when_newest(tmp_path: Path) -> None:
    make_run(tmp_path, "done", 200)
    make_run(tmp_path, "died-early", 100, finished=False)
    assert pick(tmp_path)["run_id"] == "done"
    assert known_runs(tmp_path)[1].finished is False
    make_run(tmp_path, "died-late", 300, finished=False)
    got = pick(tmp_path)
    assert got["run_id"] == "died-late" and got["unfinished"] is True
    assert got["start"] is None and got["end"] is None
    asked = pick(tmp_path, run_id="died-early")
    assert asked["unfinished"] is True and asked["known"] == ["died-late", "done", "died-early"]


def test_an_unknown_run_lists_the_known_ones(tmp_path: Path) -> None:
    make_run(tmp_path, "a", 200)
    make_run(tmp_path, "b", 100, finished=False)
    (tmp_path / "run.json").write_text("{}")  # a stray run.json in artifacts/ is no run
    (tmp_path / "notes").mkdir()  # neither is a directory without start.json or run.json
    refused = tmp_path / "refused"  # a run refused before it started: params.json only
    refused.mkdir()
    (refused / "params.json").write_text("{}")
    with pytest.raises(PickError) as err:
        pick(tmp_path, run_id="ghost")
    assert str(err.value) == (
        "Unknown run ghost. Known runs, newest first: a, b. Unfinished (started, no run.json): b."
    )


def test_no_run_at_all(tmp_path: Path) -> None:
    with pytest.raises(PickError, match="No run in"):
        pick(tmp_path / "missing")


def test_compare_takes_two_finished_known_runs(tmp_path: Path) -> None:
    make_run(tmp_path, "a", 100)
    make_run(tmp_path, "b", 200)
    make_run(tmp_path, "u", 300, finished=False)
    got = pick(tmp_path, run_id="ignored", compare=" a , b")
    assert got["mode"] == "compare" and got["from_hosts"] is False
    assert got["unfinished"] is False
    out = str(tmp_path / "compare-a-vs-b")
    assert got["report_args"] == ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", out]
    for bad in ("a", "a,b,c", "a,"):
        with pytest.raises(PickError, match="compare takes two run ids"):
            pick(tmp_path, compare=bad)
    with pytest.raises(PickError, match="Unknown run ghost"):
        pick(tmp_path, compare="a,ghost")
    with pytest.raises(PickError, match=r"Run u is unfinished .*\(-e run_id=u\)"):
        pick(tmp_path, compare="a,u")


def test_collecting_from_the_hosts_needs_a_time_range_and_a_clean_id(tmp_path: Path) -> None:
    make_run(tmp_path, "no-times", 100, run={"run_id": "no-times"})
    with pytest.raises(PickError, match="no started_at"):
        pick(tmp_path)
    assert pick(tmp_path, from_hosts=False)["start"] is None  # the report alone is fine
    make_run(tmp_path, "bad id", 200)
    with pytest.raises(PickError, match="must be 1-64 characters"):
        pick(tmp_path)
    make_run(tmp_path, "bad-time", 300, run={"started_at": "noon", "duration_s": 1})
    with pytest.raises(PickError, match="started_at is not epoch seconds"):
        pick(tmp_path)


def test_the_cli_reports_errors_on_stderr_with_status_2(tmp_path: Path, capsys) -> None:
    make_run(tmp_path, "a", 100)
    assert main(["pick", "--artifacts", str(tmp_path), "--run-id", "zz"]) == 2
    assert "Unknown run zz" in capsys.readouterr().err
    args = ["pick", "--artifacts", str(tmp_path), "--run-id", "", "--compare", ""]
    assert main([*args, "--from-hosts", "False"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["run_id"] == "a" and got["from_hosts"] is False
    assert got["says"] == f"Collecting run a into {tmp_path / 'a'} (the report)."


def test_the_cutoff_is_the_runs_end_whenever_collect_runs(monkeypatch, capsys) -> None:
    slept = []
    monkeypatch.setattr(cli_mod.time, "time", lambda: 1_800_000_010.5)
    monkeypatch.setattr(cli_mod.time, "sleep", slept.append)
    # long after the run: no wait, the run's end + 30 s
    assert main(["cutoff", "--at", "1799990000"]) == 0
    assert json.loads(capsys.readouterr().out) == 1799990000 and slept == []
    # right after the run: wait until the host's clock has passed it by the margin
    assert main(["cutoff", "--at", "1800000030"]) == 0
    assert json.loads(capsys.readouterr().out) == 1800000030 and slept == [24.5]
    # no end known, or too far ahead: now - margin
    assert main(["cutoff"]) == 0
    assert json.loads(capsys.readouterr().out) == 1800000005
    assert main(["cutoff", "--at", "1800009999"]) == 0
    assert json.loads(capsys.readouterr().out) == 1800000005
