"""The numbers of a run (summary.json), derived from ledger, manifest, timeline and the rest.

Message accounting is :func:`nazbench.nazapp.reconcile.reconcile` on the same manifest,
ledger lines and ``--since`` (run.json's ``started_at``) that run_chaos.yml gives the
reconciliation CLI, so lost/duplicated are the CLI's by construction.
"""

from __future__ import annotations

import bisect
import collections
import json
import time
from typing import Any

from nazbench import __version__ as NAZBENCH_VERSION
from nazbench.nazapp.reconcile import Result, receipt_summary, reconcile
from nazbench.report import evidence, health, outcome
from nazbench.report.data import RunData, iso, service_name
from nazbench.report.outcome import (
    LOST_POPPED,
    LOST_QUEUED,
    LOST_REJECTED,
    LOST_UNKNOWN,
    verdict,
)
from nazbench.stats import quantiles

__all__ = [
    "LOST_POPPED",
    "LOST_QUEUED",
    "LOST_REJECTED",
    "LOST_UNKNOWN",
    "build_summary",
    "verdict",
]

SCHEMA = "nazbench-summary/1"
BUCKET_S = 10.0
MB = 1e6


def reconcile_run(data: RunData) -> Result | None:
    """The reconciliation of the run, exactly as run_chaos.yml's CLI call computes it."""
    if data.manifest is None or data.ledger_lines is None:
        return None
    return reconcile(data.manifest, data.ledger_lines, since=data.since)


# --------------------------------------------------------------------------- intervals


def merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for lo, hi in sorted(intervals):
        if hi <= lo:
            continue
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def overlap(intervals: list[tuple[float, float]], lo: float, hi: float) -> float:
    return sum(max(0.0, min(b, hi) - max(a, lo)) for a, b in intervals)


def inside(intervals: list[tuple[float, float]], t: float) -> bool:
    return any(a <= t < b for a, b in intervals)


def outage_intervals(data: RunData, unit: str | None = None) -> list[tuple[float, float]]:
    end = data.t_end() or 0.0
    return merge([(o.stop_at, o.end(end)) for o in data.outages if unit is None or o.unit == unit])


# --------------------------------------------------------------------------- pieces


