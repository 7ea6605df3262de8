"""Command line of nazbench.collect; see the package docstring."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from nazbench import jsonfile
from nazbench.collect import check, dbcounts, records
from nazbench.collect.pick import PickError, pick


class UserError(Exception):
    """Bad input: reported on stderr with exit status 2."""


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "yes", "1", "on"):
        return True
    if low in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r}")


def _epoch(text: str) -> float:
    """Epoch seconds; an integral value stays an int (as the cut-off command prints it)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not epoch seconds: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not epoch seconds: {text!r}")
    return int(value) if value.is_integer() else value


def _json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None


def _program(text: str) -> tuple[str, str]:
    key, sep, command = text.partition("=")
    if not sep or not key or not command:
        raise argparse.ArgumentTypeError(f"expected KEY=COMMAND, got {text!r}")
    return key, command


def _write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` (replaced atomically)."""
    jsonfile.write_json(path, data, indent=4)


def _cutoff(args: argparse.Namespace) -> Any:
    """The log cut-off: ``--at`` (the run's end plus a little) once this host's clock has
    passed it by the margin, so every collect of a run counts the same records; without
    ``--at``, or when waiting for it would take longer than ``--max-wait-s``, now - margin."""
    now = time.time()
    if args.at is not None:
        wait = args.at + args.margin_s - now
        if wait <= args.max_wait_s:
            if wait > 0:
                time.sleep(wait)
            return int(args.at)
    return int(now) - args.margin_s


def _count(args: argparse.Namespace) -> Any:
    try:
        return records.count_records(args.run_id, args.log_path, args.cutoff)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _db_counts(args: argparse.Namespace) -> Any:
    try:
        argv = dbcounts.psql_argv(args.run_id, args.cutoff, args.database, args.port, args.host)
        return dbcounts.count_rows(argv, args.expect, args.wait_s, args.every_s)
    except (ValueError, dbcounts.DbError) as exc:
        raise UserError(str(exc)) from None


def _host_versions(args: argparse.Namespace) -> Any:
    return check.host_versions(args.package, dict(args.program))


def _pick(args: argparse.Namespace) -> Any:
    try:
        return pick(args.artifacts, args.run_id or None, args.compare or None, args.from_hosts)
    except PickError as exc:
        raise UserError(str(exc)) from None


def _logs_check(args: argparse.Namespace) -> Any:
    if not isinstance(args.files_json, list):
        raise UserError("--files-json: expected a JSON list of count-records answers")
    try:
        result = check.logs_check(args.run_id, args.cutoff, args.files_json, args.db_counts)
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot check the counts: {exc!r}") from None
    _write_json(args.out, result)
    return result


def _versions(args: argparse.Namespace) -> Any:
    result = check.versions(args.naz_host, args.observability_host, args.ansible_core)
    _write_json(args.out, result)
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nazbench.collect", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("cutoff", help="the log cut-off in whole epoch seconds (this host's clock)")
    c.add_argument("--margin-s", type=int, default=5)
    c.add_argument("--at", type=_epoch, help="the cut-off wanted (the run's end + a little)")
    c.add_argument("--max-wait-s", type=int, default=120)
    c.set_defaults(func=_cutoff)

    c = sub.add_parser("count-records", help="count a run's records in naz's log files")
    c.add_argument("--run-id", required=True)
    c.add_argument("--log-path", required=True, type=Path)
    c.add_argument("--cutoff", required=True, type=_epoch, help="epoch seconds")
    c.set_defaults(func=_count)

    c = sub.add_parser("db-counts", help="count a run's rows in logs, waiting for the shipper")
    c.add_argument("--run-id", required=True)
    c.add_argument("--cutoff", required=True, type=_epoch, help="epoch seconds")
    c.add_argument("--expect", required=True, type=int, help="records counted in naz's files")
    c.add_argument("--database", default="nazbench")
    c.add_argument("--port", type=int, default=5432)
    c.add_argument("--host", help="default: psql's (the Unix socket)")
    c.add_argument("--wait-s", type=float, default=60.0)
    c.add_argument("--every-s", type=float, default=3.0)
    c.set_defaults(func=_db_counts)

    c = sub.add_parser("host-versions", help="versions of Python, packages and programs here")
    c.add_argument("--package", action="append", default=[])
    c.add_argument("--program", action="append", default=[], type=_program)
    c.set_defaults(func=_host_versions)

    c = sub.add_parser("pick", help="which run (or two) collect.yml works on")
    c.add_argument("--artifacts", required=True, type=Path)
    c.add_argument("--run-id", default="", help="default: the newest run")
    c.add_argument("--compare", default="", help="two run ids: A,B (wins over --run-id)")
    c.add_argument("--from-hosts", type=_bool, default=True)
    c.set_defaults(func=_pick)

    c = sub.add_parser("logs-check", help="write logs-check.json")
    c.add_argument("--run-id", required=True)
    c.add_argument("--cutoff", required=True, type=_epoch)
    c.add_argument("--files-json", required=True, type=_json_arg)
    c.add_argument("--db-counts", required=True, type=_json_arg, help="db-counts' answer")
    c.add_argument("--out", required=True, type=Path)
    c.set_defaults(func=_logs_check)

    c = sub.add_parser("versions", help="write versions.json")
    c.add_argument("--naz-host", required=True, type=_json_arg)
    c.add_argument("--observability-host", required=True, type=_json_arg)
    c.add_argument("--ansible-core", required=True)
    c.add_argument("--out", required=True, type=Path)
    c.set_defaults(func=_versions)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result = args.func(args)
    except UserError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return 0
