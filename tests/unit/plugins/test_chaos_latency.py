"""The latency kind: how a host adds the delay (the lab's daemon or tc netem, or a refusal
saying why), the commands of its edges, and its shell steps run against stand-in
iptables, nft, systemctl and tc that keep state, so what a heal leaves is seen.

The real thing (the daemon, iptables' NFQUEUE, the lab's WAN) is in
tests/e2e/test_chaos_kinds_e2e.py, measured from the naz host."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.chaos_runner import (
    LATENCY_QUEUE_BASE,
    NETEM_HANDLE,
    ChaosError,
    Latency,
    fault_commands,
    latency_chain,
    latency_method,
    latency_unit,
)
from test_chaos_runner import SYSTEMCTL, make_config

DAEMON = "/usr/local/lib/nazbench/wan_delay.py"
PEERS = ["10.89.154.11"]


def _config(paths, smsc="latency", redis="stop", peers=PEERS):
    return make_config(
        paths,
        services=[
            {"unit": "smsc.service", "run_min": "10s", "run_max": "20s", "stop_min": "2s",
             "stop_max": "5s", "kinds": smsc, "port": 2775},
            {"unit": "redis.service", "run_min": "8s", "run_max": "12s", "stop_min": "1s",
             "stop_max": "3s", "kinds": redis, "port": 6379},
        ],
        peers=peers,
    )  # fmt: skip


def _which(*present):
    return lambda name: f"/usr/bin/{name}" if name in present else None


class Commands:
    """run_command stand-in: answers by the argv's first words, records every call."""

    def __init__(self, answers=None):
        self.answers = answers or {}
        self.calls: list[list[str]] = []

    def __call__(self, argv):
        self.calls.append(list(argv))
        for prefix, answer in self.answers.items():
            if " ".join(argv).startswith(prefix):
                return answer
        return 0, "", ""


def test_the_lab_daemon_gives_each_latency_service_its_own_queue(paths) -> None:
    config = _config(paths, smsc="latency", redis="latency,stop")
    run = Commands()
    method = latency_method(
        config, run, daemon=DAEMON, which=_which("python3", "systemd-run", "iptables"),
        exists=lambda p: p == DAEMON,
    )  # fmt: skip
    assert {u: (m.method, m.queue, m.daemon) for u, m in method.items()} == {
        "smsc.service": ("nfqueue", LATENCY_QUEUE_BASE, DAEMON),
        "redis.service": ("nfqueue", LATENCY_QUEUE_BASE + 1, DAEMON),
    }
    assert run.calls == []  # nothing probed, nothing touched
    assert latency_method(_config(paths, smsc="stop"), run, daemon=None) == {}


@pytest.mark.parametrize(
    ("present", "exists", "peers", "why"),
    [
        (("python3", "systemd-run", "iptables"), False, PEERS, f"latency_daemon {DAEMON}"),
        (("python3", "iptables"), True, PEERS, "systemd-run"),
        (("python3", "systemd-run"), True, PEERS, "iptables"),
        (("python3", "systemd-run", "iptables"), True, ["fd00::11"], "IPv4 peers only"),
    ],
    ids=["daemon-missing", "no-systemd-run", "no-iptables", "ipv6-peer"],
)
def test_the_lab_daemon_refused_naming_what_is_missing(paths, present, exists, peers, why):
    with pytest.raises(ChaosError, match=why):
        latency_method(
            _config(paths, peers=peers), Commands(), daemon=DAEMON, which=_which(*present),
            exists=lambda _p: exists,
        )  # fmt: skip


