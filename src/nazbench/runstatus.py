"""How far a run has got, as JSON for the run playbooks' progress lines.

    python -m nazbench.runstatus ledger --ledger L --run-id R [--since EPOCH]
    python -m nazbench.runstatus queue --redis-host H --redis-password-file F [--queue Q]
    python -m nazbench.runstatus progress --ledger L --run-id R --expect N \
        [--redis-host H --redis-password-file F] [--timeline T] [--exit-when-done]

``ledger`` runs on the SMSC host and reads its ledger (a full scan: a 100k-line ledger
takes well under a second); ``queue`` runs where Redis is reachable and reports LLEN.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from nazbench import jsonl
from nazbench.msgid import validate_run_id


def ledger_progress(path: Path, run_id: str, since: float = 0.0) -> dict:
    """Counts of ``run_id``'s ledger lines (at or after ``since``) and their time span."""
    prefix = f"{validate_run_id(run_id)}/"
    accepted = rejected = 0
    ids: set[str] = set()
    first = last = None
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {"accepted": 0, "unique": 0, "rejected": 0, "first_ts": None, "last_ts": None}
    with handle:
        # cheap filter before parsing
        for rec in jsonl.objects(line for line in handle if prefix in line):
            msg_id, ts = rec.get("msg_id"), rec.get("ts")
            if not isinstance(msg_id, str) or not msg_id.startswith(prefix):
                continue
            if not isinstance(ts, int | float) or ts < since:
                continue
            if rec.get("command_status") == 0:
                accepted += 1
                ids.add(msg_id)
                first = ts if first is None else min(first, ts)
                last = ts if last is None else max(last, ts)
            else:
                rejected += 1
    return {
        "accepted": accepted,
        "unique": len(ids),
        "rejected": rejected,
        "first_ts": first,
        "last_ts": last,
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


def _read_timeline(path: Path) -> tuple[float | None, dict, dict, bool]:
    """(plan time, plan, units down -> since, ended) from a chaos timeline file."""
    plan_at, plan, down, ended = None, {}, {}, False
    with path.open(encoding="utf-8", errors="replace") as handle:
        for rec in jsonl.objects(handle):
            kind = rec.get("record")
            if kind == "plan":
                plan_at, plan, down, ended = rec.get("at"), rec.get("plan") or {}, {}, False
            elif kind == "end":
                ended = True
            elif kind == "edge" and rec.get("outcome") == "ok":
                if rec.get("edge") == "stop":
                    down[rec["service"]] = rec.get("actual_at")
                else:
                    down.pop(rec.get("service"), None)
    return plan_at, plan, down, ended


def _next_edge(plan_at: float, plan: dict, now: float) -> dict | None:
    upcoming = [
        (plan_at + offset, unit, edge)
        for unit, windows in plan.items()
        for window in windows
        if window.get("state") == "stop"
        for edge, offset in (("stop", window["start_s"]), ("start", window["end_s"]))
        if plan_at + offset > now
    ]
    if not upcoming:
        return None
    at, unit, edge = min(upcoming)
    return {"service": unit, "edge": edge, "in_s": round(at - now, 1)}


def timeline_state(path: Path, now: float) -> dict:
    """Which units a chaos timeline says are down now, and the next planned edge."""
    try:
        plan_at, plan, down, ended = _read_timeline(path)
    except FileNotFoundError:
        return {"down": [], "next_edge": None, "ended": False}
    next_edge = None if plan_at is None or ended else _next_edge(plan_at, plan, now)
    return {"down": sorted(down), "next_edge": next_edge, "ended": ended}


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
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
