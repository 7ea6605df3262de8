"""run_plan: every run parameter checked before anything is touched, errors named by variable."""

from __future__ import annotations

import importlib.util
import time

import pytest
import yaml
from ansible.module_utils.chaos_plan import derive_seed
from chaos_helpers import MODULES, ROOT

spec = importlib.util.spec_from_file_location("run_plan", MODULES / "run_plan.py")
run_plan = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_plan)

SMOKE = {
    "profile": "smoke",
    "message_count": "2000",
    "message_seed": 1,
    "chaos_enabled": "true",
    "chaos_run_min": "150s",
    "chaos_run_max": "210s",
    "chaos_stop_min": "20s",
    "chaos_stop_max": "40s",
    "chaos_duration": "14m",
    "chaos_stop_grace": "60s",
    "chaos_check_interval": "10s",
    "run_watch_interval": 15,
    "services": ["nazbench-smsc.service", "redis-server.service"],
}


def plan(**over):
    return run_plan.plan_run({**SMOKE, **over}, now=1764483300.0)


def test_the_smoke_profile_gives_seconds_budgets_and_the_loops_own_plan():
    run, windows, errors = plan(run_id="smoke-1")
    assert errors == []
    assert run["chaos_duration_s"] == 840.0 and run["plan_end_s"] == 840.0
    assert run["chaos_services_run"] == [150.0, 210.0] and run["chaos_services_stop"] == [
        20.0,
        40.0,
    ]
    assert run["chaos_budget_s"] == 840 + 60 + 60
    assert run["watch_timeout_s"] == run["chaos_budget_s"] + 300
    assert run["probe_duration_s"] == run["chaos_budget_s"] + 600
    # the seed is derived from the run id exactly as chaos_loop derives it
    assert run["chaos_seed"] == derive_seed("smoke-1") and run["chaos_seed_derived"] is True
    stops = [w for w in windows["nazbench-smsc.service"] if w["state"] == "stop"]
    assert run["planned_outages"]["nazbench-smsc.service"] == len(stops) >= 3
    assert all(20 <= w["length_s"] <= 40 and w["end_s"] <= 840 for w in stops)


def test_a_run_without_id_is_named_from_utc_whatever_the_time_zone(monkeypatch):
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        run, _, errors = plan()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert errors == [] and run["run_id"] == "run-20251130T061500Z"


