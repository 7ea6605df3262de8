# Copyright: nazbench contributors
# MIT License
"""Option parsing, validation and plan generation for the chaos_loop module.

Everything here is pure: no I/O except the read-only filesystem checks in
:func:`validate_params`, so the plan can be computed (and tested) before anything on the
host is touched.

Plans are derived from ``sha256("<seed>:<unit>:<cycle>:<run|stop>")`` rather than from
``random.Random`` so that they are identical across Python versions and so that every
service has its own stream: adding, removing or reordering services never changes the
plan of another service.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ansible.module_utils.smsc_modes import (
    FAULT_MODES,
    MODE_PARAMETERS,
    parse_mode,
    parse_parameters,
)

# Shortest window (run, stop, stop_when_interval) the loop accepts, in milliseconds.
MIN_WINDOW_MS = 100
# A plan with neither duration nor async_budget is open ended; plan/return this far ahead.
OPEN_PLAN_HORIZON_MS = 24 * 3600 * 1000
# The returned/recorded plan lists at most this many outages per service (execution is not
# limited: it draws windows lazily from the same streams).
MAX_LISTED_OUTAGES = 1000

ACTIONS = ("stop", "kill")
# What a window of a service does to it (services[].kinds; the global action is the
# default). stop: systemctl stop (graceful, the seed's); kill: SIGKILL, then stop so no
# Restart= brings it back; pause: SIGSTOP to every process of the unit, SIGCONT at the end
# (the port still accepts TCP connections, nothing answers).
# blackhole, reset and half_open leave the unit alone: nftables rules on this host, in a
# table of their own, between the service's port and the peers (the naz hosts) only:
# blackhole drops both ways, reset answers the peers' segments with a TCP reset,
# half_open drops what the service sends them (their segments still arrive).
# throttle, slow, silent, drop_resp and unbind are modes of the mock SMSC, set through its
# local control socket (services[].control) for the window and set back to normal at its
# end; their parameters (services[].params) are parsed by the SMSC's own mode parser.
# loss drops each packet between the peers and the port, either way, with probability
# services[].params.loss.fraction.
# latency adds services[].params.latency.delay_ms to the round trip between the peers and
# the port: the lab's delay daemon on an NFQUEUE of its own (what the peers send waits),
# or tc netem where the kernel has it (what the service sends them waits).
# stall is Redis' CLIENT PAUSE WRITE (every queue operation waits; reads, PING and the
# UNPAUSE go through: under ALL the UNPAUSE itself would wait) for the window, sent to
# 127.0.0.1:services[].port with the password in services[].auth_file; its end is CLIENT
# UNPAUSE, and the pause's own timeout (window + STALL_SLACK_MS) ends it even if no heal
# ever comes.
SMSC_KINDS = FAULT_MODES
REDIS_KINDS = ("stall",)
KINDS = (
    "stop", "kill", "pause", "blackhole", "reset", "half_open", "loss", "latency",
    *SMSC_KINDS, *REDIS_KINDS,
)  # fmt: skip
NETWORK_KINDS = ("blackhole", "reset", "half_open", "loss", "latency")
STALL_SLACK_MS = 30_000
# The parameters of the kinds other than the SMSC's (whose are its modes'), in the same
# grammar (smsc_modes.parse_parameters): parameter -> (default, low exclusive, high).
KIND_PARAMETERS = {
    "loss": {"fraction": (0.1, 0.0, 0.99)},
    "latency": {"delay_ms": (1000.0, 0.0, 60000.0)},
}
# loss draws per packet from this many (nft numgen): fractions to 1/10000
LOSS_SCALE = 10_000
RUN_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

# Unit types that systemctl can stop and start.  A name without one of these suffixes is
# taken as a service, exactly as systemctl itself does ("redis-server" -> redis-server.service).
UNIT_SUFFIXES = (
    "service",
    "socket",
    "target",
    "mount",
    "automount",
    "swap",
    "path",
    "timer",
    "slice",
    "scope",
)
# systemd unit name characters; "@" once for templates; never a leading "-" (option injection).
_UNIT_RE = re.compile(r"^[A-Za-z0-9:_.\\][A-Za-z0-9:_.\\-]*(?:@[A-Za-z0-9:_.\\-]*)?$")
_UNIT_MAX_LEN = 255

_DURATION_TOKEN_RE = re.compile(r"(\d+(?:\.\d+)?)([A-Za-z]*)", re.ASCII)
_UNIT_MS = {"h": 3_600_000, "m": 60_000, "s": 1_000}
_UNIT_ORDER = ("h", "m", "s")

# A stop edge reached later than this is skipped (never replayed in a burst).
DEFAULT_MAX_LAG_MS = 5_000
# stop_when_timeout defaults to this share of stop_when_interval.
STOP_WHEN_TIMEOUT_SHARE = 0.8

SERVICE_DEFAULTS = {"run_min": "13m", "run_max": "16m", "stop_min": "1m", "stop_max": "3m"}


class DurationError(ValueError):
    """A duration value that cannot be parsed."""


def parse_duration_ms(value) -> int:
    """Parse a duration into integer milliseconds.

    Accepts an int or float (seconds) or a string: a bare number of seconds ("90",
    "0.5") or one or more ``<number><unit>`` parts in h, m, s order, each at most once
    ("1h", "13m", "90s", "1m30s", "0.5s", "1.5m").  Values are rounded to the millisecond.
    Sign and range are checked by the caller.
    """
    if isinstance(value, bool):
        raise DurationError(f"{value!r} is a boolean, not a duration")
    if isinstance(value, int | float):
        return _to_ms(Decimal(str(value)), 1_000, value)
    if not isinstance(value, str):
        raise DurationError(f"{value!r} is not a duration (int seconds or a string like '13m')")
    text = value.strip()
    if not text:
        raise DurationError("empty string is not a duration")
    if text.startswith("-"):
        raise DurationError(f"{value!r} is negative")
    tokens = _duration_tokens(value, text)
    if len(tokens) == 1 and tokens[0][1] == "":
        return _to_ms(Decimal(tokens[0][0]), 1_000, value)
    return sum(_to_ms(Decimal(num), _UNIT_MS[unit], value) for num, unit in tokens)


def _duration_tokens(value, text: str) -> list[tuple[str, str]]:
    """Split "1m30s" into [("1", "m"), ("30", "s")], checking units and their order."""
    pos = 0
    tokens = []
    for match in _DURATION_TOKEN_RE.finditer(text):
        if match.start() != pos:
            break
        tokens.append((match.group(1), match.group(2).lower()))
        pos = match.end()
    if pos != len(text) or not tokens:
        raise DurationError(f"{value!r} is not a duration (examples: 90, '90s', '13m', '1m30s')")
    units = [unit for _num, unit in tokens]
    unknown = [unit for unit in units if unit and unit not in _UNIT_MS]
    if unknown:
        raise DurationError(f"{value!r} has unknown unit {unknown[0]!r} (use h, m or s)")
    if len(tokens) == 1:
        return tokens
    if "" in units:
        raise DurationError(f"{value!r} mixes a bare number with units; give every part a unit")
    order = [_UNIT_ORDER.index(unit) for unit in units]
    if order != sorted(set(order)):
        raise DurationError(f"{value!r} must give each of h, m, s at most once, in that order")
    return tokens


def _to_ms(number: Decimal, scale: int, original) -> int:
    try:
        if not number.is_finite():
            raise DurationError(f"{original!r} is not a finite duration")
        ms = (number * scale).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise DurationError(f"{original!r} is not a duration") from exc
    if ms < 0:
        raise DurationError(f"{original!r} is negative")
    return int(ms)


def format_ms(ms: int) -> str:
    """Render milliseconds the way the options are written ("13m", "1m30s", "0.5s")."""
    if ms % 1000:
        return f"{ms / 1000:g}s"
    seconds = ms // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0s"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 70 else text[:60] + "...' (" + str(len(value)) + " chars)"


def normalize_unit(name) -> str:
    """Return the unit name with a type suffix, or raise ValueError if it is not one."""
    if (
        not isinstance(name, str)
        or len(name) > _UNIT_MAX_LEN
        or not _UNIT_RE.fullmatch(name)
        or name.endswith(".")
    ):
        raise ValueError(
            f"{_short(name)} is not a systemd unit name (letters, digits, ':', '_', '.', '-', '\\' "
            "and one '@'; no spaces, slashes or globs; not starting with '-')"
        )
    stem, dot, suffix = name.rpartition(".")
    if not (dot and suffix in UNIT_SUFFIXES):
        stem, name = name, f"{name}.service"
    if not stem:
        raise ValueError(f"{name!r} is not a systemd unit name (nothing before the suffix)")
    if stem.endswith("@"):
        raise ValueError(f"{name!r} is a template without an instance; name an instance")
    return name


@dataclass(frozen=True)
class ServiceSpec:
    """One service's bounds, all in milliseconds."""

    unit: str
    run_min_ms: int
    run_max_ms: int
    stop_min_ms: int
    stop_max_ms: int
    # (kind, weight) pairs in KINDS order; one window's kind is drawn from them
    kinds: tuple[tuple[str, float], ...] = (("stop", 1.0),)
    port: int | None = None  # the service's TCP port (network kinds)
    control: str | None = None  # the mock SMSC's control socket (SMSC kinds)
    auth_file: str | None = None  # file with Redis' password, on the host (stall)
    # kind -> its parameters, filled in: an SMSC kind's mode ({"name": kind, ...}), loss's
    # {"fraction": f}; only the kinds that take parameters
    params: dict = field(default_factory=dict, hash=False)

    @property
    def network(self) -> bool:
        return any(kind in NETWORK_KINDS for kind, _weight in self.kinds)

    @property
    def shortest_cycle_ms(self) -> int:
        return self.run_min_ms + self.stop_min_ms


