"""The loop keeps the seed's schedule: grace, stale edges, stop_when off the timing path,
failed starts and recorded drift, under the fake clock.

Fixed windows make the plan readable: a.service is down 10-14, 24-28, 38-42, ...
(run 10 s, stop 4 s); b.service 12-15, 27-30, 42-45, ... (run 12 s, stop 3 s).
"""

from __future__ import annotations

import pytest
from ansible.module_utils.chaos_plan import validate_params
from ansible.module_utils.chaos_runner import ChaosRunner, summarise
from chaos_helpers import FakeClock, FakeSystemctl, read_timeline

SYSTEMCTL = "/usr/bin/systemctl"
A, B = "a.service", "b.service"
FIXED = [
    {"unit": A, "run_min": "10s", "run_max": "10s", "stop_min": "4s", "stop_max": "4s"},
    {"unit": B, "run_min": "12s", "run_max": "12s", "stop_min": "3s", "stop_max": "3s"},
]


def config(paths, services=None, **over):
    params = {
        "run_id": "sched-1",
        "seed": 1,
        "services": services or FIXED,
        "duration": "2m",
        "stop_when_interval": "1s",
        "heal_reserve": "5s",
        **paths,
    }
    params.update(over)
    cfg, errors = validate_params(params)
    assert not errors, errors
    return cfg


def run(cfg, clock, fake=None, **kwargs):
    fake = fake or FakeSystemctl(clock, units=(A, B))
    runner = ChaosRunner(
        cfg,
        fake,
        systemctl=SYSTEMCTL,
        clock=clock,
        pid=1,
        hostname="ams1",
        tick_s=0.5,
        spawn=fake.spawn,
        **kwargs,
    )
    return runner.run(), fake, runner


def edges_of(result, unit=None):
    return [
        (round(e["planned_at"] - 1_700_000_000.0, 3), e["service"], e["edge"], e["cause"])
        for e in result["timeline"]
        if unit is None or e["service"] == unit
    ]


# ----------------------------------------------------------------------------- grace


def test_no_stop_begins_that_would_end_after_the_grace(paths, clock):
    # met at 20 s, grace 5 s: a's outage 24-28 would end after 25 s, so it is skipped
    cfg = config(paths, services=FIXED[:1], duration=None, stop_when="drained", stop_grace="5s")
    fake = FakeSystemctl(clock, units=(A,))
    fake.stop_when_rc = lambda: 0 if clock.elapsed >= 19.5 else 1
    result, fake, _ = run(cfg, clock, fake)

    assert not result["failed"], result["msg"]
    assert result["summary"]["end_reason"] == "stop_when"
    assert edges_of(result) == [(10.0, A, "stop", "plan"), (14.0, A, "start", "plan")]
    assert fake.verbs() == [("stop", A), ("start", A)]  # nothing left for the heal
    (skip,) = result["skipped"]
    assert skip == {
        "record": "skip",
        "run_id": "sched-1",
        "service": A,
        "window": 1,
        "edge": "stop",
        "planned_at": 1_700_000_024.0,
        "planned_start_at": 1_700_000_028.0,
        "at": pytest.approx(1_700_000_024.0, abs=0.01),
        "reason": "after_grace",
        "lag_s": pytest.approx(0.0, abs=0.01),
    }
    records = read_timeline(paths["timeline_path"])
    assert skip in records and records[-1]["summary"]["services"][A]["skipped"] == 1
    assert result["summary"]["services"][A] | {"downtime_s": 0} == {
        "outages": 1,
        "downtime_s": 0,
        "max_drift_s": 0.0,
        "failed_edges": 0,
        "skipped": 1,
        "open_outages": 0,
    }
    assert result["summary"]["elapsed_s"] == pytest.approx(25, abs=0.01)


