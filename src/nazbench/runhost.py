"""A run's state on its hosts: the start and the end, recorded in the host's clock.

    python -m nazbench.runhost start --run-dir D [--purge]
    python -m nazbench.runhost end --run-dir D [--probe-unit U] [--naz-unit U]
    python -m nazbench.runhost show --run-dir D

Redis (host, port, password file, queue) and naz's metrics port come from naz-cli's own
configuration (``--naz-config``, default ``/etc/nazbench/naz.json``), so the playbooks
pass no addresses and a later controller needs nothing but the run id.

A run lives in ``/var/lib/nazbench/runs/<run_id>/`` on the naz host: ``params.json``
(written by the playbook from the run's plan), ``start.json`` and ``end.json`` (written
here), the producer's manifest and the probe's record. A controller that attaches later
(``run_chaos.yml -e attach=<run_id>``) reads them back, so losing the controller loses
nothing. Every time is this host's epoch seconds.

``show`` prints what the host keeps of a run (or, exit 2, the runs it knows).
``start`` refuses a queue that still holds another run's messages (exit 3) unless
``--purge``, then records the start; ``end`` stops the port probe and records naz's
memory and restarts and the queue's length. Both are idempotent: a second call prints the
first record with ``"changed": false``. Output: ``{"changed": bool, "start"|"end": record}``.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from nazbench import jsonfile
from nazbench.jsonfile import read_json
from nazbench.runstatus import queue_length

EXIT_QUEUE_BUSY = 3
_RSS_RE = re.compile(r"^process_resident_memory_bytes(?:\{[^}]*\})? ([0-9.e+]+)$", re.M)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically and durably (the run's state on the host)."""
    jsonfile.write_json(path, data, fsync=True)


def naz_rss_bytes(url: str, timeout: float = 5.0) -> float | None:
    """naz-cli's resident memory from its metrics endpoint, None when it cannot be read."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - local URL
            text = resp.read().decode("utf-8", "replace")
    except OSError:
        return None
    match = _RSS_RE.search(text)
    return float(match.group(1)) if match else None


def systemd_restarts(unit: str) -> int | None:
    """NRestarts of ``unit`` (systemd counts automatic restarts), None without systemd."""
    try:
        out = subprocess.run(
            ["systemctl", "show", "-p", "NRestarts", "--value", unit],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return int(out) if out.isdigit() else None


def _password(path: Path | None) -> str | None:
    return path.read_text(encoding="utf-8").strip() if path else None


def connection(args: argparse.Namespace) -> dict[str, Any]:
    """Redis and metrics settings: naz's configuration, overridden by the arguments."""
    conf = read_json(args.naz_config) or {}
    password_file = args.redis_password_file or conf.get("redis_password_file")
    port = args.metrics_port or conf.get("metrics_port") or 9240
    return {
        "host": args.redis_host or conf.get("redis_host") or "127.0.0.1",
        "port": args.redis_port or conf.get("redis_port") or 6379,
        "password": _password(Path(password_file)) if password_file else None,
        "queue": args.queue or conf.get("redis_queue") or "naz_benchmarks_queue",
        "metrics_url": f"http://127.0.0.1:{port}/metrics",
    }


def start(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    path = args.run_dir / "start.json"
    existing = read_json(path)
    if existing is not None:
        return {"changed": False, "start": existing}, 0
    params = read_json(args.run_dir / "params.json") or {}
    conn = connection(args)
    length = queue_length(conn["host"], conn["port"], conn["password"], conn["queue"], args.purge)
    if length and not args.purge:
        return {
            "changed": False,
            "msg": (
                f"The queue {conn['queue']} still holds {length} messages of an earlier run; they "
                "would be sent during this one. Let them drain, or pass -e purge_queue=true."
            ),
            "queue_before": length,
        }, EXIT_QUEUE_BUSY
    record = {
        "run_id": params.get("run_id"),
        "host": socket.gethostname(),
        "started_at": round(time.time(), 3),
        "queue_before": length,
        "purged": bool(args.purge and length),
        "naz_rss_start_bytes": naz_rss_bytes(conn["metrics_url"]),
    }
    write_json(path, record)
    return {"changed": True, "start": record}, 0


def end(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    path = args.run_dir / "end.json"
    existing = read_json(path)
    if existing is not None:
        return {"changed": False, "end": existing}, 0
    if args.probe_unit:
        subprocess.run(["systemctl", "stop", args.probe_unit], capture_output=True, check=False)
    conn = connection(args)
    try:
        queue_end: int | None = queue_length(
            conn["host"], conn["port"], conn["password"], conn["queue"]
        )
    except Exception:  # Redis being down is an answer too
        queue_end = None
    record = {
        "finished_at": round(time.time(), 3),
        "queue_end": queue_end,
        "naz_restarts": systemd_restarts(args.naz_unit),
        "naz_rss_end_bytes": naz_rss_bytes(conn["metrics_url"]),
    }
    write_json(path, record)
    return {"changed": True, "end": record}, 0


def show(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """What this host keeps of the run: params, start, end, the chaos job."""
    out = {
        name: read_json(args.run_dir / f"{name.replace('_', '-')}.json")
        for name in ("params", "start", "end", "chaos_job")
    }
    if out["params"] is None or out["start"] is None:
        known = sorted(
            p.parent.name for p in args.run_dir.parent.glob("*/start.json") if p.parent.is_dir()
        )
        return {
            "msg": (
                f"no started run {args.run_dir.name!r} on {socket.gethostname()} "
                f"(runs started here: {', '.join(known) or 'none'})"
            )
        }, 2
    return out, 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nazbench.runhost")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("show")
    p.add_argument("--run-dir", type=Path, required=True)
    for name in ("start", "end"):
        p = sub.add_parser(name)
        p.add_argument("--run-dir", type=Path, required=True)
        p.add_argument("--naz-config", type=Path, default=Path("/etc/nazbench/naz.json"))
        p.add_argument("--redis-host")
        p.add_argument("--redis-port", type=int)
        p.add_argument("--redis-password-file", type=Path)
        p.add_argument("--queue")
        p.add_argument("--metrics-port", type=int)
        if name == "start":
            p.add_argument("--purge", action="store_true", help="empty the queue first")
        else:
            p.add_argument("--probe-unit", help="the port probe's transient unit, stopped here")
            p.add_argument("--naz-unit", default="nazbench-naz-cli.service")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    if args.cmd != "show" and not args.run_dir.is_dir():
        sys.stderr.write(f"runhost: error: {args.run_dir} is not a directory\n")
        return 2
    out, rc = {"start": start, "end": end, "show": show}[args.cmd](args)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    if rc:
        sys.stderr.write(out.get("msg", "") + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
