"""The run_watch action plugin: a loop, not a recursion, driven for a 30-hour run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location(
    "run_watch_action", ROOT / "plugins/action/run_watch.py"
)
run_watch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_watch)


class Clock:
    def __init__(self):
        self.now = 0.0

    def sleep(self, seconds):
        self.now += seconds

    def monotonic(self):
        return self.now


def test_a_30_hour_run_at_60_s_is_1800_looks_without_error():
    clock, lines = Clock(), []
    calls = {"n": 0}

    def look():
        calls["n"] += 1
        over = calls["n"] >= 1800
        return {"line": f"{calls['n']}/1800 delivered", "over": over, "failed": None}

    out = run_watch.watch(look, clock.sleep, lines.append, interval=60, monotonic=clock.monotonic)
    assert out["failed"] is False and out["end"] == "over"
    assert out["looks"] == 1800 == len(lines)
    assert clock.now == 1799 * 60  # no sleep after the last look
    assert lines[-1].startswith("1800/1800 delivered")
    assert "watching 1799m00s" in lines[-1]


def test_a_failed_look_of_the_host_stops_the_watch_at_once_naming_why():
    looks = iter(
        [
            {"line": "1", "over": False},
            {
                "line": "2",
                "over": False,
                "failed": "chaos loop on ams1 died (pid 4242 gone, no end record)",
            },
            {"line": "never"},
        ]
    )
    out = run_watch.watch(lambda: next(looks), lambda s: None, lambda line: None, interval=1)
    assert out == {
        "failed": True,
        "end": "failed",
        "msg": "chaos loop on ams1 died (pid 4242 gone, no end record)",
        "looks": 2,
        "last": {
            "line": "2",
            "over": False,
            "failed": "chaos loop on ams1 died (pid 4242 gone, no end record)",
        },
    }


def test_failed_looks_are_tolerated_up_to_the_limit_then_end_the_watch():
    seq = [run_watch.LookFailed("unreachable")] * 2 + [{"line": "ok", "over": False}]
    seq += [run_watch.LookFailed("unreachable")] * 3

    def look():
        item = seq.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    lines = []
    out = run_watch.watch(look, lambda s: None, lines.append, interval=1, max_failed_looks=3)
    assert out["failed"] is True and "3 failed looks" in out["msg"] and out["end"] == "lost"
    assert out["looks"] == 1
    assert sum("look failed" in line for line in lines) == 5


def test_another_hosts_failure_stops_this_watch():
    state = {"n": 0}

    def look():
        state["n"] += 1
        return {"line": "x", "over": False}

    def abort():
        return "ams2: redis chaos loop failed" if state["n"] >= 3 else None

    out = run_watch.watch(look, lambda s: None, lambda line: None, interval=1, abort=abort)
    assert out["failed"] is True and out["looks"] == 3 and out["end"] == "aborted"
    assert out["msg"] == "watch stopped: ams2: redis chaos loop failed"


def _action(tmp_path, args, results):
    """The real ActionModule with _execute_module answering from ``results``."""
    task = SimpleNamespace(
        args=args, async_val=0, check_mode=False, diff=False, environment=[], become=False
    )
    action = run_watch.ActionModule.__new__(run_watch.ActionModule)
    action._task = task
    action._supports_check_mode = True
    action._supports_async = False
    calls = []

    def execute(module_name, module_args, task_vars):
        calls.append((module_name, module_args))
        return results.pop(0)

    action._execute_module = execute
    return action, calls


@pytest.fixture
def no_base_run(monkeypatch):
    monkeypatch.setattr(run_watch.ActionBase, "run", lambda self, tmp=None, task_vars=None: {})
    monkeypatch.setattr(run_watch.time, "sleep", lambda s: None)


def test_the_action_runs_the_hosts_command_until_over_and_shares_a_failure(tmp_path, no_base_run):
    abort_file = tmp_path / "watch-abort"
    ok = {"rc": 0, "stdout": json.dumps({"line": "1/3", "over": False})}
    dead = {"rc": 0, "stdout": json.dumps({"line": "2/3", "failed": "chaos job failed: lock held"})}
    action, calls = _action(
        tmp_path, {"argv": ["look", 1], "interval": 0, "abort_file": str(abort_file)}, [ok, dead]
    )
    result = action.run(task_vars={"inventory_hostname": "ams1"})
    assert result["failed"] is True and result["msg"] == "chaos job failed: lock held"
    assert result["watch_failed"] is True and result["watch_end"] == "failed"
    assert calls == [("ansible.builtin.command", {"argv": ["look", "1"]})] * 2
    assert abort_file.read_text() == "ams1: chaos job failed: lock held\n"

    # a second host's watch of the same run stops before its first look
    action2, calls2 = _action(
        tmp_path, {"argv": ["look"], "interval": 0, "abort_file": str(abort_file)}, []
    )
    result2 = action2.run(task_vars={"inventory_hostname": "ams2"})
    assert result2["failed"] is True and "ams1: chaos job failed" in result2["msg"] and calls2 == []
    assert result2["watch_end"] == "aborted"


def test_the_action_refuses_bad_arguments(no_base_run):
    action, _ = _action(None, {"argv": [], "interval": 1}, [])
    with pytest.raises(run_watch.AnsibleActionFail, match="argv"):
        action.run(task_vars={})
    action, _ = _action(None, {"argv": ["x"], "interval": "soon"}, [])
    with pytest.raises(run_watch.AnsibleActionFail, match="interval"):
        action.run(task_vars={})
