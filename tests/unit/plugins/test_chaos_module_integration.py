"""chaos_loop.main() end to end with real time and a fake systemctl first on PATH."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from chaos_helpers import MODULES, run_main

MODULE_UTILS = MODULES.parent / "module_utils"

FAKE_SYSTEMCTL = """#!/bin/sh
# Records every call and keeps unit states as files; never touches the real systemd.
echo "$*" >> {log}
for unit; do :; done
case "$1" in
  show)
    if [ -e {state}/"$unit".down ]; then active=inactive; else active=active; fi
    printf 'LoadState=loaded\\nActiveState=%s\\n' "$active" ;;
  stop|kill) touch {state}/"$unit".down ;;
  start) rm -f {state}/"$unit".down ;;
  *) echo "fake systemctl: unexpected $1" >&2; exit 2 ;;
esac
"""


@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    state = tmp_path / "units"
    bindir.mkdir()
    state.mkdir()
    log = tmp_path / "systemctl.calls"
    script = bindir / "systemctl"
    script.write_text(FAKE_SYSTEMCTL.format(log=log, state=state))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return {"log": log, "state": state, "systemctl": str(script)}


def calls(fake):
    return fake["log"].read_text().splitlines() if fake["log"].exists() else []


def down_units(fake):
    return sorted(p.name[: -len(".down")] for p in fake["state"].iterdir())


def module_args(tmp_path, **over):
    args = {
        "run_id": "integration-1",
        "seed": 11,
        "services": [
            {
                "unit": "smsc",
                "run_min": "0.2s",
                "run_max": "0.5s",
                "stop_min": "0.1s",
                "stop_max": "0.3s",
            },
            {
                "unit": "redis-server",
                "run_min": "0.3s",
                "run_max": "0.6s",
                "stop_min": 0.1,
                "stop_max": 0.2,
            },
        ],
        "duration": "2.5s",
        "timeline_path": str(tmp_path / "timeline.jsonl"),
        "lock_path": str(tmp_path / "run" / "chaos_loop.lock"),
    }
    args.update(over)
    return args


def test_main_runs_the_loop_against_a_fake_systemctl(monkeypatch, tmp_path, fake_bin):
    started = time.monotonic()
    outcome, result, _ = run_main(monkeypatch, module_args(tmp_path), run_command=False)
    took = time.monotonic() - started

    assert outcome == "exit", result.get("msg")
    assert 2.5 <= took < 6
    assert result["changed"] is True
    assert result["summary"]["end_reason"] == "duration"
    recorded = calls(fake_bin)
    assert recorded[:2] == [
        "show --property=LoadState,ActiveState smsc.service",
        "show --property=LoadState,ActiveState redis-server.service",
    ]
    for unit in ("smsc.service", "redis-server.service"):
        verbs = [c.split()[0] for c in recorded[2:] if c.endswith(unit)]
        assert verbs and verbs == ["stop", "start"] * (len(verbs) // 2)
        assert result["summary"]["services"][unit]["outages"] == len(verbs) // 2
    assert down_units(fake_bin) == []
    records = [json.loads(x) for x in Path(tmp_path / "timeline.jsonl").read_text().splitlines()]
    assert records[0]["record"] == "plan" and records[-1]["record"] == "end"
    assert [r for r in records if r["record"] == "edge"] == result["timeline"]
    assert result["summary"]["max_drift_s"] < 1.0
    assert not os.path.exists(tmp_path / "run" / "chaos_loop.state.json")


def test_main_stop_when_with_a_real_shell(monkeypatch, tmp_path, fake_bin):
    flag = tmp_path / "drained"
    args = module_args(
        tmp_path,
        duration=None,
        stop_when=f"test -e {flag}",
        stop_when_interval="0.2s",
        stop_grace="0.5s",
        async_budget="30s",
        heal_reserve="5s",
    )
    threading.Timer(0.8, flag.touch).start()
    started = time.monotonic()
    outcome, result, _ = run_main(monkeypatch, args, run_command=False)
    assert outcome == "exit", result.get("msg")
    assert result["summary"]["end_reason"] == "stop_when"
    assert 1.2 <= time.monotonic() - started < 4
    assert down_units(fake_bin) == []


def _spawn(tmp_path, args):
    """Run the module as its own process, as async_wrapper would."""
    code = textwrap.dedent(
        f"""
        import importlib.util, json, sys
        import ansible.module_utils
        ansible.module_utils.__path__.append({str(MODULE_UTILS)!r})
        from ansible.module_utils.testing import patch_module_args
        path = {str(MODULES / "chaos_loop.py")!r}
        spec = importlib.util.spec_from_file_location("chaos_loop", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        with patch_module_args(json.loads({json.dumps(args)!r})):
            module.main()
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_a_stop(timeline, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if timeline.exists():
            for line in timeline.read_text().splitlines():
                record = json.loads(line)
                if record.get("edge") == "stop" and record.get("outcome") == "ok":
                    return record
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("no stop edge")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signalled_process_heals_before_it_exits(tmp_path, fake_bin, signum):
    args = module_args(tmp_path, duration="20s")
    timeline = tmp_path / "timeline.jsonl"
    proc = _spawn(tmp_path, args)
    stop = _wait_for_a_stop(timeline, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=10)
    result = json.loads(out)
    assert result["failed"] is True, err
    assert result["summary"]["end_reason"] == "signal"
    assert down_units(fake_bin) == []
    records = [json.loads(x) for x in timeline.read_text().splitlines()]
    assert records[-1]["record"] == "end" and records[-1]["reason"] == "signal"
    edges = [r for r in records if r["record"] == "edge"]
    assert stop in edges
    for unit in {e["service"] for e in edges}:
        verbs = [e["edge"] for e in edges if e["service"] == unit]
        assert verbs == ["stop", "start"] * (len(verbs) // 2)  # every stop was undone


def test_a_killed_process_is_healed_by_the_next_run(monkeypatch, tmp_path, fake_bin):
    # stop windows of 5 s so the unit is surely down when the loop is killed
    args = module_args(
        tmp_path,
        services=[
            {"unit": "smsc", "run_min": "0.2s", "run_max": "0.3s", "stop_min": 5, "stop_max": 5}
        ],
        duration="20s",
    )
    timeline = tmp_path / "timeline.jsonl"
    proc = _spawn(tmp_path, args)
    _wait_for_a_stop(timeline, proc)
    proc.kill()  # SIGKILL, as async_wrapper does at its timeout: no heal can run
    proc.communicate(timeout=10)
    assert down_units(fake_bin) == ["smsc.service"]
    state = json.loads((tmp_path / "run" / "chaos_loop.state.json").read_text())
    assert state["stopped"] == ["smsc.service"] and state["run_id"] == "integration-1"

    heal_args = {
        "run_id": "integration-2",
        "heal_only": True,
        "timeline_path": args["timeline_path"],
        "lock_path": args["lock_path"],
    }
    outcome, result, _ = run_main(monkeypatch, heal_args, run_command=False)
    assert outcome == "exit", result.get("msg")
    assert result["healed"] == ["smsc.service"] and result["changed"] is True
    assert down_units(fake_bin) == []
    assert calls(fake_bin)[-1] == "start smsc.service"
    last = json.loads(timeline.read_text().splitlines()[-1])
    assert last == {**last, "record": "heal_only", "healed": ["smsc.service"]}
