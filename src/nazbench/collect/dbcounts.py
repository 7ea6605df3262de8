"""Counting a run's rows in the ``logs`` table, waiting for the shipper to catch up.

Runs on the observability host as the ``postgres`` OS user, through ``psql`` (peer
authentication; no driver needed). The cut-off is epoch seconds and is compared in the
database (``to_timestamp``), so the server's and this host's time zones play no part.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

from nazbench.msgid import validate_run_id

# rows up to the cut-off, their error rows, duplicates of a source line, all rows
COUNT_SQL = """
SELECT count(*) FILTER (WHERE "timestamp" <= to_timestamp(:cutoff)),
       count(*) FILTER (WHERE "timestamp" <= to_timestamp(:cutoff) AND length(logs.error) > 0),
       count(*) - count(DISTINCT (source_host, source_file, source_offset)),
       count(*)
FROM logs WHERE run_id = :'run_id';
"""
KEYS = ("rows", "error_rows", "duplicate_rows", "all_rows")


class DbError(Exception):
    """psql failed; the message has its stderr."""


def psql_argv(
    run_id: str, cutoff: float, database: str, port: int, host: str | None = None
) -> list[str]:
    argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-F", " ", "-p", str(port)]
    argv += ["-d", database, *(["-h", host] if host else [])]
    return [*argv, "-v", f"run_id={validate_run_id(run_id)}", "-v", f"cutoff={cutoff}", "-f", "-"]


def count_once(argv: list[str]) -> dict[str, int]:
    out = subprocess.run(argv, input=COUNT_SQL, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise DbError(f"psql exited {out.returncode}: {out.stderr.strip()}")
    parts = out.stdout.split()
    if len(parts) != len(KEYS):
        raise DbError(f"expected {len(KEYS)} counts from psql, got {out.stdout!r}")
    return dict(zip(KEYS, map(int, parts), strict=True))


def count_rows(
    argv: list[str],
    expect: int,
    wait_s: float = 60.0,
    every_s: float = 3.0,
    *,
    count: Callable[[list[str]], dict[str, int]] = count_once,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Count until ``rows`` reaches ``expect`` or ``wait_s`` has passed; the last count.

    ``caught_up`` says which; a shipper that never catches up is not an error here
    (logs-check.json shows the gap).
    """
    began = clock()
    while True:
        counts = count(argv)
        waited = clock() - began
        if counts["rows"] >= expect or waited >= wait_s:
            break
        sleep(min(every_s, max(wait_s - waited, 0.0)))
    return {
        **counts,
        "expect": expect,
        "caught_up": counts["rows"] >= expect,
        "waited_s": round(waited, 1),
    }
