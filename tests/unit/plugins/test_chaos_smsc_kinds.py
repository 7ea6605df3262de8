"""The SMSC behaviour kinds (throttle, slow, silent, drop_resp, unbind) in the chaos loop:
modes set through the control socket for a window, normal after it, on every exit path.

The control socket is a fake here (it keeps the mode as the SMSC would, and is gone while
the unit is stopped); tests/unit/smsc/test_smsc_control.py has the real one, and
test_control_request_talks_to_the_real_smsc below joins the two.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time

import pytest
from ansible.module_utils.chaos_runner import (
    CONTROL_WAIT_S,
    STOP_EDGE_WAIT_S,
    ControlCall,
    StateFile,
    control_request,
    fault_commands,
)
from ansible.module_utils.smsc_modes import parse_mode
from chaos_helpers import read_timeline
from prometheus_client import CollectorRegistry
from test_chaos_kinds import _sigterm_in_first_fault
from test_chaos_runner import SYSTEMCTL, make_config, make_runner, planned_edges

from nazbench.smsc.metrics import SmscMetrics
from nazbench.smsc.server import Smsc, SmscConfig

CTL = "/run/nazbench-smsc/control.sock"
NORMAL = {"name": "normal"}


class FakeControl:
    """The SMSC's control socket: its mode, and no answer while the unit is down."""

    def __init__(self, systemctl, unit="smsc.service"):
        self.systemctl, self.unit = systemctl, unit
        self.mode = dict(NORMAL)
        self.calls: list[ControlCall] = []
        self.modes: list[dict] = []  # every mode the SMSC was put in, in order
        self.refuse = False

    def __call__(self, call: ControlCall):
        self.calls.append(call)
        if call.path != CTL or not self.systemctl.active.get(self.unit):
            return 1, "", f"control socket {call.path}: No such file or directory"
        if call.request["op"] == "get":
            return 0, json.dumps({"ok": True, "mode": self.mode}), ""
        if self.refuse:
            return 1, "", "control socket: 'refused'"
        previous, self.mode = self.mode, parse_mode(call.request["mode"]).as_dict()
        self.modes.append(self.mode)
        return 0, json.dumps({"ok": True, "mode": self.mode, "previous": previous}), ""


def _smsc(paths, kinds, params=None, **over):
    """_with_kinds' two services, the SMSC with ``kinds`` through the control socket."""
    services = [
        {"unit": "smsc.service", "run_min": "10s", "run_max": "20s", "stop_min": "2s",
         "stop_max": "5s", "kinds": kinds, "control": CTL, "params": params},
        {"unit": "redis.service", "run_min": "8s", "run_max": "12s", "stop_min": "1s",
         "stop_max": "3s", "kinds": "stop"},
    ]  # fmt: skip
    return make_config(paths, services=services, **over)


def _run(config, fake_systemctl, clock, control, **kwargs):
    return make_runner(config, fake_systemctl, clock, control=control, **kwargs).run()


def test_each_window_sets_its_mode_and_its_end_sets_normal(paths, clock, fake_systemctl):
    kinds = {"throttle": 1, "slow": 1, "silent": 1, "drop_resp": 1, "unbind": 1}
    params = {"throttle": {"fraction": 0.25}, "slow": {"delay_s": 2}}
    config = _smsc(paths, kinds, params, duration="10m")
    control = FakeControl(fake_systemctl)
    result = _run(config, fake_systemctl, clock, control)
    assert not result["failed"], result["msg"]
    edges = [e for e in result["timeline"] if e["service"] == "smsc.service"]
    stops = [e for e in edges if e["edge"] == "stop"]
    assert {e["kind"] for e in stops} == set(kinds), "10 minutes draw every kind"
    expected = {
        "throttle": {"name": "throttle", "fraction": 0.25},
        "slow": {"name": "slow", "delay_s": 2.0},
        "silent": {"name": "silent"},
        "drop_resp": {"name": "drop_resp", "fraction": 1.0},
        "unbind": {"name": "unbind"},
    }
    for stop, start in zip(stops, [e for e in edges if e["edge"] == "start"], strict=True):
        mode = expected[stop["kind"]]
        assert stop["params"] == {"control": CTL, "mode": mode, "mode_after": mode}
        assert start["kind"] == stop["kind"] and start["outcome"] == "ok"
        assert start["params"]["mode_after"] == NORMAL
    # the SMSC went fault, normal, normal, fault, ... and ends normal
    assert control.modes == [m for s in stops for m in (expected[s["kind"]], NORMAL, NORMAL)]
    assert control.mode == NORMAL
    # the unit itself was never stopped, only started (a no-op on a running unit)
    smsc = [c[1] for c in fake_systemctl.calls if c[-1] == "smsc.service" and c[1] != "show"]
    assert set(smsc) == {"start"} and len(smsc) == len(stops)
    assert not os.path.exists(config.state_path)


