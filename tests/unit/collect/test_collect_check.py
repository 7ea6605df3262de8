"""logs-check.json, versions.json and db-counts (the run's rows in logs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nazbench.collect import check, dbcounts
from nazbench.collect.cli import main

SRC = Path(check.__file__).resolve().parents[2]


def files(*records: int) -> list[str]:
    """count-records answers (as the JSON text collect.yml passes), one per naz host."""
    return [json.dumps({"records": n, "non_json_lines": 1, "after_cutoff": 2}) for n in records]


def db(rows: int, dup: int = 0, all_rows: int | None = None) -> dict:
    return {
        "rows": rows,
        "error_rows": 1,
        "duplicate_rows": dup,
        "all_rows": rows if all_rows is None else all_rows,
        "caught_up": True,
    }


def test_equal_counts_pass() -> None:
    got = check.logs_check("r", 1800, files(7, 3), db(10, all_rows=14))
    assert got["equal"] is True and got["reasons"] == []
    assert got["file_records"] == 10 and got["file_non_json_lines"] == 2
    assert got["file_records_after_cutoff"] == 4 and got["db_rows_after_cutoff"] == 4


def test_zero_equals_zero_is_not_a_pass() -> None:
    got = check.logs_check("r", 1800, files(0), db(0))
    assert got["equal"] is False
    assert got["reasons"] == ["no record of the run in naz's files up to the cut-off"]


def test_duplicates_fail_even_when_the_counts_agree() -> None:
    got = check.logs_check("r", 1800, files(10), db(10, dup=1))
    assert got["equal"] is False and "1 duplicate rows" in got["reasons"][0]


@pytest.mark.parametrize("rows", [9, 11])
def test_a_gap_either_way_fails(rows: int) -> None:
    got = check.logs_check("r", 1800, files(10), db(rows))
    assert got["equal"] is False
    assert got["reasons"] == [f"{rows} rows in logs vs 10 records in naz's files"]


def test_logs_check_cli_writes_the_file(tmp_path: Path, capsys) -> None:
    out = tmp_path / "logs-check.json"
    argv = [
        "logs-check",
        "--run-id",
        "r",
        "--cutoff",
        "1800000000",
        "--out",
        str(out),
        "--files-json",
        json.dumps(files(5)),
        "--db-counts",
        json.dumps(db(5)),
    ]
    assert main(argv) == 0
    written = json.loads(out.read_text())
    assert written == json.loads(capsys.readouterr().out)
    assert written["equal"] is True and written["cutoff"] == 1_800_000_000
    bad = [*argv[:-1], json.dumps({"rows": 5})]
    assert main(bad) == 2
    assert "cannot check the counts" in capsys.readouterr().err


def test_versions_json(tmp_path: Path) -> None:
    out = tmp_path / "versions.json"
    assert (
        main(
            [
                "versions",
                "--naz-host",
                '{"naz": "0.8.1"}',
                "--observability-host",
                '{"postgresql": "15.8"}',
                "--ansible-core",
                "2.19.1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text()) == {
        "naz_host": {"naz": "0.8.1"},
        "observability_host": {"postgresql": "15.8"},
        "ansible_core": "2.19.1",
    }


def test_host_versions_reads_packages_and_programs(tmp_path: Path) -> None:
    fake = tmp_path / "psql"
    fake.write_text("#!/bin/sh\necho 'psql (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)'\n")
    fake.chmod(0o755)
    got = check.host_versions(
        ["pytest", "no-such-package-xyz"],
        {"postgresql": str(fake), "prometheus": str(tmp_path / "absent")},
    )
    assert got["postgresql"] == "15.8" and got["prometheus"] is None
    assert got["pytest"] == pytest.__version__ and got["no-such-package-xyz"] is None
    assert got["python"].count(".") == 2


def test_prometheus_version_line() -> None:
    line = "prometheus, version 2.53.0 (branch: HEAD, revision: 1cf)"
    assert check._VERSION_RE.search(line).group(1) == "2.53.0"


class FakeDb:
    def __init__(self, rows: list[int]) -> None:
        self.rows, self.now, self.calls = rows, 0.0, 0

    def count(self, argv):
        self.calls += 1
        n = self.rows[min(self.calls - 1, len(self.rows) - 1)]
        return {"rows": n, "error_rows": 0, "duplicate_rows": 0, "all_rows": n}

    def sleep(self, s: float) -> None:
        self.now += s


def test_db_counts_waits_for_the_shipper() -> None:
    fake = FakeDb([3, 8, 10, 12])
    got = dbcounts.count_rows(
        [], 10, 60, 3, count=fake.count, sleep=fake.sleep, clock=lambda: fake.now
    )
    assert fake.calls == 3 and got["rows"] == 10 and got["caught_up"] is True
    assert got["waited_s"] == 6.0


def test_db_counts_gives_up_with_the_last_count() -> None:
    fake = FakeDb([3])
    got = dbcounts.count_rows(
        [], 10, 10, 3, count=fake.count, sleep=fake.sleep, clock=lambda: fake.now
    )
    assert got["caught_up"] is False and got["rows"] == 3 and got["waited_s"] == 10.0
    assert fake.calls == 5  # at 0, 3, 6, 9, 10 s


def test_db_counts_against_postgresql(postgres_db) -> None:
    """The SQL for real, with the session in Los Angeles: the cut-off is absolute."""
    rows = [
        # timestamp, run, error, source offset
        ("2027-01-15 10:00:00+02", "r1", None, 1),  # == cut-off
        ("2027-01-15 07:59:59+00", "r1", "boom", 2),
        ("2027-01-15 00:00:01-08", "r1", "late", 3),  # after
        ("2027-01-15 07:00:00+00", "r1", None, 1),  # offset 1 again: a duplicate
        ("2027-01-15 07:00:00+00", "r2", None, 9),  # another run
    ]
    with postgres_db.connect() as conn:
        for ts, run, err, off in rows:
            conn.execute(
                "INSERT INTO logs (timestamp, run_id, error, source_host, source_file,"
                " source_offset) VALUES (%s, %s, %s, 'h', 'f', %s)",
                (ts, run, err, off),
            )
    cluster = postgres_db.cluster
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "nazbench.collect",
            "db-counts",
            "--run-id",
            "r1",
            "--cutoff",
            "1800000000",
            "--expect",
            "3",
            "--wait-s",
            "0",
            "--host",
            "127.0.0.1",
            "--port",
            str(cluster.port),
            "--database",
            postgres_db.name,
        ],
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "PYTHONPATH": str(SRC),
            "PGUSER": "postgres",
            "PGPASSWORD": cluster.password,
            "PGTZ": "America/Los_Angeles",
            "TZ": "Asia/Tokyo",
        },
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert {k: got[k] for k in dbcounts.KEYS} == {
        "rows": 3,
        "error_rows": 1,
        "duplicate_rows": 1,
        "all_rows": 4,
    }
    assert got["caught_up"] is True


def test_db_counts_reports_psql_failing(tmp_path: Path, capsys, unused_port) -> None:
    argv = [
        "db-counts",
        "--run-id",
        "r1",
        "--cutoff",
        "1",
        "--expect",
        "1",
        "--host",
        "127.0.0.1",
        "--port",
        str(unused_port),
        "--wait-s",
        "0",
    ]
    assert main(argv) == 2
    assert "psql exited" in capsys.readouterr().err