@pytest.mark.parametrize(
    ("over", "named"),
    [
        ({"chaos_duration": "14x"}, "chaos_duration: '14x' has unknown unit"),
        (
            {"chaos_duration": "1m"},
            "chaos_duration: 1m is shorter than chaos_run_min + chaos_stop_min (2m50s): no outage",
        ),
        (
            {"chaos_run_min": "5m", "chaos_run_max": "3m"},
            "chaos_run_min: 5m is greater than chaos_run_max 3m",
        ),
        ({"chaos_stop_min": "-5s"}, "chaos_stop_min: '-5s' is negative"),
        ({"chaos_stop_grace": "soon"}, "chaos_stop_grace: 'soon' is not a duration"),
        ({"chaos_check_interval": "0s"}, "chaos_check_interval: '0s' must be at least 0.1s"),
        ({"message_count": "0"}, "message_count: must be a whole number >= 1"),
        ({"message_count": "1e5"}, "message_count: must be a whole number >= 1"),
        ({"chaos_enabled": "maybe"}, "chaos_enabled: must be true or false"),
        ({"chaos_seed": "-1"}, "chaos_seed: must be a whole number >= 0"),
        ({"run_id": "a b"}, "run_id: must be 1-64 of"),
        ({"run_watch_interval": 0}, "run_watch_interval: must be a whole number >= 1"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(over, named):
    run, windows, errors = plan(**over)
    assert run is None and windows == {}
    assert any(e.startswith(named) for e in errors), errors
    assert len(errors) == len(set(errors))  # one message, not one per service


def test_the_same_grammar_as_the_module():
    run, _, errors = plan(chaos_duration="0.25h", chaos_run_min="1m30s", chaos_run_max=120)
    assert errors == []
    assert run["chaos_duration_s"] == 900.0 and run["chaos_services_run"] == [90.0, 120.0]


def test_chaos_kinds_as_text_reach_the_params_and_the_plan():
    run, windows, errors = plan(run_id="k-1", chaos_kinds="stop=2,kill=1,pause=1")
    assert errors == []
    assert run["chaos_kinds"] == {"stop": 2.0, "kill": 1.0, "pause": 1.0}
    plain, plain_windows, _ = plan(run_id="k-1")
    assert plain["chaos_kinds"] == {"stop": 1.0}
    kinds = [w["kind"] for ws in windows.values() for w in ws if w["state"] == "stop"]
    assert [w["start_s"] for w in windows["nazbench-smsc.service"]] == [
        w["start_s"] for w in plain_windows["nazbench-smsc.service"]
    ]
    assert set(kinds) <= {"stop", "kill", "pause"} and len(kinds) >= 6
    listed, _, errors = plan(run_id="k-1", chaos_kinds="stop,pause")
    assert errors == [] and listed["chaos_kinds"] == {"stop": 1.0, "pause": 1.0}
    # the network kinds' port and peers come from the hosts, not from the run's variables
    network, _, errors = plan(run_id="k-1", chaos_kinds="blackhole,reset,half_open")
    assert errors == [] and set(network["chaos_kinds"]) == {"blackhole", "reset", "half_open"}


@pytest.mark.parametrize(
    "kinds",
    ["stop,,pause", "stop=1,pause", "stop=x", "stop=1,stop=2", "quake", "pause=-1", ""],
)
def test_bad_chaos_kinds_are_refused_naming_the_variable(kinds):
    run, _, errors = plan(run_id="k-2", chaos_kinds=kinds)
    assert run is None
    assert len(errors) == 1 and errors[0].startswith("chaos_kinds"), errors


def test_the_nemesis_profile_plans_every_kind_twice():
    profile = yaml.safe_load((ROOT / "playbooks/profiles/nemesis.yml").read_text())
    run, windows, errors = plan(run_id="nem-1", **profile)
    kinds = ("stop", "kill", "pause", "blackhole", "reset", "half_open")
    assert errors == [] and run["chaos_kinds"] == dict.fromkeys(kinds, 1.0)
    drawn = [w["kind"] for ws in windows.values() for w in ws if w["state"] == "stop"]
    assert all(drawn.count(k) >= 2 for k in kinds), drawn
    # both services get faults of both families
    for unit, ws in windows.items():
        got = {w["kind"] for w in ws if w["state"] == "stop"}
        assert got & {"stop", "kill", "pause"} and got & {"blackhole", "reset", "half_open"}, unit


def test_the_smsc_kinds_go_to_the_smsc_only():
    run, windows, errors = plan(
        run_id="s-1",
        chaos_smsc_kinds="throttle=1,drop_resp=1,stop=1",
        chaos_params={"throttle": {"fraction": 0.5}},
        chaos_duration="30m",
    )
    assert errors == []
    assert run["chaos_kinds"] == {"stop": 1.0}
    assert run["chaos_smsc_kinds"] == {"stop": 1.0, "throttle": 1.0, "drop_resp": 1.0}
    assert run["chaos_params_by_service"] == {
        "nazbench-smsc.service": {
            "throttle": {"name": "throttle", "fraction": 0.5},
            "drop_resp": {"name": "drop_resp", "fraction": 1.0},
        },
        "redis-server.service": {},
    }
    smsc = {w["kind"] for w in windows["nazbench-smsc.service"] if w["state"] == "stop"}
    redis = {w["kind"] for w in windows["redis-server.service"] if w["state"] == "stop"}
    assert smsc == {"stop", "throttle", "drop_resp"} and redis == {"stop"}
    # without chaos_smsc_kinds the SMSC takes chaos_kinds, as before
    plain, _, errors = plan(run_id="s-1", chaos_kinds="stop,pause")
    assert errors == [] and plain["chaos_smsc_kinds"] == plain["chaos_kinds"]
    assert plain["chaos_params_by_service"] == {
        "nazbench-smsc.service": {},
        "redis-server.service": {},
    }
    assert plain["chaos_redis_kinds"] == plain["chaos_kinds"]
    # Redis' own kinds: stall is Redis' only
    stall, windows, errors = plan(run_id="s-1", chaos_redis_kinds="stall,loss")
    assert errors == [] and stall["chaos_redis_kinds"] == {"loss": 1.0, "stall": 1.0}
    assert stall["chaos_smsc_kinds"] == {"stop": 1.0}
    assert {w["kind"] for w in windows["redis-server.service"] if w["state"] == "stop"} == {
        "loss",
        "stall",
    }
    # loss (a kind of both) takes its parameters from chaos_params, for each service
    loss, _, errors = plan(
        run_id="s-1", chaos_kinds="stop,loss", chaos_params={"loss": {"fraction": 0.2}}
    )
    assert errors == []
    assert loss["chaos_params_by_service"] == {
        "nazbench-smsc.service": {"loss": {"fraction": 0.2}},
        "redis-server.service": {"loss": {"fraction": 0.2}},
    }


@pytest.mark.parametrize(
    ("over", "named"),
    [
        # one service's kinds in the kinds of both are refused, naming where they go
        ({"chaos_kinds": "stop,throttle"}, "chaos_kinds"),
        ({"chaos_kinds": "stop,stall"}, "chaos_kinds"),
        ({"chaos_smsc_kinds": "stall"}, "chaos_smsc_kinds"),
        ({"chaos_redis_kinds": "drop_resp"}, "chaos_redis_kinds"),
        ({"chaos_redis_kinds": "quake"}, "chaos_redis_kinds"),
        # chaos_kinds is checked even when both services have their own
        ({"chaos_kinds": "quake", "chaos_smsc_kinds": "stop", "chaos_redis_kinds": "stop"},
         "chaos_kinds"),
        ({"chaos_redis_kinds": "loss", "chaos_params": {"loss": {"fraction": 1}}},
         "chaos_params.loss"),
        ({"chaos_smsc_kinds": "throttle", "chaos_params": {"throttle": {"fraction": 2}}},
         "chaos_params.throttle"),
        ({"chaos_smsc_kinds": "slow", "chaos_params": {"throttle": {}}}, "chaos_params"),
        ({"chaos_smsc_kinds": "stop", "chaos_params": {"throttle": {}}}, "chaos_params"),
        ({"chaos_kinds": "loss", "chaos_params": {"loss": {"fraction": 0}}},
         "chaos_params.loss"),
        ({"chaos_kinds": "loss", "chaos_params": "fraction=0.1"}, "chaos_params"),
        ({"chaos_smsc_kinds": "quake"}, "chaos_smsc_kinds"),
    ],
)  # fmt: skip
def test_bad_smsc_kinds_are_refused_naming_the_variable(over, named):
    run, _, errors = plan(run_id="s-2", **over)
    assert run is None
    assert any(e.startswith(named) for e in errors), errors


def test_the_nemesis_smsc_profile_plans_every_kind_of_each_peer_twice():
    profile = yaml.safe_load((ROOT / "playbooks/profiles/nemesis-smsc.yml").read_text())
    run, windows, errors = plan(run_id="nem-2", **profile)
    assert errors == [], errors
    wanted = {
        "nazbench-smsc.service": ("throttle", "slow", "silent", "drop_resp", "unbind"),
        "redis-server.service": ("stall", "loss"),
    }
    for unit, kinds in wanted.items():
        drawn = [w["kind"] for w in windows[unit] if w["state"] == "stop"]
        assert all(drawn.count(k) >= 2 for k in kinds), (unit, drawn)
        # every window ends inside the loop, so each fault is undone by the plan itself
        assert all(w["end_s"] <= run["chaos_duration_s"] for w in windows[unit])
    smsc = run["chaos_params_by_service"]["nazbench-smsc.service"]
    assert smsc["throttle"] == {"name": "throttle", "fraction": 0.5}
    assert smsc["slow"] == {"name": "slow", "delay_s": 10.0}
    assert run["chaos_params_by_service"]["redis-server.service"] == {"loss": {"fraction": 0.2}}


def test_the_nemesis_latency_profile_plans_latency_windows_for_both_peers():
    profile = yaml.safe_load((ROOT / "playbooks/profiles/nemesis-latency.yml").read_text())
    run, windows, errors = plan(run_id="nem-lat", **profile)
    assert errors == [], errors
    for unit in ("nazbench-smsc.service", "redis-server.service"):
        drawn = [w["kind"] for w in windows[unit] if w["state"] == "stop"]
        assert len(drawn) >= 4 and set(drawn) == {"latency"}, (unit, drawn)
        assert all(w["end_s"] <= run["chaos_duration_s"] for w in windows[unit])
        assert run["chaos_params_by_service"][unit] == {"latency": {"delay_ms": 2000.0}}