def test_an_outage_in_progress_at_the_end_of_the_grace_keeps_its_length(paths, clock):
    # met at 26 s with no grace, while a is down 24-28: the loop waits for the planned start
    cfg = config(paths, services=FIXED[:1], duration=None, stop_when="drained")
    fake = FakeSystemctl(clock, units=(A,))
    fake.stop_when_rc = lambda: 0 if clock.elapsed >= 25.5 else 1
    result, fake, _ = run(cfg, clock, fake)

    assert result["summary"]["end_reason"] == "stop_when"
    assert result["summary"]["elapsed_s"] == pytest.approx(28, abs=0.01)
    assert edges_of(result)[-1] == (28.0, A, "start", "plan")  # not a heal cut at 26 s
    assert all(e["cause"] == "plan" for e in result["timeline"])
    assert result["summary"]["services"][A]["downtime_s"] == pytest.approx(8, abs=0.01)
    assert result["skipped"] == []


def test_the_loop_never_runs_past_duration_while_waiting_for_outages(paths, clock):
    # duration 36 s cuts the open-ended wait: a's 24-28 ends in time, nothing runs past 36 s
    cfg = config(paths, duration="36s", stop_when="drained", stop_grace="0s")
    fake = FakeSystemctl(clock, units=(A, B))
    fake.stop_when_rc = lambda: 0 if clock.elapsed >= 34.5 else 1
    result, _fake, _ = run(cfg, clock, fake)
    assert result["summary"]["elapsed_s"] <= 36.0
    assert result["summary"]["end_reason"] == "stop_when"


# ----------------------------------------------------------------------------- stale


def test_a_stale_stop_is_skipped_and_a_late_start_still_runs(paths, clock):
    # the host "sleeps" 25 s during a's first stop (10 s): the loop wakes at 35 s
    cfg = config(paths)
    fake = FakeSystemctl(clock, units=(A, B))
    slept = []

    def suspend(argv):
        if argv[1:] == ["stop", A] and not slept:
            slept.append(True)
            clock.advance(25)

    fake.on_call = suspend
    result, fake, _ = run(cfg, clock, fake)
    assert not result["failed"], result["msg"]
    skips = [(s["service"], s["window"], s["reason"], s["lag_s"]) for s in result["skipped"]]
    assert skips == [(B, 0, "stale", 23.0), (A, 1, "stale", 11.0), (B, 1, "stale", 8.0)]
    # the late start ran, its lateness recorded; the skipped outages' starts never ran
    late_start = result["timeline"][1]
    assert (late_start["service"], late_start["edge"], late_start["window"]) == (A, "start", 0)
    assert late_start["drift_s"] == pytest.approx(21.0, abs=0.01)
    assert next(e for e in result["timeline"] if e["service"] == B)["window"] == 2
    # no burst: every stop ran within max_lag of its plan
    stops = [e for e in result["timeline"] if e["edge"] == "stop"]
    assert all(e["drift_s"] <= 5.0 for e in stops)
    assert result["summary"]["services"][B]["skipped"] == 2
    assert result["summary"]["services"][A]["skipped"] == 1


def test_max_lag_is_an_option(paths, clock):
    cfg = config(paths, max_lag="30s")
    fake = FakeSystemctl(clock, units=(A, B))
    fake.on_call = lambda argv: clock.advance(25) if clock.elapsed == 10 else None
    result, _fake, _ = run(cfg, clock, fake)
    assert result["skipped"] == []  # 23 s late is within 30 s


# ----------------------------------------------------------------------------- stop_when


def test_a_slow_stop_when_never_delays_an_edge_and_is_killed(paths, clock):
    cfg = config(paths, duration="60s", stop_when="slow-check", stop_when_interval="2s")
    fake = FakeSystemctl(clock, units=(A, B))
    fake.check_took = 30.0  # each check would run 30 s
    result, fake, _ = run(cfg, clock, fake)

    assert result["summary"]["end_reason"] == "duration"
    assert result["summary"]["elapsed_s"] == pytest.approx(60, abs=0.01)
    assert result["summary"]["max_drift_s"] <= 0.01
    assert fake.checks and all(c.killed_at is not None for c in fake.checks)
    # killed at the default timeout, 80% of the interval
    assert all(c.killed_at - c.started == pytest.approx(1.6, abs=0.01) for c in fake.checks)
    timeouts = [
        r for r in read_timeline(paths["timeline_path"]) if "stop_when_timeout" in r.values()
    ]
    assert len(timeouts) == len(fake.checks) == 29
    assert timeouts[0] == {
        "record": "stop_when_timeout",
        "run_id": "sched-1",
        "at": pytest.approx(1_700_000_003.6, abs=0.01),
        "elapsed_s": pytest.approx(3.6, abs=0.01),
        "timeout_s": 1.6,
    }


