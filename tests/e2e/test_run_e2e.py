"""End to end: what a user runs, on the micro profile, with the controller off UTC.

A lab pair of its own (``nazbench-run-*``, 10.89.156.0/24, its own secrets and artifacts
directories) is provisioned and deployed, then:

1. bad run parameters are refused before anything is queued (the queue stays empty);
2. a micro run (400 messages with delivery receipts, one SMSC and one Redis outage, then a
   fault-free drain) is started detached with the controller in America/Los_Angeles; a
   controller attaches, shows progress, and is killed with SIGKILL while a service is down;
3. ``collect.yml``, with the controller in Asia/Tokyo, finishes the run from what its
   hosts keep (``run_finish.yml``), exports its logs and metrics and writes the report.

The assertions are what a user of the run relies on: every message accounted for, the
outages as planned and seen by the probe within a second, log rows = log records,
metrics present for the run's time range, every service running at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from labcopy import lab_inventory

from nazbench.smsc.modes import parse_mode

ROOT = Path(__file__).resolve().parents[2]
NAME = "nazbench-run"
SUBNET = "10.89.156.0/24"
BIN = Path(sys.executable).parent
RUN_ID = "e2e-micro"
NAZ_IP, SMSC_IP = "10.89.156.11", "10.89.156.21"  # the cell's sfo1 and ams1
WEST, EAST = "America/Los_Angeles", "Asia/Tokyo"

pytestmark = pytest.mark.skipif(
    shutil.which("podman") is None, reason="needs podman (make bootstrap)"
)


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    """Inventory, secrets and artifacts of a cell of our own; torn down afterwards."""
    base = tmp_path_factory.mktemp("cell")
    inv_dir = lab_inventory(base / "lab", NAME, 156)
    c = {"inventory": inv_dir, "secrets": base / "secrets", "artifacts": base / "artifacts"}
    c["secrets"].mkdir()
    c["artifacts"].mkdir()
    yield c
    keep = os.environ.get("NAZBENCH_E2E_KEEP")
    if keep:
        shutil.copytree(c["artifacts"], keep, dirs_exist_ok=True)
    else:
        playbook(c, "teardown.yml", "-e", "lab_remove_image=false", check=False)


def playbook(cell, name, *extra, tz="UTC", check=True, background=False, timeout=1500):
    env = dict(
        os.environ,
        PATH=f"{BIN}:{os.environ['PATH']}",
        ANSIBLE_NOCOLOR="1",
        TZ=tz,
        NAZBENCH_SECRETS_DIR=str(cell["secrets"]),
    )
    argv = [
        str(BIN / "ansible-playbook"),
        "-i",
        str(cell["inventory"]),
        f"playbooks/{name}",
        "-e",
        f"lab_network={NAME}",
        "-e",
        f"lab_network_subnet={SUBNET}",
        "-e",
        f"nazbench_artifacts_dir={cell['artifacts']}",
        *extra,
    ]
    if background:  # an open file for its output
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=background, stderr=subprocess.STDOUT, text=True
        )
    proc = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    return proc


def on(host, *argv, check=True):
    return subprocess.run(
        ["podman", "exec", f"{NAME}-{host}", *argv], capture_output=True, text=True, check=check
    )


def queue_length() -> int:
    out = on(
        "sfo1",
        "/opt/nazbench/venv/bin/python",
        "-m",
        "nazbench.runstatus",
        "queue",
        "--redis-host",
        "10.89.156.21",
        "--redis-password-file",
        "/etc/nazbench/naz-redis.password",
    )
    return json.loads(out.stdout)["length"]


@pytest.fixture(scope="module")
def deployed(cell):
    t0 = time.monotonic()
    playbook(cell, "provision.yml")
    playbook(cell, "deploy.yml")
    cell["deploy_s"] = round(time.monotonic() - t0)
    return cell


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["-e", "chaos_duration=14x"], "chaos_duration"),
        (["-e", "chaos_run_min=5m", "-e", "chaos_run_max=1m"], "chaos_run_min"),
        (["-e", "profile=nosuch"], "profile"),
        (["-e", "message_count=lots"], "message_count"),
    ],
)
def test_bad_run_parameters_are_refused_before_the_queue_is_touched(deployed, extra, named):
    proc = playbook(
        deployed,
        "run_chaos.yml",
        "-e",
        "run_setup=false",
        "-e",
        "profile=micro",
        *extra,
        check=False,
    )
    assert proc.returncode != 0
    assert named in proc.stdout
    assert "Enqueue the messages" not in proc.stdout
    assert queue_length() == 0


def _timeline_down(host="ams1") -> bool:
    out = on(host, "cat", f"/var/lib/nazbench/runs/{RUN_ID}/timeline.jsonl", check=False).stdout
    edges = [json.loads(line) for line in out.splitlines() if '"record": "edge"' in line]
    down = set()
    for e in edges:
        (down.add if e["edge"] == "stop" else down.discard)(e["service"])
    return bool(down)


@pytest.fixture(scope="module")
def finished_run(deployed):
    cell = deployed
    t0 = time.time()
    detached = playbook(
        cell,
        "run_chaos.yml",
        "-e",
        "run_setup=false",
        "-e",
        "profile=micro",
        "-e",
        f"run_id={RUN_ID}",
        "-e",
        "detach=true",
        tz=WEST,
    )
    assert f"-e attach={RUN_ID}" in detached.stdout
    # A controller attaches, shows progress, and dies with SIGKILL while a service is down.
    watched = cell["artifacts"] / "attach-killed.log"
    with watched.open("w") as out:
        watcher = playbook(cell, "run_chaos.yml", "-e", f"attach={RUN_ID}", tz=WEST, background=out)
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and not (
            "delivered, queue" in watched.read_text() and _timeline_down()
        ):
            time.sleep(0.5)
        down_when_killed = _timeline_down()
        watcher.send_signal(signal.SIGKILL)
        watcher.wait(timeout=30)
    killed_output = watched.read_text()
    assert down_when_killed, "no look and outage within 150 s:\n" + killed_output[-3000:]
    # Another controller, east of UTC, finishes the run from its hosts: collect.yml sees
    # params.json without run.json and runs run_finish.yml first.
    collected = playbook(cell, "collect.yml", "-e", f"run_id={RUN_ID}", tz=EAST)
    run_dir = cell["artifacts"] / RUN_ID
    return {
        "cell": cell,
        "dir": run_dir,
        "t0": t0,
        "killed_output": killed_output,
        "collected": collected.stdout,
        "run": json.loads((run_dir / "run.json").read_text()),
        "reconcile": json.loads((run_dir / "reconcile.json").read_text()),
        "probe": json.loads((run_dir / "probe-vs-timeline.json").read_text()),
        "logs": json.loads((run_dir / "logs-check.json").read_text()),
    }


def test_the_run_started_in_the_hosts_clock_not_the_controllers(finished_run):
    started = finished_run["run"]["started_at"]
    assert abs(started - finished_run["t0"]) < 120  # a time-zone shift would be hours


def test_the_watch_showed_progress_and_collect_finished_the_killed_run(finished_run):
    assert "delivered, queue" in finished_run["killed_output"]
    collected = finished_run["collected"]
    assert "PLAY [Attach to the run on its hosts]" in collected
    assert "delivered, queue" in collected and "-- over:" in collected
    assert finished_run["run"]["problems"] == []


def _micro_message_count() -> int:
    profile = yaml.safe_load((ROOT / "playbooks/profiles/micro.yml").read_text())
    return int(profile["message_count"])


def test_every_message_is_accounted_for(finished_run):
    c = finished_run["reconcile"]["counts"]
    expected = _micro_message_count()
    assert c["expected"] == expected
    assert c["accepted_lines"] == c["delivered_once"] + sum(
        finished_run["reconcile"]["duplicated"].values()
    )
    assert c["malformed_lines"] == 0 and c["null_msg_id_lines"] == 0
    ledger_lines = (finished_run["dir"] / "ledger.jsonl").read_text().splitlines()
    assert len(ledger_lines) == c["ledger_lines"] > 0
    assert c["delivered_once"] >= expected - 10, c  # naz recovers from one outage of each


def test_the_smsc_sent_receipts_by_default_and_every_one_is_accounted_for(finished_run):
    # Receipts are on by default (the seed's SMSC sent them): the SMSC sent one for each
    # accepted submit_sm it still had when it stopped or the run ended, and every receipt
    # is acknowledged once, more than once or never.
    r = finished_run["reconcile"]["receipts"]
    accepted = finished_run["reconcile"]["counts"]["accepted_lines"]
    assert 0.5 * accepted <= r["sent"] <= accepted, (r, accepted)
    assert r["acked_once"] + r["acked_more_than_once"] + r["never_acked"] == r["sent"], r
    assert r["acked_once"] > 0 and r["ack_latency_s"]["n"] > 0, r
    assert sum(r["by_stat"].values()) == r["sent"], r


def test_the_outages_were_as_planned_and_the_probe_saw_them(finished_run):
    chaos = finished_run["run"]["chaos"]
    services = {u: s for host in chaos.values() for u, s in host["services"].items()}
    assert services["nazbench-smsc.service"]["outages"] == 1
    assert services["redis-server.service"]["outages"] == 1
    for s in services.values():
        assert 8 <= s["downtime_s"] <= 13  # the plan's 8-12 s, plus the stop's own time
    probe = finished_run["probe"]
    assert probe["matched"] == probe["edges"] == 4, probe
    assert probe["p99_abs_drift_s"] <= 1.0
    assert probe["unplanned"] == []


def test_logs_and_metrics_of_the_run_were_collected(finished_run):
    logs = finished_run["logs"]
    assert logs["equal"] is True and logs["file_records"] > 0, logs
    metrics = finished_run["dir"] / "metrics"
    rss = metrics / "naz_rss_bytes.csv"
    assert rss.exists() and len(rss.read_text().splitlines()) > 5
    assert (finished_run["dir"] / "report.html").stat().st_size > 10_000


def test_every_service_runs_at_the_end(finished_run):
    for host, unit in [
        ("ams1", "nazbench-smsc"),
        ("ams1", "redis-server"),
        ("sfo1", "nazbench-naz-cli"),
    ]:
        assert on(host, "systemctl", "is-active", unit).stdout.strip() == "active"
    leftover = on("ams1", "test", "-e", "/var/lib/nazbench/chaos_loop.state.json", check=False)
    assert leftover.returncode != 0, "the chaos loop's state file lists units still stopped"


# What a connect from the naz host (sfo1) sees while each fault kind holds the SMSC port.
PROBE = """
import socket, time
s = socket.socket()
s.settimeout(2)
t0 = time.time()
try:
    s.connect(("%s", 2775))