@dataclass(frozen=True)
class ChaosConfig:
    """Validated module options, durations in milliseconds."""

    run_id: str
    seed: int
    seed_derived: bool
    services: tuple[ServiceSpec, ...]
    action: str
    duration_ms: int | None
    stop_when: str | None
    stop_when_interval_ms: int
    stop_grace_ms: int
    async_budget_ms: int | None
    heal_reserve_ms: int
    timeline_path: str
    lock_path: str
    heal_only: bool = False
    # Addresses the network kinds are scoped to (the naz hosts); never anyone else.
    peers: tuple[str, ...] = ()
    # A stop_when check still running after this long is killed and counts as not met.
    stop_when_timeout_ms: int = 24_000
    # A stop edge the loop reaches later than this after its planned time is skipped.
    max_lag_ms: int = DEFAULT_MAX_LAG_MS
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def state_path(self) -> str:
        return state_path_for(self.lock_path)

    @property
    def end_ms(self) -> int | None:
        """Offset at which the loop ends at the latest (None: open ended)."""
        if self.duration_ms is not None:
            return self.duration_ms
        if self.async_budget_ms is not None:
            return self.async_budget_ms - self.heal_reserve_ms
        return None

    @property
    def end_kind(self) -> str | None:
        if self.duration_ms is not None:
            return "duration"
        if self.async_budget_ms is not None:
            return "budget"
        return None


