"""naz's health as the run's series show it: sessions, a reader stall, latency, rates.

Every function reads :class:`~nazbench.report.data.RunData` only and returns a plain dict
for summary.json; an absent series gives ``source: None`` and a note, never an error.
Metric names are nazbench.promexport's (``metrics/<name>.csv``).
"""

from __future__ import annotations

import bisect
import statistics
from typing import Any

from nazbench.promexport import parse_duration
from nazbench.report.data import RunData
from nazbench.report.evidence import clock

STALL_BUCKET_S = 10.0
STALL_MIN_S = 60.0
STALL_EPISODE_S = 20.0
STALL_GAP_S = 10.0  # acceptances further apart end an episode
STALL_ABS_RATE = 0.05  # submit_sm_resp/s
STALL_RESP_SHARE = 0.1  # naz's resp rate below this share of the ledger's: ≈ 0
SESSION_OVERLAP_S = 5.0
RATE_MINUTE_S = 60.0
RATE_TOLERANCE = 0.2
STEADY_AFTER_S = 60.0
LATENCY_AFTER_S = 120.0
RATE_SERIES = ("naz_submit_sm_resp_rate", "naz_submit_sm_rate", "smsc_submit_sm_rate")


def points(data: RunData, name: str) -> list[tuple[float, float]]:
    """A metric's (t, value summed over labels) in time order; [] when absent."""
    series = data.metrics.get(name)
    return series.totals() if series else []


def half_window_s(data: RunData) -> float:
    """Half the export's rate() window: a rate sample at t describes [t - w, t]."""
    try:
        return parse_duration(str((data.metrics_index or {}).get("rate_window") or "30s")) / 2
    except ValueError:
        return 15.0


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _round(value: float | None, digits: int = 3) -> float | None:
    return round(value, digits) if value is not None else None


# --------------------------------------------------------------------------- latency


def latency(data: RunData, outages: list[dict[str, Any]]) -> dict[str, Any]:
    """p50/p99 of submit_sm → submit_sm_resp (seconds): medians, maxima, steady, per outage.

    ``steady_p50_s`` is the median p50 outside every outage and the 60 s after it;
    ``p99_max_after_s`` the largest p99 from an outage's start to 120 s after its first
    delivery after.
    """
    p50, p99 = points(data, "naz_submit_sm_latency_p50"), points(data, "naz_submit_sm_latency_p99")
    out: dict[str, Any] = {"source": None, "per_outage": []}
    if not p50 and not p99:
        out["note"] = "no naz_submit_sm_latency_p50/p99 metrics"
        return out
    out["source"] = "metrics naz_submit_sm_latency_p50/p99"
    for name, pts in (("p50", p50), ("p99", p99)):
        vals = [v for _, v in pts]
        out[f"{name}_median_s"] = _round(statistics.median(vals)) if vals else None
        out[f"{name}_max_s"] = _round(max(vals)) if vals else None
    end = data.t_end() or 0.0
    disturbed = [(o.stop_at, o.end(end) + STEADY_AFTER_S) for o in data.outages]
    steady = [v for t, v in p50 if not any(a <= t <= b for a, b in disturbed)]
    out["steady_p50_s"] = _round(statistics.median(steady)) if steady else None
    for o in outages:
        if o["start_at"] is None:
            continue
        hi = (o["first_delivery_after"] or o["start_at"]) + LATENCY_AFTER_S
        after = [v for t, v in p99 if o["start_at"] <= t <= hi]
        out["per_outage"].append(
            {"label": o["label"], "p99_max_after_s": _round(max(after)) if after else None}
        )
    return out


def unanswered(data: RunData) -> dict[str, Any]:
    """naz_unanswered_total at the end and at most.

    The hook counts a submit_sm as unanswered when its response has not come within its
    pending TTL (300 s by default), checked when naz sends its next submit_sm.
    """
    pts = points(data, "naz_unanswered_total")
    if not pts:
        return {"at_end": None, "max": None, "source": None, "note": "no naz_unanswered_total"}
    return {
        "at_end": int(pts[-1][1]),
        "max": int(max(v for _, v in pts)),
        "source": "metrics naz_unanswered_total",
        "note": "submit_sm naz sent whose submit_sm_resp did not come within the hook's "
        "pending TTL (300 s), counted when naz sends its next submit_sm",
    }