def test_fault_commands_of_an_smsc_kind():
    mode = {"name": "slow", "delay_s": 3.0}
    stop = fault_commands(SYSTEMCTL, "slow", "stop", "smsc.service", control=CTL, mode=mode)
    # a unit restarting right before the window (a stop window's end, Restart=) gets a moment
    assert stop == [(ControlCall(CTL, {"op": "set", "mode": mode}, STOP_EDGE_WAIT_S), True)]
    start = fault_commands(SYSTEMCTL, "slow", "start", "smsc.service", control=CTL)
    assert start == [
        (ControlCall(CTL, {"op": "set", "mode": NORMAL}), False),
        ([SYSTEMCTL, "start", "smsc.service"], True),
        (ControlCall(CTL, {"op": "set", "mode": NORMAL}, CONTROL_WAIT_S), True),
    ]


def test_preflight_refuses_a_control_socket_that_does_not_answer(paths, clock, fake_systemctl):
    config = _smsc(paths, "throttle")
    control = FakeControl(fake_systemctl)
    control.systemctl = type("Down", (), {"active": {}})()  # the socket is not there
    result = _run(config, fake_systemctl, clock, control)
    assert result["failed"] and "does not answer" in result["msg"], result["msg"]
    assert [c.request["op"] for c in control.calls] == ["get"]
    assert not [c for c in fake_systemctl.calls if c[1] not in ("show",)]


def test_preflight_refuses_an_smsc_left_in_a_fault_mode(paths, clock, fake_systemctl):
    config = _smsc(paths, "silent")
    control = FakeControl(fake_systemctl)
    control.mode = {"name": "silent"}
    result = _run(config, fake_systemctl, clock, control)
    assert result["failed"] and "not normal" in result["msg"], result["msg"]
    assert "heal_only" in result["msg"]
    assert control.mode == {"name": "silent"} and control.modes == []


def test_sigterm_in_a_throttle_window_sets_normal(paths, clock, fake_systemctl):
    config = _smsc(paths, "throttle", {"throttle": {"fraction": 0.5}})
    control = FakeControl(fake_systemctl)

    def run(config, fake, clock, **kwargs):  # _sigterm_in_first_fault's runner, with control
        return make_runner(config, fake, clock, control=control, **kwargs)

    first = planned_edges(config)[0]
    assert first[1] == "smsc.service"
    result = _sigterm_in_first_fault(config, clock, fake_systemctl, make=run)
    heal = result["timeline"][-1]
    assert (heal["cause"], heal["kind"], heal["outcome"]) == ("heal", "throttle", "ok")
    assert control.modes == [{"name": "throttle", "fraction": 0.5}, NORMAL, NORMAL]
    assert control.mode == NORMAL and not os.path.exists(config.state_path)


def test_a_loop_killed_in_a_drop_resp_window_is_healed_by_heal_only(paths, clock, fake_systemctl):
    config = _smsc(paths, "drop_resp")
    control = FakeControl(fake_systemctl)
    seen = {}

    def spy(call):  # the state file as it is when the fault's mode is set
        if call.request.get("mode", {}).get("name") == "drop_resp":
            seen.setdefault("state", StateFile(config.state_path).load())
        return control(call)

    assert not _run(config, fake_systemctl, clock, spy)["failed"]
    assert seen["state"]["kinds"] == {"smsc.service": "drop_resp"}
    assert seen["state"]["access"] == {"smsc.service": {"control": CTL}}
    # as if SIGKILL hit a loop mid-window: the SMSC is left dropping responses, and the
    # heal knows only the state file (heal_only has no services, so no control option)
    control.mode = {"name": "drop_resp", "fraction": 1.0}
    StateFile(config.state_path).save(
        "old-run", 999, ["smsc.service"], 1.0, {"smsc.service": "drop_resp"},
        access={"smsc.service": {"control": CTL}},
    )  # fmt: skip
    control.calls.clear()
    heal = make_config(paths, heal_only=True, services=None, duration=None)
    result = _run(heal, fake_systemctl, clock, control)
    assert result["healed"] == ["smsc.service"] and control.mode == NORMAL
    assert control.calls[0] == ControlCall(CTL, {"op": "set", "mode": NORMAL})
    assert not os.path.exists(config.state_path)
    leftover = [r for r in read_timeline(paths["timeline_path"]) if r.get("cause") == "leftover"]
    assert leftover[-1]["kind"] == "drop_resp" and leftover[-1]["params"]["mode_after"] == NORMAL


