"""How fast does the log shipper load naz's log lines? (goal: >= 50,000 rows/s, >= 100x the seed)

Starts a throwaway PostgreSQL 15 cluster (``nazbench.testing.pgcluster``, the same code
as the unit-test fixture: 127.0.0.1, ephemeral port, fsync off), loads
``roles/timescaledb/files/schema.sql`` into two fresh databases, writes ``--lines``
naz-like JSON lines (``nazbench.testing.nazlog``, ~330 bytes each, a 4-line plain
traceback after every ``--traceback-every``-th) and then, in the same run:

* ships them with the shipper (``Shipper.run()`` with ``once=True``, what
  ``python -m nazbench.shipper --once`` calls: COPY batches into a staging table,
  ``INSERT ... ON CONFLICT DO NOTHING``, positions in the same transaction), connecting as
  the restricted shipper role, and checks that every record arrived exactly once;
* ships the first ``--seed-lines`` of them the seed's way: for every line a new
  connection (password auth, scram-sha-256 as PostgreSQL 15 defaults to), one INSERT,
  commit, close; this rate is measured on that subset and extrapolated to all lines.

    .venv/bin/python benchmarks/shipper_throughput.py [--lines 200000] [--seed-lines 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from nazbench.shipper.core import Config, Shipper
from nazbench.shipper.db import Writer
from nazbench.testing.nazlog import naz_lines
from nazbench.testing.pgcluster import PgCluster

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "roles" / "timescaledb" / "files" / "schema.sql"
ROLE, ROLE_PASSWORD = "nazbench_shipper", "bench-shipper-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class MeasuredWriter(Writer):
    """A Writer that notes its PostgreSQL backend's CPU time before it disconnects."""

    backend_cpu = 0.0

    def close(self) -> None:
        if self.conn is not None and not self.conn.closed:
            self.backend_cpu += process_cpu_seconds(self.conn.info.backend_pid)
        super().close()


def ship_the_seeds_way(dsn: str, path: Path, count: int) -> float:
    """One connection and one INSERT per line, as the seed's shipper did; returns seconds."""
    sql = (
        'INSERT INTO logs ("timestamp", event, stage, client_id, log_id, error, metadata, '
        "run_id, level, source_host, source_file, source_offset) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'bench', 'seed', %s)"
    )
    t0 = time.perf_counter()
    offset = 0
    with path.open("rb") as f:
        for _ in range(count):
            line = f.readline()
            record = json.loads(line)
            with psycopg.connect(dsn) as conn:
                conn.execute(
                    sql,
                    (
                        record["timestamp"],
                        record["event"],
                        record["stage"],
                        record["client_id"],
                        record["log_id"],
                        record["error"],
                        json.dumps(record["metadata"]),
                        record["run_id"],
                        record["level"],
                        offset,
                    ),
                )
            offset += len(line)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=200_000, help="JSON records to ship")
    ap.add_argument("--seed-lines", type=int, default=2000, help="records shipped the seed's way")
    ap.add_argument("--batch-rows", type=int, default=5000)
    ap.add_argument("--traceback-every", type=int, default=0, help="0: no plain tracebacks")
    args = ap.parse_args()

    cluster = PgCluster(free_port())
    with tempfile.TemporaryDirectory(prefix="nazbench-shipper-bench-") as tmp:
        try:
            cluster.init()
            cluster.start()
            cluster.wait_ready()
            schema = SCHEMA.read_text()
            for db in ("bench_shipper", "bench_seed"):
                cluster.create_database(db, schema)
            cluster.create_shipper_role(ROLE, ROLE_PASSWORD, ["bench_shipper"])
            server_version = psycopg.connect(cluster.dsn()).info.server_version

            path = Path(tmp) / "naz.jsonl"
            with path.open("wb") as f:
                for line in naz_lines(args.lines, traceback_every=args.traceback_every):
                    f.write(line)
            size = path.stat().st_size
            print("parameters:")
            print(
                f"  lines={args.lines} ({size / 1e6:.1f} MB, {size / args.lines:.0f} B/line, "
                f"traceback_every={args.traceback_every}) batch_rows={args.batch_rows} "
                f"seed_lines={args.seed_lines}"
            )
            print(
                f"  python={platform.python_version()} psycopg={psycopg.__version__} "
                f"({psycopg.pq.__impl__}) postgresql={server_version // 10000}."
                f"{server_version % 10000} (127.0.0.1:{cluster.port}, fsync=off, "
                "synchronous_commit=off)"
            )
            print(
                f"  cpus={os.cpu_count()} machine={platform.machine()} "
                f"load_avg={'/'.join(f'{x:.2f}' for x in os.getloadavg())}"
            )

            config = Config(
                path=str(path), source_host="bench", batch_rows=args.batch_rows, once=True
            )
            writer = MeasuredWriter(cluster.dsn("bench_shipper", ROLE, ROLE_PASSWORD), "bench")
            shipper = Shipper(config, writer)
            t0 = time.perf_counter()
            cpu0 = time.process_time()
            shipper.run()
            wall = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            with psycopg.connect(cluster.dsn("bench_shipper")) as conn:
                rows, distinct = conn.execute(
                    "SELECT count(*), count(DISTINCT (source_file, source_offset)) FROM logs"
                ).fetchone()
                batches = shipper.metrics.batches._value.get()
            assert rows == distinct == args.lines, f"{rows} rows, {distinct} distinct"
            shipper_rate = args.lines / wall
            print(
                f"  shipper: {args.lines} rows in {wall:.2f} s = {shipper_rate:,.0f} rows/s "
                f"({batches:.0f} batches; every record exactly once)"
            )
            bound = args.lines / max(cpu, writer.backend_cpu)
            print(
                f"    CPU: shipper process {cpu:.2f} s, its PostgreSQL backend "
                f"{writer.backend_cpu:.2f} s (they overlap: with two idle CPUs the larger "
                f"one bounds the rate, at {bound:,.0f} rows/s)"
            )

            seed_count = min(args.seed_lines, args.lines)
            seed_wall = ship_the_seeds_way(cluster.dsn("bench_seed"), path, seed_count)
            seed_rate = seed_count / seed_wall
            print(
                f"  seed's way: {seed_count} rows in {seed_wall:.2f} s = {seed_rate:,.0f} rows/s "
                f"(measured on the first {seed_count} lines; extrapolated to {args.lines} "
                f"lines: {args.lines / seed_rate:,.0f} s)"
            )
            ratio = shipper_rate / seed_rate
            print(
                f"result: shipper {shipper_rate:,.0f} rows/s (goal >= 50,000), "
                f"{ratio:,.0f}x the seed's way (goal >= 100x)"
            )
        finally:
            cluster.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
