"""How far a run has got, as JSON for the run playbooks' progress lines.

    python -m nazbench.runstatus ledger --ledger L --run-id R [--since EPOCH]
    python -m nazbench.runstatus queue --redis-host H --redis-password-file F [--queue Q]
    python -m nazbench.runstatus progress --ledger L --run-id R --expect N \
        [--redis-host H --redis-password-file F] [--timeline T] [--exit-when-done]
    python -m nazbench.runstatus extract --ledger L [--ledger L2 ...] --run-id R \
        --since EPOCH [--until EPOCH] --out FILE

``ledger`` runs on the SMSC host and reads its ledger (a full scan: a 100k-line ledger
takes well under a second); ``queue`` runs where Redis is reachable and reports LLEN.
``extract`` runs on the SMSC host after a run: it writes the run's window of the ledger
(every line, damaged ones too) to FILE for reconciliation and prints per-category counts;
it exits 2 with a message on stderr when a ledger is missing or unreadable (the SMSC
appends to one ledger file forever; pass rotated or older files first, if any).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from nazbench import ledger
from nazbench.msgid import validate_run_id
from nazbench.timeline import Timeline


def ledger_progress(path: Path, run_id: str, since: float = 0.0) -> dict:
    """Counts of ``run_id``'s ledger lines (in the window from ``since``) and their time span.

    ``accepted``/``rejected``/``unique`` count lines whose id is one of the run's
    (:func:`nazbench.msgid.index_of`); ``unexpected`` (accepted lines of the run with an
    id that is not an index, e.g. ``r/07``), ``malformed`` and ``null_id`` lines are
    counted apart so that damage shows while the run goes on. A missing ledger (the SMSC
    has not started yet) is no progress.
    """
    validate_run_id(run_id)
    accepted = rejected = unexpected = malformed = null_id = 0
    indices: set[int] = set()
    first = last = None
    try:
        handle = ledger.open_ledger(path)
    except FileNotFoundError:
        handle = None
    if handle is not None:
        with handle:
            for entry in ledger.classify(handle, run_id, since=since):
                if entry.category == ledger.MALFORMED:
                    malformed += 1
                elif entry.category == ledger.NULL_ID:
                    null_id += 1
                elif entry.category != ledger.OURS:
                    continue
                elif entry.index is None:
                    unexpected += entry.accepted
                elif not entry.accepted:
                    rejected += 1
                else:
                    accepted += 1
                    indices.add(entry.index)
                    if entry.ts is not None:
                        first = entry.ts if first is None else min(first, entry.ts)
                        last = entry.ts if last is None else max(last, entry.ts)
    return {
        "accepted": accepted,
        "unique": len(indices),
        "rejected": rejected,
        "first_ts": first,
        "last_ts": last,
        "unexpected": unexpected,
        "malformed": malformed,
        "null_id": null_id,
    }


class ExtractError(Exception):
    """A ledger could not be read, or the output could not be written."""


def _ledger_lines(paths: list[Path]) -> Iterator[bytes]:
    for path in paths:
        try:
            with ledger.open_ledger(path, binary=True) as fh:
                yield from fh
        except ledger.READ_ERRORS as exc:
            raise ExtractError(f"cannot read ledger {str(path)!r}: {exc}") from exc


def extract(paths: list[Path], run_id: str, since: float, until: float | None, out: Path) -> dict:
    """Write every ledger line of the run's window to ``out``; return what was written.

    The window (see :mod:`nazbench.ledger`) opens at the first line stamped at or after
    ``since`` and closes after ``until``; every line inside it is written as it is,
    malformed lines, lines without an id and other runs' lines included, so that the
    reconciliation counts them. ``paths`` are read in the order given (oldest first).
    ``out`` is replaced atomically: a failed extraction leaves no partial file.
    Raises ExtractError when a ledger is missing or unreadable.
    """
    validate_run_id(run_id)
    counts = dict.fromkeys(ledger.CATEGORIES, 0)
    lines_read = written = 0
    first_ts = last_ts = None
    part = out.with_name(out.name + ".part")
    try:
        with part.open("wb") as fh:
            entries = ledger.classify(_ledger_lines(paths), run_id, since=since, until=until)
            for entry in entries:
                lines_read += 1
                counts[entry.category] += 1
                if entry.category in (ledger.BEFORE, ledger.AFTER):
                    continue
                raw = entry.line
                fh.write(raw if raw.endswith(b"\n") else raw + b"\n")
                written += 1
                if entry.ts is not None:
                    first_ts = entry.ts if first_ts is None else first_ts
                    last_ts = entry.ts
        part.replace(out)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise ExtractError(f"cannot write {str(out)!r}: {exc}") from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return {
        "run_id": run_id,
        "ledgers": [str(p) for p in paths],
        "out": str(out),
        "since": since,
        "until": until,
        "lines_read": lines_read,
        "lines_written": written,
        "first_ts": first_ts,
        "last_ts": last_ts,
        "counts": counts,
    }


def queue_length(
    host: str, port: int, password: str | None, queue: str, purge: bool = False
) -> int:
    """LLEN of ``queue``; with ``purge``, the length it had before it was deleted."""
    import redis  # noqa: PLC0415 - only these subcommands need it

    client = redis.Redis(host=host, port=port, password=password, socket_timeout=10)
    try:
        if purge:
            length, _ = client.pipeline().llen(queue).delete(queue).execute()
            return int(length)
        return int(client.llen(queue))
    finally:
        client.close()


def timeline_state(path: Path, now: float) -> dict:
    """Which units a chaos timeline says are down now, and the next planned edge.

    Read with :mod:`nazbench.timeline` (the one reader of the format): ``down`` lists the
    units with an open outage (a failed start keeps it open), ``next_edge`` skips the
    outages the loop skipped.
    """
    try:
        state = Timeline.from_path(path).state(now)
    except FileNotFoundError:
        return {"down": [], "next_edge": None, "ended": False}
    nxt = state["next_edge"]
    if nxt is not None:  # the progress line keeps its short form
        nxt = {key: nxt[key] for key in ("service", "edge", "in_s")}
    return {"down": state["down"], "next_edge": nxt, "ended": state["ended"]}


def progress(args: argparse.Namespace) -> tuple[dict, bool]:
    """The run's progress and whether it is done (all delivered, or the queue empty)."""
    out = ledger_progress(args.ledger, args.run_id, args.since)
    out["expect"] = args.expect
    queue = None
    if args.redis_host:
        password = (
            args.redis_password_file.read_text().strip() if args.redis_password_file else None
        )
        try:
            queue = queue_length(args.redis_host, args.redis_port, password, args.queue)
        except Exception as exc:  # Redis being down is an answer too
            out["queue_error"] = type(exc).__name__
    out["queue"] = queue
    if args.timeline:
        out.update(timeline_state(args.timeline, time.time()))
    done = out["unique"] >= args.expect or queue == 0
    out["done"] = done
    return out, done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nazbench.runstatus")
    sub = parser.add_subparsers(dest="cmd", required=True)
    led = sub.add_parser("ledger")
    led.add_argument("--ledger", type=Path, required=True)
    led.add_argument("--run-id", required=True)
    led.add_argument("--since", type=float, default=0.0)
    que = sub.add_parser("queue")
    que.add_argument("--redis-host", required=True)
    que.add_argument("--redis-port", type=int, default=6379)
    que.add_argument("--redis-password-file", type=Path)
    que.add_argument("--queue", default="naz_benchmarks_queue")
    que.add_argument("--purge", action="store_true", help="delete the queue (prints its length)")
    pro = sub.add_parser("progress")
    pro.add_argument("--ledger", type=Path, required=True)
    pro.add_argument("--run-id", required=True)
    pro.add_argument("--since", type=float, default=0.0)
    pro.add_argument("--expect", type=int, required=True)
    pro.add_argument("--redis-host")
    pro.add_argument("--redis-port", type=int, default=6379)
    pro.add_argument("--redis-password-file", type=Path)
    pro.add_argument("--queue", default="naz_benchmarks_queue")
    pro.add_argument("--timeline", type=Path)
    pro.add_argument("--exit-when-done", action="store_true", help="exit 0 only when done")
    _add_extract_parser(sub)
    args = parser.parse_args(argv)
    if args.cmd == "extract":
        return _main_extract(parser, args)
    if args.cmd == "progress":
        try:
            out, done = progress(args)
        except ValueError as exc:
            parser.error(str(exc))
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
        return 0 if done or not args.exit_when_done else 1
    if args.cmd == "ledger":
        try:
            out = ledger_progress(args.ledger, args.run_id, args.since)
        except ValueError as exc:
            parser.error(str(exc))
    else:
        password = None
        if args.redis_password_file:
            password = args.redis_password_file.read_text().strip()
        length = queue_length(args.redis_host, args.redis_port, password, args.queue, args.purge)
        out = {"queue": args.queue, "length": length, "purged": args.purge}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


def _add_extract_parser(sub) -> None:
    ext = sub.add_parser("extract", help="write the run's window of the ledger to --out")
    ext.add_argument(
        "--ledger", type=Path, action="append", required=True, help="repeatable, oldest first"
    )
    ext.add_argument("--run-id", required=True)
    ext.add_argument("--since", type=float, required=True, help="epoch seconds: run start")
    ext.add_argument("--until", type=float, default=None, help="epoch seconds: run end")
    ext.add_argument("--out", type=Path, required=True)


def _main_extract(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        validate_run_id(args.run_id)
    except ValueError as exc:
        parser.error(str(exc))
    if args.until is not None and args.until < args.since:
        parser.error(f"--until {args.until} is before --since {args.since}")
    try:
        out = extract(args.ledger, args.run_id, args.since, args.until, args.out)
    except ExtractError as exc:
        sys.stderr.write(f"runstatus extract: error: {exc}\n")
        return 2
    if not out["lines_written"]:
        sys.stderr.write(
            f"runstatus extract: warning: no ledger line at or after --since {args.since}: "
            "the SMSC recorded nothing of this run\n"
        )
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
