"""playbooks/collect.yml on the controller alone: picking the run, and rebuilding a report.

With -e collect_from_hosts=false collect touches no host, so these run without a lab; the
parts that talk to the hosts are covered by the lab smoke run (see the README).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def collect(artifacts: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
    }
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            str(ROOT / "playbooks/collect.yml"),
            "-e",
            f"nazbench_artifacts_dir={artifacts}",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_unknown_run_fails_listing_the_known_runs(real_run: Path) -> None:
    artifacts = real_run.parent
    other = artifacts / "baseline-1"
    other.mkdir()
    (other / "run.json").write_text(
        json.dumps({"run_id": "baseline-1", "started_at": 0, "duration_s": 1})
    )
    # a stray run.json in artifacts/ itself is not a run
    shutil.copy(real_run / "run.json", artifacts / "run.json")
    result = collect(artifacts, "-e", "run_id=no-such-run")
    assert result.returncode != 0
    assert "Unknown run no-such-run" in result.stdout
    listed = result.stdout.split("Known runs, newest first: ", 1)[1].split(".", 1)[0]
    assert sorted(listed.split(", ")) == sorted([real_run.name, "baseline-1"])
    assert not (artifacts / "no-such-run").exists()


def test_empty_artifacts_fails_clearly(tmp_path: Path) -> None:
    result = collect(tmp_path)
    assert result.returncode != 0
    assert "No run in" in result.stdout


def test_rebuilds_the_report_without_hosts(real_run: Path) -> None:
    result = collect(
        real_run.parent, "-e", f"run_id={real_run.name}", "-e", "collect_from_hosts=false"
    )
    assert result.returncode == 0, result.stdout[-3000:]
    summary = json.loads((real_run / "summary.json").read_text())
    reconciled = json.loads((real_run / "reconcile.json").read_text())["counts"]
    assert summary["messages"]["lost"] == reconciled["lost"] == 3
    assert summary["messages"]["duplicated"] == reconciled["duplicated"]
    html = (real_run / "report.html").read_text()
    assert "<img" in html and "http://" not in html and "https://" not in html
    assert (real_run / "plots" / "throughput.png").stat().st_size > 0


def test_compare_two_runs(real_run: Path) -> None:
    twin = real_run.parent / "twin"
    shutil.copytree(real_run, twin)
    result = collect(real_run.parent, "-e", f"compare={real_run.name},twin")
    assert result.returncode == 0, result.stdout[-3000:]
    out = real_run.parent / f"compare-{real_run.name}-vs-twin"
    assert (out / "compare.html").is_file() and (out / "compare.json").is_file()


def test_compare_needs_two_known_runs(real_run: Path) -> None:
    result = collect(real_run.parent, "-e", f"compare={real_run.name},ghost")
    assert result.returncode != 0
    assert "Unknown run ghost" in result.stdout