def state_path_for(lock_path: str) -> str:
    """The state file lives beside the lock: foo.lock -> foo.state.json."""
    base = lock_path[: -len(".lock")] if lock_path.endswith(".lock") else lock_path
    return base + ".state.json"


def derive_seed(run_id: str) -> int:
    """Default seed: the first 32 bits of sha256(run_id); the same run_id, the same plan."""
    return int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16)


# --------------------------------------------------------------------------- validation


def _duration_option(params, name, errors, *, label=None, minimum_ms=MIN_WINDOW_MS):
    label = label or name
    value = params.get(name)
    if value is None:
        return None
    try:
        ms = parse_duration_ms(value)
    except DurationError as exc:
        errors.append(f"{label}: {exc}")
        return None
    if ms < minimum_ms:
        if minimum_ms:
            errors.append(
                f"{label}: {value!r} must be at least {format_ms(minimum_ms)} "
                f"(zero or negative windows are not allowed)"
            )
        else:
            errors.append(f"{label}: {value!r} must not be negative")
        return None
    return ms


def parse_kinds(value, default: str) -> tuple[tuple[str, float], ...]:
    """services[].kinds: None (the action), a list of kinds (equal weights), a dict kind ->
    weight (>= 0, summing to more than 0), or the same as text: ``pause``,
    ``stop,pause``, ``stop=3,pause=1`` (what ``-e chaos_kinds=...`` gives). Returns (kind,
    weight) pairs in KINDS order, weight-0 kinds dropped; raises ValueError naming the
    problem."""
    if value is None:
        return ((default, 1.0),)
    if isinstance(value, str):
        value = _kinds_text(value)
    if isinstance(value, list):
        if not value:
            raise ValueError("is empty; name at least one kind")
        if not all(isinstance(k, str) for k in value):
            raise ValueError(f"{_short(value)}: a list names kinds (strings) only")
        if len(set(map(str, value))) != len(value):
            raise ValueError(f"{_short(value)} names a kind twice")
        value = dict.fromkeys(value, 1)
    if not isinstance(value, dict) or not value:
        raise ValueError(f"{_short(value)} must be a kind, a list of kinds or a dict kind: weight")
    weights = {}
    for kind, weight in value.items():
        if kind not in KINDS:
            raise ValueError(f"unknown kind {_short(kind)} (known: {', '.join(KINDS)})")
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise ValueError(f"weight of {kind} must be a number, got {_short(weight)}")
        if not (weight >= 0 and weight != float("inf")):
            raise ValueError(f"weight of {kind} must be a finite number >= 0, got {weight!r}")
        weights[kind] = float(weight)
    total = sum(weights.values())
    if not (total > 0 and math.isfinite(total)):
        raise ValueError("weights must sum to a finite number more than 0")
    return tuple((k, weights[k]) for k in KINDS if weights.get(k, 0) > 0)


