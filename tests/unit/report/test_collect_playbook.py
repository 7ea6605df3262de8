"""playbooks/collect.yml on the controller alone: picking the run, and rebuilding a report.

With -e collect_from_hosts=false collect touches no host, so these run without a lab. The
plays on the hosts are covered by the lab smoke run (see the README); what the controller
makes of their answers is run here from an inventory that holds those answers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def collect(
    artifacts: Path, *extra: str, tz: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        **({"TZ": tz} if tz else {}),
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
        real_run.parent,
        "-e",
        f"run_id={real_run.name}",
        "-e",
        "collect_from_hosts=false",
        tz="Asia/Tokyo",
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


def summary_without_its_date(run: Path) -> dict:
    summary = json.loads((run / "summary.json").read_text())
    summary.pop("generated_at")
    return summary


def test_the_rebuilt_report_does_not_depend_on_the_controllers_time_zone(real_run: Path) -> None:
    seen = []
    for tz in ("UTC", "America/Los_Angeles"):
        args = ("-e", f"run_id={real_run.name}", "-e", "collect_from_hosts=false")
        result = collect(real_run.parent, *args, tz=tz)
        assert result.returncode == 0, result.stdout[-3000:]
        seen.append(summary_without_its_date(real_run))
    assert seen[0] == seen[1]
    assert seen[0]["messages"]["lost"] == 3


def make_unfinished(artifacts: Path, run_id: str, newer_than: Path) -> Path:
    d = artifacts / run_id
    d.mkdir()
    (d / "params.json").write_text(json.dumps({"run_id": run_id, "profile": "smoke"}))
    (d / "start.json").write_text(json.dumps({"started_at": 1795858000.0}))
    later = (newer_than / "run.json").stat().st_mtime + 60
    os.utime(d / "start.json", (later, later))
    return d


def test_an_unfinished_run_is_known_and_collect_goes_to_finish_it(
    real_run: Path, tmp_path: Path
) -> None:
    artifacts = real_run.parent
    make_unfinished(artifacts, "died-1", newer_than=real_run)
    result = collect(artifacts, "-e", "run_id=ghost")
    assert result.returncode != 0
    assert f"Known runs, newest first: died-1, {real_run.name}." in result.stdout
    assert "Unfinished (started, no run.json): died-1." in result.stdout
    # The newest run is the default, finished or not: collect finishes it from what its
    # hosts keep (run_finish.yml). Here the naz host is this machine, which has no such
    # run: collect stops there, naming it, and collects nothing.
    inventory = tmp_path / "inventory.json"
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(
        json.dumps({"all": {"children": {"naz_clients": {"hosts": {"naz1": local}}}}})
    )
    result = collect(artifacts, "-i", str(inventory))
    assert result.returncode != 0
    assert "PLAY [Attach to the run on its hosts]" in result.stdout
    assert "Read the run's state from the naz host" in result.stdout
    assert "/var/lib/nazbench/runs/died-1" in result.stdout
    assert not (artifacts / "died-1" / "logs-check.json").exists()
    result = collect(artifacts, "-e", f"compare={real_run.name},died-1")
    assert result.returncode != 0
    assert "Run died-1 is unfinished" in result.stdout


HOSTS = {
    "naz_clients": {
        "naz1": {
            "__collect_cutoff": {"stdout": "1795858900"},
            "__collect_file_count": {"stdout": json.dumps({"records": 7, "non_json_lines": 2})},
            "__collect_versions_naz": {"stdout": json.dumps({"python": "3.11.2", "naz": "0.8.1"})},
        },
        "naz2": {
            "__collect_file_count": {"stdout": json.dumps({"records": 3, "non_json_lines": 0})}
        },
    },
    "observability": {
        "obs1": {
            "__collect_versions_obs": {"stdout": json.dumps({"postgresql": "15.8"})},
        },
    },
}


def test_the_hosts_answers_become_logs_check_and_versions(real_run: Path, tmp_path: Path) -> None:
    """The last play as after a real collect: registered answers as inventory variables.

    One row short in the database: logs-check.json says so and collect warns."""
    db_rows = 9
    metrics = real_run / "metrics"
    metrics.mkdir()
    (metrics / "metrics-index.json").write_text("{}")
    with tarfile.open(real_run / "metrics.tar.gz", "w:gz") as tar:
        tar.add(metrics, arcname="metrics")
    shutil.rmtree(metrics)
    counts = {"rows": db_rows, "error_rows": 1, "duplicate_rows": 0, "all_rows": 12}
    HOSTS["observability"]["obs1"]["__collect_counts"] = {"stdout": json.dumps(counts)}
    groups = {
        group: {"hosts": {h: {"ansible_connection": "local", **v} for h, v in hosts.items()}}
        for group, hosts in HOSTS.items()
    }
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"children": groups}}))
    picked = {
        "mode": "run",
        "run_id": real_run.name,
        "dir": str(real_run),
        "from_hosts": True,
        "unfinished": False,
        "report_args": ["build", str(real_run)],
    }
    result = collect(
        real_run.parent,
        "-i",
        str(inventory),
        "-e",
        json.dumps({"nazbench_collect": picked}),
        "--start-at-task",
        "Write logs-check.json",
        tz="America/Los_Angeles",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    check = json.loads((real_run / "logs-check.json").read_text())
    assert check["file_records"] == 10 and check["db_rows"] == db_rows
    assert check["cutoff"] == 1795858900 and check["db_rows_after_cutoff"] == 12 - db_rows
    assert check["equal"] is False
    assert check["reasons"] == ["9 rows in logs vs 10 records in naz's files"]
    assert "logs-check: " in result.stdout  # the warning
    versions = json.loads((real_run / "versions.json").read_text())
    assert versions["naz_host"]["naz"] == "0.8.1"
    assert versions["observability_host"] == {"postgresql": "15.8"}
    assert (real_run / "metrics" / "metrics-index.json").is_file()
    assert (real_run / "summary.json").is_file()
