"""Fakes shared by the chaos_loop tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

ROOT = Path(__file__).resolve().parents[3]
MODULES = ROOT / "plugins" / "modules"


def load_module(name: str):
    """Import plugins/modules/<name>.py under a private name."""
    qualified = f"nazbench_test_modules.{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, MODULES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module


class FakeClock:
    """Wall and monotonic clocks that only move when sleep() or advance() is called."""

    def __init__(self, wall=1_700_000_000.0, mono=5_000.0):
        self.wall0 = wall
        self.mono0 = mono
        self.elapsed = 0.0
        self.hooks = []  # (at_elapsed, callable) run once when time passes them
        self.sleeps = []

    def time(self):
        return self.wall0 + self.elapsed

    def monotonic(self):
        return self.mono0 + self.elapsed

    def advance(self, seconds):
        self.elapsed += seconds
        due = [h for h in self.hooks if h[0] <= self.elapsed]
        self.hooks = [h for h in self.hooks if h[0] > self.elapsed]
        for _at, hook in due:
            hook()

    def sleep(self, seconds):
        assert seconds > 0
        self.sleeps.append(seconds)
        self.advance(seconds)

    def at(self, elapsed, hook):
        self.hooks.append((elapsed, hook))


class FakeCheck:
    """A stop_when check under the fake clock: done ``took`` seconds after it was spawned."""

    def __init__(self, argv, rc, clock, took):
        self.argv = argv
        self.rc = rc
        self.clock = clock
        self.started = clock.elapsed if clock else 0.0
        self.took = took
        self.killed_at = None

    def poll(self):
        if self.killed_at is not None:
            return -9
        if self.clock is None or self.clock.elapsed - self.started >= self.took:
            return self.rc
        return None

    def kill(self):
        self.killed_at = self.clock.elapsed if self.clock else 0.0


class FakeSystemctl:
    """A run_command stand-in: records argv, keeps unit states, can fail or take time."""

    def __init__(self, clock=None, units=("smsc.service", "redis.service"), took=0.0):
        self.clock = clock
        self.calls = []
        self.active = dict.fromkeys(units, True)
        self.paused = set()  # units whose processes got SIGSTOP and no SIGCONT yet
        self.took = took  # seconds each systemctl call takes (fake clock)
        self.fail = {}  # (verb, unit) -> number of times to fail
        self.stop_when_rc = lambda: 1
        self.check_took = 0.0  # seconds (fake clock) each stop_when check runs
        self.checks = []  # FakeCheck per spawned check
        self.on_call = None

    def __call__(self, argv):
        self.calls.append(list(argv))
        if self.on_call:
            self.on_call(list(argv))
        if argv[0] == "/bin/sh":
            return self.stop_when_rc(), "", ""
        verb, unit = argv[1], argv[-1]
        if self.clock is not None and self.took and verb != "show":
            self.clock.advance(self.took)
        if self.fail.get((verb, unit), 0) > 0:
            self.fail[(verb, unit)] -= 1
            return 1, "", f"Failed to {verb} {unit}: boom"
        if verb == "show":
            if unit not in self.active:
                return 0, "LoadState=not-found\nActiveState=inactive\n", ""
            state = "active" if self.active[unit] else "inactive"
            return 0, f"LoadState=loaded\nActiveState={state}\n", ""
        if verb == "kill" and argv[2] == "--signal=SIGSTOP":
            self.paused.add(unit)
        elif verb == "kill" and argv[2] == "--signal=SIGCONT":
            if not self.active.get(unit):
                return 1, "", f"Failed to kill unit {unit}: No main process to kill"
            self.paused.discard(unit)
        elif verb in ("stop", "kill"):
            self.active[unit] = False
        elif verb == "start":
            self.active[unit] = True
        return 0, "", ""

    def spawn(self, argv):
        """The runner's ``spawn``: the check's rc is decided when it starts."""
        self.calls.append(list(argv))
        if self.on_call:
            self.on_call(list(argv))
        took = self.check_took() if callable(self.check_took) else self.check_took
        check = FakeCheck(list(argv), self.stop_when_rc(), self.clock, took)
        self.checks.append(check)
        return check

    def verbs(self):
        return [(c[1], c[-1]) for c in self.calls if c[0] != "/bin/sh" and c[1] != "show"]


def read_timeline(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


class ExitJson(Exception):
    """Raised by the patched AnsibleModule.exit_json; .result is what it was given."""

    def __init__(self, result):
        super().__init__(result)
        self.result = result


class FailJson(Exception):
    """Raised by the patched AnsibleModule.fail_json; .result is what it was given."""

    def __init__(self, result):
        super().__init__(result)
        self.result = result


def run_main(monkeypatch, args, run_command=None, check_mode=False, get_bin_path=None):
    """Run chaos_loop.main() with ``args``; return ("exit"|"fail", result, run_command mock).

    run_command defaults to a mock (returning rc 0, so a wrongly-reached loop cannot hang)
    that the caller asserts on; ``run_command=False`` keeps the real
    AnsibleModule.run_command (tests that put a fake systemctl first on PATH).
    """
    module = load_module("chaos_loop")

    def exit_json(self, **kwargs):
        raise ExitJson(kwargs)

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        raise FailJson(kwargs)

    calls = run_command if run_command is not None else mock.Mock(return_value=(0, "", ""))
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    if run_command is None or isinstance(run_command, mock.Mock):
        monkeypatch.setattr(basic.AnsibleModule, "run_command", calls)
    if get_bin_path is not None:
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
    full_args = dict(args)
    if check_mode:
        full_args["_ansible_check_mode"] = True
    with patch_module_args(full_args):
        try:
            module.main()
        except ExitJson as done:
            return "exit", done.result, calls
        except FailJson as failed:
            return "fail", failed.result, calls
    raise AssertionError("main() returned without exit_json or fail_json")
