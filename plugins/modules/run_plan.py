#!/usr/bin/python
# Copyright: nazbench contributors
# MIT License
"""Ansible module: check a benchmark run's parameters and fix them before anything runs."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run_plan
short_description: Check a nazbench run's parameters and compute its chaos plan and budgets
description:
  - The first step of C(playbooks/run_chaos.yml), run on the controller before any host is
    touched. Every parameter of the run is checked, and every error names the playbook
    variable to fix (C(chaos_duration), C(chaos_run_min), ...), so a bad C(-e) fails before
    a single message is queued.
  - The chaos windows are checked with the same code and duration grammar as
    M(chaos_loop) (C(90), C("90s"), C("13m"), C("1m30s"), C("0.5h"); parts h, m, s in
    that order, each at most once), and the plan is computed from the seed exactly as the
    loop will compute it on the hosts.
  - Returns the run's parameters as they are recorded in C(params.json) and on the hosts,
    with every duration in seconds, and the budgets derived from the plan's end.
  - Pure computation. No file, host or clock is touched except to name a run without
    C(run_id) (C(run-<UTC time>)).
version_added: "0.2.0"
author:
  - nazbench contributors
options:
  run_id:
    description: The run's name, 1-64 of C([A-Za-z0-9_.-]). Default C(run-YYYYmmddTHHMMSSZ) (UTC).
    type: str
  profile:
    description: The profile the values came from (recorded only).
    type: str
    required: true
  message_count:
    description: Messages to queue, a whole number > 0 (C(message_count)).
    type: raw
    required: true
  message_seed:
    description: Seed of the message payloads (C(message_seed)).
    type: raw
    default: 1
  chaos_enabled:
    description: Experiment A (true, the chaos loop runs) or B (false).
    type: raw
    default: true
  chaos_seed:
    description: Seed of the chaos plan; default derived from the run id as M(chaos_loop) does.
    type: raw
  chaos_run_min:
    description: Shortest run window of each service.
    type: raw
    required: true
  chaos_run_max:
    description: Longest run window of each service.
    type: raw
    required: true
  chaos_stop_min:
    description: Shortest stop window of each service.
    type: raw
    required: true
  chaos_stop_max:
    description: Longest stop window of each service.
    type: raw
    required: true
  chaos_duration:
    description: Longest the run may last (the chaos loop's duration; experiment B's limit too).
    type: raw
    required: true
  chaos_stop_grace:
    description: How long the loop goes on once every message is in or the queue is empty.
    type: raw
    required: true
  chaos_check_interval:
    description: How often the loop asks whether the run is done.
    type: raw
    required: true
  run_watch_interval:
    description: Seconds between two progress lines of the watch, a whole number >= 1.
    type: raw
    required: true
  run_drain:
    description:
      - How long the run goes on without faults after the chaos loop ended, until every
        message is in or the queue is empty (a duration, C(0) to end with the loop).
    type: raw
    default: 0
  chaos_kinds:
    description:
      - The fault kinds of the windows (C(chaos_kinds)), for every service, as
        M(chaos_loop) takes them in O(chaos_loop#module:services[].kinds) - a kind, a list,
        a dict of kind to weight, or text such as C(stop,pause) or C(stop=2,kill=1,pause=1).
        Each window's kind is drawn from the seed; the windows do not move.
    type: raw
    default: stop
  chaos_smsc_kinds:
    description:
      - The fault kinds of the SMSC's windows, in place of O(chaos_kinds) (C(chaos_smsc_kinds));
        the only place for the SMSC kinds (V(throttle), V(slow), V(silent), V(drop_resp),
        V(unbind)), modes of the mock SMSC that Redis does not have. Default O(chaos_kinds).
      - The SMSC is the unit of O(services) named C(nazbench-smsc.service).
    type: raw
  chaos_redis_kinds:
    description:
      - The fault kinds of Redis' windows, in place of O(chaos_kinds) (C(chaos_redis_kinds));
        the only place for V(stall) (CLIENT PAUSE), which the SMSC does not have. Default
        O(chaos_kinds).
      - Redis is the unit of O(services) named C(redis-server.service).
    type: raw
  chaos_params:
    description:
      - Parameters of the kinds that take any (C(chaos_params)), a dict of kind to a dict
        of parameter to value, as M(chaos_loop) takes them in
        O(chaos_loop#module:services[].params); each service gets those of its kinds. A
        kind that no service draws is refused.
    type: raw
  services:
    description: The units the chaos loop stops and starts (their plans are computed here).
    type: list
    elements: str
    default: [nazbench-smsc.service, redis-server.service]
  heal_reserve:
    description: Time the chaos loop keeps at the end of its async budget to start what it stopped.
    type: raw
    default: 60s
  extra:
    description: Further values recorded in the parameters as given (the WAN's round trip, ...).
    type: dict
    default: {}
notes:
  - Check mode computes the same result; the module changes nothing in either mode.
"""

