"""The DigitalOcean provider end to end against the local fake API (nazbench.fakedo).

provision.yml / teardown.yml / the inventory plugin run as subprocesses, exactly as a
user runs them, with the API base URL pointed at a fake on 127.0.0.1. Droplets get
127.0.0.1 as their public address and "waits for SSH" looks for a banner on a local
listener: this proves the playbooks wait on the address the API reports, not that a
real droplet boots.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from nazbench.fakedo import FakeDigitalOcean, serve

ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = ROOT / ".venv" / "bin"
TOKEN = "dop_v1_fake0123456789abcdef"  # what the fake accepts; must never be printed
SSH_CIDR = "203.0.113.7/32"
FOREIGN_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq0nfwKJ6CAbZtEcHiHOI1O5HtSEdcGSvhW1AWIv9bU laptop"
)

pytestmark = pytest.mark.skipif(
    not (VENV_BIN / "ansible-playbook").exists(), reason="needs the project's .venv"
)


class SshBanner:
    """A loopback listener that greets like sshd, standing in for the droplets' port 22."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")


class Env:
    def __init__(self, fake: FakeDigitalOcean, base: str, tmp: Path, ssh_port: int) -> None:
        self.fake, self.base, self.tmp = fake, base, tmp
        key = tmp / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        self.extra = {
            "provider": "digitalocean",
            "do_api_baseurl": f"{base}/v2",
            "do_ssh_allowed_cidrs": [SSH_CIDR],
            "do_ssh_public_key_file": str(key) + ".pub",
            "do_ssh_port": ssh_port,
            "do_ssh_wait_timeout": 10,
            "do_poll_interval": 1,
        }
        # The plugin takes baseurl only from its file: a copy of the real inventory
        # directory with that one line changed.
        self.inventory = tmp / "inventory"
        shutil.copytree(ROOT / "inventories" / "digitalocean", self.inventory)
        config = self.inventory / "digitalocean.yml"
        text = config.read_text()
        assert "baseurl: https://api.digitalocean.com/v2\n" in text
        config.write_text(text.replace("https://api.digitalocean.com/v2", f"{base}/v2"))

    def run(
        self, *args: str, token: str | None = TOKEN, env_extra: dict | None = None, **extra
    ) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DO_", "NAZBENCH_DO"))}
        env.update(env_extra or {})
        env.update(
            PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
            ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
        )
        if token is not None:
            env["DO_API_TOKEN"] = token
        if args[0] == "ansible-inventory":
            argv = list(args)
        else:
            argv = ["ansible-playbook", *args, "-e", json.dumps({**self.extra, **extra})]
        return subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
        )


def recap(out: str) -> dict[str, int]:
    line = next(line for line in out.splitlines() if line.startswith("localhost "))
    return {k: int(v) for k, v in (p.split("=") for p in line.split(":", 1)[1].split())}


@pytest.fixture(scope="module")
def do_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("do")
    fake = FakeDigitalOcean(tokens=[TOKEN], state_file=tmp / "state.json")
    server = serve(fake)
    banner = SshBanner()
    host, port = server.server_address[:2]
    try:
        yield Env(fake, f"http://{host}:{port}", tmp, banner.port)
    finally:
        server.shutdown()
        banner.sock.close()


def assert_no_writes(fake: FakeDigitalOcean) -> None:
    writes = [(r["method"], r["path"]) for r in fake.mutating_requests()]
    assert writes == [], writes


# -- bad requests: one clear error before anything is created --------------------------
def test_missing_token_fails_first(do_env: Env) -> None:
    do_env.fake.clear_log()
    res = do_env.run("playbooks/provision.yml", token=None)
    assert res.returncode != 0
    assert "DO_API_TOKEN is not set" in res.stdout
    assert recap(res.stdout)["failed"] == 1
    assert do_env.fake.requests == []


def test_rejected_token_fails_before_any_write(do_env: Env) -> None:
    do_env.fake.clear_log()
    res = do_env.run("playbooks/provision.yml", token="dop_v1_wrong")
    assert res.returncode != 0
    assert "DigitalOcean rejected the token in DO_API_TOKEN (HTTP 401)" in res.stdout
    assert recap(res.stdout)["failed"] == 1
    assert "dop_v1_wrong" not in res.stdout + res.stderr
    assert_no_writes(do_env.fake)


def test_bad_region_is_named(do_env: Env) -> None:
    do_env.fake.clear_log()
    res = do_env.run("playbooks/provision.yml", "-e", "nazbench_region=moon1")
    assert res.returncode != 0
    assert "region 'moon1' (nazbench_region) is not an available DigitalOcean region" in res.stdout
    assert recap(res.stdout)["failed"] == 1
    assert_no_writes(do_env.fake)


def test_size_too_small_for_observability(do_env: Env) -> None:
    do_env.fake.clear_log()
    res = do_env.run("playbooks/provision.yml", do_size="s-1vcpu-512mb-10gb")
    assert res.returncode != 0
    assert "do_size 's-1vcpu-512mb-10gb' has 512 MB; host sfo1 is in observability" in res.stdout
    assert recap(res.stdout)["failed"] == 1
    assert_no_writes(do_env.fake)


