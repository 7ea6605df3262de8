"""Which outage explains a lost or duplicated message, and what each outage's window shows.

A message is attributed to an outage by the most trustworthy evidence the run has:

1. **log lines**: the message's own error rows in errors.csv (``log_id`` ``<index>-...``);
   the outage ``[stop_at, start_at)`` that holds the first one's time, or the one that
   ended at most :data:`JUST_ENDED_S` before it;
2. **dequeue time**: when ``naz_dequeued_total`` crossed the message's ordinal (FIFO
   queue, one consumer), bracketed by two samples, when the counter is exact (started at
   0, never went down, no naz restart, no more pops than messages) and the bracket
   overlaps exactly one outage;
3. **neighbours' window**: the acceptance times of the accepted messages before and after
   it bracket its send time (duplicates: its own first and last acceptance).
"""

from __future__ import annotations

import bisect
import collections
import itertools
from collections.abc import Iterable
from typing import Any

from nazbench.report.data import ErrorRow, Outage, RunData, iso

JUST_ENDED_S = 5.0
ERRORS_WINDOW_S = 300.0  # an outage's error window when nothing was delivered after it

LOG_LINES = "log lines"
DEQUEUE_TIME = "dequeue time"
NEIGHBOURS = "neighbours' window"


def clock(ts: float | None) -> str:
    """HH:MM:SS.ss (UTC) of an epoch time, for evidence sentences."""
    text = iso(ts)
    return text[11:22] if text else "?"


def first_index(data: RunData) -> int:
    return int(((data.manifest or {}).get("id_scheme") or {}).get("first_index", 0))


def errors_by_position(data: RunData) -> dict[int, list[ErrorRow]]:
    """Error rows of each message by its position in the run (log_id index - first)."""
    first = first_index(data)
    out: dict[int, list[ErrorRow]] = collections.defaultdict(list)
    for row in data.errors or []:
        head = row.log_id.split("-", 1)[0]
        if head.isdigit() and "-" in row.log_id:
            out[int(head) - first].append(row)
    return out


def _decision(outage: Outage | None, by: str | None, evidence: str) -> dict[str, Any]:
    return {"outage": outage.label if outage else None, "decided_by": by, "evidence": evidence}


# --------------------------------------------------------------------------- (a) log lines


def by_log_lines(rows: list[ErrorRow], outages: list[Outage], end: float) -> dict | None:
    """The outage holding the message's first logged error (or just ended before it)."""
    timed = [r for r in rows if r.ts is not None]
    if not timed:
        return None
    row = min(timed, key=lambda r: r.ts)
    t = row.ts
    error = row.error if len(row.error) <= 120 else row.error[:119] + "…"
    what = f"its first logged error ({row.event}: {error}) at {clock(t)}"
    holding = [o for o in outages if o.stop_at <= t < o.end(end)]
    ended = [
        o for o in outages if o.start_at is not None and o.start_at <= t < o.start_at + JUST_ENDED_S
    ]
    if holding:
        chosen = max(holding, key=lambda o: o.stop_at)  # the newest failure
        text = f"{what} falls inside {chosen.label} ({t - chosen.stop_at:.1f} s after its stop)"
        others = [o for o in ended if o is not chosen]
        if others:
            o = others[-1]
            text += f"; {o.label} had ended {t - o.start_at:.1f} s earlier"
        return _decision(chosen, LOG_LINES, text + ".")
    if ended:
        o = max(ended, key=lambda o: o.start_at)
        text = (
            f"{what} comes {t - o.start_at:.1f} s after {o.label} ended: that outage had just ended"
        )
        return _decision(o, LOG_LINES, text + ".")
    return _decision(None, LOG_LINES, f"{what} falls outside every outage.")


# --------------------------------------------------------------------------- (b) dequeue time


def dequeue_clock(data: RunData) -> tuple[list[tuple[float, float]] | None, str]:
    """naz_dequeued_total's samples when the counter is exact for this run, else (None, why)."""
    series = data.metrics.get("naz_dequeued_total")
    if not series or not series.rows:
        return None, "no naz_dequeued_total metrics"
    pts = series.totals()
    if (data.run or {}).get("naz_restarts") != 0:
        return None, "naz restarts unknown or > 0: the counter may have restarted"
    if pts[0][1] != 0:
        return None, "naz_dequeued_total did not start at 0"
    if any(b[1] < a[1] for a, b in itertools.pairwise(pts)):
        return None, "naz_dequeued_total went down (a restart)"
    if data.expected is not None and pts[-1][1] > data.expected:
        return None, "more pops than messages (requeued messages break the order)"
    return pts, "naz_dequeued_total (exact: from 0, monotonic, no restart)"