EXAMPLES = r"""
- name: Check the run's parameters (nothing is touched yet)
  run_plan:
    run_id: "{{ run_id | default(omit) }}"
    profile: smoke
    message_count: 2000
    chaos_run_min: 150s
    chaos_run_max: 210s
    chaos_stop_min: 20s
    chaos_stop_max: 40s
    chaos_duration: 14m
    chaos_stop_grace: 60s
    chaos_check_interval: 10s
    run_watch_interval: 15
  register: __plan
"""

RETURN = r"""
run:
  description: The run's parameters, durations in seconds, as written to params.json.
  returned: always
  type: dict
  sample:
    run_id: run-20261130T061500Z
    profile: smoke
    experiment: A
    chaos_enabled: true
    message_count: 2000
    message_seed: 1
    chaos_seed: 3735928559
    chaos_seed_derived: true
    chaos_services_run: [150.0, 210.0]
    chaos_services_stop: [20.0, 40.0]
    chaos_kinds: {stop: 1.0}
    chaos_smsc_kinds: {stop: 1.0}
    chaos_redis_kinds: {stop: 1.0}
    chaos_params_by_service: {nazbench-smsc.service: {}, redis-server.service: {}}
    chaos_duration: "14m"
    chaos_duration_s: 840.0
    chaos_stop_grace_s: 60.0
    chaos_check_interval_s: 10.0
    run_watch_interval: 15
    plan_end_s: 840.0
    chaos_budget_s: 960
    probe_duration_s: 1560
    run_drain_s: 0.0
    watch_timeout_s: 1260
    planned_outages: {nazbench-smsc.service: 3, redis-server.service: 3}
plan:
  description: The chaos plan per unit (the same as M(chaos_loop) returns in check mode).
  returned: always
  type: dict
  sample:
    nazbench-smsc.service:
      - {state: run, index: 0, start_s: 0.0, end_s: 171.2, length_s: 171.2}
      - {state: stop, index: 0, start_s: 171.2, end_s: 199.0, length_s: 27.8}
"""

import re  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.chaos_plan import (  # noqa: E402
    SMSC_KINDS,
    DurationError,
    build_plan,
    derive_seed,
    parse_duration_ms,
    parse_kinds,
    plan_horizon_ms,
    validate_params,
)

RUN_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
TRUE = ("true", "yes", "on", "1")
FALSE = ("false", "no", "off", "0")
# Time after the loop's async budget that the watch waits before it gives up, and that
# the probe outlives the loop by.
WATCH_SLACK_S = 300
PROBE_SLACK_S = 600
BUDGET_SLACK_S = 60