except ConnectionRefusedError:
    seen = "refused"
except OSError:
    seen = "timeout"
else:
    s.sendall(bytes.fromhex("00000010000000150000000000000001"))  # enquire_link
    try:
        seen = "answered" if s.recv(64) else "closed"
    except OSError:
        seen = "connected, no answer"
print(t0, time.time(), seen)
"""


def _probe_at() -> tuple[float, float, str]:
    """(start, end, what a connect from the naz host saw), in the hosts' clock."""
    out = on("sfo1", "/opt/nazbench/venv/bin/python", "-c", PROBE % SMSC_IP, check=False)
    start, end, seen = (out.stdout.strip() or f"0 0 {out.stderr.strip()[-200:]}").split(" ", 2)
    return float(start), float(end), seen


def _probe() -> str:
    return _probe_at()[2]


def _ruleset() -> str:
    return on("ams1", "nft", "-s", "list", "ruleset").stdout


def _mode() -> dict:
    """The SMSC's mode, asked through its control socket (a restarted SMSC opens it a
    moment after its unit is active)."""
    deadline = time.monotonic() + 30
    while True:
        out = on("ams1", "/opt/nazbench/venv/bin/python", "-c", MODE, check=False)
        if out.returncode == 0 or time.monotonic() > deadline:
            assert out.returncode == 0, out.stderr[-500:]
            return json.loads(out.stdout)["mode"]
        time.sleep(0.5)


