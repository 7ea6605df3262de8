"""``python -m nazbench.shipper``: ship naz's JSON log file to TimescaleDB.

Where the connection comes from (first that is set):

1. ``--dsn-file FILE``: a libpq connection string in a file, so the password never
   appears in ``ps``, the unit file or the journal. Blank lines and lines starting with
   ``#`` are ignored; the other lines are joined with spaces, so either one URI line::

       postgresql://nazbench_shipper:SECRET@10.89.154.11:5432/nazbench?sslmode=prefer

   or key=value pairs, on one line or several::

       # /etc/nazbench/shipper.dsn (0600 or 0640, owned by the shipper's user)
       host=10.89.154.11 port=5432 dbname=nazbench
       user=nazbench_shipper password=SECRET

   (values with spaces or quotes: single-quote them, backslash-escape quotes, as libpq
   wants). A file readable by everyone is used but warned about.
2. ``--dsn DSN`` (fine without a password, e.g. with a ``~/.pgpass``).
3. The environment variable ``NAZBENCH_SHIPPER_DSN``.
4. Otherwise libpq's own defaults and ``PG*`` variables (``PGHOST``, ``PGPASSFILE``...).

The password is never printed or logged: the connection is described as
``user@host:port/dbname`` and error messages are scrubbed of it.

Exit status: 0 after SIGTERM/SIGINT (what is final is committed first, within
``--stop-timeout``; the rest stays in the file for the next start) or after ``--once``
shipped everything; 2 for bad options or an unreadable or unparsable DSN.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import stat
import sys
import threading
from pathlib import Path
from typing import Any

import psycopg

from nazbench.shipper.core import Config, Shipper
from nazbench.shipper.db import Writer, describe_dsn
from nazbench.shipper.metrics import ShipperMetrics

DEFAULT_PATH = "/var/log/nazbench/naz.jsonl"
DEFAULT_METRICS_PORT = 9241
DSN_ENV = "NAZBENCH_SHIPPER_DSN"

log = logging.getLogger("nazbench.shipper")


def read_dsn_file(path: str) -> str:
    """The DSN in ``path`` (format in the module docstring)."""
    file = Path(path)
    mode = file.stat().st_mode
    if mode & stat.S_IROTH:
        log.warning("%s is readable by everyone; it holds the database password", path)
    lines = [
        line.strip()
        for line in file.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    return " ".join(lines)


def resolve_dsn(args: argparse.Namespace) -> str:
    """The DSN from ``--dsn-file``, ``--dsn``, ``$NAZBENCH_SHIPPER_DSN`` or "" (libpq)."""
    if args.dsn_file:
        return read_dsn_file(args.dsn_file)
    if args.dsn is not None:
        return args.dsn
    return os.environ.get(DSN_ENV, "")


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m nazbench.shipper",
        description=(
            "Follow naz's JSON-lines log file across rotations and ship every line to the "
            "TimescaleDB logs table, resumably (positions are committed with the rows)."
        ),
        epilog=(
            "DSN file: a libpq connection string, as one URI line or key=value pairs on one "
            "or more lines; blank lines and lines starting with # are ignored. Example: "
            "'host=10.89.154.11 port=5432 dbname=nazbench user=nazbench_shipper "
            "password=SECRET'. The password is never logged."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--path", default=DEFAULT_PATH, help="log file to follow")
    ap.add_argument(
        "--source-host",
        default=socket.gethostname(),
        help="source_host of the rows and positions (the hostname)",
    )
    dsn = ap.add_mutually_exclusive_group()
    dsn.add_argument(
        "--dsn-file", help="file holding the libpq connection string (with the password)"
    )
    dsn.add_argument(
        "--dsn", help=f"libpq connection string (else ${DSN_ENV}, else libpq's PG* variables)"
    )
    ap.add_argument("--batch-rows", type=_positive(int), default=5000, help="rows per batch")
    ap.add_argument(
        "--batch-seconds",
        type=_positive(float),
        default=0.5,
        help="send a non-full batch after this long",
    )
    ap.add_argument(
        "--metrics-port",
        type=int,
        default=DEFAULT_METRICS_PORT,
        help="Prometheus metrics port (0 disables)",
    )
    ap.add_argument(
        "--metrics-address",
        default="0.0.0.0",  # noqa: S104 - Prometheus may scrape from another host
        help="metrics listen address",
    )
    ap.add_argument(
        "--poll-interval",
        type=_positive(float),
        default=0.2,
        help="seconds between looks at an idle file",
    )
    ap.add_argument(
        "--idle-finalize",
        type=float,
        default=1.0,
        help="seconds without new bytes after which the last record (and its traceback "
        "lines) is final",
    )
    ap.add_argument(
        "--rotate-grace",
        type=float,
        default=5.0,
        help="seconds a rotated file must be idle before it is closed (unless the new "
        "file already has data)",
    )
    ap.add_argument(
        "--once", action="store_true", help="ship what is in the file(s) now, then exit"
    )
    ap.add_argument(
        "--connect-timeout",
        type=_positive(float),
        default=5.0,
        help="seconds (a connect_timeout in the DSN wins)",
    )
    ap.add_argument(
        "--retry-max",
        type=_positive(float),
        default=5.0,
        help="longest wait between database retries (the backoff doubles from 0.1 s)",
    )
    ap.add_argument(
        "--stop-timeout",
        type=float,
        default=10.0,
        help="on SIGTERM, seconds to keep trying to commit the last batch",
    )
    ap.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s nazbench-shipper %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        dsn = resolve_dsn(args)
    except OSError as exc:
        log.error("cannot read the DSN file: %s", exc)
        return 2
    try:
        psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        # libpq's message quotes the text around the error, which may be the password
        log.error("the DSN cannot be parsed by libpq (not shown: it may hold the password)")
        return 2
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("%s: committing what is final, then exiting", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    metrics = ShipperMetrics()
    if args.metrics_port:
        from prometheus_client import start_http_server  # noqa: PLC0415

        start_http_server(args.metrics_port, addr=args.metrics_address)
    config = Config(
        path=args.path,
        source_host=args.source_host,
        batch_rows=args.batch_rows,
        batch_seconds=args.batch_seconds,
        poll_interval=args.poll_interval,
        idle_finalize=args.idle_finalize,
        rotate_grace=args.rotate_grace,
        once=args.once,
        retry_max=args.retry_max,
        stop_timeout=args.stop_timeout,
    )
    writer = Writer(dsn, args.source_host, connect_timeout=args.connect_timeout)
    log.info(
        "shipping %s as source_host=%s to %s (batches of %d rows / %.2fs)%s",
        args.path,
        args.source_host,
        describe_dsn(dsn),
        args.batch_rows,
        args.batch_seconds,
        f", metrics on :{args.metrics_port}" if args.metrics_port else "",
    )
    return Shipper(config, writer, metrics, stop).run()
