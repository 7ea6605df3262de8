"""One look at a run, decided from the host's files and clock (nazbench.runwatch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nazbench import runwatch

T0 = 1_764_483_300.0
RUN = "r1"


def write(path: Path, data) -> None:
    path.write_text(data if isinstance(data, str) else json.dumps(data))


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / RUN
    d.mkdir()
    write(
        d / "params.json",
        {
            "run_id": RUN,
            "message_count": 3,
            "chaos_enabled": True,
            "watch_timeout_s": 1000,
            "run_drain_s": 60,
        },
    )
    write(d / "start.json", {"started_at": T0})
    return d


@pytest.fixture
def ledger(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_text("")
    return path


def accept(ledger: Path, *indexes: int, ts: float = T0 + 5) -> None:
    with ledger.open("a") as fh:
        for i in indexes:
            fh.write(json.dumps({"msg_id": f"{RUN}/{i}", "command_status": 0, "ts": ts}) + "\n")


def timeline(run_dir: Path, *records: dict) -> None:
    with (run_dir / "timeline.jsonl").open("a") as fh:
        for rec in records:
            fh.write(json.dumps({"run_id": RUN, **rec}) + "\n")


PLAN = {"record": "plan", "at": T0 + 1, "pid": 4242, "host": "ams1", "plan": {}}


def job(run_dir: Path, results: dict | None) -> None:
    results_file = run_dir / "job.results"
    if results is not None:
        write(results_file, results)
    write(run_dir / "chaos-job.json", {"jid": "j1", "results_file": str(results_file)})


def look(run_dir, ledger, now, alive=lambda pid: True):
    return runwatch.look(run_dir, now, ledger=ledger, redis_password=run_dir / "none", alive=alive)


def test_running_loop_is_not_over_and_shows_what_is_down(run_dir, ledger):
    accept(ledger, 0)
    job(run_dir, {"started": 1, "finished": 0})
    timeline(
        run_dir,
        PLAN,
        {
            "record": "edge",
            "service": "nazbench-smsc.service",
            "edge": "stop",
            "cause": "plan",
            "outcome": "ok",
            "window": 0,
            "planned_at": T0 + 10,
            "actual_at": T0 + 10,
        },
    )
    out = look(run_dir, ledger, T0 + 20)
    assert (out["over"], out["failed"], out["unique"]) == (False, None, 1)
    assert out["line"] == "1/3 delivered, queue ?, 20 s in, down: smsc"  # the seed's stop


def test_the_watch_names_a_faults_kind(run_dir, ledger):
    job(run_dir, {"started": 1, "finished": 0})
    edge = {"record": "edge", "edge": "stop", "cause": "plan", "outcome": "ok", "window": 0,
            "planned_at": T0 + 10, "actual_at": T0 + 10}  # fmt: skip
    timeline(
        run_dir,
        PLAN,
        {**edge, "service": "nazbench-smsc.service", "kind": "drop_resp"},
        {**edge, "service": "redis-server.service", "kind": "stop"},
    )
    out = look(run_dir, ledger, T0 + 20)
    assert out["line"].endswith("down: smsc (drop_resp), redis"), out["line"]
    assert out["chaos"]["faults"] == {
        "nazbench-smsc.service": "drop_resp",
        "redis-server.service": "stop",
    }


def test_a_loop_that_died_without_an_end_record_fails_the_watch(run_dir, ledger):
    job(run_dir, {"started": 1, "finished": 0})
    timeline(run_dir, PLAN)
    out = look(run_dir, ledger, T0 + 20, alive=lambda pid: pid != 4242)
    assert "pid 4242 is gone" in out["failed"]
    assert "FAILED" in out["line"]


def test_a_job_that_failed_before_its_loop_began_fails_the_watch(run_dir, ledger):
    job(run_dir, {"failed": True, "msg": "lock_path: another chaos_loop holds ..."})
    out = look(run_dir, ledger, T0 + 20)
    assert out["failed"] == "chaos job j1 failed: lock_path: another chaos_loop holds ..."


def test_no_recorded_job_is_a_failure_not_a_silent_wait(run_dir, ledger):
    out = look(run_dir, ledger, T0 + 20)
    assert "chaos-job.json is missing" in out["failed"]


def test_an_ended_loop_drains_until_done_or_the_drain_is_over(run_dir, ledger):
    job(run_dir, {"started": 1, "finished": 0})
    timeline(
        run_dir,
        PLAN,
        {"record": "end", "at": T0 + 100, "reason": "duration", "error": None, "still_stopped": []},
    )
    accept(ledger, 0, 1)
    assert look(run_dir, ledger, T0 + 150)["over"] is False  # 50 s of a 60 s drain
    out = look(run_dir, ledger, T0 + 161)
    assert out["over"] is True and out["why"] == "chaos loop ended (duration)"
    accept(ledger, 2)
    out = look(run_dir, ledger, T0 + 101)
    assert out["over"] is True and out["why"] == "chaos loop ended (duration), run done"


def test_an_end_with_an_error_fails_the_watch(run_dir, ledger):
    job(run_dir, {"started": 1, "finished": 0})
    timeline(
        run_dir,
        PLAN,
        {
            "record": "end",
            "at": T0 + 9,
            "reason": "error",
            "error": "systemctl start x failed",
            "still_stopped": [],
        },
    )
    assert (
        look(run_dir, ledger, T0 + 10)["failed"]
        == "chaos loop ended with an error: systemctl start x failed"
    )


def test_the_deadline_comes_from_the_hosts_start_not_the_controller(run_dir, ledger):
    job(run_dir, {"started": 1, "finished": 0})
    timeline(run_dir, PLAN)
    assert look(run_dir, ledger, T0 + 999)["over"] is False
    out = look(run_dir, ledger, T0 + 1000)
    assert out["over"] is True and "watch's limit" in out["why"]


def test_experiment_b_is_over_when_every_message_is_in(run_dir, ledger):
    params = json.loads((run_dir / "params.json").read_text())
    write(run_dir / "params.json", {**params, "chaos_enabled": False})
    accept(ledger, 0, 1)
    assert look(run_dir, ledger, T0 + 10)["over"] is False
    accept(ledger, 1, 2)  # a duplicate does not count twice
    out = look(run_dir, ledger, T0 + 10)
    assert out["over"] is True and out["unique"] == 3 and "chaos" not in out


def test_ledger_lines_before_the_start_do_not_count(run_dir, ledger):
    params = json.loads((run_dir / "params.json").read_text())
    write(run_dir / "params.json", {**params, "chaos_enabled": False})
    accept(ledger, 0, 1, 2, ts=T0 - 1)
    assert look(run_dir, ledger, T0 + 10)["unique"] == 0


def test_main_exit_when_done_and_missing_state(run_dir, ledger, capsys):
    assert runwatch.main(["--run-dir", str(run_dir.parent / "nope")]) == 2
    params = json.loads((run_dir / "params.json").read_text())
    write(run_dir / "params.json", {**params, "chaos_enabled": False})
    args = [
        "--run-dir",
        str(run_dir),
        "--ledger",
        str(ledger),
        "--redis-password-file",
        "/nonexistent",
    ]
    assert runwatch.main([*args, "--exit-when-done"]) == 1
    accept(ledger, 0, 1, 2, ts=9e9)
    assert runwatch.main([*args, "--exit-when-done"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["done"] is True


def test_a_loop_interrupted_by_a_signal_is_a_failure_not_an_end(run_dir, ledger):
    job(run_dir, {"started": 1, "finished": 0})
    timeline(
        run_dir,
        PLAN,
        {"record": "end", "at": T0 + 9, "reason": "signal", "error": None, "still_stopped": []},
    )
    assert "interrupted by a signal" in look(run_dir, ledger, T0 + 10)["failed"]


def test_a_running_loop_whose_job_was_never_recorded_is_watched(run_dir, ledger):
    timeline(run_dir, PLAN)  # the controller died before writing chaos-job.json
    assert look(run_dir, ledger, T0 + 10)["failed"] is None
    assert "pid 4242 is gone" in look(run_dir, ledger, T0 + 10, alive=lambda pid: False)["failed"]


def test_a_killed_loop_is_named_as_such_not_by_async_wrappers_traceback(run_dir, ledger):
    job(run_dir, {"failed": True, "msg": "Traceback (most recent call last):\n  ...\nKilled"})
    timeline(run_dir, PLAN)
    out = look(run_dir, ledger, T0 + 20, alive=lambda pid: False)
    assert out["failed"].startswith("chaos loop died without an end record (pid 4242 is gone")
    out = look(run_dir, ledger, T0 + 20)  # the job failed while its loop still runs: last line
    assert out["failed"] == "chaos job j1 failed: Killed"
