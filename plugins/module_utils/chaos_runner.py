# Copyright: nazbench contributors
# MIT License
"""Execution side of the chaos_loop module: lock, state file, timeline, the loop, the heal.

Nothing here talks to systemd directly: the runner gets a ``run_command(argv)`` callable
(``AnsibleModule.run_command`` in production, a fake in tests), a clock and a
``stop_requested()`` callable, so the whole loop runs in milliseconds under a fake clock.

Crash safety, in order of what can kill the loop:

* exception, end of plan, stop_when, SIGTERM/SIGHUP/SIGINT: the ``finally`` of
  :meth:`ChaosRunner.run` starts every unit the loop stopped and records that as ``heal``
  edges;
* SIGKILL (async_wrapper's timeout, OOM killer, kill -9): nothing runs, but the state file
  lists every unit the loop stopped (written *before* each stop), the kernel drops the
  flock with the process, and the next run (or ``heal_only``) starts those units first.

Keeping the seed's schedule:

* no outage begins that cannot end inside the loop: once ``stop_when`` has succeeded, a
  stop whose planned start comes after the grace is skipped (``skip`` record, reason
  ``after_grace``), and an outage already in progress keeps its planned length;
* a stop the loop reaches more than ``max_lag`` late is skipped (reason ``stale``), never
  replayed in a burst; a late start always runs (the unit must come back);
* ``stop_when`` runs as a child process polled between edges, never blocking one, and is
  killed (its whole process group) after ``stop_when_timeout``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import heapq
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

from ansible.module_utils.chaos_plan import (
    KINDS,
    LOSS_SCALE,
    NETWORK_KINDS,
    REDIS_KINDS,
    SMSC_KINDS,
    STALL_SLACK_MS,
    ChaosConfig,
    build_plan,
    iter_outages,
    plan_horizon_ms,
)
from ansible.module_utils.chaos_timeline import Timeline as TimelineReader
from ansible.module_utils.smsc_modes import NORMAL

STDERR_LIMIT = 2000
# The kinds whose heal needs more than the unit's name (the state file keeps it).
ACCESS_KINDS = (*SMSC_KINDS, *REDIS_KINDS)
# How long an SMSC heal waits for the control socket of a unit it just started.
CONTROL_WAIT_S = 15.0
# How long a fault's start waits for a unit that is just (re)starting (the end of a stop
# window or a Restart= right before it); the wait shows as the edge's took_s.
STOP_EDGE_WAIT_S = 5.0
# One answer of the control socket: a line of JSON, far below this.
CONTROL_MAX_ANSWER = 65536
ACTIVE_STATES = ("active", "activating", "reloading")


# How often a running stop_when check is polled (seconds).
CHECK_POLL_S = 0.1


class ChaosError(Exception):
    """A failure that ends the loop with reason "error"."""


class LockHeld(Exception):
    """Another chaos_loop holds the host lock."""

    def __init__(self, path: str, holder: dict):
        self.path = path
        self.holder = holder
        pid = holder.get("pid", "?")
        run_id = holder.get("run_id", "?")
        since = holder.get("since")
        when = f" since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(since))}" if since else ""
        super().__init__(
            f"lock_path: another chaos_loop holds {path} (pid {pid}, run_id {run_id}{when}); "
            "wait for it (async_status) or end it: a killed loop releases the lock by itself"
        )


class Clock:
    """Real time.  Tests pass an object with the same three methods."""

    @staticmethod
    def time() -> float:
        return time.time()

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds)


class SignalTrap:
    """Turn SIGTERM/SIGHUP/SIGINT into a flag the loop polls; callable as stop_requested()."""

    SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)

    def __init__(self):
        self.received: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, _frame):
        if self.received is None:
            self.received = signum

    def __call__(self) -> bool:
        return self.received is not None

    def __enter__(self):
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
        return False


class StopWhenProcess:
    """A stop_when check running as a child in its own process group (session).

    Not ``run_command``: that blocks until the command ends, and a slow check must never
    hold up an edge.  stdout/stderr go to /dev/null: only the return code matters.
    """

    def __init__(self, argv):
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )

    def poll(self):
        """The return code, or None while it runs."""
        return self.proc.poll()

    def kill(self):
        """SIGKILL the whole process group (the shell and whatever it started)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Timeline:
    """Append-only JSON lines, each flushed and fsynced before the loop goes on."""

    def __init__(self, path: str):
        self.path = path
        self._fh = None

    def write(self, record: dict) -> None:
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        self._fh.write(json.dumps(record, default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class StateError(Exception):
    pass


def _access_ok(access) -> bool:
    if not isinstance(access, dict):
        return False
    control, auth = access.get("control"), access.get("auth_file")
    port = access.get("port")
    return (
        (control is None or (isinstance(control, str) and control.startswith("/")))
        and (auth is None or (isinstance(auth, str) and auth.startswith("/")))
        and (port is None or (isinstance(port, int) and 1 <= port <= 65535))
    )


class StateFile:
    """Units currently stopped by a loop on this host; replaced atomically on every change."""

    def __init__(self, path: str):
        self.path = path

    def load(self) -> dict:
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StateError(f"lock_path: cannot read state file {self.path}: {exc}") from exc
        stopped = data.get("stopped") if isinstance(data, dict) else None
        if not isinstance(stopped, list) or not all(isinstance(u, str) for u in stopped):
            raise StateError(f"lock_path: state file {self.path} has no 'stopped' list")
        kinds = data.get("kinds", {})  # files of loops before kinds: every unit stopped
        if not isinstance(kinds, dict) or not all(k in KINDS for k in kinds.values()):
            raise StateError(f"lock_path: state file {self.path} has a bad 'kinds' map")
        access = data.get("access", {})
        if not isinstance(access, dict) or not all(_access_ok(a) for a in access.values()):
            raise StateError(f"lock_path: state file {self.path} has a bad 'access' map")
        return data

    def save(
        self,
        run_id: str,
        pid: int,
        stopped: list[str],
        now: float,
        kinds: dict | None = None,
        *,
        access: dict | None = None,
    ) -> None:
        """``access``: unit -> how a heal reaches the units under an SMSC or Redis kind
        ({"control": socket} or {"port": p, "auth_file": f}), whatever the options of the
        loop that heals."""
        directory = os.path.dirname(self.path)
        if not stopped:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
                _fsync_dir(directory)
            return
        tmp = f"{self.path}.{pid}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            kinds_of = {u: (kinds or {}).get(u, "stop") for u in stopped}
            json.dump(
                {
                    "run_id": run_id,
                    "pid": pid,
                    "updated_at": now,
                    "stopped": stopped,
                    "kinds": kinds_of,
                    "access": {
                        u: (access or {})[u]
                        for u in stopped
                        if kinds_of[u] in ACCESS_KINDS and u in (access or {})
                    },
                },
                fh,
            )
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(directory)


class HostLock:
    """fcntl.flock on lock_path, non-blocking.  The kernel drops it when the holder dies."""

    def __init__(self, path: str):
        self.path = path
        self._fd: int | None = None

    def acquire(self, run_id: str, pid: int, now: float) -> None:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            holder = self._read_holder(fd)
            os.close(fd)
            raise LockHeld(self.path, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": pid, "run_id": run_id, "since": now}).encode(), 0)
        os.fsync(fd)
        self._fd = fd

    @staticmethod
    def _read_holder(fd: int) -> dict:
        try:
            data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def summarise(records: list[dict], units, end_reason: str, elapsed_s: float) -> dict:
    """Per service: outages, downtime, drift, failed edges, skips and open outages.

    ``records`` are the run's edge and skip records; outages are paired by the shared
    timeline reader, so an outage closes only on an ok start (a failed start leaves it
    open until the heal, or for good: ``open_outages``).
    """
    services = {
        unit: {
            "outages": 0,
            "downtime_s": 0.0,
            "max_drift_s": 0.0,
            "failed_edges": 0,
            "skipped": 0,
            "open_outages": 0,
        }
        for unit in units
    }
    timeline = TimelineReader.from_records(records)
    for edge in timeline.edges():
        entry = services.get(edge.get("service"))
        if entry is None or edge.get("cause") == "leftover":
            continue
        if edge.get("outcome") != "ok":
            entry["failed_edges"] += 1
        if edge.get("cause") == "plan":
            entry["max_drift_s"] = max(entry["max_drift_s"], abs(edge["drift_s"]))
    for outage in timeline.outages():
        entry = services.get(outage["service"])
        if entry is None:
            continue
        entry["outages"] += 1
        if outage["open"]:
            entry["open_outages"] += 1
        else:
            entry["downtime_s"] += outage["duration_s"] or 0.0
    for skip in timeline.skips():
        entry = services.get(skip.get("service"))
        if entry is not None:
            entry["skipped"] += 1
    for entry in services.values():
        entry["downtime_s"] = round(entry["downtime_s"], 3)
        entry["max_drift_s"] = round(entry["max_drift_s"], 3)
    return {
        "end_reason": end_reason,
        "elapsed_s": round(elapsed_s, 3),
        "max_drift_s": max((s["max_drift_s"] for s in services.values()), default=0.0),
        "services": services,
    }


def planned_summary(plan: dict) -> dict:
    """What check mode reports: the planned outages and downtime per service."""
    services = {}
    for unit, windows in plan.items():
        stops = [w for w in windows if w["state"] == "stop"]
        services[unit] = {
            "outages": len(stops),
            "downtime_s": round(sum(w["length_s"] for w in stops), 3),
            "max_drift_s": 0.0,
            "failed_edges": 0,
            "skipped": 0,
            "open_outages": 0,
        }
    return {"end_reason": "check_mode", "elapsed_s": 0.0, "max_drift_s": 0.0, "services": services}


def check_mode_result(config: ChaosConfig) -> dict:
    plan = {} if config.heal_only else build_plan(config)
    return {
        "changed": any(w["state"] == "stop" for ws in plan.values() for w in ws),
        "run_id": config.run_id,
        "seed": config.seed,
        "plan": plan,
        "plan_end_s": 0.0 if config.heal_only else plan_horizon_ms(config) / 1000,
        "timeline": [],
        "summary": planned_summary(plan),
        "healed": [],
        "skipped": [],
    }


class _EdgeQueue:
    """The next planned edges of every service, earliest first, drawn lazily."""

    def __init__(self, config: ChaosConfig):
        self._order = {spec.unit: i for i, spec in enumerate(config.services)}
        self._outages = {
            spec.unit: iter_outages(config.seed, spec, config.end_ms) for spec in config.services
        }
        self._heap: list = []
        self._seq = 0
        for spec in config.services:
            self._push_next(spec.unit)

    def _push(self, at_ms, edge, outage):
        heapq.heappush(self._heap, (at_ms, self._order[outage.unit], self._seq, edge, outage))
        self._seq += 1

    def _push_next(self, unit):
        outage = next(self._outages[unit], None)
        if outage is not None:
            self._push(outage.stop_ms, "stop", outage)

    def peek(self):
        """Offset (ms) of the next edge, or None when no service has one left."""
        return self._heap[0][0] if self._heap else None

    def pop(self):
        _at, _order, _seq, edge, outage = heapq.heappop(self._heap)
        return edge, outage

    def done(self, edge, outage):
        if edge == "stop":
            self._push(outage.start_ms, "start", outage)
        else:
            self._push_next(outage.unit)

    def skip(self, outage):
        """The outage's stop was skipped: drop its start, draw the unit's next outage."""
        self._push_next(outage.unit)


class ChaosRunner:
    """Runs one chaos loop on this host.  ``run()`` returns the module result."""

    def __init__(
        self,
        config: ChaosConfig,
        run_command,
        *,
        systemctl: str = "systemctl",
        nft: str = "nft",
        clock=None,
        stop_requested=None,
        tick_s: float = 0.5,
        shell: str = "/bin/sh",
        pid: int | None = None,
        hostname: str | None = None,
        spawn=None,
        check_poll_s: float = CHECK_POLL_S,
        control=None,
        redis=None,
        latency=None,
    ):
        self.config = config
        # unit -> Latency: how this host adds a latency window's delay (latency_method)
        self.latency = dict(latency or {})
        self.run_command = run_command
        self.systemctl = systemctl
        self.nft = nft
        self._ports = {spec.unit: spec.port for spec in config.services}
        self._params = {spec.unit: spec.params for spec in config.services}
        # unit -> how its SMSC or Redis kinds reach it (the state file's wins for a leftover)
        self.access = {
            s.unit: {"control": s.control, "port": s.port, "auth_file": s.auth_file}
            for s in config.services
        }
        # control(ControlCall) -> (rc, stdout, stderr): talks to a mock SMSC's control socket
        self.control = control or control_request
        # redis(RedisCall) -> (rc, stdout, stderr): one command to Redis on this host
        self.redis = redis or redis_request
        self.clock = clock or Clock()
        self.stop_requested = stop_requested or (lambda: False)
        self.tick_s = tick_s
        self.shell = shell
        # spawn(argv) -> an object with poll() (rc or None) and kill(): the stop_when check
        self.spawn = spawn or StopWhenProcess
        self.check_poll_s = check_poll_s
        self.pid = pid if pid is not None else os.getpid()
        self.hostname = hostname or socket.gethostname()
        self.timeline = Timeline(config.timeline_path)
        self.state = StateFile(config.state_path)
        self.lock = HostLock(config.lock_path)
        self.edges: list[dict] = []
        self.skips: list[dict] = []
        self.stopped: list[str] = []
        self.kinds: dict[str, str] = {}  # unit -> kind of the fault it is under
        self.healed: list[str] = []
        self.warnings: list[str] = []
        self._mono0: float | None = None
        self._wall0: float | None = None
        self._check = None  # the running stop_when check
        self._check_started_ms = 0.0
        self._next_check_ms: float | None = None
        self._grace_end_ms: float | None = None

    # ------------------------------------------------------------------ public

    def run(self) -> dict:
        cfg = self.config
        try:
            self.lock.acquire(cfg.run_id, self.pid, self.clock.time())
        except LockHeld as exc:
            return self._result(failed=True, msg=str(exc), reason="locked")
        except OSError as exc:
            msg = f"lock_path: cannot lock {cfg.lock_path}: {exc}"
            return self._result(failed=True, msg=msg, reason="error")

        reason = error = None
        try:
            reason, error = self._run_locked()
        except (ChaosError, StateError) as exc:
            reason, error = "error", str(exc)
        except Exception as exc:
            reason, error = "error", f"{type(exc).__name__}: {exc}"
        finally:
            # Runs for BaseException too (reason still None): heal, record, unlock.
            reason, error = self._finish(reason or "signal", error)
        return self._result(failed=bool(error), msg=error or "", reason=reason)

    def _run_locked(self):
        cfg = self.config
        self.healed = self._heal_leftovers()
        if cfg.heal_only:
            self._write_safe(
                {
                    "record": "heal_only",
                    "run_id": cfg.run_id,
                    "at": round(self.clock.time(), 3),
                    "healed": self.healed,
                    "still_stopped": list(self.stopped),
                }
            )
            return "heal_only", None
        if self.stopped:
            return "error", (
                f"could not start {', '.join(self.stopped)} left stopped by an earlier "
                "loop; not starting a new one"
            )
        self._start_clock()
        self._write_plan()
        self._preflight()
        return self._loop(), None

    def _finish(self, reason, error):
        self._kill_check()
        heal_failed = self._heal_all()
        if heal_failed:
            error = "; ".join(filter(None, [error, f"heal failed for {', '.join(heal_failed)}"]))
        if reason != "heal_only":
            self._write_end(reason, error)
        self.timeline.close()
        self.lock.release()
        if reason == "signal" and not error:
            error = "interrupted by a signal; every stopped unit was started again"
        return reason, error

    # ------------------------------------------------------------------ phases

    def _start_clock(self):
        self._mono0 = self.clock.monotonic()
        self._wall0 = self.clock.time()

    def _elapsed_ms(self) -> float:
        return (self.clock.monotonic() - self._mono0) * 1000

    def _heal_leftovers(self) -> list[str]:
        data = self.state.load()
        leftover = list(dict.fromkeys(data.get("stopped", [])))
        if not leftover:
            return []
        self.stopped = list(leftover)
        self.kinds = {u: data.get("kinds", {}).get(u, "stop") for u in leftover}
        configured = dict(self.access)
        self.access.update(data.get("access", {}))  # how the earlier loop reached them
        healed = []
        for unit in leftover:
            record = self._edge(unit, "start", "leftover", None, None, kind=self.kinds[unit])
            record["previous_run_id"] = data.get("run_id")
            record["previous_pid"] = data.get("pid")
            self._write_safe(record)
            if record["outcome"] == "ok":
                healed.append(unit)
                self._mark_started(unit)
                # this loop's own windows use this loop's options
                self.access.pop(unit, None)
                if unit in configured:
                    self.access[unit] = configured[unit]
        return healed

    def _preflight(self):
        for spec in self.config.services:
            argv = [self.systemctl, "show", "--property=LoadState,ActiveState", spec.unit]
            rc, out, err = self.run_command(argv)
            props = dict(line.split("=", 1) for line in (out or "").splitlines() if "=" in line)
            load, active = props.get("LoadState", "?"), props.get("ActiveState", "?")
            if rc != 0 or load != "loaded":
                raise ChaosError(
                    f"services: unit {spec.unit} is not loaded on {self.hostname} "
                    f"(LoadState={load}, rc={rc}, {(err or '').strip()[:200]})"
                )
            if active not in ACTIVE_STATES:
                raise ChaosError(
                    f"services: unit {spec.unit} is {active}, not active, on {self.hostname}; "
                    "start it before the chaos loop"
                )
            if spec.control:
                self._preflight_control(spec)
            if dict(spec.kinds).get("stall"):
                self._preflight_redis(spec)

    def _preflight_redis(self, spec):
        """Redis answers PING on the stall's port with the stall's password: a wrong port
        or password file must fail here, not at a window's edge (nor its heal)."""
        rc, out, err = self.redis(RedisCall(spec.port, spec.auth_file, ("PING",)))
        if rc != 0 or out != "PONG":
            raise ChaosError(
                f"services: {spec.unit}'s stall cannot reach Redis on {self.hostname}: "
                f"{(err or repr(out)).strip()[:300]}"
            )

    def _preflight_control(self, spec):
        """The SMSC's control socket answers, and the SMSC is in its normal mode."""
        rc, out, err = self.control(ControlCall(spec.control, {"op": "get"}, CONTROL_WAIT_S))
        if rc != 0:
            raise ChaosError(
                f"services: {spec.unit}'s control socket {spec.control} does not answer on "
                f"{self.hostname}: {err.strip()[:300]}"
            )
        mode = json.loads(out).get("mode")
        if mode != NORMAL.as_dict():
            raise ChaosError(
                f"services: {spec.unit} is in mode {json.dumps(mode)[:200]}, not normal; "
                "a fault left in place? Run the loop with heal_only=true, or restart the unit"
            )

    def _loop(self) -> str:
        cfg = self.config
        end_ms = cfg.end_ms
        queue = _EdgeQueue(cfg)
        self._next_check_ms = cfg.stop_when_interval_ms if cfg.stop_when else None
        in_progress: set[str] = set()  # units stopped by the plan and not started yet
        while not self.stop_requested():
            now = self._elapsed_ms()
            self._tend_check(now)
            grace_end = self._grace_end_ms
            due = queue.peek()
            if due is not None and due <= now and (end_ms is None or due <= end_ms):
                edge, outage = queue.pop()
                reason, lag_ms = self._skip_reason(edge, outage, now)
                if reason:
                    self._write_skip(outage, reason, lag_ms)
                    queue.skip(outage)
                    continue
                self._execute(edge, outage)
                if edge == "stop":
                    in_progress.add(outage.unit)
                else:
                    in_progress.discard(outage.unit)
                queue.done(edge, outage)
                continue
            if end_ms is not None and now >= end_ms:
                return cfg.end_kind
            if grace_end is not None and now >= grace_end and not in_progress:
                return "stop_when"
            wake = [end_ms, due, self._check_wake_ms(now)]
            if grace_end is not None and now < grace_end:
                wake.append(grace_end)
            self._sleep_until(min(x for x in wake if x is not None))
        return "signal"

    def _skip_reason(self, edge, outage, now_ms):
        """Why a due stop edge must not run (None to run it), and how late it is."""
        if edge != "stop":
            return None, 0.0  # a start always runs: the unit must come back
        lag_ms = now_ms - outage.stop_ms
        if self._grace_end_ms is not None and outage.start_ms > self._grace_end_ms:
            return "after_grace", lag_ms
        if lag_ms > self.config.max_lag_ms:
            return "stale", lag_ms
        return None, lag_ms

    def _sleep_until(self, target_ms: float):
        while not self.stop_requested():
            remaining = (target_ms - self._elapsed_ms()) / 1000
            if remaining <= 0:
                return
            self.clock.sleep(min(remaining, self.tick_s))

    # ------------------------------------------------------------------ stop_when

    def _check_wake_ms(self, now_ms):
        """When the loop must next look at stop_when (None: never)."""
        if self._check is not None:
            deadline = self._check_started_ms + self.config.stop_when_timeout_ms
            poll = now_ms + self.check_poll_s * 1000
            return deadline if now_ms < deadline < poll else poll
        if self._grace_end_ms is None:
            return self._next_check_ms
        return None

    def _tend_check(self, now_ms: float):
        """Start a due stop_when check, collect a finished one, kill an overdue one."""
        cfg = self.config
        if self._check is None:
            if self._next_check_ms is None or now_ms < self._next_check_ms:
                return
            if cfg.end_ms is not None and now_ms >= cfg.end_ms:
                return  # the loop is over: no check it could not wait for
            self._check = self.spawn([self.shell, "-c", cfg.stop_when])
            self._check_started_ms = now_ms
            self._next_check_ms += cfg.stop_when_interval_ms
            if self._next_check_ms <= now_ms:  # the loop was late: no catching up
                self._next_check_ms = now_ms + cfg.stop_when_interval_ms
        rc = self._check.poll()
        if rc is None:
            if now_ms - self._check_started_ms >= cfg.stop_when_timeout_ms:
                self._kill_check()
                self._write(
                    {
                        "record": "stop_when_timeout",
                        "run_id": cfg.run_id,
                        "at": round(self.clock.time(), 3),
                        "elapsed_s": round(now_ms / 1000, 3),
                        "timeout_s": _s(cfg.stop_when_timeout_ms),
                    }
                )
            return
        self._check = None
        if rc != 0:
            return
        at = self.clock.time()
        self._grace_end_ms = now_ms + cfg.stop_grace_ms
        self._next_check_ms = None
        self._write(
            {
                "record": "stop_when",
                "run_id": cfg.run_id,
                "at": round(at, 3),
                "elapsed_s": round(now_ms / 1000, 3),
                "took_s": round((now_ms - self._check_started_ms) / 1000, 3),
                "rc": rc,
                "grace_until": round(at + cfg.stop_grace_ms / 1000, 3),
            }
        )

    def _kill_check(self):
        check, self._check = self._check, None
        if check is not None and check.poll() is None:
            try:
                check.kill()
            except Exception as exc:  # never let it stop the heal
                self.warnings.append(f"could not kill the stop_when check: {exc}")

    def _execute(self, edge: str, outage):
        unit = outage.unit
        planned_ms = outage.stop_ms if edge == "stop" else outage.start_ms
        if edge == "stop":
            # before acting: a kill -9 in between still gets healed, the right way
            self._mark_stopped(unit, outage.kind)
        record = self._edge(
            unit,
            edge,
            "plan",
            planned_ms,
            outage.index,
            kind=outage.kind,
            window_ms=outage.start_ms - outage.stop_ms,
        )
        if edge == "start" and record["outcome"] == "ok":
            self._mark_started(unit)
        self._write(record)
        if record["outcome"] != "ok":
            raise ChaosError(
                f"the {edge} edge of {unit}'s {outage.kind} fault failed (rc={record['rc']}): "
                f"{record['stderr'][:300]}"
            )

    def _heal_all(self) -> list[str]:
        failed = []
        for unit in list(self.stopped):
            try:
                record = self._edge(
                    unit, "start", "heal", None, None, kind=self.kinds.get(unit, "stop")
                )
            except Exception as exc:  # keep healing the others
                failed.append(unit)
                self.warnings.append(f"heal of {unit} raised {type(exc).__name__}: {exc}")
                continue
            if record["outcome"] == "ok":
                self._mark_started(unit, safe=True)
            else:
                failed.append(unit)
            self._write_safe(record)
        return failed

    # ------------------------------------------------------------------ edges and state

    def _command(self, argv):
        """(rc, stdout, stderr) of one command of an edge: a process, or a request."""
        if isinstance(argv, ControlCall):
            return self.control(argv)
        if isinstance(argv, RedisCall):
            return self.redis(argv)
        return self.run_command(argv)

    def _edge(self, unit, edge, cause, planned_ms, window, *, kind="stop", window_ms=None):
        """Run the systemctl command(s) for one edge and return its timeline record."""
        issued_mono = self.clock.monotonic()
        actual_at = self.clock.time()
        rc, errors = 0, []
        access = self.access.get(unit, {})
        port = access.get("port") or self._ports.get(unit)
        control, mode = access.get("control"), self._params.get(unit, {}).get(kind)
        commands = fault_commands(
            self.systemctl,
            kind,
            edge,
            unit,
            nft=self.nft,
            port=port,
            peers=self.config.peers,
            control=control,
            mode=mode,
            auth_file=access.get("auth_file"),
            window_ms=window_ms,
            latency=self.latency.get(unit),
        )
        mode_after = None
        for argv, required in commands:
            rc, out, err = self._command(argv)
            if rc == 0 and isinstance(argv, ControlCall):
                mode_after = json.loads(out).get("mode")
            if err and err.strip() and required:
                errors.append(err.strip())
            if rc != 0 and not required:
                rc = 0
            elif rc != 0:
                break
        done_mono = self.clock.monotonic()
        if planned_ms is not None and self._mono0 is not None:
            planned_at = self._wall0 + planned_ms / 1000
            drift_s = (issued_mono - self._mono0) - planned_ms / 1000
        else:
            planned_at, drift_s = actual_at, 0.0
        record = {
            "record": "edge",
            "run_id": self.config.run_id,
            "service": unit,
            "edge": edge,
            "kind": kind,
            "cause": cause,
            "window": window,
            "planned_at": round(planned_at, 3),
            "actual_at": round(actual_at, 3),
            "drift_s": round(drift_s, 3),
            "took_s": round(done_mono - issued_mono, 3),
            "rc": rc,
            "outcome": "ok" if rc == 0 else "failed",
            "stderr": "\n".join(errors)[:STDERR_LIMIT],
        }
        if kind in NETWORK_KINDS:
            record["params"] = {"port": port, "peers": list(self.config.peers), **(mode or {})}
            if kind == "latency" and unit in self.latency:
                record["params"]["method"] = self.latency[unit].method
        elif kind in SMSC_KINDS:
            # the mode the window set (None for a leftover of a loop with other options), and
            # the mode the SMSC answered with after this edge (the fault's, or normal)
            record["params"] = {"control": control, "mode": mode, "mode_after": mode_after}
        elif kind in REDIS_KINDS:
            record["params"] = {"port": port}
            if edge == "stop":
                record["params"]["pause_ms"] = _stall_ms(window_ms)
        return record

    def _mark_stopped(self, unit, kind="stop"):
        if unit not in self.stopped:
            self.stopped.append(unit)
        self.kinds[unit] = kind
        self._save_state()

    def _save_state(self):
        self.state.save(
            self.config.run_id,
            self.pid,
            self.stopped,
            self.clock.time(),
            self.kinds,
            access={u: {k: v for k, v in a.items() if v} for u, a in self.access.items()},
        )

    def _mark_started(self, unit, safe=False):
        if unit in self.stopped:
            self.stopped.remove(unit)
        self.kinds.pop(unit, None)
        try:
            self._save_state()
        except OSError as exc:
            if not safe:
                raise
            self.warnings.append(f"could not update state file {self.state.path}: {exc}")

    # ------------------------------------------------------------------ records

    def _write(self, record: dict):
        if record.get("record") == "edge":
            self.edges.append(record)
        elif record.get("record") == "skip":
            self.skips.append(record)
        self.timeline.write(record)

    def _write_skip(self, outage, reason: str, lag_ms: float):
        self._write(
            {
                "record": "skip",
                "run_id": self.config.run_id,
                "service": outage.unit,
                "window": outage.index,
                "edge": "stop",
                "planned_at": round(self._wall0 + outage.stop_ms / 1000, 3),
                "planned_start_at": round(self._wall0 + outage.start_ms / 1000, 3),
                "at": round(self.clock.time(), 3),
                "reason": reason,
                "lag_s": round(lag_ms / 1000, 3),
            }
        )

    def _write_safe(self, record: dict):
        try:
            self._write(record)
        except OSError as exc:
            self.warnings.append(f"timeline_path: could not write {record.get('record')}: {exc}")

    def _write_plan(self):
        cfg = self.config
        self._write(
            {
                "record": "plan",
                "run_id": cfg.run_id,
                "at": round(self._wall0, 3),
                "host": self.hostname,
                "pid": self.pid,
                "seed": cfg.seed,
                "seed_derived": cfg.seed_derived,
                "action": cfg.action,
                "duration_s": _s(cfg.duration_ms),
                "end_s": _s(cfg.end_ms),
                "end_kind": cfg.end_kind,
                "async_budget_s": _s(cfg.async_budget_ms),
                "heal_reserve_s": _s(cfg.heal_reserve_ms),
                "stop_when": cfg.stop_when,
                "stop_when_interval_s": _s(cfg.stop_when_interval_ms),
                "stop_grace_s": _s(cfg.stop_grace_ms),
                "stop_when_timeout_s": _s(cfg.stop_when_timeout_ms) if cfg.stop_when else None,
                "max_lag_s": _s(cfg.max_lag_ms),
                "services": [
                    {
                        "unit": s.unit,
                        "run_min_s": _s(s.run_min_ms),
                        "run_max_s": _s(s.run_max_ms),
                        "stop_min_s": _s(s.stop_min_ms),
                        "stop_max_s": _s(s.stop_max_ms),
                        "kinds": dict(s.kinds),
                        **({"params": s.params} if s.params else {}),
                        **({"control": s.control} if s.control else {}),
                    }
                    for s in cfg.services
                ],
                "plan": build_plan(cfg),
            }
        )

    def _write_end(self, reason, error):
        elapsed = self._elapsed_ms() / 1000 if self._mono0 is not None else 0.0
        units = [s.unit for s in self.config.services]
        summary = summarise(self.edges + self.skips, units, reason, elapsed)
        self._write_safe(
            {
                "record": "end",
                "run_id": self.config.run_id,
                "at": round(self.clock.time(), 3),
                "reason": reason,
                "error": error,
                "still_stopped": list(self.stopped),
                "summary": summary,
            }
        )

    def _result(self, failed, msg, reason) -> dict:
        cfg = self.config
        elapsed = self._elapsed_ms() / 1000 if self._mono0 is not None else 0.0
        summary = summarise(
            self.edges + self.skips, [s.unit for s in cfg.services], reason, elapsed
        )
        result = {
            "changed": bool(self.edges),
            "failed": failed,
            "msg": msg,
            "run_id": cfg.run_id,
            "seed": cfg.seed,
            "plan": {} if cfg.heal_only else build_plan(cfg),
            "plan_end_s": 0.0 if cfg.heal_only else plan_horizon_ms(cfg) / 1000,
            "timeline": list(self.edges),
            "summary": summary,
            "healed": list(self.healed),
            "still_stopped": list(self.stopped),
            "skipped": list(self.skips),
        }
        if self.warnings:
            result["warnings_seen"] = list(self.warnings)
        return result


def _s(ms):
    return None if ms is None else ms / 1000


def nft_table(unit: str) -> str:
    """The nftables table of a unit's network faults: one per unit, named after it."""
    stem = unit.removesuffix(".service")
    return "nazbench_chaos_" + "".join(c if c.isalnum() else "_" for c in stem)


def nft_rules(kind: str, unit: str, port: int, peers, params=None) -> str:
    """One nft script (one transaction) that puts a network fault in place.

    Its own table, hooked before nazbench's firewall (priority filter - 10), matching only
    the service's TCP port and the peers' addresses, so nothing else is ever touched.
    loss drops a packet either way when a draw from LOSS_SCALE falls below its fraction.
    """
    table = nft_table(unit)
    v4 = [p for p in peers if ":" not in p]
    v6 = [p for p in peers if ":" in p]
    inbound, outbound = [], []
    for family, addresses in (("ip", v4), ("ip6", v6)):
        if not addresses:
            continue
        group = "{ " + ", ".join(addresses) + " }"
        if kind in ("blackhole", "reset"):
            verdict = "drop" if kind == "blackhole" else "reject with tcp reset"
            inbound.append(
                f"add rule inet {table} input {family} saddr {group} tcp dport {port} {verdict}"
            )
        if kind in ("blackhole", "half_open"):
            outbound.append(
                f"add rule inet {table} output {family} daddr {group} tcp sport {port} drop"
            )
        if kind == "loss":
            below = max(1, round((params or {})["fraction"] * LOSS_SCALE))
            draw = f"numgen random mod {LOSS_SCALE} < {below} drop"
            inbound.append(
                f"add rule inet {table} input {family} saddr {group} tcp dport {port} {draw}"
            )
            outbound.append(
                f"add rule inet {table} output {family} daddr {group} tcp sport {port} {draw}"
            )
    return "; ".join(
        [
            f"add table inet {table}",
            f"add chain inet {table} input {{ type filter hook input priority filter - 10; }}",
            f"add chain inet {table} output {{ type filter hook output priority filter - 10; }}",
            *inbound,
            *outbound,
        ]
    )  # fmt: skip


@dataclass(frozen=True)
class ControlCall:
    """One request to a mock SMSC's control socket (a command of an SMSC kind's edge).

    ``wait_s``: how long to keep trying while the socket is not there or refuses (a unit
    that was just started); 0 tries once.
    """

    path: str
    request: dict
    wait_s: float = 0.0


# What a peer that is not (yet) there raises: no socket file, nothing listening.
_NOT_THERE = (FileNotFoundError, ConnectionRefusedError)


def _retrying(wait_s: float, attempt, sleep):
    """``attempt()``, tried again every 0.2 s for up to ``wait_s`` while the peer is not
    there (a unit just started); the last error is raised."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return attempt()
        except _NOT_THERE:
            if time.monotonic() >= deadline:
                raise
            sleep(0.2)


def _read_until(sock, end: bytes, size: int) -> bytes:
    """What ``sock`` sends up to ``end`` (or its close, or CONTROL_MAX_ANSWER octets)."""
    data = b""
    while not data.endswith(end) and len(data) < CONTROL_MAX_ANSWER:
        chunk = sock.recv(size)
        if not chunk:
            break
        data += chunk
    return data


def set_mode(path: str, mode: dict, wait_s: float = 0.0) -> ControlCall:
    return ControlCall(path, {"op": "set", "mode": mode}, wait_s)


def control_request(call: ControlCall, timeout_s: float = 5.0, sleep=time.sleep):
    """Send ``call.request`` to the control socket: (0, answer line, "") when the SMSC
    answered ok, (1, answer, its error) when it refused, (1, "", why) when it could not
    be reached."""
    line = (json.dumps(call.request) + "\n").encode()

    def exchange() -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(call.path)
            sock.sendall(line)
            return _read_until(sock, b"\n", 4096)

    try:
        answer = _retrying(call.wait_s, exchange, sleep)
    except _NOT_THERE as exc:
        return 1, "", f"control socket {call.path}: {exc.strerror or exc}"
    except OSError as exc:
        return 1, "", f"control socket {call.path}: {exc}"
    try:
        reply = json.loads(answer)
    except ValueError:
        return 1, "", f"control socket {call.path}: not a JSON answer: {answer[:200]!r}"
    if not isinstance(reply, dict) or reply.get("ok") is not True:
        error = reply.get("error") if isinstance(reply, dict) else None
        return 1, answer.decode(errors="replace"), f"control socket {call.path}: {error!r}"
    return 0, answer.decode(), ""


@dataclass(frozen=True)
class RedisCall:
    """One command to Redis on 127.0.0.1:``port`` (a command of a Redis kind's edge),
    authenticated with the password in ``auth_file`` (read when sent, never logged)."""

    port: int
    auth_file: str | None
    command: tuple
    wait_s: float = 0.0


def _resp(*args) -> bytes:
    """A command in RESP, Redis' protocol."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _reply_line(sock) -> bytes:
    # one octet at a time: the AUTH reply must not swallow the command's
    return _read_until(sock, b"\r\n", 1).rstrip(b"\r\n")


class _RedisRefused(Exception):
    pass


def _redis_exchange(call: RedisCall, password, timeout_s: float) -> bytes:
    """AUTH (with a password), then the command; its reply line. Raises OSError."""
    with socket.create_connection(("127.0.0.1", call.port), timeout=timeout_s) as sock:
        if password is not None:
            sock.sendall(_resp("AUTH", password))
            if not _reply_line(sock).startswith(b"+"):
                raise _RedisRefused(f"AUTH refused (the password in {call.auth_file})")
        sock.sendall(_resp(*call.command))
        return _reply_line(sock)


def redis_request(call: RedisCall, timeout_s: float = 5.0, sleep=time.sleep):
    """Send ``call.command`` (AUTH first, with a password file): (0, reply, "") on a
    simple-string reply, (1, "", why) otherwise. The password never appears in it."""
    where = f"redis 127.0.0.1:{call.port}"
    password = None
    if call.auth_file:
        try:
            with open(call.auth_file, encoding="utf-8") as fh:
                password = fh.read().strip()
        except OSError as exc:
            return 1, "", f"{where}: cannot read auth_file {call.auth_file}: {exc.strerror}"
    try:
        reply = _retrying(call.wait_s, lambda: _redis_exchange(call, password, timeout_s), sleep)
    except _RedisRefused as exc:
        return 1, "", f"{where}: {exc}"
    except OSError as exc:
        return 1, "", f"{where}: {exc.strerror or exc}"
    text = reply.decode(errors="replace")
    if not reply.startswith(b"+"):
        return 1, "", f"{where}: {' '.join(map(str, call.command))} answered {text[:200]!r}"
    return 0, text[1:], ""


def _stall_ms(window_ms) -> int:
    """CLIENT PAUSE's own timeout: the window and a margin, so Redis resumes by itself
    even when no heal ever comes (a loop killed with SIGKILL, a host cut off)."""
    return int(window_ms or 0) + STALL_SLACK_MS


def _redis_commands(systemctl, kind, edge, unit, *, port, auth_file, window_ms):
    if edge == "stop":
        pause = ("CLIENT", "PAUSE", str(_stall_ms(window_ms)), "WRITE")
        return [(RedisCall(port, auth_file, pause, STOP_EDGE_WAIT_S), True)]
    unpause = ("CLIENT", "UNPAUSE")
    return [
        (RedisCall(port, auth_file, unpause), False),
        ([systemctl, "start", unit], True),
        (RedisCall(port, auth_file, unpause, CONTROL_WAIT_S), True),
    ]


def _smsc_commands(systemctl, kind, edge, unit, *, control, mode):
    if not control:
        raise ChaosError(f"{unit}: no control socket known for its {kind} fault")
    if edge == "stop":
        if mode is None:
            raise ChaosError(f"{unit}: no mode for its {kind} fault")
        return [(set_mode(control, mode, STOP_EDGE_WAIT_S), True)]
    normal = NORMAL.as_dict()
    return [
        (set_mode(control, normal), False),
        ([systemctl, "start", unit], True),
        (set_mode(control, normal, CONTROL_WAIT_S), True),
    ]


# The root qdisc a latency window puts on an interface with tc netem ("NB"); its heal
# removes a root qdisc with this handle from every interface, and nothing else.
NETEM_HANDLE = "4e42"
# Linux's default priomap (pfifo_fast, prio): every TOS to the bands 0-2 as before; the
# fourth band, reached only through the filters, holds the netem.
_PRIOMAP = ("1", "2", "2", "2", "1", "2", "0", "0", "1", "1", "1", "1", "1", "1", "1", "1")
# How long a latency window's daemon may take to bind its queue before the rule goes in.
LATENCY_BIND_WAIT_S = 10
# Where a latency window notes that it created iptables' mangle table (its heal deletes
# the table again only then, and only empty).
LATENCY_MARKS = "/run/nazbench-chaos"

_WAIT_BOUND = """\
i=0
while [ "$i" -lt $(($2 * 10)) ]; do
  awk -v q="$1" '$1 == q { found = 1 } END { exit !found }' \\
    /proc/net/netfilter/nfnetlink_queue 2>/dev/null && exit 0
  sleep 0.1; i=$((i + 1))
done
echo "NFQUEUE $1: no delay daemon bound it within $2 s" >&2; exit 1
"""
# The lab's way: what the peers send to the port goes to the daemon's queue, from a chain
# of its own in iptables' mangle table (before the filter table, where the lab's WAN delay
# queues it again: the delays add up; an NFQUEUE verdict leaves its whole chain). nft has
# no queue expression on kernels without nft_queue (the lab's); iptables' target works.
_QUEUE_RULES = """\
chain=$1; queue=$2; port=$3; marks=$4; shift 4
mkdir -p "$marks" || exit 1
nft list table ip mangle >/dev/null 2>&1 || : > "$marks/$chain.created-mangle" || exit 1
iptables -w -t mangle -N "$chain" || exit 1
for peer in "$@"; do
  iptables -w -t mangle -A "$chain" -s "$peer" -p tcp --dport "$port" \\
    -j NFQUEUE --queue-num "$queue" --queue-bypass || exit 1
done
iptables -w -t mangle -I INPUT 1 -j "$chain"
"""
# Heal of a latency window, whichever way it was put in place (a leftover's healer may
# not know): the queue rules first (so nothing waits on a queue nobody serves), then the
# daemon's transient unit stopped and gone, then any netem root of ours.
_LATENCY_HEAL = """\
unit=$1; systemctl=$2; handle=$3; chain=$4; marks=$5
if command -v iptables >/dev/null 2>&1 && nft list table ip mangle >/dev/null 2>&1; then
  while iptables -w -t mangle -D INPUT -j "$chain" 2>/dev/null; do :; done
  iptables -w -t mangle -F "$chain" 2>/dev/null
  iptables -w -t mangle -X "$chain" 2>/dev/null
  if iptables -w -t mangle -S "$chain" >/dev/null 2>&1; then
    echo "iptables chain $chain is still there" >&2; exit 1
  fi
  if [ -e "$marks/$chain.created-mangle" ] && \\
     [ -z "$(iptables -w -t mangle -S | grep -v '^-P ')" ]; then
    nft delete table ip mangle || exit 1
  fi
fi
rm -f "$marks/$chain.created-mangle"
"$systemctl" stop "$unit" 2>/dev/null
"$systemctl" reset-failed "$unit" 2>/dev/null
if "$systemctl" is-active --quiet "$unit"; then echo "$unit is still active" >&2; exit 1; fi
command -v tc >/dev/null 2>&1 || exit 0
for dev in $(ls /sys/class/net); do
  if tc qdisc show dev "$dev" root | grep -q "^qdisc prio $handle: root"; then
    tc qdisc del dev "$dev" root || exit 1
  fi
done
"""


@dataclass(frozen=True)
class Latency:
    """How this host adds a latency window's delay: ``method`` "nfqueue" (the lab's delay
    daemon ``daemon`` run by ``systemd_run`` on its own ``queue``) or "netem" (tc on the
    interfaces ``devices`` that reach the peers: (peer, interface) pairs)."""

    method: str
    daemon: str | None = None
    queue: int | None = None
    systemd_run: str = "systemd-run"
    python: str = "/usr/bin/python3"
    tc: str = "tc"
    devices: tuple = ()


def latency_unit(unit: str) -> str:
    """The transient unit of a latency window's delay daemon: one per faulted unit."""
    return nft_table(unit).replace("nazbench_chaos_", "nazbench-chaos-latency-") + ".service"


def latency_chain(unit: str) -> str:
    """The iptables chain (mangle table) of a latency window's queue rules."""
    return ("NBLAT_" + nft_table(unit).removeprefix("nazbench_chaos_"))[:28]


def _latency_heal(systemctl: str, unit: str):
    return ["/bin/sh", "-c", _LATENCY_HEAL, "sh", latency_unit(unit), systemctl,
            NETEM_HANDLE, latency_chain(unit), LATENCY_MARKS]  # fmt: skip


def _netem_commands(latency: Latency, port: int, delay_ms: float) -> list:
    tc, handle, out = latency.tc, NETEM_HANDLE, []
    for dev in dict.fromkeys(dev for _peer, dev in latency.devices):
        out += [
            [tc, "qdisc", "add", "dev", dev, "root", "handle", f"{handle}:", "prio",
             "bands", "4", "priomap", *_PRIOMAP],
            [tc, "qdisc", "add", "dev", dev, "parent", f"{handle}:4", "netem",
             "delay", f"{delay_ms:g}ms"],
        ]  # fmt: skip
    for peer, dev in latency.devices:
        family, match, bits = ("ipv6", "ip6", 128) if ":" in peer else ("ip", "ip", 32)
        out.append(
            [tc, "filter", "add", "dev", dev, "parent", f"{handle}:", "protocol", family,
             "prio", "1", "u32", "match", match, "dst", f"{peer}/{bits}", "match", match,
             "sport", str(port), "0xffff", "flowid", f"{handle}:4"]
        )  # fmt: skip
    return [(argv, True) for argv in out]


def _latency_stop(unit, port, peers, params, latency: Latency | None):
    if latency is None:
        raise ChaosError(f"{unit}: no way to add latency known on this host")
    delay_ms = float((params or {})["delay_ms"])
    if latency.method == "netem":
        return _netem_commands(latency, port, delay_ms)
    daemon = [
        latency.systemd_run, f"--unit={latency_unit(unit)}", "--collect", "--quiet",
        "--description=nazbench chaos: latency on " + unit,
        latency.python, latency.daemon, "--queue", str(latency.queue),
        "--delay-ms", f"{delay_ms:g}",
    ]  # fmt: skip
    wait = ["/bin/sh", "-c", _WAIT_BOUND, "sh", str(latency.queue), str(LATENCY_BIND_WAIT_S)]
    rules = ["/bin/sh", "-c", _QUEUE_RULES, "sh", latency_chain(unit), str(latency.queue),
             str(port), LATENCY_MARKS, *peers]  # fmt: skip
    return [(daemon, True), (wait, True), (rules, True)]


def _network_commands(systemctl, kind, edge, unit, nft, port, peers, params, latency=None):  # noqa: PLR0917
    table = nft_table(unit)
    drop_table = ([nft, f"add table inet {table}; delete table inet {table}"], True)
    if edge == "stop" and kind == "latency":
        # a leftover of an earlier window (its heal failed half-way) is cleared first
        return [(_latency_heal(systemctl, unit), True),
                *_latency_stop(unit, port, peers, params, latency)]  # fmt: skip
    if edge == "stop":
        return [([nft, nft_rules(kind, unit, port, peers, params)], True)]
    out = [drop_table]
    if kind == "latency":
        out.append((_latency_heal(systemctl, unit), True))
    return [*out, ([systemctl, "start", unit], True)]


def fault_commands(
    systemctl: str,
    kind: str,
    edge: str,
    unit: str,
    *,
    nft: str = "nft",
    port=None,
    peers=(),
    control=None,
    mode=None,
    auth_file=None,
    window_ms=None,
    latency: Latency | None = None,
) -> list[tuple[list | ControlCall | RedisCall, bool]]:
    """The commands of one edge of a fault ``kind``, each with whether it must succeed.
    A start (the end of the window, a heal) always runs ``systemctl start``, which
    changes nothing on a running unit and brings back one that died meanwhile; a network
    fault's start first deletes its table (``add`` then ``delete``: no error when a heal
    finds it gone already; ``mode`` holds loss's fraction). An SMSC kind sets its
    ``mode`` through the ``control`` socket; its start sets normal (the unit may be gone:
    need not succeed), starts the unit, and sets normal again, which must succeed
    (waiting for the socket of a unit that was just started; a fresh SMSC is normal).
    stall is CLIENT PAUSE for ``window_ms`` and a margin; its start CLIENT UNPAUSE, as an
    SMSC kind's (UNPAUSE on a Redis that is not paused is a no-op). latency puts its
    delay in place the ``latency`` way (after clearing any of its own left over); its
    start removes it whichever way it was put in place, then starts the unit."""
    if kind in SMSC_KINDS:
        return _smsc_commands(systemctl, kind, edge, unit, control=control, mode=mode)
    if kind in REDIS_KINDS:
        return _redis_commands(
            systemctl, kind, edge, unit, port=port, auth_file=auth_file, window_ms=window_ms
        )
    if kind in NETWORK_KINDS:
        return _network_commands(systemctl, kind, edge, unit, nft, port, peers, mode, latency)
    stop = {
        "stop": [([systemctl, "stop", unit], True)],
        # SIGKILL is the crash; the stop then cancels any Restart= so it stays down.
        "kill": [
            ([systemctl, "kill", "--signal=SIGKILL", unit], True),
            ([systemctl, "stop", unit], True),
        ],
        "pause": [([systemctl, "kill", "--signal=SIGSTOP", unit], True)],
    }
    if edge == "stop":
        return stop[kind]
    start = [([systemctl, "start", unit], True)]
    if kind == "pause":
        # SIGCONT fails on a unit whose processes are gone; the start then revives it, and
        # a second SIGCONT (to the running unit, so it must work) makes sure nothing of it
        # stays stopped, whatever made the first one fail.
        sigcont = [systemctl, "kill", "--signal=SIGCONT", unit]
        return [(sigcont, False), *start, (sigcont, True)]
    return start


# The queue of the first service's latency daemon; the next ones follow (the lab's WAN
# delay serves 154).
LATENCY_QUEUE_BASE = 4200


def _netem_works(run_command, ip, tc, pid):
    """(True, "") when tc can add a netem qdisc, tried in a network namespace of its own
    (nothing of this host's is touched); else (False, why)."""
    ns = f"nazbench-netem-probe-{pid}"
    rc, _out, err = run_command([ip, "netns", "add", ns])
    if rc != 0:
        return False, f"ip netns add failed: {(err or '').strip()[:200]}"
    try:
        rc, _out, err = run_command([tc, "-n", ns, "qdisc", "add", "dev", "lo", "root",
                                     "netem", "delay", "1ms"])  # fmt: skip
    finally:
        run_command([ip, "netns", "delete", ns])
    if rc != 0:
        return False, f"tc netem failed: {(err or '').strip()[:200]}"
    return True, ""


def _route_device(run_command, ip, peer):
    rc, out, err = run_command([ip, "-o", "route", "get", peer])
    words = (out or "").split()
    if rc != 0 or "dev" not in words[:-1]:
        raise ChaosError(f"latency: no route from this host to peer {peer}: "
                         f"{(err or out or '').strip()[:200]}")  # fmt: skip
    return words[words.index("dev") + 1]


def latency_method(config, run_command, *, daemon=None, which=None, exists=os.path.exists,
                   pid=None):  # fmt: skip
    """unit -> Latency for every service with the latency kind, or ChaosError saying why
    this host cannot add latency. The lab's delay daemon (``daemon``, a path on this host)
    when given; else tc netem, if a scratch network namespace shows the kernel has it."""
    units = [s.unit for s in config.services if dict(s.kinds).get("latency")]
    if not units:
        return {}
    which = which or (lambda name: None)
    if daemon:
        if any(":" in peer for peer in config.peers):
            raise ChaosError("latency: the lab's delay daemon queues IPv4 peers only")
        python, systemd_run = which("python3"), which("systemd-run")
        needed = ((f"latency_daemon {daemon}", exists(daemon)), ("python3", python),
                  ("systemd-run", systemd_run), ("iptables", which("iptables")))  # fmt: skip
        if not all(ok for _what, ok in needed):
            missing = [what for what, ok in needed if not ok]
            raise ChaosError(f"latency: the delay daemon needs {', '.join(missing)} on "
                             "this host")  # fmt: skip
        return {
            unit: Latency("nfqueue", daemon=daemon, queue=LATENCY_QUEUE_BASE + i,
                          systemd_run=systemd_run, python=python)
            for i, unit in enumerate(units)
        }  # fmt: skip
    ip, tc = which("ip"), which("tc")
    if ip is None or tc is None:
        raise ChaosError("latency: no latency_daemon (the lab's delay daemon) was given and "
                         "this host has no tc and ip (iproute2) for netem")  # fmt: skip
    ok, why = _netem_works(run_command, ip, tc, os.getpid() if pid is None else pid)
    if not ok:
        raise ChaosError("latency: no latency_daemon (the lab's delay daemon) was given and "
                         f"this kernel cannot add netem ({why})")  # fmt: skip
    if len(units) > 1:
        raise ChaosError(f"latency: with tc netem one service per host ({', '.join(units)} "
                         "share the interfaces' root qdisc); give the others other "
                         "kinds")  # fmt: skip
    devices = tuple((peer, _route_device(run_command, ip, peer)) for peer in config.peers)
    return {units[0]: Latency("netem", tc=tc, devices=devices)}
