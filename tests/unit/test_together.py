"""scripts/together: commands side by side, and a failure named at the end of the output."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOGETHER = ROOT / "scripts" / "together"


def _run(tmp_path, *args):
    env = {"PATH": "/usr/bin:/bin", "TOGETHER_LOG_DIR": str(tmp_path / "logs")}
    return subprocess.run(
        [str(TOGETHER), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_a_failed_command_is_named_with_its_reason_after_everything_it_printed(tmp_path):
    failing = (
        "for i in $(seq 40); do echo noise $i; done;"
        " echo 'FAILED tests/unit/test_x.py::test_y - AssertionError: 1 != 2';"
        " for i in $(seq 40); do echo more $i; done; exit 1"
    )
    proc = _run(tmp_path, "ok", "echo fine", "bad", failing)
    assert proc.returncode == 1
    out = proc.stdout.splitlines()
    why = out.index("together: why bad failed (from %s/bad.log):" % (tmp_path / "logs"))
    table = out.index("together: name, exit status, minutes")
    assert why < table
    reasons = out[why + 1 : table]
    assert reasons == [
        "together: [bad] FAILED tests/unit/test_x.py::test_y - AssertionError: 1 != 2"
    ]
    assert not any("why ok" in line for line in out)
    assert "[ok] fine" in out
    assert (tmp_path / "logs" / "bad.log").read_text().count("noise") == 40


def test_without_a_recognised_line_the_last_lines_are_the_reason(tmp_path):
    proc = _run(tmp_path, "bad", "for i in $(seq 30); do echo line $i; done; exit 3")
    assert proc.returncode == 1
    out = proc.stdout.splitlines()
    start = out.index("together: why bad failed (from %s/bad.log):" % (tmp_path / "logs")) + 1
    assert out[start : start + 15] == [f"together: [bad] line {i}" for i in range(16, 31)]
    assert "together:   bad          3" in proc.stdout


def test_all_succeeding_exits_0_without_a_reason_section(tmp_path):
    proc = _run(tmp_path, "a", "true", "b", "echo b")
    assert proc.returncode == 0
    assert "why" not in proc.stdout


def test_a_bad_name_or_an_odd_argument_count_is_refused(tmp_path):
    assert _run(tmp_path, "a b", "true").returncode == 2
    assert _run(tmp_path, "a").returncode == 2