# chaos_loop's option names -> the playbook variables they come from.
_OPTION_VARS = [
    (
        re.compile(
            r"run_min \+ stop_min \(([^)]*)\) of services\[\d+\] \([^)]*\), "
            r"which would never be stopped"
        ),
        r"chaos_run_min + chaos_stop_min (\1): no outage would fit",
    ),
    (
        re.compile(r"services\[\d+\]\.(run_min|run_max|stop_min|stop_max|kinds)(?: \([^)]*\))?"),
        r"chaos_\1",
    ),
    (re.compile(r"services\[\d+\]\.params((?:\.\w+)?)(?: \([^)]*\))?"), r"chaos_params\1"),
    (re.compile(r"^duration:"), "chaos_duration:"),
    (re.compile(r"\bduration \b"), "chaos_duration "),
    (re.compile(r"^stop_grace:"), "chaos_stop_grace:"),
    (re.compile(r"^stop_when_interval:"), "chaos_check_interval:"),
    (re.compile(r"^stop_when_timeout:"), "chaos_check_interval:"),
    (re.compile(r"^seed:"), "chaos_seed:"),
]


SMSC_UNIT = "nazbench-smsc.service"
REDIS_UNIT = "redis-server.service"


def _given(value) -> bool:
    return value is not None and str(value).strip() != ""


def _kinds_or_none(value):
    """The (kind, weight) pairs of ``value``, or none where it is bad (the loop's own
    validation then names the problem)."""
    try:
        return parse_kinds(value, "stop")
    except ValueError:
        return ()


def name_variables(message: str, kinds_vars: dict | None = None) -> str:
    """Rewrite a chaos_loop validation message in the playbook's variable names
    (``kinds_vars``: unit -> the variable its kinds came from, where not chaos_kinds)."""
    message = re.sub(
        r"services\[\d+\]\.kinds \(([^)]*)\)",
        lambda m: (kinds_vars or {}).get(m[1], "chaos_kinds"),
        message,
    )
    for pattern, repl in _OPTION_VARS:
        message = pattern.sub(repl, message)
    return message


def _whole(name, value, errors, minimum):
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < minimum:
        errors.append(f"{name}: must be a whole number >= {minimum}, got {value!r}")
        return None
    return int(text)


def _bool(name, value, errors):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    errors.append(f"{name}: must be true or false, got {value!r}")
    return None


def _split_params(services: list[dict], kind_params, errors: list[str]) -> None:
    """Give each service the chaos_params of its own kinds."""
    if kind_params is not None and not isinstance(kind_params, dict):
        errors.append(f"chaos_params: must be a dict kind: {{parameter: value}}, got "
                      f"{kind_params!r:.100}")  # fmt: skip
        return
    if not kind_params:
        return
    drawn = {s["unit"]: {k for k, _w in _kinds_or_none(s["kinds"])} for s in services}
    for service in services:
        service["params"] = {k: v for k, v in kind_params.items() if k in drawn[service["unit"]]}
    unused = [k for k in kind_params if not any(k in d for d in drawn.values())]
    if unused:
        errors.append(
            f"chaos_params: {', '.join(map(str, unused))[:200]} is not among the kinds "
            "of any service (chaos_kinds, chaos_smsc_kinds, chaos_redis_kinds)"
        )


