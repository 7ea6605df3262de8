#!/usr/bin/python
# Copyright: nazbench contributors
# MIT License
"""Ansible module: the nazbench chaos loop (stop and start services on a seeded plan)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: chaos_loop
short_description: Stop and start systemd services on a seeded, recorded schedule
description:
  - Runs the chaos loop of the nazbench fault-tolerance benchmark on the host whose services
    it disrupts. Each service alternates a run window of O(services[].run_min) to
    O(services[].run_max) and a stop window of O(services[].stop_min) to
    O(services[].stop_max), independently of the other services, from the start of the loop
    until O(duration), O(stop_when) or O(async_budget) ends it.
  - The whole plan is computed from O(seed) before anything is touched. The same seed and
    options give the same plan on any host and Python version; each service has its own
    stream, so adding a service never changes another service's plan.
  - Every edge (stop, start) is appended to O(timeline_path) as a JSON line, flushed and
    fsynced as it happens, next to a C(plan) record at the start and an C(end) record at
    the end. A planned outage the loop does not begin is recorded as a C(skip) record.
  - The loop keeps the seed's schedule or skips, never bends it. No outage begins that
    cannot end inside the loop; an outage in progress keeps its planned length; a stop
    the loop reaches more than O(max_lag) late is skipped, never replayed in a burst; a
    late start always runs, its lateness recorded as C(drift_s).
  - Whatever ends the loop (end of plan, O(stop_when), an error, SIGTERM, SIGHUP, SIGINT),
    every unit it stopped is started again and that heal is recorded. A loop killed with
    SIGKILL cannot do that, so the units it stopped are listed in a state file beside
    O(lock_path), and the next run, or O(heal_only=true), starts them before anything else.
  - Meant to run under C(async) with C(poll=0) and be watched with
    M(ansible.builtin.async_status). Set O(async_budget) to the task's C(async) value so
    the loop ends, and heals, before async_wrapper kills it.
  - Durations are an integer or float number of seconds or a string of C(<number><unit>)
    parts in h, m, s order, each at most once, for example C(90), C("90s"), C("13m"),
    C("1h"), C("1m30s"), C("0.5s"). Fractions are allowed; values are rounded to the
    millisecond. Windows and O(stop_when_interval) must be at least C(0.1s).
version_added: "0.1.0"
author:
  - nazbench contributors
options:
  services:
    description:
      - The services to disrupt, each with its own run and stop window bounds.
      - Required unless O(heal_only=true). Each unit may appear once.
    type: list
    elements: dict
    suboptions:
      unit:
        description:
          - systemd unit name, for example C(redis-server.service) or C(smsc). A name without
            a unit type suffix is taken as a C(.service), as systemctl does.
        type: str
        required: true
      run_min:
        description: Shortest run window (the unit is up) before each stop.
        type: raw
        default: 13m
      run_max:
        description: Longest run window before each stop.
        type: raw
        default: 16m
      stop_min:
        description: Shortest stop window (the unit is down).
        type: raw
        default: 1m
      stop_max:
        description: Longest stop window.
        type: raw
        default: 3m
      kinds:
        description:
          - What each stop window of this service does (its fault kind), drawn per window
            by weight from the seed (a stream of its own, so the windows' times do not
            change with the kinds). A kind, a list of kinds (equal weights), a dict of
            kind to weight (weights >= 0, summing to more than 0), or the same as text,
            C(stop,pause) or C(stop=3,pause=1). Default O(action).
          - V(stop) and V(kill) as for O(action).
          - V(pause) is C(systemctl kill --signal=SIGSTOP) (every process of the unit)
            for the window, then C(--signal=SIGCONT), C(systemctl start) (which changes
            nothing on a running unit and brings back one that died) and C(--signal=SIGCONT)
            again, which must succeed. The unit stays C(active) and its port still accepts
            TCP connections; nothing answers.
          - V(blackhole), V(reset), V(half_open) and V(loss) leave the unit running and put
            nftables rules in place on this host for the window, in a table of their own
            (C(nazbench_chaos_<unit>), hooked at priority filter - 10; drop and reject end
            a packet's path whatever other tables say), matching only the
            service's TCP port O(services[].port) and the addresses in O(peers) -
            V(blackhole) drops both ways (a connect times out), V(reset) answers the
            peers' segments with a TCP reset (a connect is refused), V(half_open) drops
            what the service sends them (their segments still arrive, nothing comes back),
            V(loss) drops each packet between them, either way, with probability
            C(fraction) (O(services[].params), default 0.1, drawn per packet by nft's
            C(numgen random)). The window's end deletes the table, then runs
            C(systemctl start). They need O(services[].port), O(peers) and C(nft) on the
            host.
          - V(latency) adds C(delay_ms) (O(services[].params), default 1000) to the
            round trip between O(peers) and O(services[].port) for the window, the unit
            and every other packet untouched. With O(latency_daemon) (the lab) a transient
            unit C(nazbench-chaos-latency-<unit>) runs that delay daemon on an NFQUEUE of
            its own, and an iptables chain C(NBLAT_<unit>) in the mangle table queues what
            the peers send to the port (before the filter table, so the lab's WAN delay
            still applies; with C(--queue-bypass), so nothing is dropped while no daemon
            serves the queue). Without it, C(tc netem) on the interfaces that reach the
            peers delays what the service sends them (a C(prio) root qdisc, handle
            C(4e42:), with filters on the peers and the port), if a scratch network
            namespace shows the kernel has netem; one service per host then. With neither
            it is refused before anything is done, naming why. The window's end removes
            the chain (and the mangle table if the window created it and it is empty),
            stops the daemon's unit and removes a root qdisc C(4e42:) from every
            interface, whichever way the delay was put in place (so a heal without
            O(latency_daemon) undoes it too), then runs C(systemctl start).
          - V(throttle), V(slow), V(silent), V(drop_resp) and V(unbind) are modes of the
            nazbench mock SMSC, set through its local control socket
            O(services[].control) for the window (the unit and the network are not
            touched) - V(throttle) answers a fraction of submit_sm ESME_RTHROTTLED,
            V(slow) delays every answer, V(silent) reads and answers nothing, V(drop_resp)
            accepts and records a submit_sm (drawn with C(fraction)) and closes its session
            before its submit_sm_resp, the rest of that read neither answered nor recorded
            (the duplicate-maker), V(unbind) sends an unbind to every
            bound session and every session that binds. Parameters in
            O(services[].params). The window's end sets the mode back to normal (which need
            not succeed, the unit may be gone), runs C(systemctl start), and sets normal
            again, which must succeed. Before the loop starts, the socket must answer and the SMSC
            be in its normal mode.
          - V(stall) is Redis' C(CLIENT PAUSE <ms> WRITE), sent to 127.0.0.1 on
            O(services[].port) with the password in O(services[].auth_file) - every
            queue operation (LPUSH, BRPOP, ...) waits, while PING and reads answer (under
            C(ALL) the C(CLIENT UNPAUSE) itself would wait). The pause lasts the window
            plus 30 s of its own, so Redis resumes even if no heal ever comes. The
            window's end sends C(CLIENT UNPAUSE) (need not succeed), runs
            C(systemctl start), and sends C(CLIENT UNPAUSE) again, which must succeed.
          - Each C(edge) record names its C(kind) (a network kind's also its C(params), its
            port and peers; an SMSC kind's the control socket, the mode set and the mode
            the SMSC answered with after the edge; a stall's port and pause); the state
            file keeps each unit's kind (and how to reach an SMSC or Redis kind's unit), so
            a heal (also after SIGKILL, by the next run or O(heal_only)) undoes the right
            fault.
        type: raw
      port:
        description:
          - The service's TCP port, which the network kinds (V(blackhole), V(reset),
            V(half_open), V(loss), V(latency)) match and V(stall) sends to. Required with
            them.
        type: int
      auth_file:
        description:
          - Absolute path, on the host, of a file holding Redis' password, for V(stall)
            (C(AUTH) before the pause; the password is never logged). Omit for a Redis
            without one.
        type: path
      control:
        description:
          - Absolute path of the mock SMSC's control socket (the smsc role's
            C(smsc_control_socket)). Required with the SMSC kinds, unused without them.
        type: path
      params:
        description:
          - Parameters of the kinds that take any, a dict of kind to a dict of parameter
            to value (see the examples). V(loss) takes C(fraction) (0 < f <= 0.99,
            default 0.1), V(latency) C(delay_ms) (0 < d <= 60000, default 1000),
            V(throttle) and V(drop_resp) take C(fraction) (0 < f <= 1,
            default 1), V(slow) takes C(delay_s) (0 < d <= 60, default 5); the others take
            none. Parsed by the mock SMSC's own parser (its modes' grammar); a kind that is
            not among O(services[].kinds), an unknown parameter or a value out of range is
            refused before anything is done. Each edge record's C(params) has the values
            in force.
        type: raw
  peers:
    description:
      - IP addresses (the naz hosts) the network kinds are scoped to; nothing else is ever
        blocked. Required when a service has a network kind; names, networks, unspecified
        and multicast addresses are refused.
    type: list
    elements: str
  latency_daemon:
    description:
      - Absolute path, on the host, of the lab's delay daemon (C(wan_delay.py) of the
        lab_wan role), with which V(latency) windows add their delay. Without it they use
        C(tc netem). Unused without V(latency).
    type: path
  action:
    description:
      - How a unit is taken down at the start of a stop window, for services without
        O(services[].kinds).
      - V(stop) is a graceful C(systemctl stop), what the benchmark's methodology did.
      - V(kill) is C(systemctl kill --signal=SIGKILL) (a crash) followed by
        C(systemctl stop), which cancels any C(Restart=) so the unit stays down until the
        loop starts it at the end of the window.
    type: str
    choices: [stop, kill]
    default: stop
  duration:
    description:
      - Total length of the loop. Outages are only planned if they end by then; the last run
        window lasts to the end.
      - Must be at least O(services[].run_min) + O(services[].stop_min) of every service.
      - At least one of O(duration) and O(stop_when) is required unless O(heal_only=true).
    type: raw
  stop_when:
    description:
      - Shell command run with C(/bin/sh -c) every O(stop_when_interval) (first after one
        interval); return code 0 means the stop condition is met, for example the queue is
        drained. The loop goes on for O(stop_grace) after the first success, then ends.
      - The command runs as a child process in its own process group, its output discarded,
        and the loop polls it between edges, so a slow check never delays an edge. A check
        still running after O(stop_when_timeout) is killed with its process group, counts
        as not met and is recorded as a C(stop_when_timeout) record.
      - Once it has succeeded, a planned outage whose start would come after the grace is
        not begun (C(skip) record, reason C(after_grace)). An outage in progress when the
        grace ends keeps its planned length; the loop ends when the last of them has ended
        (never after O(duration) or O(async_budget) minus O(heal_reserve)).
      - With O(duration) too, whichever comes first ends the loop.
    type: str
  stop_when_interval:
    description: How often O(stop_when) is run.
    type: raw
    default: 30s
  stop_grace:
    description: How long the loop keeps going after O(stop_when) first succeeded.
    type: raw
    default: 0s
  stop_when_timeout:
    description:
      - How long one O(stop_when) check may run before it is killed (SIGKILL to its
        process group) and counted as not met.
      - Defaults to 80% of O(stop_when_interval). Must be at least C(0.1s) and shorter
        than O(stop_when_interval).
    type: raw
  max_lag:
    description:
      - How late the loop may reach a planned stop and still do it. A stop reached later
        (the host was suspended, the loop starved) is skipped with its start (C(skip)
        record, reason C(stale)), so a late loop never fires a burst of edges. A late
        start is always done. At least C(0.1s).
    type: raw
    default: 5s
  seed:
    description:
      - Seed of the plan. The same seed and options give the same plan.
      - Defaults to the first 32 bits of sha256(O(run_id)), so a run_id always replays its
        own plan; set it explicitly to give experiments with different run_ids the same
        chaos.
    type: int
  run_id:
    description:
      - Identity of the benchmark run, written into every timeline record.
      - 1 to 64 characters from C([A-Za-z0-9_.-]).
    type: str
    required: true
  timeline_path:
    description:
      - File on the host the timeline is appended to, as JSON lines. Its directory must
        exist and be writable (in check mode a missing directory is only a warning).
    type: path
    required: true
  lock_path:
    description:
      - File locked with C(flock) for as long as a loop runs, so only one loop runs on a
        host; a second one fails naming the holder's pid and run_id. The kernel releases
        the lock when the holder dies, even on SIGKILL, so there is no stale lock.
      - The state file of stopped units lives beside it, named like it with C(.state.json)
        in place of C(.lock). Its directory is created if missing.
    type: path
    default: /var/lib/nazbench/chaos_loop.lock
  async_budget:
    description:
      - The task's C(async) value. async_wrapper kills the job with SIGKILL when it runs
        out, which leaves no time to heal, so the loop must end O(heal_reserve) before
        that.
      - With O(duration), O(duration) + O(heal_reserve) must fit in it. Without
        O(duration), the loop ends (reason C(budget)) at O(async_budget) - O(heal_reserve).
    type: raw
  heal_reserve:
    description:
      - Time kept free at the end of O(async_budget) to start the stopped units; cover the
        slowest C(systemctl start) of your units.
    type: raw
    default: 60s
  heal_only:
    description:
      - Only start the units that a killed loop left stopped (listed in the state file
        beside O(lock_path)) and return. Use it in an C(always) section after the loop.
      - It takes the lock too, so it fails, naming the holder, while a loop still runs.
    type: bool
    default: false
notes:
  - Supports check mode, which returns the plan and does nothing else (no lock, no state
    file, no timeline, no systemctl). C(changed) tells whether the loop would stop anything.
  - A new loop first starts any unit listed in the state file, then checks that every unit
    is loaded and active, then writes the plan record and begins.
  - The loop ends with an error at the first systemctl call that fails (the benchmark would
    be invalid), after starting every unit it stopped. A failed start leaves its outage
    open until the heal starts the unit; if the heal fails too it stays open
    (C(open_outages) in the summary).
  - Without O(duration) and O(async_budget) the plan is open ended; the returned plan then
    covers 24 hours. The returned plan lists at most 1000 outages per service.
requirements:
  - systemd (systemctl) and Python 3.10 or later on the target host
seealso:
  - module: ansible.builtin.async_status
"""