def throughput_buckets(data: RunData, bucket_s: float = BUCKET_S) -> list[tuple[float, float]]:
    """(bucket start, accepted submit_sm per second) from the ledger, t0-aligned."""
    t0, t_end = data.t0(), data.t_end()
    if t0 is None or t_end is None:
        return []
    n = int((t_end - t0) // bucket_s) + 1
    counts = [0] * n
    for e in data.accepted:
        i = int((e.ts - t0) // bucket_s)
        if 0 <= i < n:
            counts[i] += 1
    return [(t0 + i * bucket_s, c / bucket_s) for i, c in enumerate(counts)]


def _first_accept_after(accepted_ts: list[float], t: float) -> float | None:
    i = bisect.bisect_right(accepted_ts, t)
    return accepted_ts[i] if i < len(accepted_ts) else None


def outages_summary(data: RunData) -> list[dict[str, Any]]:
    """Per outage: times, duration, deliveries during it and the recovery time after it.

    Recovery = the service's start (timeline, actual) → the first submit_sm the SMSC
    accepted after it (ledger). For Redis that is the first successful delivery after it.
    """
    accepted_ts = [e.ts for e in data.accepted]
    end = data.t_end() or 0.0
    empty_at = queue_evidence(data)["empty_at"]
    out = []
    for o in data.outages:
        o_end = o.end(end)
        first = _first_accept_after(accepted_ts, o.start_at) if o.start_at is not None else None
        entry: dict[str, Any] = {
            "label": o.label,
            "kind": o.kind,
            "service": o.service,
            "unit": o.unit,
            "host": o.host,
            "number": o.number,
            "window": o.window,
            "stop_at": o.stop_at,
            "start_at": o.start_at,
            "stop_iso": iso(o.stop_at),
            "start_iso": iso(o.start_at),
            "duration_s": round(o_end - o.stop_at, 3),
            "delivered_during": sum(1 for t in accepted_ts if o.stop_at <= t < o_end),
            "first_delivery_after": first,
            "recovery_s": round(first - o.start_at, 3) if first is not None else None,
            "recovery_note": None,
            "overlaps": [
                p.label
                for p in data.outages
                if p is not o and p.stop_at < o_end and o.stop_at < p.end(end)
            ],
        }
        if o.start_at is None:
            entry["recovery_note"] = "the timeline never saw the service start again"
        elif first is None:
            remaining = (data.expected or 0) - len({e.index for e in data.accepted})
            if accepted_ts and remaining <= 0:
                entry["recovery_note"] = "no delivery after it: every message was delivered"
            elif empty_at is not None and empty_at <= o.start_at:
                entry["recovery_note"] = (
                    "no delivery after it: the queue was already empty (the rest were lost)"
                )
            else:
                entry["recovery_note"] = "no delivery after it (nothing was accepted later)"
        elif first is not None:
            blockers = [
                p.label
                for p in data.outages
                if p is not o and p.stop_at < first and p.end(end) > o.start_at
            ]
            if blockers:
                entry["recovery_note"] = "includes time " + ", ".join(blockers) + " was down"
        out.append(entry)
    evidence.mark_clean(out, data)
    for entry in out:
        entry.update(evidence.errors_window(entry, data))
    return out


def goodput(data: RunData) -> dict[str, Any]:
    """Accepted msg/s inside and outside outages, over first → last accepted submit_sm."""
    acc = data.accepted
    if not acc:
        return {"span": None, "note": "no accepted submit_sm in the ledger"}
    lo, hi = acc[0].ts, acc[-1].ts
    span = hi - lo
    union = outage_intervals(data)
    inside_s = overlap(union, lo, hi)
    outside_s = span - inside_s
    n_in = sum(1 for e in acc if inside(union, e.ts))
    n_out = len(acc) - n_in
    per_service = {}
    for unit in sorted({o.unit for o in data.outages}):
        ivs = outage_intervals(data, unit)
        secs = overlap(ivs, lo, hi)
        n = sum(1 for e in acc if inside(ivs, e.ts))
        per_service[service_name(unit)] = {
            "inside_s": round(secs, 3),
            "delivered_inside": n,
            "goodput_inside_msg_per_s": round(n / secs, 3) if secs > 0 else None,
        }
    return {
        "span": [lo, hi],
        "span_s": round(span, 3),
        "overall_msg_per_s": round(len(acc) / span, 3) if span > 0 else None,
        "inside_s": round(inside_s, 3),
        "outside_s": round(outside_s, 3),
        "delivered_inside": n_in,
        "delivered_outside": n_out,
        "goodput_inside_msg_per_s": round(n_in / inside_s, 3) if inside_s > 0 else None,
        "goodput_outside_msg_per_s": round(n_out / outside_s, 3) if outside_s > 0 else None,
        "per_service": per_service,
        "note": "inside = any chaos service down; accepted submit_sm (ledger) per second",
    }


def queue_evidence(data: RunData) -> dict[str, Any]:
    """What the run tells about the queue at its end (to tell lost from never sent)."""
    ev: dict[str, Any] = {"empty_at": None, "length_at_end": None, "source": None}
    series = data.metrics.get("queue_length")
    if series and series.rows:
        last = max(series.rows, key=lambda r: r[0])
        ev.update(length_at_end=int(last[1]), at=last[0], source="metrics queue_length")
        if last[1] == 0:
            ev["empty_at"] = last[0]
        return ev
    for key in ("queue_end", "queue_length_end"):
        value = (data.run or {}).get(key)
        if isinstance(value, int):
            ev.update(length_at_end=value, source=f"run.json {key}")
            return ev
    # The chaos loop's stop_when (run_chaos.yml) is "all delivered or the queue empty";
    # with Redis checked and fewer than all delivered, it fired because the queue was empty.
    plan = next((r for r in data.timeline if r.get("record") == "plan"), None)
    fired = [r for r in data.timeline if r.get("record") == "stop_when" and r.get("rc") == 0]
    delivered = len({e.index for e in data.accepted})
    expected = data.expected
    if (
        plan
        and fired
        and "--redis-host" in str(plan.get("stop_when") or "")
        and expected is not None
        and delivered < expected
    ):
        ev.update(
            empty_at=fired[0]["at"],
            length_at_end=0,
            source="timeline stop_when (queue empty while messages were undelivered)",
        )
    return ev


def lost_class(
    msg_id: str, index: int, result: Result, max_accepted: int, queued_from: int | None
) -> str:
    """Why we think a message was lost: rejected, popped, still queued or unknown."""
    if msg_id in result.rejected_only:
        return LOST_REJECTED
    if index < max_accepted:
        return LOST_POPPED
    if queued_from is not None:
        return LOST_QUEUED if index >= queued_from else LOST_POPPED
    return LOST_UNKNOWN


def faults_by_kind(
    outages: list[dict[str, Any]], lost: list[dict[str, Any]], duplicated: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per fault kind (the chaos loop's services[].kinds): its outages, their downtime, the
    messages lost and duplicated that the evidence puts at one of them, the recovery after
    them (n/p50/p99/max, s) and naz's error rows in their windows."""
    rows: dict[str, dict[str, Any]] = {}
    recoveries: dict[str, list[float]] = {}
    kind_of = {o["label"]: o["kind"] for o in outages}
    for o in outages:
        row = rows.setdefault(
            o["kind"],
            {"kind": o["kind"], "outages": 0, "services": [], "downtime_s": 0.0, "lost": 0,
             "duplicated": 0, "naz_error_rows": 0},
        )  # fmt: skip
        row["outages"] += 1
        if o["service"] not in row["services"]:
            row["services"].append(o["service"])
        row["downtime_s"] = round(row["downtime_s"] + o["duration_s"], 3)
        if o["recovery_s"] is not None:
            recoveries.setdefault(o["kind"], []).append(o["recovery_s"])
        row["naz_error_rows"] += sum(e["count"] for e in o.get("errors_window") or [])
    for items, key in ((lost, "lost"), (duplicated, "duplicated")):
        for x in items:
            kind = kind_of.get(x.get("outage"))
            if kind is not None:
                rows[kind][key] += 1
    for kind, row in rows.items():
        row["recovery_s"] = quantiles(recoveries.get(kind, []))
    return sorted(rows.values(), key=lambda r: r["kind"])


def lost_detail(data: RunData, result: Result) -> list[dict[str, Any]]:
    """Each lost message: why we think it was lost, when it was sent and which outage.

    The queue is FIFO (producer LPUSH in index order, naz BRPOP) with one consumer, so a
    lost message was popped between the last accepted message before it and the first
    accepted message after it; the SMSC's times of those two bracket its send time. The
    outage comes from the best evidence (:func:`nazbench.report.evidence.attribute`).
    """
    first = evidence.first_index(data)
    prefix = f"{data.run_id}/"
    acc_by_index: dict[int, float] = {}
    for e in data.accepted:
        acc_by_index.setdefault(e.index, e.ts)
    indices = sorted(acc_by_index)
    max_accepted = indices[-1] if indices else -1
    ev = queue_evidence(data)
    count = data.expected or 0
    queued_from = None
    if ev["length_at_end"] is not None:
        queued_from = count - ev["length_at_end"]  # the last Q indices never left the queue
    end = data.t_end()
    errors = evidence.errors_by_position(data)
    pops, _why = evidence.dequeue_clock(data)
    out = []
    for msg_id in result.lost:
        index = int(msg_id[len(prefix) :]) - first
        pos = bisect.bisect_left(indices, index)
        prev_ts = acc_by_index[indices[pos - 1]] if pos > 0 else None
        next_ts = acc_by_index[indices[pos]] if pos < len(indices) else None
        cls = lost_class(msg_id, index, result, max_accepted, queued_from)
        lo = prev_ts if prev_ts is not None else data.t0()
        hi = next_ts if next_ts is not None else end
        rows = errors.get(index, [])
        if cls == LOST_QUEUED:
            decision = {
                "outage": None,
                "decided_by": None,
                "evidence": "it never left the queue: no outage lost it.",
                "silent": not rows,
                "outages_overlapping": [],
            }
        else:
            window = evidence.dequeue_window(pops, index + 1) if pops else None
            # Only a message known to have been popped has a send window to place.
            placed = cls in (LOST_POPPED, LOST_REJECTED)
            what = "it was sent between the acceptance of its neighbours"
            decision = evidence.attribute(
                rows,
                window=window,
                ordinal=index + 1,
                neighbours=(lo, hi, what) if placed else None,
                outages=data.outages,
                end=end or 0.0,
            )
        if data.errors is None:
            decision["silent"] = None  # no errors.csv: whether it logged is unknown
        out.append(
            {
                "msg_id": msg_id,
                "index": index + first,
                "class": cls,
                "sent_after": prev_ts,
                "sent_before": next_ts,
                **decision,
                "rejected_statuses": result.rejected_only.get(msg_id),
                "errors": evidence.error_refs(rows),
            }
        )
    return out


def receipts_summary(data: RunData, result: Result | None) -> dict[str, Any] | None:
    """The run's delivery receipts (reconcile's tally), overall and per outage.

    A receipt belongs to the outage it was first sent in or after, until the next outage
    starts ("in or after <outage>"); receipts first sent before the first outage have a
    row of their own. None without a reconciliation.
    """
    if result is None:
        return None
    out = receipt_summary(result.receipts.values())
    out["per_outage"] = []
    if not out["sent"] and not out["acks_without_receipt"]:
        out["note"] = (
            "the SMSC sent no delivery receipts in this run (smsc_receipts off, or naz "
            "asked for none: registered_delivery 0)"
        )
        return out
    outages = sorted(data.outages, key=lambda o: o.stop_at)
    starts = [o.stop_at for o in outages]
    windows = [("before the first outage", float("-inf"), starts[0] if starts else float("inf"))]
    for i, o in enumerate(outages):
        upto = starts[i + 1] if i + 1 < len(starts) else float("inf")
        windows.append((f"in or after {o.label}", o.stop_at, upto))
    for label, lo, hi in windows:
        chosen = [
            r
            for r in result.receipts.values()
            if r.first_sent is not None and lo <= r.first_sent < hi
        ]
        if not chosen:
            continue
        part = receipt_summary(chosen)
        out["per_outage"].append(
            {
                "window": label,
                "sent": part["sent"],
                "acked_once": part["acked_once"],
                "acked_more_than_once": part["acked_more_than_once"],
                "never_acked": part["never_acked"],
                "ack_latency_s": part["ack_latency_s"],
            }
        )
    return out


def errors_summary(data: RunData) -> dict[str, Any]:
    if data.errors is None:
        return {"source": None, "note": "no errors.csv in the run directory"}
    by_error = collections.Counter(r.error for r in data.errors)
    by_event = collections.Counter(r.event for r in data.errors)
    union = outage_intervals(data)
    during = sum(1 for r in data.errors if r.ts is not None and inside(union, r.ts))
    t0 = data.t0()
    per_minute: collections.Counter = collections.Counter()
    if t0 is not None:
        for r in data.errors:
            if r.ts is not None:
                per_minute[int((r.ts - t0) // 60)] += 1
    return {
        "source": data.errors_path.name if data.errors_path else None,
        "rows": len(data.errors),
        "rows_of_other_runs_left_out": data.errors_other_runs,
        "during_outages": during,
        "outside_outages": len(data.errors) - during,
        "distinct_errors": len(by_error),
        "by_error": [{"error": e, "count": n} for e, n in by_error.most_common(25)],
        "by_event": dict(by_event.most_common()),
        "peak_per_minute": max(per_minute.values()) if per_minute else 0,
    }


def _series_stats(data: RunData, name: str) -> dict[str, Any] | None:
    series = data.metrics.get(name)
    if not series:
        return None
    groups = series.by_labels()
    out = {}
    for key, points in groups.items():
        vals = [v for _, v in points]
        out[",".join(f"{k}={v}" for k, v in key) or "all"] = {
            "first": vals[0],
            "last": vals[-1],
            "min": min(vals),
            "max": max(vals),
            "mean": sum(vals) / len(vals),
        }
    return out


def naz_summary(data: RunData) -> dict[str, Any]:
    run = data.run or {}
    restarts = run.get("naz_restarts")
    out: dict[str, Any] = {
        "restarts": restarts if isinstance(restarts, int) else "unknown",
        "restarts_source": "run.json naz_restarts" if isinstance(restarts, int) else None,
    }
    series = data.metrics.get("naz_rss_bytes")
    if series and series.rows:
        pts = sorted((t, v) for t, v, _ in series.rows)
        vals = [v for _, v in pts]
        out.update(
            rss_start_mb=round(vals[0] / MB, 2),
            rss_end_mb=round(vals[-1] / MB, 2),
            rss_min_mb=round(min(vals) / MB, 2),
            rss_max_mb=round(max(vals) / MB, 2),
            rss_source="metrics naz_rss_bytes",
        )
    elif isinstance(run.get("naz_rss_start_bytes"), int | float):
        start, end = run["naz_rss_start_bytes"], run.get("naz_rss_end_bytes")
        out.update(
            rss_start_mb=round(start / MB, 2),
            rss_end_mb=round(end / MB, 2) if isinstance(end, int | float) and end else None,
            rss_min_mb=None,
            rss_max_mb=None,
            rss_source="run.json naz_rss_start_bytes/naz_rss_end_bytes (two samples)",
        )
    else:
        out.update(rss_start_mb=None, rss_end_mb=None, rss_source=None)
    dq = data.metrics.get("naz_dequeued_total")
    if dq and dq.rows:
        out["dequeued_at_end"] = int(max(dq.rows, key=lambda r: r[0])[1])
    return out


PROBE_FILE = "probe-vs-timeline.json"
PROBE_TARGETS = {"smsc": "SMSC", "redis": "Redis"}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def unplanned_outages(data: RunData) -> dict[str, Any]:
    """Outages the independent TCP probe saw that the chaos timeline did not plan.

    From the ``unplanned`` list of the run's probe-vs-timeline.json (nazbench.lab.portprobe
    compare): ``{"target": "smsc"|"redis", "down_at": epoch, "up_at": epoch|null,
    "duration_s": float|null}``, e.g. a crash that systemd restarted. No file, no key or
    an empty list: none.
    """
    path = data.dir / PROBE_FILE
    out: dict[str, Any] = {"source": None, "outages": [], "skipped": 0, "note": None}
    try:
        probe = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        out["note"] = f"no {PROBE_FILE} in the run directory"
        return out
    except ValueError as exc:
        out["note"] = f"{PROBE_FILE} is not valid JSON: {exc}"
        return out
    out["source"] = PROBE_FILE
    items = probe.get("unplanned") if isinstance(probe, dict) else None
    if items is None:
        out["note"] = f"{PROBE_FILE} has no unplanned list (an older probe comparison)"
        return out
    for item in items if isinstance(items, list) else [items]:
        down = _number(item.get("down_at")) if isinstance(item, dict) else None
        if down is None:
            out["skipped"] += 1
            continue
        up = _number(item.get("up_at"))
        duration = _number(item.get("duration_s"))
        if duration is None and up is not None:
            duration = round(up - down, 3)
        target = str(item.get("target"))
        out["outages"].append(
            {
                "target": target,
                "service": PROBE_TARGETS.get(target, target),
                "down_at": down,
                "up_at": up,
                "down_iso": iso(down),
                "up_iso": iso(up),
                "duration_s": duration,
            }
        )
    out["outages"].sort(key=lambda o: o["down_at"])
    if out["skipped"]:
        out["note"] = f"{out['skipped']} unplanned entries without a down_at were left out"
    return out


# --------------------------------------------------------------------------- all


def build_summary(data: RunData) -> dict[str, Any]:
    result = reconcile_run(data)
    messages: dict[str, Any]
    lost: list[dict[str, Any]] = []
    duplicated: list[dict[str, Any]] = []
    if result is None:
        why = "no manifest.json" if data.manifest is None else "no ledger"
        messages = {"queued": data.expected, "delivered_once": None, "note": why}
        if data.reconcile_json:
            messages["reconcile_json_counts"] = data.reconcile_json.get("counts")
    else:
        counts = result.counts()
        lost = lost_detail(data, result)
        duplicated = evidence.duplicated_detail(data, result.duplicated)
        by_class = collections.Counter(x["class"] for x in lost)
        agrees = None
        if data.reconcile_json and "counts" in data.reconcile_json:
            old = data.reconcile_json["counts"]
            # a count added since that reconcile.json was written (receipt_lines) is 0 there
            same = {k: counts.get(k) for k in old} == old and all(
                counts[k] == 0 for k in counts.keys() - old.keys()
            )
            agrees = same and sorted(data.reconcile_json.get("lost", [])) == sorted(result.lost)
        messages = {
            "queued": counts["expected"],
            "delivered_once": counts["delivered_once"],
            "lost": counts["lost"],
            "lost_popped": by_class[LOST_POPPED],
            "lost_never_popped": by_class[LOST_QUEUED],
            "lost_unknown": by_class[LOST_UNKNOWN],
            "lost_rejected": by_class[LOST_REJECTED],
            "duplicated": counts["duplicated"],
            "duplicate_extra_accepts": counts["duplicate_extra_accepts"],
            "unexpected": counts["unexpected"],
            "reconcile": counts,
            "duplicated_ids": result.duplicated,
            "since": data.since,
            "reconcile_json_agrees": agrees,
        }
    t0, t_end = data.t0(), data.t_end()
    buckets = throughput_buckets(data)
    rates = [r for _, r in buckets]
    params = data.params or {}
    summary: dict[str, Any] = {
        "schema": SCHEMA,
        "run_id": data.run_id,
        "generated_at": iso(time.time()),
        "generator": f"nazbench {NAZBENCH_VERSION}",
        "run": {
            "experiment": data.experiment,
            "profile": data.profile,
            "started_at": data.since,
            "t0": t0,
            "t0_iso": iso(t0),
            "t_end": t_end,
            "duration_s": (data.run or {}).get("duration_s"),
            "chaos_seed": params.get("chaos_seed"),
            "end_reason": next(
                (r.get("reason") for r in data.timeline if r.get("record") == "end"), None
            ),
        },
        "params": data.params,
        "versions": data.versions,
        "producer": (data.manifest or {}).get("producer"),
        "messages": messages,
        "lost": lost,
        "duplicated": duplicated,
        "silent_losses": (sum(1 for x in lost if x["silent"]) if data.errors is not None else None),
        "queue_evidence": queue_evidence(data),
        "outages": outages_summary(data),
        "unplanned_outages": unplanned_outages(data),
        "throughput": {
            "bucket_s": BUCKET_S,
            "peak_bucket_msg_per_s": max(rates) if rates else None,
            **goodput(data),
        },
        "naz": naz_summary(data),
        "errors": errors_summary(data),
        "receipts": receipts_summary(data, result),
        "hosts": {
            "memory_available_bytes": _series_stats(data, "host_memory_available_bytes"),
            "cpu_busy_ratio": _series_stats(data, "host_cpu_busy_ratio"),
        },
        "queue": _series_stats(data, "queue_length"),
        "metrics": {
            "dir": str(data.metrics_dir.relative_to(data.dir)) if data.metrics_dir else None,
            "available": sorted(data.metrics),
            "index_errors": (data.metrics_index or {}).get("errors"),
            "index_empty": (data.metrics_index or {}).get("empty"),
        },
        "inputs": data.inputs,
        "missing": data.missing,
        "notes": list(data.notes),
    }
    if summary["lost"] and messages.get("lost_unknown"):
        summary["notes"].append(
            f"{messages['lost_unknown']} lost messages come after the last delivered one; the "
            "run recorded no end-of-run queue length (no queue_length metrics, no stop_when "
            "evidence), so whether they were popped and lost or never left Redis is unknown."
        )
    summary["recovery"] = evidence.recovery(summary["outages"])
    summary["faults_by_kind"] = faults_by_kind(summary["outages"], lost, duplicated)
    summary["latency"] = health.latency(data, summary["outages"])
    summary["unanswered"] = health.unanswered(data)
    summary["rates"] = health.rates(data)
    summary["health"] = health.health(data)
    summary["context"] = outcome.context(data, summary)
    summary["outcome"] = outcome.outcome(summary, data)
    summary["verdict"] = verdict(summary)
    return summary