def test_check_prints_plan_and_hourly_cost_without_writing(do_env: Env) -> None:
    do_env.fake.clear_log()
    res = do_env.run("playbooks/provision.yml", "--check")
    assert res.returncode == 0, res.stdout[-3000:]
    assert "droplet sfo1: create, sfo3, s-1vcpu-1gb, debian-12-x64, $0.00893/h" in res.stdout
    assert "droplet ams1: create, ams3, s-1vcpu-1gb" in res.stdout
    assert "firewall nazbench-bench-smsc-servers: create" in res.stdout
    assert "cost: $0.01786/hour for 2 x s-1vcpu-1gb" in res.stdout
    assert_no_writes(do_env.fake)


# -- provision -> idempotence -> inventory -> firewalls -> teardown ----------------------
@pytest.fixture(scope="module")
def provisioned(do_env: Env) -> dict:
    fake = do_env.fake
    foreign = {
        "droplet": fake.seed_droplet("office-vpn", tags=["web"]),
        "firewall": fake.seed_firewall("office", tags=["web"]),
        "key": fake.seed_key("laptop", FOREIGN_KEY),
    }
    # A second nazbench run (its own placement: one host, sfo9) already in the account,
    # which a one-run teardown must keep.
    placement = do_env.tmp / "other.yml"
    placement.write_text(
        "all:\n  children:\n"
        "    sfo: {hosts: {sfo9: {}}, vars: {nazbench_region: sfo3}}\n"
        "    naz_clients: {hosts: {sfo9: {}}}\n"
        "    observability: {hosts: {sfo9: {}}}\n"
    )
    other = do_env.run("playbooks/provision.yml", "-i", str(placement), "-e", "do_run=other")
    assert other.returncode == 0, other.stdout[-3000:]
    fake.clear_log()
    first = do_env.run("playbooks/provision.yml", "-v")
    assert first.returncode == 0, first.stdout[-3000:]
    writes_first = fake.mutating_requests()
    fake.clear_log()
    second = do_env.run("playbooks/provision.yml")
    assert second.returncode == 0, second.stdout[-3000:]
    return {
        "first": first,
        "writes_first": writes_first,
        "second": second,
        "writes_second": fake.mutating_requests(),
        "foreign": foreign,
    }


def test_first_provision_creates_droplets_firewalls_key(provisioned: dict) -> None:
    posts = [r["path"] for r in provisioned["writes_first"] if r["method"] == "POST"]
    assert posts.count("/v2/droplets") == 2
    assert posts.count("/v2/firewalls") == 5
    # The same public key was uploaded by the "other" run: it is reused, not renamed.
    assert posts.count("/v2/account/keys") == 0
    assert [r for r in provisioned["writes_first"] if r["method"] == "PUT"] == []


def test_second_provision_makes_no_write(provisioned: dict) -> None:
    assert [(r["method"], r["path"]) for r in provisioned["writes_second"]] == []
    assert recap(provisioned["second"].stdout)["changed"] == 0


def test_token_never_printed(provisioned: dict) -> None:
    out = provisioned["first"]
    assert TOKEN not in out.stdout + out.stderr


def test_droplets_are_tagged_and_placed(do_env: Env, provisioned: dict) -> None:
    bench = {
        d["name"]: d for d in do_env.fake.state["droplets"] if "nazbench-run:bench" in d["tags"]
    }
    assert sorted(bench) == ["ams1", "sfo1"]
    assert bench["sfo1"]["region"]["slug"] == "sfo3"
    assert bench["ams1"]["region"]["slug"] == "ams3"
    assert {d["size_slug"] for d in bench.values()} == {"s-1vcpu-1gb"}
    assert {d["image"]["slug"] for d in bench.values()} == {"debian-12-x64"}
    assert sorted(bench["sfo1"]["tags"]) == [
        "nazbench",
        "nazbench-group:bench:naz_clients",
        "nazbench-group:bench:observability",
        "nazbench-group:bench:sfo",
        "nazbench-run:bench",
    ]


def test_inventory_groups_equal_the_labs(do_env: Env, provisioned: dict) -> None:
    def groups(inventory: str, **env: str) -> dict[str, list[str]]:
        res = do_env.run("ansible-inventory", "-i", inventory, "--list", env_extra=env)
        assert res.returncode == 0, res.stderr
        data = json.loads(res.stdout)
        out = {}
        for name, group in data.items():
            if name in ("_meta", "all", "ungrouped", "lab", "digitalocean"):
                continue
            hosts = set(group.get("hosts", []))
            for child in group.get("children", []):
                hosts |= set(data.get(child, {}).get("hosts", []))
            out[name] = sorted(hosts)
        return out

    lab = groups(str(ROOT / "inventories" / "lab"))
    # The account holds two runs; NAZBENCH_DO_RUN narrows the inventory to one.
    assert "sfo9" in groups(str(do_env.inventory))["naz_clients"]
    assert groups(str(do_env.inventory), NAZBENCH_DO_RUN="bench") == lab
    res = do_env.run("ansible-inventory", "-i", str(do_env.inventory), "--list",
                     env_extra={"NAZBENCH_DO_RUN": "bench"})  # fmt: skip
    data = json.loads(res.stdout)
    assert sorted(data["digitalocean"]["hosts"]) == ["ams1", "sfo1"]
    hostvars = data["_meta"]["hostvars"]
    assert hostvars["sfo1"]["ansible_host"] in ("127.0.0.1", {"__ansible_unsafe": "127.0.0.1"})
    assert hostvars["sfo1"]["provider"] == "digitalocean"
    assert hostvars["ams1"]["nazbench_region"] == "ams3"


