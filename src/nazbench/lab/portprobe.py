"""An independent witness of outages: poll TCP ports and record when each went down/up.

The chaos loop records when it stopped and started each service; this probe, run on a
different host (the naz client), records what the network saw, so the two can be
compared (``compare``: drift of every timeline edge against the probe, and every outage
the probe saw that no timeline outage explains, e.g. a crash restarted by systemd).

    python3 -m nazbench.lab.portprobe watch --target smsc=10.89.154.21:2775 \\
        --target redis=10.89.154.21:6379 --interval 0.1 --out probe.jsonl [--duration 900]
    python3 -m nazbench.lab.portprobe compare --probe probe.jsonl --timeline t.jsonl \\
        --map nazbench-smsc.service=smsc --map redis-server.service=redis

Each connect attempt starts on its own 100 ms tick (attempts overlap when the round trip
is longer than the interval), and a transition is stamped with the start of the first
attempt that saw the new state. Lines: ``{"t": epoch, "target": name, "state": "up"|"down"}``;
a ``down`` line also says why the connect failed: ``"why": "refused"`` (nothing listens),
``"timeout"`` (no answer) or ``"unreachable"`` (no route, name not resolved, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from nazbench.timeline import OUTAGE_SLACK_S, Timeline

# Fault kinds whose edges a TCP connect from the naz host sees: nothing listens (stop,
# kill, refused), a reset (refused) or dropped segments (blackhole, half_open: timeout).
CONNECT_VISIBLE = ("stop", "kill", "blackhole", "reset", "half_open")
# Why a connect fails while each kind holds the port: nothing listens or a reset answers
# (refused), or the segments are dropped (timeout).
EXPECTED_WHY = {
    "stop": "refused",
    "kill": "refused",
    "reset": "refused",
    "blackhole": "timeout",
    "half_open": "timeout",
}


@dataclass
class Target:
    name: str
    host: str
    port: int
    state: str | None = None
    last_seen: float = 0.0  # start time of the attempt that set ``state``
    pending: set = field(default_factory=set)


def parse_target(text: str) -> Target:
    """``name=host:port`` -> Target, or ValueError naming what is wrong."""
    name, sep, address = text.partition("=")
    host, sep2, port = address.rpartition(":")
    if not (sep and sep2 and name and host and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"--target must look like name=host:port, got {text!r}")
    return Target(name, host, int(port))


async def _attempt(target: Target, started: float, timeout: float, out) -> None:
    why = None
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port), timeout
        )
        writer.close()
        state = "up"
    except ConnectionRefusedError:
        state, why = "down", "refused"
    except TimeoutError:
        state, why = "down", "timeout"
    except OSError:
        state, why = "down", "unreachable"
    # Attempts overlap; only a newer attempt may change the recorded state.
    if started >= target.last_seen and state != target.state:
        target.state, target.last_seen = state, started
        line = {"t": round(started, 3), "target": target.name, "state": state}
        if why:
            line["why"] = why
        out.write(json.dumps(line) + "\n")
        out.flush()
    elif started >= target.last_seen:
        target.last_seen = started


async def watch(targets: list[Target], interval: float, duration: float, out) -> None:
    """Probe every target each ``interval`` seconds until ``duration`` (0 = SIGTERM)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    deadline = time.monotonic() + duration if duration else math.inf
    tasks: set[asyncio.Task] = set()
    while not stop.is_set() and time.monotonic() < deadline:
        started = time.time()
        for target in targets:
            task = asyncio.create_task(_attempt(target, started, max(1.0, interval * 10), out))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
    if tasks:
        await asyncio.wait(tasks, timeout=2)