def dequeue_window(pts: list[tuple[float, float]], ordinal: int) -> tuple[float, float] | None:
    """(last sample before, first sample at or after) the counter reached ``ordinal``."""
    values = [v for _, v in pts]
    i = bisect.bisect_left(values, ordinal)
    if i == 0 or i >= len(pts):
        return None
    return pts[i - 1][0], pts[i][0]


def by_dequeue_time(
    window: tuple[float, float] | None, ordinal: int, outages: list[Outage], end: float
) -> dict | None:
    """The one outage overlapping the pop's bracket (or ended just before it), else None."""
    if window is None:
        return None
    lo, hi = window
    what = (
        f"naz popped it between {clock(lo)} and {clock(hi)} (naz_dequeued_total reached {ordinal})"
    )
    hits = [o for o in outages if o.stop_at < hi and o.end(end) > lo]
    if len(hits) == 1:
        o = hits[0]
        if o.stop_at > lo:
            text = f"{what}, a window in which only {o.label} began ({clock(o.stop_at)})."
        else:
            text = f"{what}, while {o.label} was down."
        return _decision(o, DEQUEUE_TIME, text)
    ended = [o for o in outages if o.start_at is not None and lo - JUST_ENDED_S <= o.start_at <= lo]
    if not hits and len(ended) == 1:
        o = ended[0]
        text = f"{what}, {lo - o.start_at:.1f} s after {o.label} had just ended."
        return _decision(o, DEQUEUE_TIME, text)
    return None


# --------------------------------------------------------------------------- (c) neighbours


def by_neighbours(
    lo: float | None, hi: float | None, outages: list[Outage], end: float, what: str
) -> tuple[dict, list[Outage]]:
    """The outage active when the window opened, else the first one inside it."""
    if lo is None or hi is None:
        return _decision(None, None, f"{what}: no window to place it in."), []
    overlapping = [o for o in outages if o.stop_at <= hi and o.end(end) >= lo]
    if not overlapping:
        return _decision(None, NEIGHBOURS, f"{what} ({clock(lo)} to {clock(hi)}): no outage."), []
    active = [o for o in overlapping if o.stop_at <= lo]
    chosen = active[-1] if active else min(overlapping, key=lambda o: o.stop_at)
    labels = ", ".join(o.label for o in overlapping)
    text = f"{what} ({clock(lo)} to {clock(hi)}) overlaps {labels}; {chosen.label} "
    text += "was down when it opened." if active else "is the first to start in it."
    return _decision(chosen, NEIGHBOURS, text), overlapping


# --------------------------------------------------------------------------- per message


def attribute(
    rows: list[ErrorRow],
    *,
    window: tuple[float, float] | None,
    ordinal: int,
    neighbours: tuple[float | None, float | None, str] | None,
    outages: list[Outage],
    end: float,
) -> dict[str, Any]:
    """The attribution of one message: outage, decided_by, evidence, silent, overlapping.

    ``neighbours`` is (lo, hi, description) or None when the message has no send time to
    place (it never left the queue).
    """
    overlapping: list[Outage] = []
    fallback = _decision(None, None, "no log line, pop time or send window places it.")
    if neighbours is not None:
        lo, hi, what = neighbours
        fallback, overlapping = by_neighbours(lo, hi, outages, end, what)
    decision = (
        by_log_lines(rows, outages, end)
        or by_dequeue_time(window, ordinal, outages, end)
        or fallback
    )
    return {
        **decision,
        "silent": not rows,
        "outages_overlapping": [o.label for o in overlapping],
    }


