"""Redis' stall kind: CLIENT PAUSE for the window (with a timeout of its own), CLIENT
UNPAUSE at its end, on every exit path; against a real redis-server where it matters."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
import redis
from ansible.module_utils.chaos_plan import STALL_SLACK_MS
from ansible.module_utils.chaos_runner import (
    CONTROL_WAIT_S,
    STOP_EDGE_WAIT_S,
    RedisCall,
    StateFile,
    fault_commands,
    redis_request,
)
from chaos_helpers import read_timeline
from test_chaos_kinds import _sigterm_in_first_fault
from test_chaos_runner import SYSTEMCTL, make_config, make_runner

AUTH = "/etc/nazbench/redis.password"


class FakeRedis:
    """Redis on this host: paused or not, and unreachable while its unit is down."""

    def __init__(self, systemctl, unit="redis.service"):
        self.systemctl, self.unit = systemctl, unit
        self.paused_ms: int | None = None
        self.calls: list[RedisCall] = []
        self.password_ok = True

    def __call__(self, call: RedisCall):
        self.calls.append(call)
        if not self.systemctl.active.get(self.unit):
            return 1, "", f"redis 127.0.0.1:{call.port}: Connection refused"
        if not self.password_ok:
            return 1, "", f"redis 127.0.0.1:{call.port}: AUTH refused (the password in x)"
        if call.command == ("PING",):
            return 0, "PONG", ""
        if call.command[:2] == ("CLIENT", "PAUSE"):
            self.paused_ms = int(call.command[2])
        elif call.command == ("CLIENT", "UNPAUSE"):
            self.paused_ms = None
        return 0, "OK", ""


def _stall(paths, **over):
    services = [
        {"unit": "smsc.service", "run_min": "10s", "run_max": "20s", "stop_min": "2s",
         "stop_max": "5s", "kinds": "stop"},
        {"unit": "redis.service", "run_min": "8s", "run_max": "12s", "stop_min": "1s",
         "stop_max": "3s", "kinds": "stall", "port": 6379, "auth_file": AUTH},
    ]  # fmt: skip
    return make_config(paths, services=services, **over)


def test_fault_commands_of_a_stall():
    stop = fault_commands(
        SYSTEMCTL, "stall", "stop", "redis.service", port=6379, auth_file=AUTH, window_ms=2500
    )
    pause = ("CLIENT", "PAUSE", str(2500 + STALL_SLACK_MS), "WRITE")
    assert stop == [(RedisCall(6379, AUTH, pause, STOP_EDGE_WAIT_S), True)]
    start = fault_commands(SYSTEMCTL, "stall", "start", "redis.service", port=6379, auth_file=AUTH)
    unpause = ("CLIENT", "UNPAUSE")
    assert start == [
        (RedisCall(6379, AUTH, unpause), False),
        ([SYSTEMCTL, "start", "redis.service"], True),
        (RedisCall(6379, AUTH, unpause, CONTROL_WAIT_S), True),
    ]


def test_each_stall_window_pauses_redis_and_its_end_unpauses(paths, clock, fake_systemctl):
    config = _stall(paths)
    fake = FakeRedis(fake_systemctl)
    seen = []

    def spy(call):
        if call.command[:2] == ("CLIENT", "PAUSE"):  # the state file names it before it begins
            seen.append(StateFile(config.state_path).load())
        return fake(call)

    result = make_runner(config, fake_systemctl, clock, redis=spy).run()
    assert not result["failed"], result["msg"]
    edges = [e for e in result["timeline"] if e["service"] == "redis.service"]
    stops = [e for e in edges if e["edge"] == "stop"]
    assert stops and all(e["kind"] == "stall" for e in edges)
    for stop in stops:
        assert stop["params"]["port"] == 6379
        assert stop["params"]["pause_ms"] > STALL_SLACK_MS  # the window and the margin
    assert [c.command for c in fake.calls[:1]] == [("PING",)]  # the preflight
    assert [c.command[1] for c in fake.calls[1:]] == ["PAUSE", "UNPAUSE", "UNPAUSE"] * len(stops)
    assert fake.paused_ms is None
    assert seen[0]["kinds"]["redis.service"] == "stall"
    assert seen[0]["access"] == {"redis.service": {"port": 6379, "auth_file": AUTH}}
    # the unit is never stopped by a stall
    assert not any(
        c[1] in ("stop", "kill") and c[-1] == "redis.service" for c in fake_systemctl.calls
    )


def test_sigterm_in_a_stall_unpauses(paths, clock, fake_systemctl):
    services = [
        {"unit": "redis.service", "run_min": "8s", "run_max": "12s", "stop_min": "1s",
         "stop_max": "3s", "kinds": "stall", "port": 6379},
    ]  # fmt: skip
    config = make_config(paths, services=services)
    fake = FakeRedis(fake_systemctl)

    def run(config, systemctl, clock, **kwargs):
        return make_runner(config, systemctl, clock, redis=fake, **kwargs)

    result = _sigterm_in_first_fault(config, clock, fake_systemctl, make=run)
    heal = result["timeline"][-1]
    assert (heal["cause"], heal["kind"], heal["outcome"]) == ("heal", "stall", "ok")
    assert fake.paused_ms is None and not os.path.exists(config.state_path)


def test_a_loop_killed_in_a_stall_is_healed_by_heal_only(paths, clock, fake_systemctl):
    fake = FakeRedis(fake_systemctl)
    fake.paused_ms = 40_000  # as a SIGKILLed loop left it
    os.makedirs(os.path.dirname(paths["lock_path"]))
    StateFile(_stall(paths).state_path).save(
        "old", 9, ["redis.service"], 1.0, {"redis.service": "stall"},
        access={"redis.service": {"port": 6380, "auth_file": AUTH}},
    )  # fmt: skip
    heal = make_config(paths, heal_only=True, services=None, duration=None)
    result = make_runner(heal, fake_systemctl, clock, redis=fake).run()
    assert result["healed"] == ["redis.service"] and fake.paused_ms is None
    assert fake.calls[0] == RedisCall(6380, AUTH, ("CLIENT", "UNPAUSE"))  # the state's port
    leftover = [r for r in read_timeline(paths["timeline_path"]) if r.get("cause") == "leftover"]
    assert leftover[-1]["kind"] == "stall"


def test_redis_request_pauses_and_unpauses_a_real_redis(redis_server, tmp_path):
    """WRITE, not ALL: under CLIENT PAUSE ALL, CLIENT UNPAUSE itself waits for the pause's
    timeout (measured: 5.0 s of 5); under WRITE every queue operation (LPUSH, BRPOP, ...)
    waits, reads and the UNPAUSE go through."""
    password = "s3cret-pw"
    admin = redis_server.client()
    admin.config_set("requirepass", password)
    auth = tmp_path / "redis.password"
    auth.write_text(password + "\n")
    port = redis_server.port
    rc, out, err = redis_request(RedisCall(port, str(auth), ("CLIENT", "PAUSE", "5000", "WRITE")))
    assert (rc, out, err) == (0, "OK", "")
    other = redis.Redis(port=port, password=password, socket_timeout=10)
    assert other.ping()  # Redis answers: alive, and stuck
    took = {}

    def push():
        start = time.monotonic()
        other.lpush("q", "m")
        took["s"] = time.monotonic() - start

    waiter = threading.Thread(target=push)
    waiter.start()
    time.sleep(0.5)
    assert waiter.is_alive(), "a queue write must wait while Redis is paused"
    rc, out, err = redis_request(RedisCall(port, str(auth), ("CLIENT", "UNPAUSE")))
    assert rc == 0, err
    waiter.join(5)
    assert 0.4 < took["s"] < 4.0, took  # released by the UNPAUSE, not by the 5 s timeout
    assert other.llen("q") == 1
    other.close()


def test_redis_request_says_what_failed_and_never_the_password(redis_server, tmp_path):
    redis_server.client().config_set("requirepass", "right-pw")
    wrong = tmp_path / "wrong.password"
    wrong.write_text("wrong-pw\n")
    rc, _out, err = redis_request(RedisCall(redis_server.port, str(wrong), ("CLIENT", "UNPAUSE")))
    assert rc == 1 and "AUTH refused" in err and "wrong-pw" not in err and "right-pw" not in err
    rc, _out, err = redis_request(
        RedisCall(redis_server.port, str(tmp_path / "missing"), ("CLIENT", "UNPAUSE"))
    )
    assert rc == 1 and "cannot read auth_file" in err
    # no password given to a Redis that wants one: the command is refused, named
    rc, _out, err = redis_request(RedisCall(redis_server.port, None, ("CLIENT", "UNPAUSE")))
    assert rc == 1 and "NOAUTH" in err
    redis_server.stop()
    rc, _out, err = redis_request(RedisCall(redis_server.port, str(wrong), ("PING",)))
    assert rc == 1 and "refused" in err.lower()


@pytest.mark.parametrize(
    ("service", "named"),
    [
        ({"kinds": "stall"}, "services[0].kinds"),  # no port
        ({"kinds": "stall", "port": 6379, "auth_file": "redis.password"}, "services[0].auth_file"),
        ({"kinds": "stall", "port": 6379, "params": {"stall": {"ms": 1}}}, "services[0].params"),
    ],
)
def test_bad_stall_options_are_refused(paths, service, named):
    from ansible.module_utils.chaos_plan import validate_params  # noqa: PLC0415

    raw = {"unit": "redis.service", "run_min": "8s", "run_max": "12s", "stop_min": "1s",
           "stop_max": "3s", **service}  # fmt: skip
    _config, errors = validate_params(
        {"run_id": "r", "seed": 1, "services": [raw], "duration": "1m", **paths}
    )
    assert any(e.startswith(named) for e in errors), errors
    assert json.dumps(errors)  # plain data


def test_preflight_refuses_a_stall_that_cannot_reach_redis(paths, clock, fake_systemctl):
    """A wrong password file (or a port that is not Redis') fails before anything is
    touched: found at a window's edge, its heal would fail too and block the host."""
    config = _stall(paths)
    fake = FakeRedis(fake_systemctl)
    fake.password_ok = False
    result = make_runner(config, fake_systemctl, clock, redis=fake).run()
    assert result["failed"] and "cannot reach Redis" in result["msg"], result["msg"]
    assert [c.command for c in fake.calls] == [("PING",)]
    assert not [c for c in fake_systemctl.calls if c[1] != "show"]
    assert not os.path.exists(config.state_path)


def test_a_leftover_heal_does_not_change_this_loops_access(paths, clock, fake_systemctl):
    fake = FakeRedis(fake_systemctl)
    os.makedirs(os.path.dirname(paths["lock_path"]))
    config = _stall(paths)
    StateFile(config.state_path).save(
        "old", 9, ["redis.service"], 1.0, {"redis.service": "stall"},
        access={"redis.service": {"port": 6380, "auth_file": "/old/redis.password"}},
    )  # fmt: skip
    result = make_runner(config, fake_systemctl, clock, redis=fake).run()
    assert not result["failed"], result["msg"]
    assert fake.calls[0] == RedisCall(6380, "/old/redis.password", ("CLIENT", "UNPAUSE"))
    later = {(c.port, c.auth_file) for c in fake.calls[2:]}
    assert later == {(6379, AUTH)}  # this loop's windows: this loop's options