def test_firewall_rules_are_the_port_table(do_env: Env, provisioned: dict) -> None:
    firewalls = {
        f["name"]: f
        for f in do_env.fake.state["firewalls"]
        if f["name"].startswith("nazbench-bench-")
    }

    def inbound(name: str) -> set[tuple]:
        rules = set()
        for rule in firewalls[name]["inbound_rules"]:
            src = rule["sources"]
            rules.add(
                (rule["protocol"], rule["ports"], tuple(src.get("addresses", [])),
                 tuple(t.split(":")[-1] for t in src.get("tags", [])))
            )  # fmt: skip
        return rules

    g = "nazbench-group:bench:"
    assert {n: f["tags"] for n, f in firewalls.items()} == {
        "nazbench-bench-all": ["nazbench-run:bench"],
        "nazbench-bench-naz-clients": [g + "naz_clients"],
        "nazbench-bench-observability": [g + "observability"],
        "nazbench-bench-redis-servers": [g + "redis_servers"],
        "nazbench-bench-smsc-servers": [g + "smsc_servers"],
    }
    assert inbound("nazbench-bench-all") == {
        ("tcp", "22", (SSH_CIDR,), ()),
        ("tcp", "9100", (), ("observability",)),
    }
    assert inbound("nazbench-bench-smsc-servers") == {
        ("tcp", "2775", (), ("naz_clients",)),
        ("tcp", "9102", (), ("observability",)),
    }
    assert inbound("nazbench-bench-redis-servers") == {
        ("tcp", "6379", (), ("naz_clients",)),
        ("tcp", "9121", (), ("observability",)),
    }
    assert inbound("nazbench-bench-naz-clients") == {
        ("tcp", "9240", (), ("observability",)),
        ("tcp", "9241", (), ("observability",)),
    }
    assert inbound("nazbench-bench-observability") == {("tcp", "5432", (), ("naz_clients",))}
    all_out = firewalls["nazbench-bench-all"]["outbound_rules"]
    assert [(r["protocol"], r["ports"], r["destinations"]) for r in all_out] == [
        ("tcp", "1-65535", {"addresses": ["0.0.0.0/0", "::/0"]}),
        ("udp", "1-65535", {"addresses": ["0.0.0.0/0", "::/0"]}),
    ]
    for name, firewall in firewalls.items():
        if name != "nazbench-bench-all":
            assert firewall["outbound_rules"] == []


def test_teardown_of_one_run_removes_all_and_only_its_resources(
    do_env: Env, provisioned: dict
) -> None:
    fake = do_env.fake
    check = do_env.run("playbooks/teardown.yml", "--check", do_teardown_run="bench")
    assert check.returncode == 0, check.stdout[-3000:]
    assert "Would remove nazbench resources of run bench" in check.stdout
    fake.clear_log()
    res = do_env.run("playbooks/teardown.yml", do_teardown_run="bench")
    assert res.returncode == 0, res.stdout[-3000:]
    assert "Removed 2 droplet(s) sfo1, ams1, 5 firewall(s)" in res.stdout
    deleted = sorted(r["path"] for r in fake.mutating_requests())
    assert all(r["method"] == "DELETE" for r in fake.mutating_requests())
    assert len([p for p in deleted if p.startswith("/v2/droplets/")]) == 2
    assert len([p for p in deleted if p.startswith("/v2/firewalls/")]) == 5
    assert len([p for p in deleted if p.startswith("/v2/account/keys/")]) == 0  # other's key
    left = fake.state
    assert {d["name"] for d in left["droplets"]} == {"office-vpn", "sfo9"}
    other = {"nazbench-other-" + n for n in ("all", "naz-clients", "observability")}
    assert {f["name"] for f in left["firewalls"]} == {"office"} | other
    assert {k["name"] for k in left["keys"]} == {"laptop", "nazbench-other"}


def test_teardown_of_every_run_keeps_foreign_resources(do_env: Env, provisioned: dict) -> None:
    res = do_env.run("playbooks/teardown.yml")
    assert res.returncode == 0, res.stdout[-3000:]
    left = do_env.fake.state
    foreign = provisioned["foreign"]
    assert [d["id"] for d in left["droplets"]] == [foreign["droplet"]["id"]]
    assert [f["id"] for f in left["firewalls"]] == [foreign["firewall"]["id"]]
    assert [k["id"] for k in left["keys"]] == [foreign["key"]["id"]]