def _kinds_text(text: str):
    """``stop=3,pause=1`` -> {"stop": 3.0, "pause": 1.0}; ``stop,pause`` -> a list."""
    parts = [p.strip() for p in text.split(",")]
    if any(not p for p in parts):
        raise ValueError(f"{_short(text)} has an empty part (write kind or kind=weight, ...)")
    if not any("=" in p for p in parts):
        return parts
    weights = {}
    for part in parts:
        kind, sep, weight = (x.strip() for x in part.partition("="))
        if not sep:
            raise ValueError(f"{_short(text)}: give every kind a weight or none ({kind!r})")
        if kind in weights:
            raise ValueError(f"{_short(text)} names {kind!r} twice")
        try:
            weights[kind] = float(weight)
        except ValueError:
            raise ValueError(f"weight of {kind} is not a number: {_short(weight)}") from None
    return weights


def _kind_params(kind, given):
    """The filled-in parameters of one kind: an SMSC kind's mode, another kind's dict."""
    if kind in SMSC_KINDS:
        return parse_mode({**given, "name": kind}).as_dict()
    params = parse_parameters(kind, given, KIND_PARAMETERS[kind])
    if kind == "loss" and params["fraction"] * LOSS_SCALE < 1:
        raise ValueError(f"loss: fraction must be at least {1 / LOSS_SCALE:g} (nft draws "
                         f"from {LOSS_SCALE}), got {params['fraction']!r}")  # fmt: skip
    return params


def _service_modes(raw, prefix, unit, kinds, errors):
    """(control, params) of one service entry: the SMSC kinds' control socket, and the
    parameters of its kinds that take any (kind -> dict; an SMSC kind's is its mode), or
    None after adding its errors."""
    smsc = [k for k, _w in kinds if k in SMSC_KINDS]
    with_params = [k for k, _w in kinds if k in SMSC_KINDS or k in KIND_PARAMETERS]
    control, params = raw.get("control"), raw.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        errors.append(f"{prefix}.params ({unit}): {_short(params)} must be a dict kind: "
                      "{parameter: value}")  # fmt: skip
        return None
    ok = True
    for kind in params:
        if kind not in with_params:
            what = "is not one of this service's kinds" if kind in KINDS else "is not a kind"
            takes = [k for k in KINDS if KIND_PARAMETERS.get(k) or MODE_PARAMETERS.get(k)]
            errors.append(f"{prefix}.params ({unit}): {_short(kind)} {what}; kinds with "
                          f"parameters: {', '.join(takes)}")  # fmt: skip
            ok = False
    modes = {}
    for kind in with_params:
        given = params.get(kind) or {}
        # a kind's parameters as the plan records them ({"name": kind, ...} for a mode) may
        # be passed back as they are
        if not isinstance(given, dict) or given.get("name", kind) != kind:
            errors.append(f"{prefix}.params.{kind} ({unit}): {_short(given)} must be a dict "
                          "parameter: value")  # fmt: skip
            ok = False
            continue
        try:
            modes[kind] = _kind_params(kind, given)
        except ValueError as exc:
            errors.append(f"{prefix}.params.{kind} ({unit}): {exc}")
            ok = False
    if smsc:
        if not isinstance(control, str) or not control.startswith("/") or "\0" in control:
            errors.append(
                f"{prefix}.control ({unit}): the SMSC kinds ({', '.join(smsc)}) need "
                f"{prefix}.control, the absolute path of the mock SMSC's control socket "
                f"(got {_short(control)})"
            )
            ok = False
        elif len(control.encode()) > 107:  # sun_path holds 108 octets with the NUL
            errors.append(f"{prefix}.control ({unit}): {_short(control)} is longer than a "
                          "Unix socket path may be (107 octets)")  # fmt: skip
            ok = False
    # a control socket without SMSC kinds is not used (a playbook may always pass it)
    return (control if smsc else None, modes) if ok else None


