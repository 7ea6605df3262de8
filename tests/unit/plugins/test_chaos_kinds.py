"""Fault kinds per window (services[].kinds): the draw, the commands, the heal on every path."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
from collections import Counter

import pytest
from ansible.module_utils.chaos_plan import build_plan, draw_kind, iter_outages
from ansible.module_utils.chaos_runner import SignalTrap, StateFile, fault_commands
from chaos_helpers import read_timeline
from test_chaos_runner import SYSTEMCTL, make_config, make_runner, planned_edges


def _with_kinds(paths, smsc, redis=None, **over):
    config = make_config(paths, **over)
    params = {
        "run_id": config.run_id,
        "seed": config.seed,
        "services": [
            {"unit": "smsc.service", "run_min": "10s", "run_max": "20s", "stop_min": "2s",
             "stop_max": "5s", "kinds": smsc},
            {"unit": "redis.service", "run_min": "8s", "run_max": "12s", "stop_min": "1s",
             "stop_max": "3s", "kinds": redis},
        ],
    }  # fmt: skip
    return make_config(paths, **{**params, **over})


def _windows(plan):
    return {u: [(w["start_s"], w["end_s"]) for w in ws] for u, ws in plan.items()}


def test_kinds_never_move_a_window_and_one_kind_draws_nothing(paths):
    plain = make_config(paths)
    mixed = _with_kinds(paths, {"stop": 1, "kill": 1, "pause": 1}, "pause")
    assert _windows(build_plan(mixed)) == _windows(build_plan(plain))
    stops = [w for w in build_plan(plain)["smsc.service"] if w["state"] == "stop"]
    assert {w["kind"] for w in stops} == {"stop"}
    redis = [w for w in build_plan(mixed)["redis.service"] if w["state"] == "stop"]
    assert {w["kind"] for w in redis} == {"pause"}


def test_the_draw_follows_the_weights_and_the_seed():
    kinds = (("stop", 3.0), ("pause", 1.0))
    draws = Counter(draw_kind(11, "smsc.service", cycle, kinds) for cycle in range(2000))
    assert 0.72 <= draws["stop"] / 2000 <= 0.78, draws
    again = [draw_kind(11, "smsc.service", c, kinds) for c in range(50)]
    assert again == [draw_kind(11, "smsc.service", c, kinds) for c in range(50)]
    other_seed = [draw_kind(12, "smsc.service", c, kinds) for c in range(50)]
    assert other_seed != again


def test_the_global_action_is_the_default_kind(paths):
    config = make_config(paths, action="kill")
    outages = list(iter_outages(config.seed, config.services[0], config.end_ms))
    assert outages and {o.kind for o in outages} == {"kill"}


def test_a_pause_window_stops_and_continues_the_processes(paths, clock, fake_systemctl):
    config = _with_kinds(paths, "pause", "stop")
    result = make_runner(config, fake_systemctl, clock).run()
    assert not result["failed"], result["msg"]
    smsc = [c for c in fake_systemctl.calls if c[-1] == "smsc.service" and c[1] != "show"]
    assert smsc[:4] == [
        [SYSTEMCTL, "kill", "--signal=SIGSTOP", "smsc.service"],
        [SYSTEMCTL, "kill", "--signal=SIGCONT", "smsc.service"],
        [SYSTEMCTL, "start", "smsc.service"],
        [SYSTEMCTL, "kill", "--signal=SIGCONT", "smsc.service"],
    ]
    assert not any(c[1] == "stop" for c in smsc)
    assert fake_systemctl.paused == set() and all(fake_systemctl.active.values())
    edges = [r for r in read_timeline(paths["timeline_path"]) if r["record"] == "edge"]
    assert {(e["service"], e["kind"]) for e in edges} == {
        ("smsc.service", "pause"),
        ("redis.service", "stop"),
    }
    assert result["summary"]["services"]["smsc.service"]["outages"] >= 3


def _sigterm_in_first_fault(config, clock, fake_systemctl, make=make_runner):
    """Run the loop (a runner from ``make``) and send it SIGTERM 0.3 s into its first
    fault window."""
    first_stop = planned_edges(config)[0]
    clock.at(first_stop[0] + 0.3, lambda: os.kill(os.getpid(), signal.SIGTERM))
    with SignalTrap() as trap:
        return make(config, fake_systemctl, clock, stop_requested=trap).run()


def test_sigterm_during_a_pause_continues_the_unit(paths, clock, fake_systemctl):
    config = _with_kinds(paths, "pause", "pause")
    result = _sigterm_in_first_fault(config, clock, fake_systemctl)
    assert result["summary"]["end_reason"] == "signal"
    heal = result["timeline"][-1]
    assert (heal["cause"], heal["kind"], heal["outcome"]) == ("heal", "pause", "ok")
    assert fake_systemctl.paused == set()
    assert not os.path.exists(config.state_path)


def test_a_loop_killed_during_a_pause_is_healed_by_heal_only(paths, clock, fake_systemctl):
    config = _with_kinds(paths, "pause", "kill")
    seen = {}

    def on_call(argv):  # the state file as it is when the SIGSTOP goes out
        if argv[1] == "kill" and argv[2] == "--signal=SIGSTOP":
            seen.setdefault("state", StateFile(config.state_path).load())

    fake_systemctl.on_call = on_call
    fake_systemctl.paused.add("smsc.service")  # as if SIGKILL hit the loop mid-window
    state = StateFile(config.state_path)
    os.makedirs(os.path.dirname(config.state_path))
    state.save("old-run", 999, ["smsc.service"], 1.0, {"smsc.service": "pause"})
    heal = make_config(paths, heal_only=True, services=None, duration=None)
    result = make_runner(heal, fake_systemctl, clock).run()
    assert result["healed"] == ["smsc.service"] and fake_systemctl.paused == set()
    assert fake_systemctl.calls[0] == [SYSTEMCTL, "kill", "--signal=SIGCONT", "smsc.service"]
    assert not os.path.exists(config.state_path)
    # and the state a real loop writes names the kind before the SIGSTOP
    make_runner(config, fake_systemctl, clock).run()
    assert seen["state"]["kinds"] == {"smsc.service": "pause"}


def test_a_unit_that_died_during_its_pause_is_started(paths, clock, fake_systemctl):
    config = _with_kinds(paths, "pause", "stop")
    first = next(e for e in planned_edges(config) if e[1] == "smsc.service")
    clock.at(first[0] + 0.5, lambda: fake_systemctl.active.update({"smsc.service": False}))
    clock.at(first[0] + 0.5, lambda: fake_systemctl.paused.discard("smsc.service"))
    result = make_runner(config, fake_systemctl, clock).run()
    assert not result["failed"], result["msg"]
    start = next(
        e for e in result["timeline"] if e["service"] == "smsc.service" and e["edge"] == "start"
    )
    assert start["outcome"] == "ok" and start["kind"] == "pause"
    assert all(fake_systemctl.active.values())


def test_fault_commands_of_each_kind():
    for kind in ("stop", "kill", "pause"):
        stop = fault_commands("systemctl", kind, "stop", "u.service")
        start = fault_commands("systemctl", kind, "start", "u.service")
        assert all(argv[-1] == "u.service" for argv, _ in stop + start)
        # whatever the kind, a start includes a start that must work
        assert (["systemctl", "start", "u.service"], True) in start
        assert all(required for _, required in stop)


NAZ = ["10.89.154.11", "fd00::11"]


def _network(paths, smsc, redis="stop", peers=NAZ):
    params = {
        "peers": peers,
        "services": [
            {"unit": "smsc.service", "run_min": "10s", "run_max": "20s", "stop_min": "2s",
             "stop_max": "5s", "kinds": smsc, "port": 2775},
            {"unit": "redis.service", "run_min": "8s", "run_max": "12s", "stop_min": "1s",
             "stop_max": "3s", "kinds": redis, "port": 6379},
        ],
    }  # fmt: skip
    return make_config(paths, **params)


def test_network_rules_match_only_the_port_and_the_peers():
    from ansible.module_utils.chaos_runner import nft_rules, nft_table  # noqa: PLC0415

    assert nft_table("nazbench-smsc.service") == "nazbench_chaos_nazbench_smsc"
    black = nft_rules("blackhole", "smsc.service", 2775, NAZ)
    assert "ip saddr { 10.89.154.11 } tcp dport 2775 drop" in black
    assert "ip6 saddr { fd00::11 } tcp dport 2775 drop" in black
    assert "ip daddr { 10.89.154.11 } tcp sport 2775 drop" in black
    reset = nft_rules("reset", "smsc.service", 2775, NAZ[:1])
    assert "tcp dport 2775 reject with tcp reset" in reset and "sport" not in reset
    half = nft_rules("half_open", "smsc.service", 2775, NAZ[:1])
    assert "daddr { 10.89.154.11 } tcp sport 2775 drop" in half and "dport" not in half
    # every rule of a fault: in its own table, on the service's port, naming a peer
    for script in (black, reset, half):
        rules = [r for r in script.split("; ") if r.startswith("add rule")]
        assert rules and all(" inet nazbench_chaos_smsc " in r for r in rules)
        assert all("2775" in r and ("10.89.154.11" in r or "fd00::11" in r) for r in rules)


def test_a_network_window_adds_rules_and_its_end_deletes_them(paths, clock, fake_systemctl):
    config = _network(paths, "blackhole")
    result = make_runner(config, fake_systemctl, clock).run()
    assert not result["failed"], result["msg"]
    nft = [c for c in fake_systemctl.calls if c[0] == "nft"]
    adds = [c for c in nft if "add rule" in c[1]]
    deletes = [c for c in nft if "delete table inet nazbench_chaos_smsc" in c[1]]
    assert len(adds) == len(deletes) == result["summary"]["services"]["smsc.service"]["outages"]
    # the unit itself is never stopped by a network fault
    assert not any(c[1] == "stop" and c[-1] == "smsc.service" for c in fake_systemctl.calls)
    stop = next(e for e in result["timeline"] if e["service"] == "smsc.service")
    assert stop["kind"] == "blackhole" and stop["params"] == {"port": 2775, "peers": NAZ}


def test_a_loop_killed_during_a_blackhole_is_healed_by_heal_only(paths, clock, fake_systemctl):
    os.makedirs(os.path.dirname(paths["lock_path"]))
    config = _network(paths, "blackhole")
    StateFile(config.state_path).save(
        "old", 9, ["smsc.service"], 1.0, {"smsc.service": "blackhole"}
    )
    heal = make_config(paths, heal_only=True, services=None, duration=None)
    result = make_runner(heal, fake_systemctl, clock).run()
    assert result["healed"] == ["smsc.service"]
    assert fake_systemctl.calls[0] == [
        "nft",
        "add table inet nazbench_chaos_smsc; delete table inet nazbench_chaos_smsc",
    ]
    assert not os.path.exists(config.state_path)


def test_sigterm_during_a_reset_deletes_the_rules(paths, clock, fake_systemctl):
    config = _network(paths, "reset", "reset")
    result = _sigterm_in_first_fault(config, clock, fake_systemctl)
    heal = result["timeline"][-1]
    assert (heal["cause"], heal["kind"], heal["outcome"]) == ("heal", "reset", "ok")
    assert any("delete table" in c[1] for c in fake_systemctl.calls if c[0] == "nft")


def test_a_failed_first_sigcont_is_retried_after_the_start(paths, clock, fake_systemctl):
    # systemd busy: the first SIGCONT of the pause's end fails, the unit is still active
    # and still stopped; the start changes nothing, the second SIGCONT must continue it
    config = _with_kinds(paths, "pause", "stop")
    failing = {"n": 0}

    def on_call(argv):
        if argv[1:3] == ["kill", "--signal=SIGCONT"] and failing["n"] == 0:
            failing["n"] = 1
            fake_systemctl.fail[("kill", argv[-1])] = 1

    fake_systemctl.on_call = on_call
    result = make_runner(config, fake_systemctl, clock).run()
    assert not result["failed"], result["msg"]
    assert failing["n"] == 1 and fake_systemctl.paused == set()


def test_loss_drops_each_way_with_its_fraction():
    from ansible.module_utils.chaos_runner import nft_rules  # noqa: PLC0415

    loss = nft_rules("loss", "smsc.service", 2775, NAZ[:1], {"fraction": 0.25})
    draw = "numgen random mod 10000 < 2500 drop"
    assert f"ip saddr {{ 10.89.154.11 }} tcp dport 2775 {draw}" in loss
    assert f"ip daddr {{ 10.89.154.11 }} tcp sport 2775 {draw}" in loss
    tiny = nft_rules("loss", "smsc.service", 2775, NAZ[:1], {"fraction": 0.00001})
    assert "< 1 drop" in tiny  # the smallest fraction drops something, never nothing


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_every_network_script_is_valid_nft_and_the_heal_removes_it():
    """The scripts as nft itself reads them, in a network namespace of their own."""
    from ansible.module_utils.chaos_runner import fault_commands  # noqa: PLC0415

    nft = shutil.which("nft") or "/usr/sbin/nft"
    for kind in ("blackhole", "reset", "half_open", "loss"):
        params = {"fraction": 0.1} if kind == "loss" else None
        (stop, _), = fault_commands(
            "systemctl", kind, "stop", "smsc.service", nft=nft, port=2775, peers=NAZ,
            mode=params,
        )  # fmt: skip
        heal = fault_commands("systemctl", kind, "start", "smsc.service", nft=nft)[0][0]
        script = (
            f"{shlex.join(stop)} && {nft} list ruleset && {shlex.join(heal)} && "
            f"{shlex.join(heal)} && echo RULESET && {nft} list ruleset"
        )
        done = subprocess.run(
            ["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, (kind, done.stderr)
        applied, after = done.stdout.split("RULESET")
        assert "nazbench_chaos_smsc" in applied and "2775" in applied, applied
        assert after.strip() == "", after  # healed twice: nothing left, no error