def test_a_check_that_succeeds_after_its_timeout_counts_as_not_met(paths, clock):
    cfg = config(
        paths, duration="30s", stop_when="c", stop_when_interval="2s", stop_when_timeout="0.5s"
    )
    fake = FakeSystemctl(clock, units=(A, B))
    fake.stop_when_rc = lambda: 0
    fake.check_took = 0.6
    result, fake, _ = run(cfg, clock, fake)
    assert result["summary"]["end_reason"] == "duration"
    assert not [r for r in read_timeline(paths["timeline_path"]) if r["record"] == "stop_when"]


def test_edges_fire_on_time_while_a_check_runs(paths, clock):
    cfg = config(paths, duration=None, stop_when="c", stop_when_interval="3s", stop_grace="10s")
    fake = FakeSystemctl(clock, units=(A, B))
    fake.check_took = 2.0  # under the 2.4 s timeout
    fake.stop_when_rc = lambda: 0 if clock.elapsed >= 11 else 1
    result, fake, _ = run(cfg, clock, fake)
    # checks at 3, 6, 9 (running 9-11 over a's stop at 10) and 12 (met at 14)
    assert edges_of(result)[:2] == [(10.0, A, "stop", "plan"), (12.0, B, "stop", "plan")]
    assert all(e["drift_s"] <= 0.01 for e in result["timeline"])
    (met,) = [r for r in read_timeline(paths["timeline_path"]) if r["record"] == "stop_when"]
    assert met["elapsed_s"] == pytest.approx(14, abs=0.01) and met["took_s"] == 2.0
    assert result["summary"]["elapsed_s"] == pytest.approx(24, abs=0.01)  # 14 + grace 10


def test_a_running_check_is_killed_when_the_loop_ends(paths, clock):
    cfg = config(paths, stop_when="c", stop_when_interval="2s")
    fake = FakeSystemctl(clock, units=(A, B))
    fake.check_took = 1.5

    def boom():
        raise RuntimeError("disk on fire")

    clock.at(2.5, boom)  # the first check runs 2-3.5
    result, fake, _ = run(cfg, clock, fake)
    assert "disk on fire" in result["msg"]
    assert fake.checks[0].killed_at == pytest.approx(2.5, abs=0.01)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"stop_when_timeout": "1s"}, "stop_when_timeout: 1s must be shorter than"),
        ({"stop_when_timeout": "2s"}, "stop_when_timeout: 2s must be shorter than"),
        ({"stop_when_timeout": "0.05s"}, "stop_when_timeout: '0.05s' must be at least 0.1s"),
        ({"stop_when_interval": "0.11s"}, "stop_when_timeout: the default"),
        ({"max_lag": "0.01s"}, "max_lag: '0.01s' must be at least 0.1s"),
        ({"max_lag": "soon"}, "max_lag: 'soon' is not a duration"),
    ],
)
def test_new_options_are_validated(paths, over, message):
    params = {"run_id": "v", "services": FIXED, "duration": "1m", "stop_when": "c", **paths}
    params["stop_when_interval"] = "1s"
    params.update(over)
    config_, errors = validate_params(params)
    assert config_ is None and any(e.startswith(message) for e in errors), errors