def _service_fault(raw, prefix, unit, action, errors):
    """(kinds, port) of one service entry, or (None, None) after adding its errors."""
    try:
        kinds = parse_kinds(raw.get("kinds"), action if action in ACTIONS else "stop")
    except ValueError as exc:
        errors.append(f"{prefix}.kinds ({unit}): {exc}")
        return None, None
    port = raw.get("port")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535
    ):
        errors.append(f"{prefix}.port ({unit}): {_short(port)} must be a TCP port 1-65535")
        return None, None
    network = [k for k, _w in kinds if k in NETWORK_KINDS]
    if network and port is None:
        errors.append(
            f"{prefix}.kinds ({unit}): the network kinds ({', '.join(network)}) need "
            f"{prefix}.port, the service's TCP port"
        )
        return None, None
    if any(k in REDIS_KINDS for k, _w in kinds):
        auth = raw.get("auth_file")
        if port is None:
            errors.append(f"{prefix}.kinds ({unit}): stall needs {prefix}.port, the port "
                          "Redis listens on (on 127.0.0.1)")  # fmt: skip
            return None, None
        if auth is not None and (not isinstance(auth, str) or not auth.startswith("/")):
            errors.append(f"{prefix}.auth_file ({unit}): {_short(auth)} must be the "
                          "absolute path of a file holding Redis' password")  # fmt: skip
            return None, None
    return kinds, port


def _validate_services(raw_services, errors, action="stop") -> list[ServiceSpec]:
    if not raw_services:
        errors.append("services: list at least one service (a dict with 'unit')")
        return []
    specs = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_services):
        prefix = f"services[{index}]"
        if not isinstance(raw, dict):
            errors.append(f"{prefix}: must be a dict with 'unit', got {raw!r}")
            continue
        try:
            unit = normalize_unit(raw.get("unit"))
        except ValueError as exc:
            errors.append(f"{prefix}.unit: {exc}")
            continue
        if unit in seen:
            errors.append(
                f"services: unit {unit!r} is listed twice (services[{seen[unit]}] and {prefix})"
            )
            continue
        seen[unit] = index
        bounds = {}
        merged = dict(SERVICE_DEFAULTS)
        merged.update({k: v for k, v in raw.items() if k in SERVICE_DEFAULTS and v is not None})
        for key in ("run_min", "run_max", "stop_min", "stop_max"):
            bounds[key] = _duration_option(merged, key, errors, label=f"{prefix}.{key} ({unit})")
        if None in bounds.values():
            continue
        ok = True
        for kind in ("run", "stop"):
            low, high = bounds[f"{kind}_min"], bounds[f"{kind}_max"]
            if low > high:
                errors.append(
                    f"{prefix}.{kind}_min ({unit}): {format_ms(low)} is greater than "
                    f"{prefix}.{kind}_max {format_ms(high)}"
                )
                ok = False
        kinds, port = _service_fault(raw, prefix, unit, action, errors)
        smsc = _service_modes(raw, prefix, unit, kinds, errors) if kinds is not None else None
        ok = ok and kinds is not None and smsc is not None
        if ok:
            specs.append(
                ServiceSpec(
                    unit=unit,
                    run_min_ms=bounds["run_min"],
                    run_max_ms=bounds["run_max"],
                    stop_min_ms=bounds["stop_min"],
                    stop_max_ms=bounds["stop_max"],
                    kinds=kinds,
                    port=port,
                    control=smsc[0],
                    params=smsc[1],
                    auth_file=raw.get("auth_file") if dict(kinds).get("stall") else None,
                )
            )
    return specs


