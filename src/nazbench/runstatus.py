"""How far a run has got, as JSON for the run playbooks' progress lines.

    python -m nazbench.runstatus ledger --ledger L --run-id R [--since EPOCH]
    python -m nazbench.runstatus queue --redis-host H --redis-password-file F [--queue Q]

``ledger`` runs on the SMSC host and reads its ledger (a full scan: a 100k-line ledger
takes well under a second); ``queue`` runs where Redis is reachable and reports LLEN.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
        for line in handle:
            if prefix not in line:  # cheap filter before parsing
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
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


def queue_length(host: str, port: int, password: str | None, queue: str) -> int:
    import redis  # noqa: PLC0415 - only this subcommand needs it

    client = redis.Redis(host=host, port=port, password=password, socket_timeout=10)
    try:
        return int(client.llen(queue))
    finally:
        client.close()


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
    args = parser.parse_args(argv)
    if args.cmd == "ledger":
        try:
            out = ledger_progress(args.ledger, args.run_id, args.since)
        except ValueError as exc:
            parser.error(str(exc))
    else:
        password = None
        if args.redis_password_file:
            password = args.redis_password_file.read_text().strip()
        out = {
            "queue": args.queue,
            "length": queue_length(args.redis_host, args.redis_port, password, args.queue),
        }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
