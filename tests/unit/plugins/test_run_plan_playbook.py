"""playbooks/run_plan.yml on the controller alone: what a run records before it touches a host.

run_plan.yml plays only on localhost, so it runs here without a lab: the files it writes
into the run's artifacts directory are the ones the report reads later.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def run_plan(artifacts: Path, inventory: Path | None, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    argv = [str(Path(sys.executable).with_name("ansible-playbook"))]
    if inventory is not None:
        argv += ["-i", str(inventory)]
    argv += [str(ROOT / "playbooks/run_plan.yml"), "-e", f"nazbench_artifacts_dir={artifacts}"]
    return subprocess.run(
        [*argv, *extra], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def test_the_shipped_lab_topology_is_recorded_with_the_run(tmp_path):
    proc = run_plan(tmp_path, None, "-e", "run_id=topo-1")
    assert proc.returncode == 0, proc.stdout[-3000:]
    topo = json.loads((tmp_path / "topo-1" / "topology.json").read_text())
    assert topo == {
        "provider": "lab",
        "groups": {
            "naz_clients": ["sfo1"],
            "observability": ["sfo1"],
            "redis_servers": ["ams1"],
            "smsc_servers": ["ams1"],
        },
        "regions": {"ams1": "ams3", "sfo1": "sfo3"},
        "rtt_measured": None,
    }
    params = json.loads((tmp_path / "topo-1" / "params.json").read_text())
    assert params["run_id"] == "topo-1"


def test_topology_follows_the_inventory_and_tolerates_a_host_without_region(tmp_path):
    inv = tmp_path / "inv.yml"
    inv.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "children": {
                        "naz_clients": {"hosts": {"c1": {"nazbench_region": "lon1"}}},
                        "observability": {"hosts": {"c1": None}},
                        "smsc_servers": {"hosts": {"s1": {"nazbench_region": "fra1"}}},
                        "redis_servers": {"hosts": {"r1": None}},
                    }
                }
            }
        )
    )
    # the last measure_rtt.yml between the naz host and the SMSC's goes with the run
    rtt = {"from": "c1", "to": "s1", "median_ms": 151.2, "p90_ms": 153.0, "samples": 60}
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "rtt-c1-s1.json").write_text(json.dumps(rtt))
    proc = run_plan(tmp_path / "art", inv, "-e", "run_id=topo-2", "-e", "provider=digitalocean")
    assert proc.returncode == 0, proc.stdout[-3000:]
    topo = json.loads((tmp_path / "art" / "topo-2" / "topology.json").read_text())
    assert topo["provider"] == "digitalocean"
    assert topo["groups"]["smsc_servers"] == ["s1"]
    assert topo["groups"]["redis_servers"] == ["r1"]
    assert topo["regions"] == {"c1": "lon1", "s1": "fra1", "r1": ""}
    assert topo["rtt_measured"] == rtt


def test_every_profile_plans(tmp_path):
    for profile in sorted(p.stem for p in (ROOT / "playbooks/profiles").glob("*.yml")):
        proc = run_plan(tmp_path, None, "-e", f"run_id=p-{profile}", "-e", f"profile={profile}")
        assert proc.returncode == 0, (profile, proc.stdout[-2000:])
        params = json.loads((tmp_path / f"p-{profile}" / "params.json").read_text())
        assert params["profile"] == profile and params["chaos_kinds"]