def _check_writable_file(path, option, problems):
    if not path or not os.path.isabs(path):
        problems.append(f"{option}: {path!r} must be an absolute path")
        return
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        problems.append(f"{option}: directory {directory!r} does not exist")
    elif not os.access(directory, os.W_OK | os.X_OK):
        problems.append(f"{option}: directory {directory!r} is not writable")
    elif os.path.exists(path) and (not os.path.isfile(path) or not os.access(path, os.W_OK)):
        problems.append(f"{option}: {path!r} exists and is not a writable regular file")


def _validate_identity(params, errors):
    """run_id, action and seed (derived from run_id when not given)."""
    run_id = params.get("run_id")
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id):
        errors.append(f"run_id: {run_id!r} must match [A-Za-z0-9_.-]{{1,64}}")
        run_id = None
    action = params.get("action") or "stop"
    if action not in ACTIONS:
        errors.append(f"action: {action!r} must be one of {', '.join(ACTIONS)}")
    seed = params.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        errors.append(f"seed: {seed!r} must be an integer")
    if seed is None and run_id:
        return run_id, action, derive_seed(run_id), True
    return run_id, action, seed, False


def _validate_paths(params, errors, fs_problems):
    _check_writable_file(params.get("timeline_path"), "timeline_path", fs_problems)
    lock_path = params.get("lock_path")
    if not lock_path or not os.path.isabs(lock_path):
        errors.append(f"lock_path: {lock_path!r} must be an absolute path")
    elif os.path.isdir(lock_path):
        errors.append(f"lock_path: {lock_path!r} is a directory")


def _check_duration_fits(duration_ms, services, errors):
    for index, spec in enumerate(services):
        if duration_ms < spec.shortest_cycle_ms:
            errors.append(
                f"duration: {format_ms(duration_ms)} is shorter than run_min + stop_min "
                f"({format_ms(spec.shortest_cycle_ms)}) of services[{index}] "
                f"({spec.unit}), which would never be stopped"
            )


def _check_budget(budget_ms, reserve_ms, duration_ms, services, errors):
    """The loop, and its heal, must end before async_wrapper's SIGKILL."""
    if reserve_ms >= budget_ms:
        errors.append(
            f"heal_reserve: {format_ms(reserve_ms)} leaves no time inside "
            f"async_budget {format_ms(budget_ms)}"
        )
        return
    if duration_ms is not None:
        if duration_ms + reserve_ms > budget_ms:
            errors.append(
                f"duration: {format_ms(duration_ms)} + heal_reserve "
                f"{format_ms(reserve_ms)} exceeds async_budget "
                f"{format_ms(budget_ms)}; raise async_budget (and the task's "
                f"async:) to at least {-(-(duration_ms + reserve_ms) // 1000)} seconds"
            )
        return
    end = budget_ms - reserve_ms
    for index, spec in enumerate(services):
        if end < spec.shortest_cycle_ms:
            errors.append(
                f"async_budget: {format_ms(budget_ms)} minus heal_reserve "
                f"leaves {format_ms(end)}, shorter than run_min + stop_min of "
                f"services[{index}] ({spec.unit})"
            )