def duplicated_detail(data: RunData, duplicated: dict[str, int]) -> list[dict[str, Any]]:
    """Each duplicated message: its acceptances and the outage that explains the resend.

    (b) is not used: the pop comes before the first acceptance, not when it went wrong.
    """
    first = first_index(data)
    prefix = f"{data.run_id}/"
    end = data.t_end() or 0.0
    accepted: dict[int, list[float]] = collections.defaultdict(list)
    for e in data.accepted:
        accepted[e.index].append(e.ts)
    errors = errors_by_position(data)
    out = []
    for msg_id, n in sorted(duplicated.items()):
        tail = msg_id[len(prefix) :]
        if not msg_id.startswith(prefix) or not tail.isdigit():
            continue
        pos = int(tail) - first
        times = sorted(accepted.get(pos, []))
        lo, hi = (times[0], times[-1]) if times else (None, None)
        what = "between its first and last acceptance"
        decision = attribute(
            errors.get(pos, []),
            window=None,
            ordinal=pos + 1,
            neighbours=(lo, hi, what),
            outages=data.outages,
            end=end,
        )
        if data.errors is None:
            decision["silent"] = None
        out.append(
            {
                "msg_id": msg_id,
                "index": pos + first,
                "accepts": n,
                "accepted_at": times,
                **decision,
                "errors": error_refs(errors.get(pos, [])),
            }
        )
    return out


def error_refs(rows: Iterable[ErrorRow], limit: int = 5) -> list[dict[str, Any]]:
    return [
        {"timestamp": iso(r.ts), "event": r.event, "error": r.error, "log_id": r.log_id}
        for r in list(rows)[:limit]
    ]


# --------------------------------------------------------------------------- outages


def mark_clean(outages: list[dict[str, Any]], data: RunData) -> None:
    """Set ``clean`` (no other outage overlaps [stop_at, first delivery after]) on each."""
    end = data.t_end() or 0.0
    spans = {o.label: (o.stop_at, o.end(end)) for o in data.outages}
    for entry in outages:
        lo = entry["stop_at"]
        hi = entry["first_delivery_after"] or spans[entry["label"]][1]
        others = [
            label
            for label, (a, b) in spans.items()
            if label != entry["label"] and a <= hi and b >= lo
        ]
        entry["clean"] = not others
        entry["overlapped_by"] = others
        entry["recovery_overlapped"] = bool(others) and entry["recovery_s"] is not None


def recovery(outages: list[dict[str, Any]]) -> dict[str, Any]:
    """The slowest clean recovery, and which outages' recoveries were clean or overlapped."""
    clean = [o for o in outages if o.get("clean")]
    timed = [o for o in clean if o["recovery_s"] is not None]
    slowest = max(timed, key=lambda o: o["recovery_s"]) if timed else None
    return {
        "slowest_clean": (
            {"label": slowest["label"], "recovery_s": slowest["recovery_s"]} if slowest else None
        ),
        "clean": [o["label"] for o in clean],
        "overlapped": [o["label"] for o in outages if not o.get("clean")],
    }


def _is_enquire_link(row: ErrorRow) -> bool:
    return "enquire_link" in row.error or "enquire_link" in row.event


def errors_window(outage: dict[str, Any], data: RunData) -> dict[str, Any]:
    """Error rows from the outage's stop to its first delivery after (or +300 s), grouped.

    ``first_s``/``last_s``/``first_error_s`` are seconds after stop_at. For the SMSC,
    ``enquire_link_errors_s`` are the seconds after start_at of the rows about an
    enquire_link (or sharing its log_id): recovery waiting on naz's keep-alive.
    """
    if data.errors is None:
        none: dict[str, Any] = {"errors_window": None, "first_error_s": None}
        if outage["service"] == "SMSC":
            none["enquire_link_errors_s"] = None
        return none
    lo = outage["stop_at"]
    hi = outage["first_delivery_after"] or lo + ERRORS_WINDOW_S
    rows = [r for r in data.errors or [] if r.ts is not None and lo <= r.ts <= hi]
    groups: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        groups.setdefault((r.event, r.error), []).append(r.ts - lo)
    out: dict[str, Any] = {
        "errors_window": sorted(
            (
                {
                    "event": event,
                    "error": error,
                    "count": len(ts),
                    "first_s": round(min(ts), 3),
                    "last_s": round(max(ts), 3),
                }
                for (event, error), ts in groups.items()
            ),
            key=lambda g: g["first_s"],
        ),
        "first_error_s": round(rows[0].ts - lo, 3) if rows else None,
    }
    if outage["service"] == "SMSC":
        keepalive = {r.log_id for r in rows if _is_enquire_link(r) and r.log_id}
        start = outage["start_at"]
        out["enquire_link_errors_s"] = [
            round(r.ts - start, 3)
            for r in rows
            if start is not None and (_is_enquire_link(r) or (r.log_id and r.log_id in keepalive))
        ]
    return out