def test_a_smsc_that_died_in_its_window_is_started_and_checked(paths, clock, fake_systemctl):
    config = _smsc(paths, "unbind")
    control = FakeControl(fake_systemctl)
    first = next(e for e in planned_edges(config) if e[1] == "smsc.service")
    clock.at(first[0] + 0.5, lambda: fake_systemctl.active.update({"smsc.service": False}))
    result = _run(config, fake_systemctl, clock, control)
    assert not result["failed"], result["msg"]
    start = next(e for e in result["timeline"] if e["edge"] == "start" and e["kind"] == "unbind")
    assert start["outcome"] == "ok" and start["params"]["mode_after"] == NORMAL
    assert fake_systemctl.active["smsc.service"] is True


def test_a_heal_whose_control_never_answers_fails_and_keeps_the_state(paths, clock, fake_systemctl):
    config = _smsc(paths, "slow")
    control = FakeControl(fake_systemctl)
    first = next(e for e in planned_edges(config) if e[1] == "smsc.service")
    clock.at(first[0] + 0.5, lambda: setattr(control, "refuse", True))
    result = _run(config, fake_systemctl, clock, control)
    assert result["failed"] and "smsc.service" in result["msg"], result["msg"]
    state = StateFile(config.state_path).load()
    assert state["kinds"] == {"smsc.service": "slow"} and state["access"]


@pytest.mark.parametrize(
    "bad",
    [
        {"smsc.service": 5},
        {"smsc.service": {"control": "relative.sock"}},
        {"redis.service": {"port": 0}},
        {"redis.service": {"port": 6379, "auth_file": "etc/redis.password"}},
        [],
    ],
)
def test_a_state_file_with_a_bad_access_map_is_refused(tmp_path, bad):
    path = tmp_path / "chaos.lock.state"
    path.write_text(json.dumps({"stopped": ["smsc.service"], "access": bad}))
    with pytest.raises(Exception, match="access"):
        StateFile(str(path)).load()


def test_control_request_talks_to_the_real_smsc(tmp_path):
    """control_request (the module's side) against the SMSC's own control socket."""
    sock = tmp_path / "control.sock"
    config = SmscConfig(
        ledger_path=tmp_path / "ledger.jsonl", password="pw", port=0, control_socket=sock
    )
    ready, done = threading.Event(), None

    async def serve():
        nonlocal done
        done = asyncio.Event()
        async with Smsc(config, SmscMetrics(CollectorRegistry())):
            ready.set()
            await done.wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    thread.start()
    try:
        assert ready.wait(10)
        throttle = {"name": "throttle", "fraction": 0.5}
        rc, out, err = control_request(ControlCall(str(sock), {"op": "set", "mode": throttle}))
        assert (rc, err) == (0, "") and json.loads(out)["mode"] == throttle
        assert json.loads(out)["previous"] == NORMAL
        rc, out, err = control_request(ControlCall(str(sock), {"op": "get"}))
        assert rc == 0 and json.loads(out)["mode"] == throttle
        bad = {"op": "set", "mode": {"name": "throttle", "fraction": 2}}
        rc, out, err = control_request(ControlCall(str(sock), bad))
        assert rc == 1 and "fraction" in err
        rc, out, err = control_request(ControlCall(str(sock), {"op": "set", "mode": NORMAL}))
        assert rc == 0 and json.loads(out)["mode"] == NORMAL
    finally:
        loop.call_soon_threadsafe(done.set)
        thread.join(10)
        loop.close()
    rc, out, err = control_request(ControlCall(str(sock), {"op": "get"}))
    assert rc == 1 and str(sock) in err  # gone with the SMSC


def test_control_request_waits_for_a_socket_that_is_not_there_yet(tmp_path):
    slept = []
    call = ControlCall(str(tmp_path / "nope.sock"), {"op": "get"}, wait_s=0.0)
    rc, _out, err = control_request(call, sleep=slept.append)
    assert rc == 1 and "No such file" in err and slept == []
    call = ControlCall(str(tmp_path / "nope.sock"), {"op": "get"}, wait_s=0.5)
    start = time.monotonic()
    rc, _out, err = control_request(call)
    assert rc == 1 and "No such file" in err
    assert time.monotonic() - start >= 0.5  # it kept trying for wait_s


def test_control_request_gets_a_socket_that_appears_while_it_waits(tmp_path):
    path = tmp_path / "late.sock"

    def serve_later():
        time.sleep(0.4)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
            srv.bind(str(path))
            srv.listen(1)
            conn, _ = srv.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b'{"ok": true, "mode": {"name": "normal"}}\n')

    server = threading.Thread(target=serve_later)
    server.start()
    rc, out, err = control_request(ControlCall(str(path), {"op": "get"}, wait_s=5.0))
    server.join(5)
    assert (rc, err) == (0, "") and json.loads(out)["mode"] == NORMAL