def _fault_services(params: dict, windows: dict, errors: list[str]):
    """The chaos loop's services entries with their kinds and parameters: chaos_kinds for
    each, chaos_smsc_kinds for the SMSC, each one's part of chaos_params. Returns
    (services, the one-service kinds wrongly in chaos_kinds, unit -> the variable of its
    own kinds)."""
    smsc_kinds, kind_params = params.get("chaos_smsc_kinds"), params.get("chaos_params")
    redis_kinds = params.get("chaos_redis_kinds")
    services = [dict(unit=unit, **windows) for unit in params.get("services") or []]
    try:  # checked even where every service has kinds of its own
        parse_kinds(params.get("chaos_kinds"), "stop")
    except ValueError as exc:
        errors.append(f"chaos_kinds: {exc}")
    common = [
        k for k, _w in _kinds_or_none(params.get("chaos_kinds")) if k in (*SMSC_KINDS, "stall")
    ]
    if common:
        errors.append(
            f"chaos_kinds: {', '.join(common)} belong to one service (the SMSC's modes, "
            "Redis' stall); name them in chaos_smsc_kinds or chaos_redis_kinds"
        )
    for service in services:
        if service["unit"] == SMSC_UNIT:
            if _given(smsc_kinds):
                service["kinds"] = smsc_kinds
            service["control"] = "/nonexistent/nazbench/smsc-control.sock"
        elif service["unit"] == REDIS_UNIT and _given(redis_kinds):
            service["kinds"] = redis_kinds
    for name, unit, foreign in (
        ("chaos_smsc_kinds", SMSC_UNIT, ("stall",)),
        ("chaos_redis_kinds", REDIS_UNIT, SMSC_KINDS),
    ):
        given = _kinds_or_none(params.get(name)) if _given(params.get(name)) else ()
        wrong = [k for k, _w in given if k in foreign]
        if wrong:
            errors.append(f"{name}: {', '.join(wrong)} is not a kind of {unit}")
    _split_params(services, kind_params, errors)
    own = {SMSC_UNIT: "chaos_smsc_kinds"} if _given(smsc_kinds) else {}
    if _given(redis_kinds):
        own[REDIS_UNIT] = "chaos_redis_kinds"
    return services, common, own