MODE = """
import json
from nazbench.smsc.control import request
print(json.dumps(request("/run/nazbench-smsc/control.sock", {"op": "get"})))
"""


def _redis_writes() -> str:
    """Whether a queue write from the naz host goes through (Redis not paused)."""
    return on("sfo1", "/opt/nazbench/venv/bin/python", "-c", REDIS_PROBE % SMSC_IP).stdout.strip()


REDIS_PROBE = """
import time
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
password = open("/etc/nazbench/naz-redis.password").read().strip()
# no retries: redis-py 8 retries a timed-out command 3 times by default, so a paused write
# would wait for the pause's end instead of timing out
r = redis.Redis(host="%s", password=password, socket_timeout=3, retry=Retry(NoBackoff(), 0))
t0 = time.time()
pong = r.ping()
try:
    r.set("nazbench:e2e:stall-probe", "1", ex=60)
    seen = "writes"
except redis.TimeoutError:
    seen = "ping only" if pong else "nothing"
print(t0, time.time(), seen)
"""

SMPP_PROBE = [
    "/opt/nazbench/venv/bin/python", "-m", "nazbench.lab.smppprobe", "--host", SMSC_IP,
    "--system-id", "nazbench", "--password-file", "/etc/nazbench/naz-smsc.password",
    "--wait", "6", "--slow", "2",
]  # fmt: skip