def compare(probe_lines: list[dict], timeline, units: dict[str, str]) -> dict:
    """The probe against the chaos timeline(s) of the mapped units.

    ``timeline`` is a :class:`nazbench.timeline.Timeline` or a list of timeline records.
    Every ok edge is matched with the first probe transition of its target to the matching
    state (stop -> down, start -> up) from 5 s before the edge on; unmatched edges are
    listed. Returns counts, p50/p99/max of |drift|, the per-edge pairs, and ``unplanned``:
    every probe down -> up interval of a mapped target that no timeline outage explains
    (lies within its stop edge - 5 s ... start edge + 5 s). Edges of fault kinds a connect
    cannot see (``pause``: the kernel still accepts on the port) are not matched: they are
    listed in ``not_visible``. A matched stop edge carries the probe's ``why`` (refused,
    timeout); ``why_mismatches`` lists those that differ from what the edge's kind makes a
    connect see (:data:`EXPECTED_WHY`), e.g. a reset the probe saw time out.
    """
    if not isinstance(timeline, Timeline):
        timeline = Timeline.from_records(timeline)
    transitions = _transitions(probe_lines)
    whys = {
        (rec.get("target"), rec.get("t")): rec.get("why")
        for rec in probe_lines
        if rec.get("state") == "down" and rec.get("why")
    }
    pairs, unmatched, not_visible, why_mismatches = [], [], [], []
    for rec in timeline.edges(ok=True):
        target = units.get(rec.get("service"))
        at = rec.get("actual_at")
        if target is None or not isinstance(at, int | float):
            continue
        if rec.get("kind", "stop") not in CONNECT_VISIBLE:
            not_visible.append(
                {
                    "service": rec["service"],
                    "edge": rec["edge"],
                    "kind": rec["kind"],
                    "actual_at": at,
                }
            )
            continue
        want = "down" if rec.get("edge") == "stop" else "up"
        seen = next(
            (t for t, s in transitions.get(target, []) if s == want and t >= at - OUTAGE_SLACK_S),
            None,
        )
        if seen is None:
            unmatched.append({"service": rec["service"], "edge": rec["edge"], "actual_at": at})
        else:
            pair = {
                "service": rec["service"],
                "edge": rec["edge"],
                "actual_at": at,
                "probe_at": seen,
                "drift_s": round(seen - at, 3),
            }
            if want == "down":
                kind = rec.get("kind", "stop")
                pair["kind"], pair["why"] = kind, whys.get((target, seen))
                if pair["why"] is not None and pair["why"] != EXPECTED_WHY.get(kind):
                    why_mismatches.append({**pair, "expected": EXPECTED_WHY.get(kind)})
            pairs.append(pair)
    drifts = sorted(abs(p["drift_s"]) for p in pairs)

    def pct(q: float) -> float | None:
        if not drifts:
            return None
        return drifts[max(0, math.ceil(q / 100 * len(drifts)) - 1)]

    return {
        "edges": len(pairs) + len(unmatched),
        "matched": len(pairs),
        "unmatched": unmatched,
        "p50_abs_drift_s": pct(50),
        "p99_abs_drift_s": pct(99),
        "max_abs_drift_s": drifts[-1] if drifts else None,
        "pairs": pairs,
        "not_visible": not_visible,
        "why_mismatches": why_mismatches,
        "unplanned": unplanned(transitions, timeline, units),
    }


def _transitions(probe_lines: list[dict]) -> dict[str, list[tuple[float, str]]]:
    """target -> [(t, state)], in time order; lines without a time or target are skipped."""
    out: dict[str, list[tuple[float, str]]] = {}
    for rec in probe_lines:
        t, target, state = rec.get("t"), rec.get("target"), rec.get("state")
        if isinstance(t, int | float) and isinstance(target, str) and state in ("up", "down"):
            out.setdefault(target, []).append((float(t), state))
    for series in out.values():
        series.sort()
    return out


def down_intervals(series: list[tuple[float, str]]) -> list[tuple[float, float | None]]:
    """(down_at, up_at or None) of every stretch the probe saw a target down."""
    intervals: list[tuple[float, float | None]] = []
    down_at = None
    for t, state in series:
        if state == "down" and down_at is None:
            down_at = t
        elif state == "up" and down_at is not None:
            intervals.append((down_at, t))
            down_at = None
    if down_at is not None:
        intervals.append((down_at, None))
    return intervals


def unplanned(transitions, timeline: Timeline, units: dict[str, str]) -> list[dict]:
    """Probe outages of mapped targets that no timeline outage (±5 s) explains."""
    windows: dict[str, list[tuple[float, float]]] = {}
    for o in timeline.outages():
        target = units.get(o["service"])
        if target is None or o["stop_at"] is None:
            continue
        end = o["start_at"] if o["start_at"] is not None else math.inf
        windows.setdefault(target, []).append((o["stop_at"] - OUTAGE_SLACK_S, end + OUTAGE_SLACK_S))
    out = []
    for target in sorted(set(units.values())):
        for down_at, up_at in down_intervals(transitions.get(target, [])):
            last = up_at if up_at is not None else math.inf
            if any(lo <= down_at and last <= hi for lo, hi in windows.get(target, [])):
                continue
            out.append(
                {
                    "target": target,
                    "down_at": down_at,
                    "up_at": up_at,
                    "duration_s": None if up_at is None else round(up_at - down_at, 3),
                }
            )
    return out


def _read_jsonl(path: Path) -> list[dict]:
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nazbench.lab.portprobe")
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("watch")
    w.add_argument("--target", action="append", required=True, help="name=host:port")
    w.add_argument("--interval", type=float, default=0.1)
    w.add_argument("--duration", type=float, default=0.0, help="seconds; 0 = until SIGTERM")
    w.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("compare")
    c.add_argument("--probe", type=Path, required=True)
    c.add_argument("--timeline", type=Path, action="append", required=True)
    c.add_argument("--map", action="append", required=True, help="unit=target")
    args = parser.parse_args(argv)
    if args.cmd == "watch":
        try:
            targets = [parse_target(t) for t in args.target]
        except ValueError as exc:
            parser.error(str(exc))
        if args.interval <= 0 or args.duration < 0:
            parser.error("--interval must be > 0 and --duration >= 0")
        with args.out.open("a", encoding="utf-8") as out:
            asyncio.run(watch(targets, args.interval, args.duration, out))
        return 0
    units = dict(m.split("=", 1) for m in args.map)
    timeline = Timeline()
    for path in args.timeline:
        host = path.stem.removeprefix("timeline-") if path.stem != "timeline" else None
        timeline.add_path(path, host=host)
    json.dump(compare(_read_jsonl(args.probe), timeline, units), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
