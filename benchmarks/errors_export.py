"""Time collect.yml's errors.csv export on a 1,000,000-row ``logs`` table.

    python benchmarks/errors_export.py [--rows 1000000] [--error-share 0.03] [--repeat 3]
        [--target-share 0.8] [--keep]

Builds a throwaway PostgreSQL 15 cluster (Debian's ``postgresql`` package; initdb and
postgres run as the ``postgres`` OS user through ``runuser`` when we are root; fsync off,
it is thrown away), creates the ``logs`` table from roles/timescaledb/files/schema.sql,
fills it with synthetic naz log rows (``--target-share`` of them for the run being
exported, the rest spread over 4 other runs; ``--error-share`` of all rows carry an error),
then times the export exactly as collect does it::

    psql -X -v ON_ERROR_STOP=1 -c "\\copy (SELECT * FROM logs WHERE length(logs.error) > 0
        AND run_id = '<id>' ORDER BY timestamp DESC) TO STDOUT WITH (FORMAT csv, HEADER)" > file

and the seed's unrestricted query (all runs). Prints rows, bytes and seconds (median of
``--repeat``); the goal is <= 5 s.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "roles" / "timescaledb" / "files" / "schema.sql"
TARGET = "bench-run-target"
GOAL_S = 5.0

ERRORS = (
    "ConnectionResetError(104, 'Connection reset by peer')",
    "ConnectionRefusedError(111, 'Connect call failed')",
    "TimeoutError()",
    "ConnectionError(Error 111 connecting to 10.89.154.21:6379. Connection refused.)",
    "BrokenPipeError(32, 'Broken pipe')",
)
EVENTS = (
    "naz.Client.send_data",
    "naz.Client.receive_data",
    "naz.Client.connect",
    "nazbench.RedisBroker",
    "naz.Client.dequeue_messages",
)


def as_postgres(argv: list[str], **kw) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(argv, check=True, **kw)


def fill_sql(rows: int, error_share: float, target_share: float) -> str:
    """One INSERT ... SELECT over generate_series: fast, server-side."""
    every = max(1, round(1 / error_share)) if error_share > 0 else 0
    target_rows = int(rows * target_share)
    errors = "ARRAY[" + ",".join("'" + e.replace("'", "''") + "'" for e in ERRORS) + "]"
    events = "ARRAY[" + ",".join(f"'{e}'" for e in EVENTS) + "]"
    error_expr = (
        f"CASE WHEN g % {every} = 0 THEN ({errors})[1 + (g / {every}) % {len(ERRORS)}] END"
        if every
        else "NULL"
    )
    return f"""
INSERT INTO logs ("timestamp", event, stage, client_id, log_id, error, metadata, run_id,
                  level, source_host, source_file, source_offset)
SELECT timestamptz '2026-11-28 09:00:00+00' + g * interval '15 milliseconds',
       CASE WHEN g % {every or 1} = 0 THEN ({events})[1 + g % {len(EVENTS)}]
            ELSE 'naz.Client.send_data' END,
       CASE WHEN g % 2 = 0 THEN 'start' ELSE 'end' END,
       'nazbench-' || CASE WHEN g <= {target_rows} THEN '{TARGET}'
                           ELSE 'bench-run-' || (g % 4) END,
       (g / 9) || '-abcdefg',
       {error_expr},
       jsonb_build_object('smpp_command', 'submit_sm', 'sequence_number', g),
       CASE WHEN g <= {target_rows} THEN '{TARGET}' ELSE 'bench-run-' || (g % 4) END,
       CASE WHEN g % {every or 1} = 0 THEN 'ERROR' ELSE 'INFO' END,
       'sfo1', 'naz-cli.log:' || (g / 200000), g * 180