# loss: N connects at once from the naz host, each given less than TCP's first SYN
# retransmit (1 s); one succeeds when its SYN and the SYN-ACK both pass: 1 - (1 - p)^2.
LOSS_PROBE = """
import socket, time
from concurrent.futures import ThreadPoolExecutor
def one(_):
    try:
        socket.create_connection(("%s", 2775), timeout=0.6).close()
        return 1
    except OSError:
        return 0
t0 = time.time()
with ThreadPoolExecutor(25) as pool:
    ok = sum(pool.map(one, range(200)))
print(t0, time.time(), round(1 - ok / 200, 3))
"""


# latency: connects from the naz host, one after another, each timed (a connect is one
# round trip: the SYN out, the SYN-ACK back)
CONNECT_TIMES = """
import socket, statistics, time
t0, times = time.time(), []
for _ in range(8):
    t = time.monotonic()
    socket.create_connection(("%s", 2775), timeout=10).close()
    times.append((time.monotonic() - t) * 1000)
print(t0, time.time(), round(statistics.median(times)))
"""


def _probe_connect_ms() -> tuple[float, float, str]:
    start, end, median = on("sfo1", "/opt/nazbench/venv/bin/python", "-c",
                            CONNECT_TIMES % SMSC_IP).stdout.split()  # fmt: skip
    return float(start), float(end), median


def _probe_smpp() -> tuple[float, float, str]:
    out = json.loads(on("sfo1", *SMPP_PROBE).stdout)
    return out["t0"], out["t1"], out["seen"]


def _probe_redis() -> tuple[float, float, str]:
    start, end, seen = _redis_writes().split(" ", 2)
    return float(start), float(end), seen


def _probe_loss() -> tuple[float, float, str]:
    start, end, lost = on("sfo1", "/opt/nazbench/venv/bin/python", "-c",
                          LOSS_PROBE % SMSC_IP).stdout.split()  # fmt: skip
    return float(start), float(end), lost