def test_stop_when_timeout_defaults_to_80_percent_of_the_interval(paths):
    assert config(paths, stop_when="c", stop_when_interval="30s").stop_when_timeout_ms == 24_000
    assert config(paths, stop_when="c").stop_when_timeout_ms == 800
    assert config(paths).max_lag_ms == 5_000


# ----------------------------------------------------------------------------- failed start


def test_a_failed_start_keeps_the_outage_open_until_the_heal(paths, clock):
    fake = FakeSystemctl(clock, units=(A, B), took=1.0)
    fake.fail[("start", A)] = 1
    result, fake, _ = run(config(paths), clock, fake)
    assert result["failed"] and "the start edge of a.service's stop fault failed" in result["msg"]
    a = [e for e in result["timeline"] if e["service"] == A]
    assert [(e["edge"], e["cause"], e["outcome"]) for e in a] == [
        ("stop", "plan", "ok"),
        ("start", "plan", "failed"),
        ("start", "heal", "ok"),
    ]
    summary = result["summary"]["services"][A]
    # down from the stop to the heal, not to the failed start
    assert summary["downtime_s"] == pytest.approx(a[2]["actual_at"] - a[0]["actual_at"])
    assert summary["downtime_s"] > a[1]["actual_at"] - a[0]["actual_at"]
    assert (summary["outages"], summary["open_outages"], summary["failed_edges"]) == (1, 0, 1)


def test_a_start_that_fails_and_cannot_be_healed_is_an_open_outage(paths, clock):
    fake = FakeSystemctl(clock, units=(A, B))
    fake.fail[("start", A)] = 2
    result, fake, _ = run(config(paths), clock, fake)
    assert result["still_stopped"] == [A]
    summary = result["summary"]["services"][A]
    assert (summary["outages"], summary["open_outages"], summary["downtime_s"]) == (1, 1, 0.0)
    assert read_timeline(paths["timeline_path"])[-1]["summary"]["services"][A] == summary


def edge(service, kind, at, outcome="ok", cause="plan", drift=0.0):
    return {
        "record": "edge",
        "service": service,
        "edge": kind,
        "cause": cause,
        "window": 0,
        "planned_at": at - drift,
        "actual_at": at,
        "drift_s": drift,
        "outcome": outcome,
    }


def test_summarise_closes_an_outage_only_on_an_ok_start():
    records = [
        edge(A, "stop", 10.0),
        edge(A, "start", 14.0, outcome="failed"),
        edge(A, "start", 20.0, cause="heal"),
        edge(B, "stop", 12.0),
        edge(B, "start", 15.0, outcome="failed"),
        {"record": "skip", "service": B, "window": 1, "edge": "stop", "reason": "stale"},
    ]
    got = summarise(records, [A, B], "error", 21.0)["services"]
    assert got[A] == {
        "outages": 1,
        "downtime_s": 10.0,
        "max_drift_s": 0.0,
        "failed_edges": 1,
        "skipped": 0,
        "open_outages": 0,
    }
    assert got[B] == {
        "outages": 1,
        "downtime_s": 0.0,
        "max_drift_s": 0.0,
        "failed_edges": 1,
        "skipped": 1,
        "open_outages": 1,
    }


# ----------------------------------------------------------------------------- drift


class OvershootClock(FakeClock):
    """A clock whose sleep() wakes 0.3 s late, as a loaded host's would."""

    def sleep(self, seconds):
        assert seconds > 0
        self.sleeps.append(seconds)
        self.advance(seconds + 0.3)


def test_drift_is_measured_not_assumed(paths):
    clock = OvershootClock()
    result, _fake, _ = run(config(paths), clock)
    plan_edges = [e for e in result["timeline"] if e["cause"] == "plan"]
    assert plan_edges
    for e in plan_edges:
        assert e["drift_s"] == pytest.approx(e["actual_at"] - e["planned_at"], abs=0.002)
        assert 0.1 <= e["drift_s"] <= 0.3 + 1e-6
    assert result["summary"]["max_drift_s"] == max(e["drift_s"] for e in plan_edges)
    assert result["summary"]["max_drift_s"] >= 0.1