# --------------------------------------------------------------------------- rates


def _minute_means(
    pts: list[tuple[float, float]], t0: float, shift: float, n: int
) -> list[float | None]:
    sums: list[list[float]] = [[] for _ in range(n)]
    for t, v in pts:
        i = int((t - shift - t0) // RATE_MINUTE_S)
        if 0 <= i < n:
            sums[i].append(v)
    return [_mean(s) for s in sums]


def _compare(ledger: list[float], series: list[float | None]) -> dict[str, Any]:
    """Minutes with traffic where a series is > 20 % off the ledger, and the worst one."""
    off, worst = 0, 0.0
    for want, got in zip(ledger, series, strict=True):
        if want <= 0 or got is None:
            continue
        rel = (got - want) / want
        off += abs(rel) > RATE_TOLERANCE
        worst = rel if abs(rel) > abs(worst) else worst
    return {"minutes_off": off, "worst_rel_diff": round(worst, 3)}


def rates(data: RunData) -> dict[str, Any]:
    """How the rate series relate to the ledger's accepted submit_sm per second.

    Ledger: accepted per 10 s bucket from its first to its last acceptance, averaged; a
    series: its mean over the same span (samples shifted back by half the rate window).
    Per minute with traffic, a series more than 20 % off the ledger counts as off.
    """
    acc = [e.ts for e in data.accepted]
    present = [name for name in RATE_SERIES if name in data.metrics]
    if len(acc) < 2 or not present:
        return {"note": "no ledger or no rate series to compare", "series": {}}
    lo, hi, shift = acc[0], acc[-1], half_window_s(data)
    n_buckets = int((hi - lo) // STALL_BUCKET_S) + 1
    ledger_rate = len(acc) / (n_buckets * STALL_BUCKET_S)
    n_min = int((hi - lo) // RATE_MINUTE_S) + 1
    per_min = [0.0] * n_min
    for t in acc:
        per_min[int((t - lo) // RATE_MINUTE_S)] += 1 / RATE_MINUTE_S
    series: dict[str, Any] = {}
    for name in present:
        pts = points(data, name)
        inside = [v for t, v in pts if lo <= t - shift <= hi]
        series[name] = {
            "mean_msg_per_s": _round(_mean(inside)),
            **_compare(per_min, _minute_means(pts, lo, shift, n_min)),
        }
    out = {
        "ledger_msg_per_s": round(ledger_rate, 3),
        "minutes_with_traffic": sum(1 for r in per_min if r > 0),
        "series": series,
    }
    out["note"] = _rates_note(out)
    return out


def _rates_note(r: dict[str, Any]) -> str:
    resp = r["series"].get("naz_submit_sm_resp_rate")
    text = (
        "naz_submit_sm_resp_rate counts the submit_sm_resp naz received; the ledger the "
        f"submit_sm the SMSC accepted: {r['ledger_msg_per_s']}/s over the ledger's span"
    )
    if resp is None:
        return text + "; no naz_submit_sm_resp_rate series."
    text += f" vs {resp['mean_msg_per_s']}/s for naz_submit_sm_resp_rate"
    if not resp["minutes_off"]:
        return text + "; they agree within 20 % in every minute with traffic."
    best = min(
        r["series"].items(), key=lambda kv: (kv[1]["minutes_off"], abs(kv[1]["worst_rel_diff"]))
    )
    text += (
        f"; in {resp['minutes_off']} of {r['minutes_with_traffic']} minutes with traffic "
        f"they differ by more than 20 % (worst {resp['worst_rel_diff']:+.0%})"
    )
    if best[0] != "naz_submit_sm_resp_rate":
        text += f"; {best[0]} matches the ledger best ({best[1]['minutes_off']} minutes off)"
    return text + "."


# --------------------------------------------------------------------------- sessions


def _runs_above_one(pts: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """Runs of >= 2 consecutive samples with more than one bound session."""
    runs, cur = [], []
    for t, v in [*pts, (None, 0.0)]:
        if v > 1:
            cur.append((t, v))
            continue
        if len(cur) >= 2:
            runs.append({"from": cur[0][0], "to": cur[-1][0], "max": int(max(x for _, x in cur))})
        cur = []
    return runs


def _ledger_overlaps(data: RunData) -> tuple[list[dict[str, Any]], int]:
    """Spans where two or more sessions' accepted submits overlap by > 5 s; max concurrency."""
    spans: dict[str, list[float]] = {}
    for e in data.accepted:
        if e.session is not None:
            span = spans.setdefault(e.session, [e.ts, e.ts])
            span[0], span[1] = min(span[0], e.ts), max(span[1], e.ts)
    edges = sorted([(a, 1) for a, _ in spans.values()] + [(b, -1) for _, b in spans.values()])
    out, depth, peak, opened, top = [], 0, 0, None, 0
    for t, step in edges:
        depth += step
        peak = max(peak, depth)
        if depth >= 2 and opened is None:
            opened, top = t, depth
        elif depth >= 2:
            top = max(top, depth)
        elif opened is not None:
            if t - opened > SESSION_OVERLAP_S:
                out.append({"from": opened, "to": t, "max": top})
            opened = None
    return out, peak


def sessions(data: RunData) -> dict[str, Any]:
    """Bound sessions: smsc_bound_sessions when exported, else the ledger's session spans."""
    ledger_sessions = len({e.session for e in data.accepted if e.session is not None})
    pts = points(data, "smsc_bound_sessions")
    out: dict[str, Any] = {"ledger_sessions": ledger_sessions, "binds": None}
    binds = data.metrics.get("smsc_binds_total")
    if binds:
        out["binds"] = {
            dict(key).get("result", "all"): int(pts_[-1][1])
            for key, pts_ in binds.by_labels().items()
        }
    if pts:
        multi = _runs_above_one(pts)
        out.update(source="metrics smsc_bound_sessions", max_bound=int(max(v for _, v in pts)))
        out["multi"] = multi
        out["note"] = (
            f"{len(multi)} spans with more than one bound session (>= 2 samples)"
            if multi
            else "never more than one session bound at the SMSC for 2 samples"
        )
        return out
    if not ledger_sessions:
        out.update(source=None, max_bound=None, multi=[], note="no smsc_bound_sessions, no ledger")
        return out
    multi, peak = _ledger_overlaps(data)
    out.update(source="ledger sessions", max_bound=peak, multi=multi)
    out["note"] = (
        f"no smsc_bound_sessions metric: {ledger_sessions} SMSC sessions in the ledger; "
        + (
            f"{len(multi)} spans where sessions' accepted submits overlap by more than 5 s"
            if multi
            else "their accepted submits never overlap by more than 5 s (one after another)"
        )
    )
    return out


# --------------------------------------------------------------------------- stall


def _value_at(pts: list[tuple[float, float]], t: float) -> float | None:
    before = [v for s, v in pts if s <= t]
    return before[-1] if before else None


def _count(acc: list[float], lo: float, hi: float) -> int:
    """Accepted submits (sorted times) in [lo, hi]."""
    return bisect.bisect_right(acc, hi) - bisect.bisect_left(acc, lo)


def _silent_runs(data: RunData, acc: list[float]) -> list[tuple[float, float]]:
    """(from, to) spans in which naz provably got no submit_sm_resp.

    A naz_submit_sm_resp_rate sample at t covers [t - w, t] (w the rate window); a run of
    samples at ≈ 0 (below 0.05/s and 10 % of the ledger's rate over the same window) is
    silent over [first - w, last]. Without that series, naz_unanswered_total rising from
    one sample to the next stands in, over (previous sample, last rising one].
    """
    resp = points(data, "naz_submit_sm_resp_rate")
    if resp:
        w = 2 * half_window_s(data)
        flags = [
            v <= max(STALL_ABS_RATE, STALL_RESP_SHARE * _count(acc, t - w, t) / w) for t, v in resp
        ]
        return [(resp[a][0] - w, resp[b][0]) for a, b in _runs(flags)]
    una = points(data, "naz_unanswered_total")
    flags = [i > 0 and v > una[i - 1][1] for i, (_, v) in enumerate(una)]
    return [(una[a - 1][0], una[b][0]) for a, b in _runs(flags)]


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    """(first, last) indices of each run of True."""
    out, start = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            out.append((start, i - 1))
            start = None
    return out


def _clusters(acc: list[float], lo: float, hi: float) -> list[tuple[float, float, int]]:
    """(first, last, count) of the runs of acceptances in [lo, hi] at most 10 s apart."""
    out: list[tuple[float, float, int]] = []
    for t in acc[bisect.bisect_left(acc, lo) : bisect.bisect_right(acc, hi)]:
        if out and t - out[-1][1] <= STALL_GAP_S:
            out[-1] = (out[-1][0], t, out[-1][2] + 1)
        else:
            out.append((t, t, 1))
    return out


def episodes(data: RunData) -> list[dict[str, Any]]:
    """Spans in which the SMSC kept accepting while naz got no response at all.

    A silent span (no submit_sm_resp, :func:`_silent_runs`) may hold several outages: the
    silence goes on across them as long as naz gets no answer (a reader that stopped does
    not come back with the SMSC). Its acceptances no more than 10 s apart form clusters;
    ``accepting_s`` is the time spent in them, so outages and naz's reconnects (nothing
    accepted) do not count, and neither does a stray acceptance before an outage.
    Episodes with ``accepting_s`` >= 20 s are listed, from their first to their last
    acceptance. ``to_end``: the silence lasts to the series' last sample.
    """
    acc = [e.ts for e in data.accepted]
    resp = points(data, "naz_submit_sm_resp_rate") or points(data, "naz_unanswered_total")
    out = []
    for lo, hi in _silent_runs(data, acc):
        clusters = _clusters(acc, lo, hi)
        accepting = sum(last - first for first, last, _ in clusters)
        if clusters and accepting >= STALL_EPISODE_S:
            first, last = clusters[0][0], clusters[-1][1]
            out.append(
                {
                    "from": first,
                    "to": last,
                    "duration_s": round(last - first, 3),
                    "accepting_s": round(accepting, 3),
                    "accepted": sum(n for _, _, n in clusters),
                    "to_end": hi >= resp[-1][0],
                }
            )
    return out


def stall(data: RunData) -> dict[str, Any]:
    """naz stopped reading: the SMSC kept accepting while naz got no responses, >= 60 s.

    Outages do not count: while the SMSC is down the ledger accepts nothing. Shorter
    spans (>= 20 s) are listed in ``episodes``.
    """
    has = [n for n in ("naz_submit_sm_resp_rate", "naz_unanswered_total") if n in data.metrics]
    out: dict[str, Any] = {"detected": False, "from": None, "to": None, "duration_s": None}
    if not data.accepted or not has:
        out.update(source=None, episodes=[], evidence="no ledger or no naz response metrics")
        return out
    out["source"] = "ledger + metrics " + ", ".join(has)
    found = episodes(data)
    out["episodes"] = found
    longest = max(found, key=lambda e: e["accepting_s"], default=None)
    if longest is None or longest["accepting_s"] < STALL_MIN_S:
        out["evidence"] = _no_stall_sentence(longest)
        return out
    out.update(detected=True, **{k: longest[k] for k in ("from", "to", "duration_s", "to_end")})
    out["evidence"] = _stall_sentence(data, longest)
    return out


def _no_stall_sentence(longest: dict[str, Any] | None) -> str:
    if longest is None:
        return "naz received responses whenever the SMSC accepted submits."
    return (
        f"no span of {STALL_MIN_S:.0f} s without responses; the longest, from "
        f"{clock(longest['from'])}, lasted {longest['accepting_s']:.0f} s while the SMSC "
        f"accepted {longest['accepted']} submit_sm."
    )


def _stall_sentence(data: RunData, e: dict[str, Any]) -> str:
    lo, hi = e["from"], e["to"]
    text = (
        f"from {clock(lo)} for {hi - lo:.0f} s{' (to the end of the run)' if e['to_end'] else ''}"
        f" the SMSC accepted {e['accepted']} submit_sm (ledger, {e['accepting_s']:.0f} s of "
        "accepting) while naz received no submit_sm_resp"
    )
    una = points(data, "naz_unanswered_total")
    a = _value_at(una, lo)
    b = una[-1][1] if una and e["to_end"] else _value_at(una, hi)
    if a is not None and b is not None and b > a:
        text += f" and naz_unanswered_total rose from {a:,.0f} to {b:,.0f}"
    if e["to_end"]:
        return text + ": naz stopped reading the SMSC's answers."
    return text + ": naz read none of the SMSC's answers for that long, then resumed."


def health(data: RunData) -> dict[str, Any]:
    return {"sessions": sessions(data), "stall": stall(data)}