def _one_window(cell, kind, probe, *extra):
    """Run fault_kind.yml with ``kind``, probe inside its window; (edges, probe's view)."""
    timeline = f"/var/lib/nazbench/runs/e2e-kinds/{kind}.jsonl"
    on("ams1", "rm", "-f", timeline)  # an earlier run's stop edge must not start the probe
    with (cell["artifacts"] / f"kind-{kind}.log").open("w") as out:
        proc = playbook(
            cell,
            "../tests/e2e/fault_kind.yml",
            "-e",
            f"kind={kind}",
            "-e",
            f"peer={NAZ_IP}",
            *extra,
            background=out,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = on("ams1", "cat", timeline, check=False).stdout
            if '"edge": "stop"' in text:
                break
            time.sleep(0.2)
        start, end, during = probe()
        assert proc.wait(timeout=120) == 0, (cell["artifacts"] / f"kind-{kind}.log").read_text()
    edges = [json.loads(x) for x in on("ams1", "cat", timeline).stdout.splitlines()]
    edges = [e for e in edges if e.get("record") == "edge"]
    assert [(e["edge"], e["kind"], e["outcome"]) for e in edges] == [
        ("stop", kind, "ok"),
        ("start", kind, "ok"),
    ]
    # the probe fell inside the fault's window (a slow machine must not make it miss)
    assert edges[0]["actual_at"] <= start and end <= edges[1]["actual_at"], (start, end, edges)
    return edges, during


def _state() -> tuple:
    """What every heal must restore: the ruleset, the SMSC's mode, Redis taking writes."""
    return _ruleset(), _mode(), _redis_writes().split(" ", 2)[2]


@pytest.mark.parametrize(
    ("kind", "seen"),
    [
        ("blackhole", "timeout"),
        ("reset", "refused"),
        ("half_open", "timeout"),
        ("pause", "connected, no answer"),
        ("kill", "refused"),
    ],
)
def test_each_fault_kind_is_seen_from_the_naz_host_and_leaves_nothing_behind(
    finished_run, kind, seen
):
    before = _state()
    _edges, during = _one_window(finished_run["cell"], kind, _probe_at)
    assert during == seen, during
    deadline = time.monotonic() + 30  # a killed SMSC takes a moment to listen again
    while _probe() != "answered" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _probe() == "answered"
    assert _state() == before  # no rule left behind, normal mode, writes go through
    assert on("ams1", "systemctl", "is-active", "nazbench-smsc").stdout.strip() == "active"
    pid = on("ams1", "systemctl", "show", "-p", "MainPID", "--value", "nazbench-smsc").stdout
    assert "T" not in on("ams1", "ps", "-o", "stat=", "-p", pid.strip()).stdout  # not stopped


@pytest.mark.parametrize(
    ("kind", "params", "seen"),
    [
        ("throttle", {"throttle": {"fraction": 1}}, "throttled"),
        ("slow", {"slow": {"delay_s": 3}}, "accepted slowly"),
        ("silent", {}, "no answer"),
        ("drop_resp", {"drop_resp": {"fraction": 1}}, "closed after submit"),
        ("unbind", {}, "unbound"),
    ],
)
def test_each_smsc_mode_is_seen_by_an_esme_on_the_naz_host(finished_run, kind, params, seen):
    before = _state()
    assert before[1] == {"name": "normal"}
    edges, during = _one_window(
        finished_run["cell"], kind, _probe_smpp, "-e", json.dumps({"params": params}),
        "-e", "window_s=14",  # the probe takes 7 s at most
    )  # fmt: skip
    assert during == seen, during
    mode = parse_mode({"name": kind, **params.get(kind, {})}).as_dict()
    assert edges[0]["params"]["mode"] == edges[0]["params"]["mode_after"] == mode
    assert edges[1]["params"]["mode_after"] == {"name": "normal"}
    assert _state() == before
    assert _probe_smpp()[2] == "accepted"  # normal again, from the naz host


def test_redis_stall_blocks_writes_not_pings_and_leaves_nothing_behind(finished_run):
    before = _state()
    assert before[2] == "writes"
    edges, during = _one_window(
        finished_run["cell"], "stall", _probe_redis, "-e", "unit=redis-server.service",
        "-e", "port=6379", "-e", "window_s=14",
    )  # fmt: skip
    assert during == "ping only", during
    assert edges[0]["params"]["pause_ms"] == 14_000 + 30_000  # the window and the margin
    assert _state() == before


def test_loss_drops_about_its_fraction_of_connects(finished_run):
    before = _state()
    _edges, lost = _one_window(
        finished_run["cell"],
        "loss",
        _probe_loss,
        "-e",
        json.dumps({"params": {"loss": {"fraction": 0.3}}}),
        "-e",
        "window_s=14",  # the probe takes about 5 s
    )
    # a connect fails when its SYN or the SYN-ACK is dropped: 1 - 0.7^2 = 0.51; 200 tries
    # give a standard error of 0.035, so +-0.15 is more than four of them
    assert 0.36 <= float(lost) <= 0.66, lost
    assert _state() == before
    assert float(_probe_loss()[2]) <= 0.05  # (almost) every connect goes through again


def test_latency_adds_its_delay_to_the_labs_round_trip_and_leaves_nothing_behind(finished_run):
    before = _state()
    base = float(_probe_connect_ms()[2])
    edges, during = _one_window(
        finished_run["cell"], "latency", _probe_connect_ms,
        "-e", json.dumps({"params": {"latency": {"delay_ms": 600}}}), "-e", "window_s=16",
    )  # fmt: skip
    assert edges[0]["params"]["method"] == "nfqueue"  # the lab's delay daemon
    assert edges[0]["params"]["delay_ms"] == 600
    # the lab's 154 ms WAN still applies under it: the two delays add up
    assert 140 <= base <= 260, base
    assert base + 550 <= float(during) <= base + 800, (base, during)
    assert _state() == before  # no chain, no mangle table of ours, no queue rule
    assert on("ams1", "systemctl", "list-units", "--all", "--no-legend",
              "nazbench-chaos-latency-*").stdout.strip() == ""  # fmt: skip
    assert float(_probe_connect_ms()[2]) <= base + 100


STATE_FILE = "/var/lib/nazbench/chaos_loop.state.json"


@pytest.mark.parametrize(
    ("kind", "extra", "faulted"),
    [
        ("blackhole", [], lambda st: "nazbench_chaos_nazbench_smsc" in st[0]),
        ("silent", [], lambda st: st[1] == {"name": "silent"}),
        ("latency", [], lambda st: "NBLAT_nazbench_smsc" in st[0]),
        ("stall", ["-e", "unit=redis-server.service", "-e", "port=6379"],
         lambda st: st[2] == "ping only"),
    ],
)  # fmt: skip
def test_a_loop_killed_mid_fault_is_healed_by_heal_only(finished_run, kind, extra, faulted):
    cell = finished_run["cell"]
    before = _state()
    timeline = f"/var/lib/nazbench/runs/e2e-kinds/{kind}.jsonl"
    on("ams1", "rm", "-f", timeline)
    with (cell["artifacts"] / f"kill9-{kind}.log").open("w") as out:
        proc = playbook(cell, "../tests/e2e/fault_kind.yml", "-e", f"kind={kind}",
                        "-e", f"peer={NAZ_IP}", "-e", "window_s=60", *extra,
                        background=out)  # fmt: skip
        deadline = time.monotonic() + 60
        while (
            '"edge": "stop"' not in on("ams1", "cat", timeline, check=False).stdout
            or on("ams1", "test", "-s", STATE_FILE, check=False).returncode != 0
        ):
            assert time.monotonic() < deadline, "the fault never began"
            time.sleep(0.2)
        # the loop's own PID, from its state file (a pipelined module's process is a
        # bare python3: no AnsiballZ file name to match)
        pid = json.loads(on("ams1", "cat", STATE_FILE).stdout)["pid"]
        on("ams1", "kill", "-KILL", str(pid))
        assert proc.wait(timeout=120) != 0  # the module died: no heal of its own
    during = _state()
    assert faulted(during), during  # the fault outlived the loop
    state = json.loads(on("ams1", "cat", STATE_FILE).stdout)
    unit = "redis-server.service" if kind == "stall" else "nazbench-smsc.service"
    assert state["kinds"] == {unit: kind}
    playbook(cell, "../tests/e2e/heal_only.yml")
    assert _state() == before  # ruleset, mode and Redis' writes as before the fault
    assert on("ams1", "test", "-e", STATE_FILE, check=False).returncode != 0
