"""The log shipper against a real PostgreSQL, connecting as the restricted shipper role.

Fixtures (tests/unit/conftest.py): ``postgres_server`` (one cluster per session) and
``postgres_db`` (a fresh database with schema.sql). Most tests run the real CLI as a
subprocess, so SIGKILL/SIGTERM and the DSN file are exercised as systemd would.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nazbench.nazapp.logger import JsonLinesLogger
from nazbench.shipper.core import Config, Shipper
from nazbench.shipper.db import Writer
from nazbench.testing.nazlog import TRACEBACK, naz_lines

SRC = Path(__file__).resolve().parents[3] / "src"
HOST = "sfo1-test"
FAST = [
    "--poll-interval",
    "0.05",
    "--batch-seconds",
    "0.1",
    "--idle-finalize",
    "0.3",
    "--rotate-grace",
    "1",
    "--retry-max",
    "0.5",
    "--source-host",
    HOST,
]


# --------------------------------------------------------------------------- helpers


def dsn_file(tmp_path: Path, dsn: str) -> Path:
    path = tmp_path / "shipper.dsn"
    path.write_text(f"# test DSN\n{dsn}\n")
    path.chmod(0o600)
    return path


def shipper_argv(log: Path, dsn: Path, *extra: str, metrics_port: int = 0) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nazbench.shipper",
        "--path",
        str(log),
        "--dsn-file",
        str(dsn),
        "--metrics-port",
        str(metrics_port),
        *FAST,
        *extra,
    ]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC)}


def start_shipper(argv: list[str], stderr_path: Path) -> subprocess.Popen[bytes]:
    with stderr_path.open("ab") as stderr:
        return subprocess.Popen(argv, env=env(), stdout=subprocess.DEVNULL, stderr=stderr)


def run_once(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*argv, "--once"], env=env(), capture_output=True, text=True, timeout=30, check=False
    )


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def row_count(db) -> int:
    try:
        return db.query("SELECT count(*) FROM logs")[0][0]
    except psycopg.OperationalError:
        return -1


def duplicates(db) -> list[tuple]:
    return db.query(
        "SELECT source_file, source_offset, count(*) FROM logs "
        "GROUP BY source_file, source_offset HAVING count(*) > 1"
    )


def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "naz.jsonl"


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Shipper subprocesses a test started; killed if the test left them running."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


# --------------------------------------------------------------------------- privileges


def test_the_shipper_role_has_only_its_grants(postgres_db) -> None:
    grants = set(
        postgres_db.query(
            "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = 'nazbench_shipper'"
        )
    )
    assert grants == {
        ("logs", "INSERT"),
        ("shipper_positions", "SELECT"),
        ("shipper_positions", "INSERT"),
        ("shipper_positions", "UPDATE"),
    }
    with psycopg.connect(postgres_db.shipper_dsn, autocommit=True) as conn:
        for sql in ("SELECT count(*) FROM logs", "DELETE FROM logs", "TRUNCATE logs"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)


# --------------------------------------------------------------------------- --once


def test_once_ships_complete_lines_and_tracebacks_then_resumes(
    postgres_db, tmp_path: Path, log_path: Path
) -> None:
    records = b"".join(naz_lines(100, traceback_every=10))
    partial = b'{"timestamp": "2024-05-01T13:00:00.000000+00:00", "level": "INFO", "ev'
    log_path.write_bytes(b"orphan line\n" + records + partial)
    dsn = dsn_file(tmp_path, postgres_db.shipper_dsn)
    argv = shipper_argv(log_path, dsn)

    first = run_once(argv)
    assert first.returncode == 0, first.stderr
    assert "shipper-pw" not in first.stderr  # the password is never logged
    assert row_count(postgres_db) == 101
    tb_rows = postgres_db.query(
        "SELECT metadata->'traceback_lines' FROM logs WHERE metadata ? 'traceback_lines'"
    )
    assert len(tb_rows) == 10
    assert all(r[0] == TRACEBACK.rstrip("\n").split("\n") for r in tb_rows)
    assert postgres_db.query(
        "SELECT event, metadata->>'raw', source_offset, source_host FROM logs "
        "WHERE source_offset = 0"
    ) == [(None, "orphan line", 0, HOST)]
    ((source_file, path, offset),) = postgres_db.query(
        'SELECT source_file, path, "offset" FROM shipper_positions'
    )
    assert path == str(log_path)
    assert offset == log_path.stat().st_size - len(partial)  # the partial line waits

    # the partial line is completed and more records come: the next run ships only those
    more = b"".join(naz_lines(10, start=100))
    with log_path.open("ab") as f:
        f.write(b'ent": "late"}\n' + more)
    second = run_once(argv)
    assert second.returncode == 0, second.stderr
    assert row_count(postgres_db) == 101 + 1 + 10
    assert duplicates(postgres_db) == []
    assert postgres_db.query(
        "SELECT event, level FROM logs WHERE source_offset = %s", [offset]
    ) == [("late", "INFO")]
    assert postgres_db.query('SELECT "offset" FROM shipper_positions') == [
        (log_path.stat().st_size,)
    ]
    assert postgres_db.query("SELECT count(DISTINCT source_file) FROM logs") == [(1,)]
    assert source_file.count(":") == 2


def test_unstorable_rows_do_not_block_a_batch(postgres_db) -> None:
    writer = Writer(postgres_db.shipper_dsn, HOST)
    good = next(naz_lines(1))
    from nazbench.shipper.records import Assembler  # noqa: PLC0415

    rows: list = []
    asm = Assembler("dev:ino:fp")
    asm.feed(0, good, rows)
    asm.finish(len(good), rows)
    bad = (*rows[0][:6], "not json", *rows[0][7:10], 999)
    try:
        inserted = writer.write([rows[0], bad], {"dev:ino:fp": ("/x", 1000)})
    finally:
        writer.close()
    assert inserted == 2
    stored = dict(postgres_db.query("SELECT source_offset, metadata FROM logs"))
    assert stored[0]["msg_id"] == "bench-00000000"
    assert "not json" in stored[999]["unstorable"]
    assert "jsonb" in stored[999]["ship_error"] or "json" in stored[999]["ship_error"]
    assert postgres_db.query('SELECT "offset" FROM shipper_positions') == [(1000,)]


# --------------------------------------------------------------------------- rotation


def test_rotation_by_rename_with_the_real_logger(postgres_db, tmp_path: Path) -> None:
    path = tmp_path / "naz.jsonl"
    logger = JsonLinesLogger(path, run_id="rot", reopen_check_interval=0.05, flush_interval=0)
    stop_event = threading.Event()
    config = Config(
        path=str(path),
        source_host=HOST,
        batch_rows=100,
        batch_seconds=0.05,
        poll_interval=0.02,
        idle_finalize=0.2,
        rotate_grace=2.0,
    )
    shipper = Shipper(config, Writer(postgres_db.shipper_dsn, HOST), stop=stop_event)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(shipper.run()))
    thread.start()
    try:
        n = 0
        for rotation in range(3):
            for _ in range(250):
                logger.log(logging.INFO, {"event": "e", "log_id": f"id-{n}"})
                n += 1
                if n % 50 == 0:
                    time.sleep(0.01)
            if rotation < 2:
                # logrotate "create": rename; the logger keeps writing to the old file
                # until its next check (50 ms), then creates a new one
                os.rename(path, tmp_path / f"naz.jsonl.{rotation + 1}")
                for _ in range(20):
                    logger.log(logging.INFO, {"event": "e", "log_id": f"id-{n}"})
                    n += 1
                    time.sleep(0.005)
        wait_for(lambda: row_count(postgres_db) >= n, 15, f"{n} rows")
        time.sleep(0.3)
    finally:
        stop_event.set()
        thread.join(15)
        logger.close()
    assert result == [0]
    assert row_count(postgres_db) == n
    assert duplicates(postgres_db) == []
    ids = {r[0] for r in postgres_db.query("SELECT log_id FROM logs")}
    assert ids == {f"id-{i}" for i in range(n)}
    # three files, each fully shipped: positions equal their sizes
    sizes = {str(p): p.stat().st_size for p in tmp_path.glob("naz.jsonl*")}
    positions = postgres_db.query('SELECT path, "offset" FROM shipper_positions')
    assert len(positions) == 3
    assert sorted(off for _, off in positions) == sorted(sizes.values())
    assert postgres_db.query("SELECT count(DISTINCT source_file) FROM logs") == [(3,)]


def test_restart_finishes_a_file_rotated_while_stopped(
    postgres_db, tmp_path: Path, log_path: Path
) -> None:
    dsn = dsn_file(tmp_path, postgres_db.shipper_dsn)
    argv = shipper_argv(log_path, dsn)
    log_path.write_bytes(b"".join(naz_lines(100)))
    assert run_once(argv).returncode == 0
    with log_path.open("ab") as f:  # written after the shipper stopped...
        f.write(b"".join(naz_lines(50, start=100)))
    log_path.rename(log_path.with_name("naz.jsonl.1"))  # ...then rotated
    log_path.write_bytes(b"".join(naz_lines(30, start=150)))
    done = run_once(argv)
    assert done.returncode == 0, done.stderr
    assert "finishing rotated naz.jsonl.1 from offset" in done.stderr
    assert row_count(postgres_db) == 180
    assert duplicates(postgres_db) == []
    assert postgres_db.query("SELECT count(DISTINCT log_id) FROM logs") == [(180 // 7 + 1,)]


# --------------------------------------------------------------------------- crashes


def test_sigkill_twice_and_a_postgres_restart_lose_and_duplicate_nothing(
    postgres_db, tmp_path: Path, log_path: Path, procs
) -> None:
    cluster = postgres_db.cluster
    dsn = dsn_file(tmp_path, postgres_db.shipper_dsn)
    argv = shipper_argv(log_path, dsn, "--batch-rows", "300")
    stderr = tmp_path / "shipper.stderr"
    total, chunk = 24_000, 200
    written = threading.Event()

    def write() -> None:  # naz: ~4 s of steady logging, with one rotation halfway
        out = log_path.open("ab")
        for start in range(0, total, chunk):
            out.write(b"".join(naz_lines(chunk, start=start, traceback_every=25)))
            out.flush()
            if start == total // 2:
                out.close()
                log_path.rename(log_path.with_name("naz.jsonl.1"))
                out = log_path.open("ab")
            time.sleep(0.033)
        out.close()
        written.set()

    writer = threading.Thread(target=write)
    writer.start()
    procs.append(start_shipper(argv, stderr))
    try:
        # each kill comes after the shipper has committed rows (and so a position) of its
        # own: a fixed sleep let a slow CI start be killed before its first commit, and
        # the restart then had nothing to resume from
        wait_for(lambda: row_count(postgres_db) > 0, 20, "the first commit")
        time.sleep(0.2)
        procs[-1].send_signal(signal.SIGKILL)
        procs[-1].wait(5)
        procs.append(start_shipper(argv, stderr))
        wait_for(lambda: stderr.read_text().count("resuming ") >= 1, 20, "a resume")
        time.sleep(0.3)
        before = row_count(postgres_db)
        cluster.stop("fast")  # the database goes away under a running shipper
        time.sleep(0.7)
        cluster.start()
        wait_for(
            lambda: row_count(postgres_db) > before or row_count(postgres_db) >= total,
            20,
            "a commit after the restart",
        )
        procs[-1].send_signal(signal.SIGKILL)
        procs[-1].wait(5)
        procs.append(start_shipper(argv, stderr))
    finally:
        writer.join(30)
    assert written.is_set()
    wait_for(lambda: row_count(postgres_db) >= total, 20, f"{total} rows")
    time.sleep(0.5)  # anything extra would show up now
    assert stop(procs[-1]) == 0
    assert row_count(postgres_db) == total
    assert duplicates(postgres_db) == []
    # every record exactly once (log_id + event + stage identify a record of naz_lines)
    assert postgres_db.query(
        'SELECT count(DISTINCT (log_id, event, stage, "timestamp")) FROM logs'
    ) == [(total,)]
    assert postgres_db.query(
        "SELECT count(*) FROM logs WHERE jsonb_array_length(metadata->'traceback_lines') = 4"
    ) == [(total // 25,)]
    sizes = sorted(p.stat().st_size for p in tmp_path.glob("naz.jsonl*"))
    assert (
        sorted(r[0] for r in postgres_db.query('SELECT "offset" FROM shipper_positions')) == sizes
    )
    log_text = stderr.read_text()
    assert log_text.count("resuming ") >= 2  # both restarts resumed mid-file
    assert "database unavailable" in log_text
    assert "shipper-pw" not in log_text


def test_database_down_at_start(postgres_db, tmp_path: Path, log_path: Path, procs) -> None:
    cluster = postgres_db.cluster
    log_path.write_bytes(b"".join(naz_lines(200)))
    dsn = dsn_file(tmp_path, postgres_db.shipper_dsn)
    stderr = tmp_path / "shipper.stderr"
    cluster.stop("fast")
    try:
        procs.append(start_shipper(shipper_argv(log_path, dsn), stderr))
        wait_for(lambda: "database unavailable" in stderr.read_text(), 10, "a retry")
        time.sleep(0.5)
        assert procs[-1].poll() is None  # still running, retrying
    finally:
        cluster.start()
    wait_for(lambda: row_count(postgres_db) == 200, 15, "200 rows")
    assert stop(procs[-1]) == 0
    assert duplicates(postgres_db) == []
    assert "shipper-pw" not in stderr.read_text()


def test_sigterm_commits_what_is_final_and_exits_0(
    postgres_db, tmp_path: Path, log_path: Path, procs
) -> None:
    log_path.write_bytes(b"".join(naz_lines(300)))
    dsn = dsn_file(tmp_path, postgres_db.shipper_dsn)
    # batches that would never be sent by size or time: only SIGTERM sends this one
    argv = shipper_argv(log_path, dsn, "--batch-rows", "100000", "--batch-seconds", "3600")
    procs.append(start_shipper(argv, tmp_path / "shipper.stderr"))
    time.sleep(1.5)  # read, and the last record idle-finalized (0.3 s)
    assert row_count(postgres_db) == 0
    assert stop(procs[-1]) == 0
    assert row_count(postgres_db) == 300
    assert postgres_db.query('SELECT "offset" FROM shipper_positions') == [
        (log_path.stat().st_size,)
    ]


# --------------------------------------------------------------------------- metrics


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("nazbench_shipper_")
    }


def test_metrics(postgres_db, tmp_path: Path, log_path: Path, procs, unused_port: int) -> None:
    log_path.write_bytes(b"".join(naz_lines(500, traceback_every=100)))
    dsn = dsn_file(tmp_path, postgres_db.shipper_dsn)
    argv = shipper_argv(log_path, dsn, "--batch-rows", "200", metrics_port=unused_port)
    procs.append(start_shipper(argv, tmp_path / "shipper.stderr"))
    wait_for(lambda: row_count(postgres_db) == 500, 15, "500 rows")

    def caught_up() -> bool:
        try:
            return scrape(unused_port)["nazbench_shipper_lag_bytes"] == 0
        except OSError:
            return False

    wait_for(caught_up, 5, "lag_bytes == 0")
    m = scrape(unused_port)
    assert m["nazbench_shipper_lines_read_total"] == 500 + 5 * 4
    assert m["nazbench_shipper_rows_written_total"] == 500
    assert m["nazbench_shipper_rows_duplicate_total"] == 0
    assert m["nazbench_shipper_batches_total"] >= 3
    assert m["nazbench_shipper_db_errors_total"] == 0
    assert m["nazbench_shipper_db_connected"] == 1
    assert m["nazbench_shipper_files_open"] == 1
    assert m["nazbench_shipper_backlog_rows"] == 0
    newest = postgres_db.query('SELECT extract(epoch FROM max("timestamp")) FROM logs')[0][0]
    assert m["nazbench_shipper_last_shipped_record_timestamp_seconds"] == pytest.approx(
        float(newest), abs=1e-3
    )
    lag = m["nazbench_shipper_lag_seconds"]
    assert not math.isnan(lag)
    assert lag == pytest.approx(time.time() - float(newest), abs=5)
    assert stop(procs[-1]) == 0


def test_help_and_bad_dsn_file(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nazbench.shipper", "--help"],
        env=env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for option in ("--path", "--dsn-file", "--batch-rows", "--metrics-port", "--once"):
        assert option in out
    missing = subprocess.run(
        [sys.executable, "-m", "nazbench.shipper", "--dsn-file", str(tmp_path / "nope")],
        env=env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert "cannot read the DSN file" in missing.stderr
    bad = tmp_path / "bad.dsn"
    bad.write_text("host=h user=u password Sekr1t-value\n")
    unparsable = subprocess.run(
        [sys.executable, "-m", "nazbench.shipper", "--dsn-file", str(bad)],
        env=env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert unparsable.returncode == 2
    assert "cannot be parsed" in unparsable.stderr
    assert "Sekr1t" not in unparsable.stderr


def test_backlog_is_bounded_while_the_database_is_down(postgres_db, log_path: Path) -> None:
    cluster = postgres_db.cluster
    log_path.write_bytes(b"".join(naz_lines(100)))
    stop_event = threading.Event()
    config = Config(
        path=str(log_path),
        source_host=HOST,
        batch_rows=500,
        batch_seconds=0.05,
        poll_interval=0.02,
        idle_finalize=0.2,
        retry_max=0.3,
    )
    shipper = Shipper(config, Writer(postgres_db.shipper_dsn, HOST), stop=stop_event)
    thread = threading.Thread(target=shipper.run)
    thread.start()
    try:
        wait_for(lambda: row_count(postgres_db) == 100, 10, "the first 100 rows")
        cluster.stop("fast")
        try:
            with log_path.open("ab") as f:  # ~7 MB while the database is away
                f.write(b"".join(naz_lines(20_000, start=100)))
            time.sleep(1.5)
            read = shipper.metrics.lines_read._value.get()
            # one batch being retried, one queued, one full in hand (+ the open record)
            assert read <= 100 + 3 * 500 + 1
            assert len(shipper.batch) + shipper.unsent_rows <= 3 * 500
            assert shipper.metrics.db_errors._value.get() > 0
            shipper._update_gauges(force=True)
            assert shipper.metrics.lag_bytes._value.get() > 6_000_000
        finally:
            cluster.start()
        wait_for(lambda: row_count(postgres_db) == 20_100, 20, "20100 rows")
    finally:
        stop_event.set()
        thread.join(15)
    assert duplicates(postgres_db) == []
