"""playbooks/campaign.yml as a user runs it: the plan shown, a runner started, watched to
its end, the matrix shown, and the gate failing the play on a breach - with a stand-in
ansible-playbook on PATH for the runs themselves (each writes a small summary.json)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from test_campaign import FAKE_ANSIBLE

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def world(tmp_path):
    cid = f"t-{uuid.uuid4().hex[:8]}"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "ansible-playbook"
    fake.write_text(FAKE_ANSIBLE.format(python=sys.executable, seconds=0.2))
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "ANSIBLE_NOCOLOR": "1",
           "CAMPAIGN_ROOT": str(tmp_path), "CAMPAIGN_ARTIFACTS": str(ROOT / "artifacts"),
           "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}  # fmt: skip
    yield cid, tmp_path, env
    shutil.rmtree(ROOT / "artifacts" / f"campaign-{cid}", ignore_errors=True)
    for run in (ROOT / "artifacts").glob(f"{cid}-*"):
        shutil.rmtree(run)


def _campaign(tmp_path, cid, gate) -> Path:
    (tmp_path / "gate.yml").write_text(json.dumps(gate))
    path = tmp_path / "campaign.yml"
    path.write_text(json.dumps({
        "campaign": cid, "profile": "micro", "experiments": ["A", "B"], "seeds": [1, 2],
        "thresholds": str(tmp_path / "gate.yml"),
    }))  # fmt: skip
    return path


def _play(path: Path, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "playbooks/campaign.yml", "-e", f"campaign={path}",
         "-e", "campaign_watch_interval=0.5"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_a_campaign_runs_is_watched_and_passes_a_loose_gate(world) -> None:
    cid, tmp_path, env = world
    proc = _play(_campaign(tmp_path, cid, {"duplicated": {"max": 0}, "loss_rate": {"max": 0.5}}),
                 env)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert f"{cid}-B-0.8.1-s2: experiment B, naz 0.8.1, seed 2, pending" in proc.stdout
    assert f"campaign {cid}: done 4, running 0, left 0, failed 0" in proc.stdout
    assert "| A | 0.8.1 | 2 | 0.015 | [0.01, 0.02] |" in proc.stdout  # the matrix shown
    state = json.loads((ROOT / f"artifacts/campaign-{cid}/state.json").read_text())
    assert {e["status"] for e in state["runs"].values()} == {"done"}
    again = _play(tmp_path / "campaign.yml", env)  # everything done: nothing runs again
    assert again.returncode == 0, again.stdout[-4000:]
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert sum("run_chaos.yml" in c for c in calls) == 4


def test_a_strict_gate_fails_the_play_naming_the_breach(world) -> None:
    cid, tmp_path, env = world
    # the stand-in loses chaos_seed messages of 100: seeds 1 and 2 average 1.5 %
    proc = _play(_campaign(tmp_path, cid, {"loss_rate": {"max": 0.01}}), env)
    assert proc.returncode != 0
    assert "gate breached:" in proc.stdout and "loss_rate" in proc.stdout, proc.stdout[-3000:]
    assert "above the max 0.01" in proc.stdout


def test_no_campaign_file_is_refused_before_anything_runs(world) -> None:
    _cid, _tmp, env = world
    proc = subprocess.run([str(BIN / "ansible-playbook"), "playbooks/campaign.yml"], cwd=ROOT,
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode != 0
    assert "Name the campaign file: -e campaign=" in proc.stdout