EXAMPLES = r"""
- name: Disrupt the SMSC and Redis on the benchmark schedule for four hours
  chaos_loop:
    run_id: "{{ nazbench_run_id }}"
    seed: 20240611
    services:
      - unit: nazbench-smsc.service
        run_min: 13m
        run_max: 16m
        stop_min: 1m
        stop_max: 3m
      - unit: redis-server.service
    duration: 4h
    async_budget: 14700  # the same value as async below
    timeline_path: "/var/lib/nazbench/runs/{{ nazbench_run_id }}/chaos_timeline.jsonl"
  async: 14700  # duration + heal_reserve (60s) + a minute of slack
  poll: 0
  register: __chaos_job

- name: Wait for the chaos loop to finish
  ansible.builtin.async_status:
    jid: "{{ __chaos_job.ansible_job_id }}"
  register: __chaos_result
  until: __chaos_result.finished
  retries: 300
  delay: 60

- name: Run until the run is delivered or drained, plus five minutes, with SIGKILL
  block:
    - name: Start the chaos loop
      chaos_loop:
        run_id: "{{ nazbench_run_id }}"
        services:
          - unit: nazbench-smsc
          - unit: redis-server
        action: kill
        stop_when: >-
          /opt/nazbench/venv/bin/python -m nazbench.runstatus progress --exit-when-done
          --ledger /var/lib/nazbench/smsc/ledger.jsonl --run-id {{ nazbench_run_id }}
          --expect 100000 --redis-host 127.0.0.1 --redis-password-file /etc/nazbench/redis.password
        stop_when_interval: 30s
        stop_when_timeout: 20s
        stop_grace: 5m
        max_lag: 5s
        async_budget: 21600
        timeline_path: /var/lib/nazbench/runs/{{ nazbench_run_id }}/chaos_timeline.jsonl
      async: 21600
      poll: 0
      register: __chaos_job

    - name: Wait for the chaos loop to finish
      ansible.builtin.async_status:
        jid: "{{ __chaos_job.ansible_job_id }}"
      register: __chaos_result
      until: __chaos_result.finished
      retries: 720
      delay: 30
  always:
    - name: Start anything a killed chaos loop left stopped
      chaos_loop:
        run_id: "{{ nazbench_run_id }}"
        heal_only: true
        timeline_path: /var/lib/nazbench/runs/{{ nazbench_run_id }}/chaos_timeline.jsonl

- name: Throttle, slow down, silence the mock SMSC and drop its responses, by weight
  chaos_loop:
    run_id: "{{ nazbench_run_id }}"
    services:
      - unit: nazbench-smsc.service
        run_min: 2m
        run_max: 3m
        stop_min: 30s
        stop_max: 60s
        kinds: {throttle: 2, slow: 1, silent: 1, drop_resp: 2, unbind: 1}
        control: /run/nazbench-smsc/control.sock
        params:
          throttle: {fraction: 0.5}
          slow: {delay_s: 10}
    duration: 20m
    timeline_path: /var/lib/nazbench/runs/{{ nazbench_run_id }}/chaos_timeline.jsonl
  async: 1500
  poll: 0
  register: __chaos_job

- name: Show the plan without touching anything
  chaos_loop:
    run_id: smoke-1
    seed: 7
    services:
      - unit: nazbench-smsc.service
        run_min: 20s
        run_max: 30s
        stop_min: 5s
        stop_max: 10s
    duration: 3m
    timeline_path: /tmp/chaos_timeline.jsonl
  check_mode: true
  register: __chaos_plan
"""

