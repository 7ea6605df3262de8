"""One look at a running benchmark, from what this host keeps of it, in this host's clock.

    python -m nazbench.runwatch --run-dir /var/lib/nazbench/runs/<run_id>
    python -m nazbench.runwatch --run-dir ... --exit-when-done   (the chaos loop's stop_when)

Reads the run's ``params.json`` and ``start.json`` (the playbook leaves them on every
host of the run), this host's chaos ``timeline.jsonl`` and ``chaos-job.json`` when it has
them, the SMSC ledger when this host has it, and Redis' queue length when this host runs
Redis. Prints one JSON object: the progress, ``line`` (what the watch shows), ``over``
with ``why``, and ``failed`` (None, or why the run cannot go on: the chaos loop failed,
died without an end record, or never started).

When is a run over? Experiment B: every message is in the ledger or the queue is empty.
Experiment A: this host's chaos loop wrote its end record and then either the run is
done or ``run_drain_s`` has passed since (the run drains without faults meanwhile). Either
way, at the latest at ``started_at + watch_timeout_s``. ``--exit-when-done`` exits 0 only
when every message is in or the queue is empty (the loop's stop condition).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from nazbench.runstatus import ledger_progress, queue_length
from nazbench.timeline import Timeline

LEDGER = Path("/var/lib/nazbench/smsc/ledger.jsonl")
REDIS_PASSWORD = Path("/etc/nazbench/redis.password")
SHORT_NAMES = {"nazbench-smsc.service": "smsc", "redis-server.service": "redis"}


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        return {"unreadable": True}
    return data if isinstance(data, dict) else {"unreadable": True}


def pid_alive(pid: Any) -> bool:
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def chaos_state(run_dir: Path, now: float, alive=pid_alive) -> dict[str, Any]:
    """This host's chaos loop: running, ended (with its end record) or failed (why)."""
    job = _read(run_dir / "chaos-job.json")
    tl = (
        Timeline.from_path(run_dir / "timeline.jsonl")
        if (run_dir / "timeline.jsonl").exists()
        else None
    )
    state = (
        tl.state(now)
        if tl is not None
        else {"down": [], "faults": {}, "next_edge": None, "ended": False, "end": None}
    )
    plans = tl.last_run().plans() if tl is not None else []
    result: dict[str, Any] = {**state, "failed": None}
    end = state["end"]
    if end is not None:
        if end.get("reason") == "signal":
            result["failed"] = (
                "chaos loop was interrupted by a signal (host shutdown, kill?) before its "
                "planned end; it started what it had stopped"
            )
        elif end.get("reason") in ("error", "locked") or end.get("error"):
            result["failed"] = f"chaos loop ended with an error: {end.get('error')}"
        elif end.get("still_stopped"):
            result["failed"] = f"chaos loop left {', '.join(end['still_stopped'])} stopped"
        return result
    if job is None:
        # The controller may have died between starting the job and recording it: the
        # loop's own plan record names its pid.
        if not plans:
            result["failed"] = "no chaos job is recorded on this host (chaos-job.json is missing)"
        elif not alive(plans[-1].get("pid")):
            result["failed"] = (
                f"chaos loop died without an end record (pid {plans[-1].get('pid')} is gone)"
            )
        return result
    results = _read(Path(job["results_file"])) if job.get("results_file") else None
    if plans and not alive(plans[-1].get("pid")):
        # before the job's result: async_wrapper reports a killed module as a traceback
        result["failed"] = (
            f"chaos loop died without an end record (pid {plans[-1].get('pid')} is gone; "
            "killed with SIGKILL?); the next heal starts what it stopped"
        )
    elif results and results.get("failed"):
        msg = str(results.get("msg", "?")).strip().splitlines() or ["?"]
        result["failed"] = f"chaos job {job.get('jid')} failed: {msg[-1][:300]}"
    elif results and not results.get("started") and not plans:
        result["failed"] = f"chaos job {job.get('jid')} ended without starting a loop"
    return result