def _validate_peers(raw, errors) -> tuple[str, ...]:
    """peers: IP addresses (no names, no networks, no duplicates)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.append(f"peers: {_short(raw)} must be a list of IP addresses")
        return ()
    peers = []
    for value in raw:
        try:
            address = ipaddress.ip_address(str(value).strip())
        except ValueError:
            errors.append(f"peers: {_short(value)} is not an IP address")
            continue
        if getattr(address, "ipv4_mapped", None):  # its packets are IPv4 ones
            address = address.ipv4_mapped
        if getattr(address, "scope_id", None):
            errors.append(f"peers: {address} has a scope (%zone); nft cannot match it")
        elif address.is_unspecified or address.is_multicast:
            errors.append(f"peers: {address} cannot be a naz host")
        elif str(address) in peers:
            errors.append(f"peers: {address} is listed twice")
        else:
            peers.append(str(address))
    return tuple(peers)


def _validate_loop(params, errors, warnings, budget_ms, reserve_ms) -> dict:
    """Options of the loop itself (everything heal_only does not need)."""
    action = params.get("action") or "stop"
    services = _validate_services(params.get("services"), errors, action)
    peers = _validate_peers(params.get("peers"), errors)
    network = [s.unit for s in services if s.network]
    if network and not peers and params.get("peers") in (None, []):
        errors.append(
            f"peers: the network kinds of {', '.join(network)} need the naz hosts' addresses "
            "to scope their rules to (nothing else is ever blocked)"
        )
    duration_ms = _duration_option(params, "duration", errors)
    stop_when = params.get("stop_when")
    if stop_when is not None and not str(stop_when).strip():
        errors.append("stop_when: must be a non-empty shell command")
    if stop_when is None and params.get("duration") is None:
        errors.append("duration: give duration and/or stop_when")
    if duration_ms is not None:
        _check_duration_fits(duration_ms, services, errors)
    if budget_ms is not None and reserve_ms is not None:
        _check_budget(budget_ms, reserve_ms, duration_ms, services, errors)
    if params.get("duration") is None and budget_ms is None and stop_when is not None:
        warnings.append(
            "Neither duration nor async_budget is set: if async: kills this job, the units "
            "it stopped stay stopped until the next chaos_loop run or heal_only."
        )
    interval_ms = _duration_option(params, "stop_when_interval", errors)
    grace_ms = _duration_option(params, "stop_grace", errors, minimum_ms=0)
    timeout_ms = _stop_when_timeout(params, stop_when, interval_ms, errors)
    max_lag_ms = _duration_option(params, "max_lag", errors)
    return {
        "services": tuple(services),
        "peers": peers,
        "duration_ms": duration_ms,
        "stop_when": stop_when,
        "stop_when_interval_ms": interval_ms if interval_ms is not None else 30_000,
        "stop_grace_ms": grace_ms or 0,
        "stop_when_timeout_ms": timeout_ms,
        "max_lag_ms": max_lag_ms if max_lag_ms is not None else DEFAULT_MAX_LAG_MS,
    }


def _stop_when_timeout(params, stop_when, interval_ms, errors) -> int:
    """stop_when_timeout: at least MIN_WINDOW_MS and shorter than stop_when_interval.

    Defaults to STOP_WHEN_TIMEOUT_SHARE of the interval, so a check is always over (done
    or killed) before the next one is due.
    """
    interval = interval_ms if interval_ms is not None else 30_000
    given = params.get("stop_when_timeout")
    timeout_ms = _duration_option(params, "stop_when_timeout", errors)
    if given is not None and timeout_ms is None:
        return 0
    if timeout_ms is None:
        timeout_ms = int(interval * STOP_WHEN_TIMEOUT_SHARE)
    if stop_when is None or interval_ms is None:
        return timeout_ms
    if timeout_ms >= interval:
        errors.append(
            f"stop_when_timeout: {format_ms(timeout_ms)} must be shorter than "
            f"stop_when_interval {format_ms(interval)}"
        )
    elif timeout_ms < MIN_WINDOW_MS:
        errors.append(
            f"stop_when_timeout: the default, {STOP_WHEN_TIMEOUT_SHARE:.0%} of "
            f"stop_when_interval {format_ms(interval)}, is under {format_ms(MIN_WINDOW_MS)}; "
            "raise stop_when_interval or set stop_when_timeout"
        )
    return timeout_ms


def validate_params(params: dict, check_mode: bool = False):
    """Validate module options.

    Returns ``(config, errors)``; ``config`` is None when there are errors.  Every error
    message starts with the option it is about.  Filesystem problems (timeline directory
    missing or unwritable) are errors, except in check mode where an earlier task that
    would have created the directory was itself only checked: there they are warnings.
    """
    errors: list[str] = []
    warnings: list[str] = []
    fs_problems: list[str] = []
    heal_only = bool(params.get("heal_only"))

    run_id, action, seed, seed_derived = _validate_identity(params, errors)
    _validate_paths(params, errors, fs_problems)
    reserve_ms = _duration_option(params, "heal_reserve", errors, minimum_ms=0)
    budget_ms = _duration_option(params, "async_budget", errors)
    loop = {
        "services": (),
        "duration_ms": None,
        "stop_when": None,
        "stop_when_interval_ms": 30_000,
        "stop_grace_ms": 0,
        "stop_when_timeout_ms": int(30_000 * STOP_WHEN_TIMEOUT_SHARE),
        "max_lag_ms": DEFAULT_MAX_LAG_MS,
    }
    if not heal_only:
        loop = _validate_loop(params, errors, warnings, budget_ms, reserve_ms)

    (warnings if check_mode else errors).extend(fs_problems)
    if errors:
        return None, errors
    config = ChaosConfig(
        run_id=run_id,
        seed=seed,
        seed_derived=seed_derived,
        action=action,
        async_budget_ms=budget_ms,
        heal_reserve_ms=reserve_ms if reserve_ms is not None else 60_000,
        timeline_path=params.get("timeline_path"),
        lock_path=params.get("lock_path"),
        heal_only=heal_only,
        warnings=tuple(warnings),
        **loop,
    )
    return config, []


# --------------------------------------------------------------------------- plan


def draw_ms(seed: int, unit: str, cycle: int, kind: str, *, low: int, high: int) -> int:
    """A deterministic integer in [low, high] for one window of one service."""
    digest = hashlib.sha256(f"{seed}:{unit}:{cycle}:{kind}".encode()).digest()
    return low + int.from_bytes(digest[:8], "big") % (high - low + 1)


def draw_kind(seed: int, unit: str, cycle: int, kinds) -> str:
    """The kind of one window, drawn by weight from its own stream (so adding kinds never
    moves a window, and one kind draws nothing)."""
    if len(kinds) == 1:
        return kinds[0][0]
    digest = hashlib.sha256(f"{seed}:{unit}:{cycle}:kind".encode()).digest()
    total = sum(weight for _kind, weight in kinds)
    point = int.from_bytes(digest[:8], "big") / 2**64 * total
    for kind, weight in kinds:
        point -= weight
        if point < 0:
            return kind
    return kinds[-1][0]


@dataclass(frozen=True)
class Outage:
    """One planned stop window: the unit goes down at stop_ms and comes back at start_ms."""

    unit: str
    index: int
    stop_ms: int
    start_ms: int
    kind: str = "stop"


def iter_outages(seed: int, spec: ServiceSpec, end_ms: int | None = None):
    """Yield the service's outages in order, lazily; stop when the next would not fit.

    Cycle i is a run window of ``draw(run)`` then a stop window of ``draw(stop)``.  With an
    ``end_ms`` only outages whose start edge is at or before ``end_ms`` are yielded: the
    last run window simply lasts to the end, so every stop window keeps its bounds.
    """
    t = 0
    cycle = 0
    while True:
        run = draw_ms(seed, spec.unit, cycle, "run", low=spec.run_min_ms, high=spec.run_max_ms)
        stop = draw_ms(seed, spec.unit, cycle, "stop", low=spec.stop_min_ms, high=spec.stop_max_ms)
        if end_ms is not None and t + run + stop > end_ms:
            return
        kind = draw_kind(seed, spec.unit, cycle, spec.kinds)
        yield Outage(spec.unit, cycle, t + run, t + run + stop, kind)
        t += run + stop
        cycle += 1


def plan_horizon_ms(config: ChaosConfig) -> int:
    end = config.end_ms
    return end if end is not None else OPEN_PLAN_HORIZON_MS


def build_plan(config: ChaosConfig, horizon_ms: int | None = None) -> dict:
    """The plan as returned by the module: unit -> alternating run/stop windows.

    Offsets are seconds from the start of the loop.  The last run window is marked
    ``final`` and lasts to the end of the plan.  Past MAX_LISTED_OUTAGES outages the list
    ends with one ``unlisted`` window covering the rest of the plan.
    """
    horizon = horizon_ms if horizon_ms is not None else plan_horizon_ms(config)
    plan = {}
    for spec in config.services:
        windows = []
        t = 0
        for outage in iter_outages(config.seed, spec, horizon):
            if outage.index >= MAX_LISTED_OUTAGES:
                windows.append(_window("unlisted", outage.index, t, horizon))
                break
            windows.append(_window("run", outage.index, t, outage.stop_ms))
            stop = _window("stop", outage.index, outage.stop_ms, outage.start_ms)
            stop["kind"] = outage.kind
            windows.append(stop)
            t = outage.start_ms
        else:
            windows.append(_window("run", len(windows) // 2, t, horizon, final=True))
        plan[spec.unit] = windows
    return plan


def _window(state, index, start_ms, end_ms, final=False):
    window = {
        "state": state,
        "index": index,
        "start_s": start_ms / 1000,
        "end_s": end_ms / 1000,
        "length_s": (end_ms - start_ms) / 1000,
    }
    if final:
        window["final"] = True
    return window