FROM generate_series(1, {rows}) AS g;
"""


def export(psql_base: list[str], query: str, out: Path) -> tuple[float, int, int]:
    """Run collect's export once; (seconds, data rows, bytes)."""
    argv = [
        *psql_base,
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        f"\\copy ({query}) TO STDOUT WITH (FORMAT csv, HEADER)",
    ]
    with out.open("wb") as fh:
        began = time.perf_counter()
        subprocess.run(argv, check=True, stdout=fh)
        seconds = time.perf_counter() - began
    with out.open(newline="", encoding="utf-8") as fh:
        rows = sum(1 for _ in csv.reader(fh)) - 1
    return seconds, rows, out.stat().st_size


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--error-share", type=float, default=0.03)
    p.add_argument("--target-share", type=float, default=0.8)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--keep", action="store_true", help="keep the cluster directory")
    args = p.parse_args()
    for tool in ("initdb", "postgres", "pg_ctl"):
        if not (PG_BIN / tool).exists():
            sys.exit(f"{PG_BIN / tool} missing: apt-get install -y postgresql")
    work = Path(tempfile.mkdtemp(prefix="nazbench-errors-export-"))
    data, sock = work / "data", work / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(work, "postgres", "postgres")
        shutil.chown(sock, "postgres", "postgres")
    port = "54329"
    server = None
    try:
        as_postgres(
            [str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
             "--no-sync", "-E", "UTF8"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        server = subprocess.Popen(
            (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else [])
            + [str(PG_BIN / "postgres"), "-D", str(data), "-p", port, "-k", str(sock),
               "-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
               "-c", "full_page_writes=off", "-c", "shared_buffers=256MB"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        psql = ["psql", "-h", str(sock), "-p", port, "-U", "postgres", "-d", "postgres"]
        deadline = time.monotonic() + 30
        while subprocess.run(
            [*psql, "-Xqc", "SELECT 1"], capture_output=True, check=False
        ).returncode:
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("postgres did not start")
            time.sleep(0.2)
        subprocess.run([*psql, "-Xq", "-v", "ON_ERROR_STOP=1", "-f", str(SCHEMA)], check=True)
        began = time.perf_counter()
        subprocess.run(
            [*psql, "-Xq", "-v", "ON_ERROR_STOP=1", "-c",
             fill_sql(args.rows, args.error_share, args.target_share), "-c", "VACUUM ANALYZE logs"],
            check=True,
        )  # fmt: skip
        load_s = time.perf_counter() - began
        counts = subprocess.run(
            [*psql, "-XAtc",
             "SELECT count(*), count(*) FILTER (WHERE length(error) > 0), "
             f"count(*) FILTER (WHERE run_id = '{TARGET}') FROM logs"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        total, errors, target = (int(x) for x in counts.split("|"))
        print(
            f"logs: {total:,} rows ({errors:,} with an error, {errors / total:.1%}); "
            f"run {TARGET}: {target:,} rows; loaded in {load_s:.1f} s"
        )
        queries = {
            "one run (collect)": (
                "SELECT * FROM logs WHERE length(logs.error) > 0 "
                f"AND run_id = '{TARGET}' ORDER BY timestamp DESC"
            ),
            "--all-runs (seed)": (
                "SELECT * FROM logs WHERE length(logs.error) > 0 ORDER BY timestamp DESC"
            ),
        }
        worst = 0.0
        for label, query in queries.items():
            times, rows, size = [], 0, 0
            for _ in range(args.repeat):
                seconds, rows, size = export(psql, query, work / "errors.csv")
                times.append(seconds)
            median = statistics.median(times)
            worst = max(worst, median)
            print(
                f"{label:<18} rows {rows:>8,}  bytes {size:>11,}  seconds {median:6.3f} "
                f"(median of {args.repeat}; min {min(times):.3f}, max {max(times):.3f})"
            )
        print(f"goal <= {GOAL_S:.0f} s: {'met' if worst <= GOAL_S else 'MISSED'}")
        return 0 if worst <= GOAL_S else 1
    finally:
        if server is not None:
            subprocess.run(
                (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else [])
                + [str(PG_BIN / "pg_ctl"), "-D", str(data), "stop", "-m", "fast", "-w"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
