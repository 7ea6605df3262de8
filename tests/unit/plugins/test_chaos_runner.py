"""The executor under a fake clock and a fake systemctl."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import ansible.module_utils
import pytest
from ansible.module_utils.chaos_plan import build_plan, validate_params
from ansible.module_utils.chaos_runner import (
    ChaosRunner,
    HostLock,
    LockHeld,
    SignalTrap,
    StateFile,
)
from chaos_helpers import FakeSystemctl, read_timeline

SYSTEMCTL = "/usr/bin/systemctl"


def make_config(paths, **over):
    params = {
        "run_id": "exec-1",
        "seed": 7,
        "services": [
            {
                "unit": "smsc.service",
                "run_min": "10s",
                "run_max": "20s",
                "stop_min": "2s",
                "stop_max": "5s",
            },
            {
                "unit": "redis.service",
                "run_min": "8s",
                "run_max": "12s",
                "stop_min": "1s",
                "stop_max": "3s",
            },
        ],
        "action": "stop",
        "duration": "2m",
        "stop_when_interval": "1s",
        "stop_grace": "0s",
        "heal_reserve": "5s",
        **paths,
    }
    params.update(over)
    config, errors = validate_params(params)
    assert not errors, errors
    return config


def make_runner(config, fake, clock, **kwargs):
    kwargs.setdefault("tick_s", 0.5)
    kwargs.setdefault("spawn", fake.spawn)
    return ChaosRunner(
        config, fake, systemctl=SYSTEMCTL, clock=clock, pid=4242, hostname="ams1", **kwargs
    )


def planned_edges(config):
    """(offset_s, unit, edge) for every planned edge, from the returned plan."""
    edges = []
    for unit, windows in build_plan(config).items():
        for window in windows:
            if window["state"] == "stop":
                edges.append((window["start_s"], unit, "stop"))
                edges.append((window["end_s"], unit, "start"))
    return sorted(edges, key=lambda e: e[0])


def test_edges_follow_the_plan_in_order(paths, clock, fake_systemctl):
    config = make_config(paths)
    result = make_runner(config, fake_systemctl, clock).run()

    assert not result["failed"], result["msg"]
    assert result["changed"] is True
    expected = planned_edges(config)
    edges = [(e["planned_at"] - clock.wall0, e["service"], e["edge"]) for e in result["timeline"]]
    assert [(round(o, 3), u, e) for o, u, e in edges] == [(o, u, e) for o, u, e in expected]
    assert all(e["cause"] == "plan" and e["outcome"] == "ok" for e in result["timeline"])
    # the loop never acts early, and with instant systemctl it is never late by more than a tick
    assert all(0 <= e["drift_s"] <= 0.5 for e in result["timeline"])
    # preflight first, then exactly the planned commands
    shows = [c for c in fake_systemctl.calls if c[1] == "show"]
    assert fake_systemctl.calls[: len(shows)] == shows and len(shows) == 2
    assert fake_systemctl.verbs() == [(e, u) for _o, u, e in expected]
    assert all(fake_systemctl.active.values())
    assert result["summary"]["end_reason"] == "duration"
    assert result["summary"]["elapsed_s"] == pytest.approx(120, abs=0.5)


def test_timeline_file_has_plan_edges_and_end(paths, clock, fake_systemctl):
    config = make_config(paths)
    result = make_runner(config, fake_systemctl, clock).run()
    records = read_timeline(paths["timeline_path"])

    assert records[0]["record"] == "plan"
    assert records[0]["run_id"] == "exec-1" and records[0]["seed"] == 7
    assert records[0]["plan"] == result["plan"]
    assert records[0]["host"] == "ams1" and records[0]["pid"] == 4242
    assert records[-1]["record"] == "end"
    assert records[-1]["reason"] == "duration"
    assert records[-1]["summary"] == result["summary"]
    edges = records[1:-1]
    assert edges == result["timeline"]
    keys = {"run_id", "service", "edge", "planned_at", "actual_at", "drift_s", "rc", "outcome"}
    for edge in edges:
        assert keys <= set(edge)
        assert edge["stderr"] == ""
        assert edge["drift_s"] == pytest.approx(edge["actual_at"] - edge["planned_at"], abs=0.002)
    summary = result["summary"]["services"]
    stops = [e for e in edges if e["edge"] == "stop"]
    assert sum(s["outages"] for s in summary.values()) == len(stops)
    planned_down = sum(
        w["length_s"] for ws in result["plan"].values() for w in ws if w["state"] == "stop"
    )
    downtime = sum(s["downtime_s"] for s in summary.values())
    assert downtime == pytest.approx(planned_down, abs=0.5 * len(stops) + 0.01)


def test_timeline_is_appended_not_truncated(paths, clock, fake_systemctl):
    with open(paths["timeline_path"], "w") as fh:
        fh.write(json.dumps({"record": "earlier"}) + "\n")
    make_runner(make_config(paths), fake_systemctl, clock).run()
    assert read_timeline(paths["timeline_path"])[0] == {"record": "earlier"}


def test_slow_systemctl_shows_up_as_drift(paths, clock):
    fake = FakeSystemctl(clock, took=1.5)
    result = make_runner(make_config(paths), fake, clock).run()
    assert not result["failed"]
    assert result["timeline"][0]["drift_s"] <= 0.5  # first edge on time
    assert all(e["took_s"] == 1.5 for e in result["timeline"])
    assert result["summary"]["max_drift_s"] >= 0  # measured, never negative
    late = [e for e in result["timeline"] if e["drift_s"] > 0.5]
    # two services sharing one executor: an edge due while another runs is late
    assert all(e["actual_at"] >= e["planned_at"] for e in result["timeline"])
    assert result["summary"]["max_drift_s"] == max(e["drift_s"] for e in result["timeline"])
    assert late or result["summary"]["max_drift_s"] <= 0.5


def test_kill_action_sigkills_then_stops(paths, clock, fake_systemctl):
    config = make_config(paths, action="kill")
    make_runner(config, fake_systemctl, clock).run()
    stops = [c for c in fake_systemctl.calls if c[1] in ("kill", "stop")]
    assert stops[0] == [SYSTEMCTL, "kill", "--signal=SIGKILL", stops[0][-1]]
    assert stops[1] == [SYSTEMCTL, "stop", stops[0][-1]]


def test_state_file_lists_the_unit_before_it_is_stopped(paths, clock, fake_systemctl):
    config = make_config(paths)
    seen = []

    def on_call(argv):
        if argv[1] == "stop":
            seen.append((argv[-1], StateFile(config.state_path).load().get("stopped")))

    fake_systemctl.on_call = on_call
    make_runner(config, fake_systemctl, clock).run()
    assert seen and all(unit in stopped for unit, stopped in seen)
    assert not os.path.exists(config.state_path)  # all started again: nothing left


def test_failed_stop_ends_the_loop_and_heals(paths, clock, fake_systemctl):
    fake_systemctl.fail[("stop", "redis.service")] = 1
    result = make_runner(make_config(paths), fake_systemctl, clock).run()
    assert result["failed"]
    assert "the stop edge of redis.service's stop fault failed" in result["msg"]
    assert result["summary"]["end_reason"] == "error"
    last = result["timeline"][-1]
    assert (last["service"], last["edge"], last["cause"]) == ("redis.service", "start", "heal")
    assert read_timeline(paths["timeline_path"])[-1]["reason"] == "error"


def test_exception_mid_outage_heals(paths, clock, fake_systemctl):
    config = make_config(paths)
    first_stop = planned_edges(config)[0]

    def boom():
        raise RuntimeError("disk on fire")

    clock.at(first_stop[0] + 0.7, boom)
    result = make_runner(config, fake_systemctl, clock).run()
    assert result["failed"] and "RuntimeError: disk on fire" in result["msg"]
    assert all(fake_systemctl.active.values())
    heals = [e for e in result["timeline"] if e["cause"] == "heal"]
    # smsc went down at 10.065 s and redis at 10.628 s: both were down at 10.765 s
    assert {(e["service"], e["edge"], e["outcome"]) for e in heals} == {
        ("smsc.service", "start", "ok"),
        ("redis.service", "start", "ok"),
    }
    assert first_stop[1] == "smsc.service"
    end = read_timeline(paths["timeline_path"])[-1]
    assert end["record"] == "end" and end["reason"] == "error" and end["still_stopped"] == []
    assert not os.path.exists(config.state_path)


def test_sigterm_mid_outage_heals(paths, clock, fake_systemctl):
    config = make_config(paths)
    first_stop = planned_edges(config)[0]
    clock.at(first_stop[0] + 0.7, lambda: os.kill(os.getpid(), signal.SIGTERM))
    previous = signal.getsignal(signal.SIGTERM)
    with SignalTrap() as trap:
        result = make_runner(config, fake_systemctl, clock, stop_requested=trap).run()
    assert signal.getsignal(signal.SIGTERM) == previous
    assert trap.received == signal.SIGTERM
    assert result["failed"] and "signal" in result["msg"]
    assert result["summary"]["end_reason"] == "signal"
    assert all(fake_systemctl.active.values())
    assert result["timeline"][-1]["cause"] == "heal"
    assert clock.elapsed < first_stop[0] + 2  # it stopped right away, not at the end of the plan


def test_heal_failure_keeps_the_state_for_the_next_run(paths, clock, fake_systemctl):
    config = make_config(paths)
    first_stop = planned_edges(config)[0]
    clock.at(first_stop[0] + 0.5, lambda: os.kill(os.getpid(), signal.SIGTERM))
    fake_systemctl.fail[("start", first_stop[1])] = 1
    with SignalTrap() as trap:
        result = make_runner(config, fake_systemctl, clock, stop_requested=trap).run()
    assert result["failed"] and "heal failed" in result["msg"]
    assert result["still_stopped"] == [first_stop[1]]
    assert StateFile(config.state_path).load()["stopped"] == [first_stop[1]]


def test_leftover_state_is_healed_first(paths, clock, fake_systemctl):
    config = make_config(paths)
    os.makedirs(os.path.dirname(config.state_path))
    StateFile(config.state_path).save("old-run", 999, ["redis.service"], 1.0)
    fake_systemctl.active["redis.service"] = False

    result = make_runner(config, fake_systemctl, clock).run()
    assert fake_systemctl.calls[0] == [SYSTEMCTL, "start", "redis.service"]
    assert result["healed"] == ["redis.service"]
    leftover = result["timeline"][0]
    assert leftover["cause"] == "leftover" and leftover["previous_run_id"] == "old-run"
    records = read_timeline(paths["timeline_path"])
    assert [r["record"] for r in records[:2]] == ["edge", "plan"]
    assert not result["failed"]
    assert result["summary"]["services"]["redis.service"]["outages"] >= 1


def test_leftover_that_cannot_be_started_blocks_the_new_loop(paths, clock, fake_systemctl):
    config = make_config(paths)
    os.makedirs(os.path.dirname(config.state_path))
    StateFile(config.state_path).save("old-run", 999, ["redis.service"], 1.0)
    fake_systemctl.fail[("start", "redis.service")] = 5
    result = make_runner(config, fake_systemctl, clock).run()
    assert result["failed"] and "left stopped by an earlier loop" in result["msg"]
    assert not any(c[1] == "stop" for c in fake_systemctl.calls)
    assert StateFile(config.state_path).load()["stopped"] == ["redis.service"]


def test_heal_only_starts_leftovers_and_returns(paths, clock, fake_systemctl):
    config, errors = validate_params(
        {"run_id": "exec-1", "heal_only": True, "heal_reserve": "60s", **paths}
    )
    assert not errors
    os.makedirs(os.path.dirname(config.state_path))
    StateFile(config.state_path).save("old-run", 999, ["smsc.service"], 1.0)
    result = make_runner(config, fake_systemctl, clock).run()
    assert not result["failed"]
    assert result["healed"] == ["smsc.service"] and result["changed"]
    assert fake_systemctl.calls == [[SYSTEMCTL, "start", "smsc.service"]]
    assert [r["record"] for r in read_timeline(paths["timeline_path"])] == ["edge", "heal_only"]


def test_second_loop_is_refused_naming_the_holder(paths, clock, fake_systemctl):
    config = make_config(paths)
    holder = HostLock(config.lock_path)
    holder.acquire("first-run", 1234, clock.time())
    try:
        result = make_runner(config, fake_systemctl, clock).run()
    finally:
        holder.release()
    assert result["failed"]
    assert "pid 1234" in result["msg"] and "first-run" in result["msg"]
    assert "lock_path" in result["msg"]
    assert fake_systemctl.calls == []
    assert not os.path.exists(paths["timeline_path"])
    # released: the next one runs
    assert not make_runner(config, fake_systemctl, clock).run()["failed"]


def test_lock_is_released_when_the_holder_is_killed(paths, tmp_path):
    lock_path = paths["lock_path"]
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(tmp_path)!r})
        import ansible.module_utils
        ansible.module_utils.__path__.append({str(_module_utils_dir())!r})
        from ansible.module_utils.chaos_runner import HostLock
        HostLock({lock_path!r}).acquire("doomed", 0, 0.0)
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeld, match="doomed"):
            HostLock(lock_path).acquire("second", 1, 0.0)
    finally:
        proc.kill()
        proc.wait()
    lock = HostLock(lock_path)
    lock.acquire("third", 2, 0.0)  # the kernel dropped the dead holder's flock
    lock.release()


def _module_utils_dir():
    return next(p for p in ansible.module_utils.__path__ if p.endswith("plugins/module_utils"))


def test_stop_when_ends_the_loop_after_the_grace(paths, clock, fake_systemctl):
    config = make_config(
        paths, duration=None, stop_when="redis-cli llen q | grep -qx 0", stop_grace="20s"
    )
    fake_systemctl.stop_when_rc = lambda: 0 if clock.elapsed >= 30 else 1
    result = make_runner(config, fake_systemctl, clock).run()

    assert not result["failed"], result["msg"]
    assert result["summary"]["end_reason"] == "stop_when"
    assert result["summary"]["elapsed_s"] == pytest.approx(50, abs=1.1)
    checks = [c for c in fake_systemctl.calls if c[0] == "/bin/sh"]
    assert checks[0] == ["/bin/sh", "-c", "redis-cli llen q | grep -qx 0"]
    assert len(checks) == pytest.approx(30, abs=2)  # every second until met, then no more
    records = read_timeline(paths["timeline_path"])
    met = [r for r in records if r["record"] == "stop_when"]
    assert len(met) == 1 and met[0]["elapsed_s"] == pytest.approx(30, abs=1.1)
    assert records[-1]["reason"] == "stop_when"
    assert all(fake_systemctl.active.values())


def test_async_budget_ends_an_open_loop_in_time(paths, clock, fake_systemctl):
    config = make_config(paths, duration=None, stop_when="false", async_budget="90s")
    fake_systemctl.stop_when_rc = lambda: 1
    result = make_runner(config, fake_systemctl, clock).run()
    assert result["summary"]["end_reason"] == "budget"
    assert clock.elapsed <= 90 - 5 + 0.5
    assert not result["failed"]


def test_duration_wins_over_a_stop_when_that_never_succeeds(paths, clock, fake_systemctl):
    config = make_config(paths, stop_when="false")
    result = make_runner(config, fake_systemctl, clock).run()
    assert result["summary"]["end_reason"] == "duration"


def test_preflight_refuses_an_inactive_unit(paths, clock, fake_systemctl):
    fake_systemctl.active["redis.service"] = False
    result = make_runner(make_config(paths), fake_systemctl, clock).run()
    assert result["failed"] and "redis.service is inactive" in result["msg"]
    assert fake_systemctl.verbs() == []


def test_preflight_refuses_a_missing_unit(paths, clock, fake_systemctl):
    del fake_systemctl.active["smsc.service"]
    result = make_runner(make_config(paths), fake_systemctl, clock).run()
    assert result["failed"] and "smsc.service is not loaded" in result["msg"]
    assert fake_systemctl.verbs() == []