def test_netem_is_probed_in_a_scratch_namespace_then_routed_per_peer(paths) -> None:
    run = Commands(
        {
            "/usr/bin/ip -o route get 10.89.154.11": (
                0,
                "10.89.154.11 dev eth0 src 10.89.154.21 uid 0 \\    cache ",
                "",
            )
        }
    )
    method = latency_method(_config(paths), run, which=_which("ip", "tc"), pid=77)
    assert method == {"smsc.service": Latency("netem", tc="/usr/bin/tc",
                                              devices=(("10.89.154.11", "eth0"),))}  # fmt: skip
    ns = "nazbench-netem-probe-77"
    assert run.calls[:3] == [
        ["/usr/bin/ip", "netns", "add", ns],
        ["/usr/bin/tc", "-n", ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
        ["/usr/bin/ip", "netns", "delete", ns],
    ]


@pytest.mark.parametrize(
    ("present", "answers", "smsc_redis", "why"),
    [
        (("ip",), {}, ("latency", "stop"), "no tc and ip"),
        (("ip", "tc"), {"/usr/bin/tc -n": (2, "", "Error: Specified qdisc kind is unknown.")},
         ("latency", "stop"), r"cannot add netem \(tc netem failed: Error: Specified qdisc"),
        (("ip", "tc"), {"/usr/bin/ip netns add": (1, "", "mount --make-shared failed")},
         ("latency", "stop"), "ip netns add failed: mount"),
        (("ip", "tc"), {}, ("latency", "latency"), "one service per host"),
        (("ip", "tc"), {"/usr/bin/ip -o route": (2, "", "RTNETLINK answers: unreachable")},
         ("latency", "stop"), "no route from this host to peer 10.89.154.11"),
    ],
    ids=["no-tc", "kernel-without-netem", "no-netns", "two-services", "no-route"],
)  # fmt: skip
def test_netem_refused_naming_why(paths, present, answers, smsc_redis, why) -> None:
    run = Commands(answers)
    with pytest.raises(ChaosError, match=why):
        latency_method(_config(paths, *smsc_redis), run, which=_which(*present), pid=1)
    # a probe namespace that was made is always removed again
    made = "tc" in present and "/usr/bin/ip netns add" not in answers
    deleted = [c for c in run.calls if c[1:3] == ["netns", "delete"]]
    assert len(deleted) == int(made)


def test_the_lab_edges_start_the_daemon_wait_for_its_queue_then_queue(paths) -> None:
    lab = Latency("nfqueue", daemon=DAEMON, queue=4200, systemd_run="/bin/systemd-run")
    stop = fault_commands(SYSTEMCTL, "latency", "stop", "smsc.service", nft="/usr/sbin/nft",
                          port=2775, peers=PEERS, mode={"delay_ms": 250.0},
                          latency=lab)  # fmt: skip
    argvs = [argv for argv, required in stop if required]
    assert len(argvs) == len(stop) == 4  # every step must succeed
    heal, daemon, wait, rules = argvs
    assert heal[:2] == ["/bin/sh", "-c"] and heal[4:] == [
        latency_unit("smsc.service"),
        SYSTEMCTL,
        NETEM_HANDLE,
        latency_chain("smsc.service"),
        "/run/nazbench-chaos",
    ]  # a leftover of an earlier window is cleared first
    assert daemon[:2] == ["/bin/systemd-run", "--unit=nazbench-chaos-latency-smsc.service"]
    assert daemon[-6:] == ["/usr/bin/python3", DAEMON, "--queue", "4200", "--delay-ms", "250"]
    assert wait[-2:] == ["4200", "10"]
    assert rules[4:] == ["NBLAT_smsc", "4200", "2775", "/run/nazbench-chaos", *PEERS]
    start = fault_commands(
        SYSTEMCTL, "latency", "start", "smsc.service", nft="/usr/sbin/nft", port=2775, peers=PEERS
    )  # no Latency: a heal of a leftover
    assert [argv[:3] for argv, _ in start] == [
        ["/usr/sbin/nft", "add table inet nazbench_chaos_smsc; delete table inet "
         "nazbench_chaos_smsc"],
        ["/bin/sh", "-c", heal[2]],
        [SYSTEMCTL, "start", "smsc.service"],
    ]  # fmt: skip
    assert all(required for _, required in start)


def test_netem_edges_hold_what_the_service_sends_each_peer(paths) -> None:
    netem = Latency("netem", tc="tc", devices=(("10.0.0.2", "eth0"), ("fd00::2", "eth0"),
                                               ("10.1.0.2", "eth1")))  # fmt: skip
    stop = fault_commands(SYSTEMCTL, "latency", "stop", "smsc.service", port=2775,
                          peers=["10.0.0.2", "fd00::2", "10.1.0.2"], mode={"delay_ms": 1500},
                          latency=netem)  # fmt: skip
    lines = [" ".join(argv) for argv, _ in stop[1:]]
    priomap = "priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1"
    assert lines == [
        f"tc qdisc add dev eth0 root handle 4e42: prio bands 4 {priomap}",
        "tc qdisc add dev eth0 parent 4e42:4 netem delay 1500ms",
        f"tc qdisc add dev eth1 root handle 4e42: prio bands 4 {priomap}",
        "tc qdisc add dev eth1 parent 4e42:4 netem delay 1500ms",
        "tc filter add dev eth0 parent 4e42: protocol ip prio 1 u32 match ip dst 10.0.0.2/32 "
        "match ip sport 2775 0xffff flowid 4e42:4",
        "tc filter add dev eth0 parent 4e42: protocol ipv6 prio 1 u32 match ip6 dst "
        "fd00::2/128 match ip6 sport 2775 0xffff flowid 4e42:4",
        "tc filter add dev eth1 parent 4e42: protocol ip prio 1 u32 match ip dst 10.1.0.2/32 "
        "match ip sport 2775 0xffff flowid 4e42:4",
    ]


# --- the shell steps against stand-ins that keep state in files -------------------------

FAKES = {
    # iptables: the mangle table's chains, one file each; INPUT's jumps in INPUT
    "iptables": r"""
        t=$STATE/mangle; [ "$1" = -w ] && shift; [ "$1" = -t ] && shift 2
        [ -d "$t" ] || mkdir -p "$t"; touch "$t/INPUT"
        case $1 in
          -N) [ -e "$t/$2" ] && exit 1; : > "$t/$2" ;;
          -A) c=$2; shift 2; echo "$*" >> "$t/$c" ;;
          -I) c=$2; shift 3; echo "$*" >> "$t/$c" ;;
          -D) c=$2; shift 2; grep -qxF -- "$*" "$t/$c" || exit 1
              grep -vxF -- "$*" "$t/$c" > "$t/.x"; mv "$t/.x" "$t/$c" ;;
          -F) [ -e "$t/$2" ] || exit 1; : > "$t/$2" ;;
          -X) [ -e "$t/$2" ] && [ ! -s "$t/$2" ] || exit 1; rm "$t/$2" ;;
          -S) if [ -n "$2" ]; then [ -e "$t/$2" ] || exit 1; cat "$t/$2"
              else echo "-P INPUT ACCEPT"; for c in "$t"/*; do
                [ "${c##*/}" = INPUT ] || echo "-N ${c##*/}"; cat "$c"; done; fi ;;
        esac""",
    "nft": r"""
        case "$*" in
          "list table ip mangle") [ -d "$STATE/mangle" ] ;;
          "delete table ip mangle") rm -r "$STATE/mangle" ;;
          *) exit 0 ;;
        esac""",
    "systemctl": r"""
        case $1 in
          stop) rm -f "$STATE/unit-$2" ;;
          reset-failed) exit 0 ;;
          is-active) [ -e "$STATE/unit-$3" ] ;;
        esac""",
    "tc": r"""
        [ "$1 $2" = "qdisc show" ] && { cat "$STATE/qdisc-$4" 2>/dev/null; exit 0; }
        [ "$1 $2" = "qdisc del" ] && { rm "$STATE/qdisc-$4"; echo "del $4" >> "$STATE/tc.log"; }
        """,
}


@pytest.fixture
def host(tmp_path: Path, monkeypatch):
    bindir, state = tmp_path / "bin", tmp_path / "state"
    bindir.mkdir()
    state.mkdir()
    for name, body in FAKES.items():
        (bindir / name).write_text("#!/bin/sh\n" + textwrap.dedent(body) + "\n")
        (bindir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setenv("STATE", str(state))
    return state


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False, env=os.environ)


def _steps(tmp: Path, edge: str):
    lab = Latency("nfqueue", daemon=DAEMON, queue=4200)
    commands = fault_commands("systemctl", "latency", edge, "smsc.service", nft="nft",
                              port=2775, peers=["10.0.0.2", "10.0.0.3"],
                              mode={"delay_ms": 100}, latency=lab)  # fmt: skip
    return [argv for argv, _ in commands if argv[0] == "/bin/sh"]


def _with_marks(argv: list[str], marks: Path) -> list[str]:
    return [str(marks) if a == "/run/nazbench-chaos" else a for a in argv]


@pytest.mark.parametrize("mangle_before", [False, True], ids=["new-table", "table-kept"])
def test_queue_rules_then_heal_leave_mangle_as_found(host, tmp_path, mangle_before) -> None:
    marks = tmp_path / "marks"
    if mangle_before:
        (host / "mangle").mkdir()
        (host / "mangle/INPUT").write_text("-j SOMEONE_ELSES\n")
    before = sorted(p.name for p in host.rglob("*"))
    _pre_heal, _wait, rules = _steps(tmp_path, "stop")
    assert _run(_with_marks(rules, marks)).returncode == 0
    chain = latency_chain("smsc.service")
    assert (host / "mangle" / chain).read_text().splitlines() == [
        f"-s 10.0.0.{n} -p tcp --dport 2775 -j NFQUEUE --queue-num 4200 --queue-bypass"
        for n in (2, 3)
    ]
    assert f"-j {chain}" in (host / "mangle/INPUT").read_text()
    (host / f"unit-{latency_unit('smsc.service')}").touch()  # the daemon runs
    (heal,) = _steps(tmp_path, "start")
    done = _run(_with_marks(heal, marks))
    assert (done.returncode, done.stderr) == (0, "")
    assert sorted(p.name for p in host.rglob("*")) == before  # chain, jump, unit: gone
    if mangle_before:
        assert (host / "mangle/INPUT").read_text() == "-j SOMEONE_ELSES\n"
    again = _run(_with_marks(heal, marks))  # a second heal finds nothing and succeeds
    assert (again.returncode, again.stderr) == (0, "")


def test_heal_removes_only_our_netem_root_and_fails_on_a_unit_that_stays(host, tmp_path):
    (host / "qdisc-eth0").write_text("qdisc prio 4e42: root refcnt 2 bands 4\n")
    (host / "qdisc-eth1").write_text("qdisc fq_codel 0: root refcnt 2\n")
    (heal,) = _steps(tmp_path, "start")
    bindir = Path(os.environ["PATH"].split(":")[0])
    sysfs = tmp_path / "sys-class-net"
    for dev in ("eth0", "eth1", "lo"):
        (sysfs / dev).mkdir(parents=True)
    heal[2] = heal[2].replace("/sys/class/net", str(sysfs))
    assert _run(heal).returncode == 0
    assert (host / "tc.log").read_text() == "del eth0\n"
    assert (host / "qdisc-eth1").exists()
    # a daemon unit that does not stop: the heal fails, saying so
    (bindir / "systemctl").write_text('#!/bin/sh\n[ "$1" = is-active ] && exit 0; exit 0\n')
    failed = _run(heal)
    assert failed.returncode == 1
    assert f"{latency_unit('smsc.service')} is still active" in failed.stderr


def test_the_lab_passes_the_lab_wan_daemon_to_latency_windows() -> None:
    root = Path(__file__).resolve().parents[3]
    lab = yaml.safe_load((root / "inventories/lab/group_vars/lab.yml").read_text())
    lab_wan = yaml.safe_load((root / "roles/lab_wan/vars/main.yml").read_text())
    assert lab["chaos_latency_daemon"] == lab_wan["__lab_wan_daemon"] == DAEMON
    start = (root / "playbooks/run_start.yml").read_text()
    assert 'latency_daemon: "{{ chaos_latency_daemon | default(omit) }}"' in start