def plan_run(params: dict, now: float | None = None) -> tuple[dict | None, dict, list[str]]:
    """(run parameters, plan, errors) for the module's parameters."""
    errors: list[str] = []
    run_id = params.get("run_id")
    if run_id is None:
        stamp = time.strftime(
            "%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time())
        )
        run_id = f"run-{stamp}"
    elif not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id):
        errors.append(f"run_id: must be 1-64 of [A-Za-z0-9_.-], got {run_id!r}")
        run_id = None
    count = _whole("message_count", params.get("message_count"), errors, 1)
    message_seed = _whole("message_seed", params.get("message_seed"), errors, 0)
    enabled = _bool("chaos_enabled", params.get("chaos_enabled"), errors)
    watch = _whole("run_watch_interval", params.get("run_watch_interval"), errors, 1)
    seed = params.get("chaos_seed")
    seed_derived = seed is None or str(seed).strip() == ""
    if seed_derived:
        seed = derive_seed(run_id) if run_id else 0
    else:
        seed = _whole("chaos_seed", seed, errors, 0)

    windows = {k: params.get(f"chaos_{k}") for k in ("run_min", "run_max", "stop_min", "stop_max")}
    windows["kinds"] = params.get("chaos_kinds")
    # The ports, the naz host's address and the SMSC's control socket are the hosts'
    # (run_start.yml passes them to the loop); stand-ins here let the network and SMSC
    # kinds through to the plan.
    windows["port"] = 1
    services, common, own = _fault_services(params, windows, errors)
    loop_params = {
        "run_id": run_id or "x",
        "seed": seed if isinstance(seed, int) else 0,
        "services": services,
        "action": "stop",
        "peers": ["192.0.2.1"],
        "duration": params.get("chaos_duration"),
        "stop_when": "true",
        "stop_when_interval": params.get("chaos_check_interval"),
        "stop_grace": params.get("chaos_stop_grace"),
        "heal_reserve": params.get("heal_reserve", "60s"),
        "timeline_path": "/nonexistent/nazbench/timeline.jsonl",
        "lock_path": "/nonexistent/nazbench/chaos_loop.lock",
        "heal_only": False,
    }
    config, loop_errors = validate_params(loop_params, check_mode=True)
    drain_ms = None
    try:
        drain_ms = parse_duration_ms(params.get("run_drain", 0))
    except DurationError as exc:
        errors.append(f"run_drain: {exc}")
    if common:  # said above, once, naming the variable
        loop_errors = [m for m in loop_errors if not re.match(r"services\[\d+\]\.control", m)]
    for message in (name_variables(m, own) for m in loop_errors):
        if message not in errors:  # one per service otherwise
            errors.append(message)
    if errors:
        return None, {}, errors

    plan = build_plan(config)
    plan_end_s = plan_horizon_ms(config) / 1000
    budget_s = int(-(-(plan_end_s + config.heal_reserve_ms / 1000) // 1)) + BUDGET_SLACK_S
    spec = config.services[0]
    run = {
        "run_id": run_id,
        "profile": params.get("profile"),
        "experiment": "A" if enabled else "B",
        "chaos_enabled": enabled,
        "message_count": count,
        "message_seed": message_seed,
        "chaos_seed": seed,
        "chaos_seed_derived": seed_derived,
        "chaos_services_run": [spec.run_min_ms / 1000, spec.run_max_ms / 1000],
        "chaos_services_stop": [spec.stop_min_ms / 1000, spec.stop_max_ms / 1000],
        "chaos_kinds": dict(_kinds_or_none(params.get("chaos_kinds"))),
        # the SMSC's own kinds, and each service's parameters of its kinds, filled in
        "chaos_smsc_kinds": next(
            (dict(s.kinds) for s in config.services if s.unit == SMSC_UNIT), None
        ),
        "chaos_redis_kinds": next(
            (dict(s.kinds) for s in config.services if s.unit == REDIS_UNIT), None
        ),
        # chaos_params as each service took it (filled in), by unit
        "chaos_params_by_service": {s.unit: s.params for s in config.services},
        "chaos_duration": str(params.get("chaos_duration")),
        "chaos_duration_s": config.duration_ms / 1000,
        "chaos_stop_grace_s": config.stop_grace_ms / 1000,
        "chaos_check_interval_s": config.stop_when_interval_ms / 1000,
        "run_watch_interval": watch,
        "plan_end_s": plan_end_s,
        "chaos_budget_s": budget_s,
        "run_drain_s": drain_ms / 1000,
        "probe_duration_s": budget_s + int(drain_ms // 1000) + PROBE_SLACK_S,
        "watch_timeout_s": budget_s + int(drain_ms // 1000) + WATCH_SLACK_S,
        "planned_outages": {
            unit: sum(1 for w in windows_ if w["state"] == "stop")
            for unit, windows_ in plan.items()
        },
    }
    run.update(params.get("extra") or {})
    return run, plan, []


def main():
    module = AnsibleModule(
        argument_spec={
            "run_id": {"type": "str"},
            "profile": {"type": "str", "required": True},
            "message_count": {"type": "raw", "required": True},
            "message_seed": {"type": "raw", "default": 1},
            "chaos_enabled": {"type": "raw", "default": True},
            "chaos_seed": {"type": "raw"},
            "chaos_run_min": {"type": "raw", "required": True},
            "chaos_run_max": {"type": "raw", "required": True},
            "chaos_stop_min": {"type": "raw", "required": True},
            "chaos_stop_max": {"type": "raw", "required": True},
            "chaos_duration": {"type": "raw", "required": True},
            "chaos_stop_grace": {"type": "raw", "required": True},
            "chaos_check_interval": {"type": "raw", "required": True},
            "run_watch_interval": {"type": "raw", "required": True},
            "run_drain": {"type": "raw", "default": 0},
            "chaos_kinds": {"type": "raw", "default": "stop"},
            "chaos_smsc_kinds": {"type": "raw"},
            "chaos_redis_kinds": {"type": "raw"},
            "chaos_params": {"type": "raw"},
            "services": {
                "type": "list",
                "elements": "str",
                "default": ["nazbench-smsc.service", "redis-server.service"],
            },
            "heal_reserve": {"type": "raw", "default": "60s"},
            "extra": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    run, plan, errors = plan_run(module.params)
    if errors:
        module.fail_json(msg="Run parameters refused (nothing was touched): " + "; ".join(errors))
    module.exit_json(changed=False, run=run, plan=plan)


if __name__ == "__main__":
    main()