def look(
    run_dir: Path,
    now: float,
    *,
    ledger: Path = LEDGER,
    redis_password: Path = REDIS_PASSWORD,
    redis_host: str = "127.0.0.1",
    redis_port: int = 6379,
    alive=pid_alive,
) -> dict[str, Any]:
    params = _read(run_dir / "params.json")
    start = _read(run_dir / "start.json")
    if not params or not start or "started_at" not in start:
        raise ValueError(f"{run_dir} has no params.json and start.json of a started run")
    since, expect = float(start["started_at"]), int(params["message_count"])
    out: dict[str, Any] = {"run_id": params.get("run_id"), "at": round(now, 3), "expect": expect}
    out["ledger"] = ledger_progress(ledger, params["run_id"], since) if ledger.exists() else None
    out["unique"] = out["ledger"]["unique"] if out["ledger"] else None
    out["queue"] = None
    if redis_password.exists():
        try:
            out["queue"] = queue_length(
                redis_host, redis_port, redis_password.read_text().strip(), "naz_benchmarks_queue"
            )
        except Exception as exc:  # Redis being down is an answer too
            out["queue_error"] = type(exc).__name__
    done = (out["unique"] is not None and out["unique"] >= expect) or out["queue"] == 0
    out["done"] = done
    deadline = since + float(params["watch_timeout_s"])
    out["over"], out["why"], out["failed"] = False, None, None
    if params.get("chaos_enabled"):
        chaos = chaos_state(run_dir, now, alive)
        out["chaos"] = {k: chaos.get(k) for k in ("down", "faults", "next_edge", "ended")}
        out["chaos"]["end_reason"] = (chaos["end"] or {}).get("reason")
        out["failed"] = chaos["failed"]
        if chaos["ended"]:
            drain_until = float(chaos["end"].get("at", now)) + float(params.get("run_drain_s", 0))
            if done:
                out["over"], out["why"] = (
                    True,
                    f"chaos loop ended ({out['chaos']['end_reason']}), run done",
                )
            elif now >= drain_until:
                out["over"], out["why"] = True, f"chaos loop ended ({out['chaos']['end_reason']})"
    elif done:
        out["over"], out["why"] = True, "every message is in, or the queue is empty"
    if not out["over"] and now >= deadline:
        out["over"], out["why"] = (
            True,
            f"the watch's limit ({params['watch_timeout_s']} s from the start)",
        )
    out["elapsed_s"] = round(now - since, 1)
    out["line"] = line(out)
    return out


def line(out: dict[str, Any]) -> str:
    got = "?" if out["unique"] is None else out["unique"]
    queue = (
        out["queue"]
        if out["queue"] is not None
        else ("unreachable" if "queue_error" in out else "?")
    )
    text = f"{got}/{out['expect']} delivered, queue {queue}, {out['elapsed_s']:.0f} s in"
    chaos = out.get("chaos")
    if chaos is not None:
        faults = chaos.get("faults") or dict.fromkeys(chaos["down"], "stop")
        down = ", ".join(
            SHORT_NAMES.get(u, u) + ("" if kind == "stop" else f" ({kind})")
            for u, kind in faults.items()
        )
        down = down or "nothing"
        text += f", down: {down}"
        nxt = chaos["next_edge"]
        if nxt:
            name = SHORT_NAMES.get(nxt["service"], nxt["service"])
            text += f", next: {name} {nxt['edge']} in {nxt['in_s']} s"
        if chaos["ended"]:
            text += f", chaos loop ended ({chaos['end_reason']})"
    if out["failed"]:
        text += f" -- FAILED: {out['failed']}"
    elif out["over"]:
        text += f" -- over: {out['why']}"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nazbench.runwatch")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--ledger", type=Path, default=LEDGER)
    parser.add_argument("--redis-password-file", type=Path, default=REDIS_PASSWORD)
    parser.add_argument("--exit-when-done", action="store_true", help="exit 0 only when done")
    args = parser.parse_args(argv)
    try:
        out = look(
            args.run_dir, time.time(), ledger=args.ledger, redis_password=args.redis_password_file
        )
    except (OSError, ValueError, KeyError) as exc:
        sys.stderr.write(f"runwatch: error: {exc}\n")
        return 2
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    if args.exit_when_done:
        return 0 if out["done"] else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