RETURN = r"""
plan:
  description:
    - Per unit, the alternating run and stop windows, in seconds from the start of the loop.
      C(index) is the cycle; the last run window has C(final=true); a stop window's
      C(kind) is its fault kind.
  returned: always
  type: dict
  sample:
    nazbench-smsc.service:
      - {state: run, index: 0, start_s: 0.0, end_s: 842.113, length_s: 842.113}
      - {state: stop, index: 0, start_s: 842.113, end_s: 944.5, length_s: 102.387, kind: stop}
      - {state: run, index: 1, start_s: 944.5, end_s: 14400.0, length_s: 13455.5, final: true}
plan_end_s:
  description: Where the plan ends, in seconds (24 hours for an open ended plan).
  returned: always
  type: float
  sample: 14400.0
seed:
  description: The seed the plan was made from (given or derived from run_id).
  returned: always
  type: int
  sample: 20240611
run_id:
  description: The run_id, as given.
  returned: always
  type: str
  sample: paper-a-20240611
timeline:
  description:
    - The edge records, as written to O(timeline_path). C(cause) is C(plan), C(heal) (started
      at the end of the loop) or C(leftover) (left stopped by a killed loop).
      C(drift_s) is how late the command was issued, C(took_s) how long it ran,
      C(kind) the fault kind whose edge it is.
    - Besides C(edge) records, O(timeline_path) holds C(plan), C(skip), C(stop_when),
      C(stop_when_timeout) and C(end) records. A C(stop_when) record has C(run_id), C(at),
      C(elapsed_s), C(took_s), C(rc) and C(grace_until); a C(stop_when_timeout) record
      C(run_id), C(at), C(elapsed_s) and C(timeout_s).
  returned: always
  type: list
  elements: dict
  sample:
    - record: edge
      run_id: paper-a-20240611
      service: nazbench-smsc.service
      edge: stop
      kind: stop
      cause: plan
      window: 0
      planned_at: 1718100842.113
      actual_at: 1718100842.121
      drift_s: 0.008
      took_s: 0.412
      rc: 0
      outcome: ok
      stderr: ""
    - record: edge
      run_id: paper-a-20240611
      service: nazbench-smsc.service
      edge: start
      kind: stop
      cause: plan
      window: 0
      planned_at: 1718100944.5
      actual_at: 1718100944.503
      drift_s: 0.003
      took_s: 0.207
      rc: 0
      outcome: ok
      stderr: ""
skipped:
  description:
    - The C(skip) records, as written to O(timeline_path), of planned outages the loop did not
      begin, neither their stop nor their start. C(reason) is C(after_grace) (the outage
      would have ended after O(stop_grace)) or C(stale) (the loop reached the stop
      C(lag_s) seconds late, more than O(max_lag)).
  returned: always
  type: list
  elements: dict
  sample:
    - record: skip
      run_id: paper-a-20240611
      service: redis-server.service
      window: 15
      edge: stop
      planned_at: 1718114100.25
      planned_start_at: 1718114211.0
      at: 1718114100.251
      reason: after_grace
      lag_s: 0.001
summary:
  description:
    - Per unit the number of outages, the total downtime of the closed ones, the largest
      drift of a planned edge, the failed edges, the skipped outages and the outages never
      closed (C(open_outages), a start that failed and was not healed); overall the largest
      drift, the elapsed time and why the loop ended (C(duration), C(budget),
      C(stop_when), C(signal), C(error), C(locked), C(heal_only), or C(check_mode)).
    - An outage ends only at a start that worked; a failed start keeps it open, and the
      heal closes it if it works.
  returned: always
  type: dict
  sample:
    end_reason: duration
    elapsed_s: 14400.004
    max_drift_s: 0.011
    services:
      nazbench-smsc.service:
        outages: 16
        downtime_s: 1931.2
        max_drift_s: 0.011
        failed_edges: 0
        skipped: 0
        open_outages: 0
      redis-server.service:
        outages: 15
        downtime_s: 1802.7
        max_drift_s: 0.009
        failed_edges: 0
        skipped: 1
        open_outages: 0
healed:
  description: Units started before the loop because a killed loop had left them stopped.
  returned: always
  type: list
  elements: str
  sample: [redis-server.service]
still_stopped:
  description: Units the loop stopped and could not start again (empty unless the heal failed).
  returned: when not in check mode
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.chaos_plan import SERVICE_DEFAULTS, validate_params  # noqa: E402
from ansible.module_utils.chaos_runner import (  # noqa: E402
    ChaosError,
    ChaosRunner,
    SignalTrap,
    check_mode_result,
    latency_method,
)

ARGUMENT_SPEC = {
    "services": {
        "type": "list",
        "elements": "dict",
        "options": {
            "unit": {"type": "str", "required": True},
            "run_min": {"type": "raw", "default": SERVICE_DEFAULTS["run_min"]},
            "run_max": {"type": "raw", "default": SERVICE_DEFAULTS["run_max"]},
            "stop_min": {"type": "raw", "default": SERVICE_DEFAULTS["stop_min"]},
            "stop_max": {"type": "raw", "default": SERVICE_DEFAULTS["stop_max"]},
            "kinds": {"type": "raw"},
            "port": {"type": "int"},
            "control": {"type": "path"},
            "auth_file": {"type": "path"},
            "params": {"type": "raw"},
        },
    },
    "peers": {"type": "list", "elements": "str"},
    "latency_daemon": {"type": "path"},
    "action": {"type": "str", "choices": ["stop", "kill"], "default": "stop"},
    "duration": {"type": "raw"},
    "stop_when": {"type": "str"},
    "stop_when_interval": {"type": "raw", "default": "30s"},
    "stop_grace": {"type": "raw", "default": "0s"},
    "stop_when_timeout": {"type": "raw"},
    "max_lag": {"type": "raw", "default": "5s"},
    "seed": {"type": "int"},
    "run_id": {"type": "str", "required": True},
    "timeline_path": {"type": "path", "required": True},
    "lock_path": {"type": "path", "default": "/var/lib/nazbench/chaos_loop.lock"},
    "async_budget": {"type": "raw"},
    "heal_reserve": {"type": "raw", "default": "60s"},
    "heal_only": {"type": "bool", "default": False},
}

REQUIRED_IF = [
    ("heal_only", False, ("services",)),
    ("heal_only", False, ("duration", "stop_when"), True),
]


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=REQUIRED_IF,
        supports_check_mode=True,
    )
    config, errors = validate_params(module.params, check_mode=module.check_mode)
    if errors:
        module.fail_json(msg="; ".join(errors))
    for warning in config.warnings:
        module.warn(warning)
    if module.check_mode:
        module.exit_json(**check_mode_result(config))

    systemctl = module.get_bin_path("systemctl", required=True)
    # required only by a loop with network kinds (checked before anything is touched); a
    # heal of a killed loop's network fault finds it too
    nft = module.get_bin_path("nft") or "nft"
    if any(s.network for s in config.services) and module.get_bin_path("nft") is None:
        module.fail_json(msg="services: the network kinds need nft (nftables) on this host")

    def run_command(argv):
        return module.run_command(argv, expand_user_and_vars=False)

    try:  # how latency windows add their delay here, or why they cannot
        latency = latency_method(
            config, run_command, daemon=module.params["latency_daemon"],
            which=module.get_bin_path,
        )  # fmt: skip
    except ChaosError as exc:
        module.fail_json(msg=f"services: {exc}")

    with SignalTrap() as trap:
        runner = ChaosRunner(
            config, run_command, systemctl=systemctl, nft=nft, stop_requested=trap,
            latency=latency,
        )  # fmt: skip
        result = runner.run()
    for warning in result.pop("warnings_seen", []):
        module.warn(warning)
    if result.pop("failed"):
        module.fail_json(**result)
    result.pop("msg", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
