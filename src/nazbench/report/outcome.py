"""The run's result first: PASS or FAIL with reasons, the one-line verdict, the context.

FAIL reasons (``code``): ``lost``, ``duplicated``, ``unexpected``, ``naz_restarted``,
``logs_mismatch``, ``accounting_unavailable``, ``reader_stall``, ``multiple_sessions``.
Warnings: ``unplanned_outages``, ``unanswered_at_end``, ``missing_inputs``,
``naz_restarts_unknown``, ``reconcile_json_disagrees``. No logs-check.json is a missing
input (``missing_inputs``), not a failure.
"""

from __future__ import annotations

import collections
from typing import Any

from nazbench.report.data import RunData

# summary.py's loss classes (kept as text here to avoid a circular import)
LOST_POPPED = "popped, lost in flight"
LOST_QUEUED = "never popped (still queued at the end)"
LOST_UNKNOWN = "unknown: popped and lost, or still queued"
LOST_REJECTED = "rejected by the SMSC"

NAZ_PARAM_KEYS = ("message_count", "message_seed", "lab_wan_rtt_ms", "run_watch_interval")


def _item(code: str, text: str) -> dict[str, str]:
    return {"code": code, "text": text}


def _label_key(label: str) -> tuple[str, int]:
    """'SMSC outage 10' after 'SMSC outage 9'."""
    head, _, number = label.rpartition(" ")
    return (head, int(number)) if number.isdigit() else (label, 0)


def _where(items: list[dict[str, Any]], most: int = 4) -> str:
    """Where they were, by outage in order; past ``most`` outages, by service."""
    by_outage = collections.Counter(x.get("outage") for x in items)
    outside = by_outage.pop(None, 0)
    labels = sorted(by_outage, key=_label_key)
    if len(labels) <= most:
        parts = [f"{by_outage[k]} at {k}" for k in labels]
    else:
        parts = []
        for service in sorted({_label_key(k)[0] for k in labels}):
            counts = [by_outage[k] for k in labels if _label_key(k)[0] == service]
            lo, hi = min(counts), max(counts)
            each = f"{lo}" if lo == hi else f"{lo} to {hi}"
            parts.append(f"{sum(counts)} at {len(counts)} {service}s ({each} each)")
    if outside:
        parts.append(f"{outside} outside any outage")
    return ", ".join(parts)


def _message_reasons(summary: dict[str, Any]) -> list[dict[str, str]]:
    m = summary["messages"]
    if m.get("delivered_once") is None:
        why = m.get("note", "no data")
        return [_item("accounting_unavailable", f"message accounting unavailable ({why})")]
    out = []
    # Messages still queued at the end were never popped: the run ended before naz drained
    # the queue (a warning, see _queued_warning), not a loss by naz.
    lost = [x for x in summary["lost"] if x.get("class") != LOST_QUEUED]
    if lost:
        silent = sum(1 for x in lost if x.get("silent"))
        text = f"{len(lost)} of {m['queued']} messages lost: {_where(lost)}"
        text += f" ({silent} without any log line)" if silent else ""
        out.append(_item("lost", text))
    dup = summary.get("duplicated") or []
    if m.get("duplicated"):
        where = f": {_where(dup)}" if dup else ""
        text = f"{m['duplicated']} messages accepted more than once "
        text += f"({m['duplicate_extra_accepts']} extra accepts){where}"
        out.append(_item("duplicated", text))
    if m.get("unexpected"):
        out.append(_item("unexpected", f"{m['unexpected']} accepted ids not in the manifest"))
    return out


def _queued_warning(summary: dict[str, Any]) -> list[dict[str, str]]:
    queued = sum(1 for x in summary["lost"] if x.get("class") == LOST_QUEUED)
    if not queued:
        return []
    text = (
        f"{queued} messages never left the queue: the run ended before naz drained it "
        "(they are still in Redis, counted as not delivered, not as lost by naz)"
    )
    return [_item("not_drained", text)]


def _naz_items(summary: dict[str, Any], data: RunData) -> tuple[list, list]:
    reasons, warnings = [], []
    restarts = summary["naz"]["restarts"]
    if isinstance(restarts, int) and restarts > 0:
        reasons.append(_item("naz_restarted", f"naz restarted {restarts} times"))
    elif not isinstance(restarts, int):
        warnings.append(_item("naz_restarts_unknown", "naz restarts unknown (no run.json)"))
    check = data.logs_check
    if check is not None and not check.get("equal"):
        why = "; ".join(check.get("reasons") or []) or (
            f"{check.get('db_rows')} rows in logs vs {check.get('file_records')} records in "
            "naz's files"
        )
        reasons.append(_item("logs_mismatch", f"the logs table differs from naz's files: {why}"))
    return reasons, warnings


def _health_reasons(summary: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    stall = summary["health"]["stall"]
    if stall["detected"]:
        out.append(_item("reader_stall", stall["evidence"]))
    s = summary["health"]["sessions"]
    if s.get("multi"):
        t0 = summary["run"].get("t0")

        def span(x: dict[str, Any]) -> str:
            text = f"{x['max']} for {x['to'] - x['from']:.0f} s"
            if isinstance(t0, int | float):
                text += f" (from {(x['from'] - t0) / 60:.1f} min)"
            return text

        most = max(x["max"] for x in s["multi"])
        text = (
            f"naz held up to {most} SMSC sessions at once (naz is the SMSC's only client; "
            f"{s['source']}): " + ", ".join(span(x) for x in s["multi"])
        )
        out.append(_item("multiple_sessions", text))
    return out


def _seen_together(unplanned: list[dict[str, Any]], within_s: float = 1.0) -> int:
    """How many unplanned outages began within ``within_s`` of another target's."""
    return sum(
        any(
            p["target"] != o["target"] and abs(p["down_at"] - o["down_at"]) <= within_s
            for p in unplanned
        )
        for o in unplanned
    )


def _warnings(summary: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    unplanned = (summary.get("unplanned_outages") or {}).get("outages") or []
    if unplanned:
        names = ", ".join(f"{o['service']} {o['down_iso']}" for o in unplanned)
        text = f"{len(unplanned)} unplanned outages: {names}"
        both = _seen_together(unplanned)
        if both:
            text += (
                f" ({both} of them began within 1 s of one of the other service: the probe's"
                " host or its link stalled, not necessarily the services)"
            )
        out.append(_item("unplanned_outages", text))
    una = summary.get("unanswered") or {}
    if una.get("at_end"):
        text = f"{una['at_end']} submit_sm never answered (naz_unanswered_total at the end)"
        out.append(_item("unanswered_at_end", text))
    receipts = summary.get("receipts") or {}
    if receipts.get("never_acked"):
        text = (
            f"{receipts['never_acked']} of {receipts['sent']} delivery receipts never "
            "acknowledged (no deliver_sm_resp with status 0)"
        )
        out.append(_item("receipts_never_acked", text))
    if receipts.get("acked_more_than_once"):
        text = f"{receipts['acked_more_than_once']} delivery receipts acknowledged more than once"
        out.append(_item("receipts_acked_more_than_once", text))
    if summary.get("missing"):
        text = "missing inputs: " + ", ".join(summary["missing"])
        out.append(_item("missing_inputs", text))
    if summary["messages"].get("reconcile_json_agrees") is False:
        text = "reconcile.json disagrees with the report's reconciliation"
        out.append(_item("reconcile_json_disagrees", text))
    return out


def outcome(summary: dict[str, Any], data: RunData) -> dict[str, Any]:
    """PASS when there is no FAIL reason; warnings never fail a run."""
    naz_reasons, naz_warnings = _naz_items(summary, data)
    reasons = _message_reasons(summary) + naz_reasons + _health_reasons(summary)
    return {
        "result": "FAIL" if reasons else "PASS",
        "reasons": reasons,
        "warnings": _queued_warning(summary) + naz_warnings + _warnings(summary),
    }


# --------------------------------------------------------------------------- verdict line


def fmt_lost(lost: list[dict[str, Any]]) -> str:
    if not lost:
        return "0 lost"
    groups = []
    popped = [x for x in lost if x["class"] == LOST_POPPED]
    if popped:
        by_outage = collections.Counter(x["outage"] for x in popped)
        if len(by_outage) == 1 and None not in by_outage:
            where = f"all at {next(iter(by_outage))}"
        else:
            where = _where(popped)
        groups.append(f"{len(popped)} popped and lost in flight: {where}")
    rejected = [x for x in lost if x["class"] == LOST_REJECTED]
    if rejected:
        groups.append(f"{len(rejected)} rejected by the SMSC")
    queued = sum(1 for x in lost if x["class"] == LOST_QUEUED)
    if queued:
        groups.append(f"{queued} never left the queue")
    unknown = sum(1 for x in lost if x["class"] == LOST_UNKNOWN)
    if unknown:
        groups.append(f"{unknown} after the last delivery, popped or still queued: not recorded")
    word = "not delivered" if queued else "lost"  # queued ones were not lost by naz
    return f"{len(lost)} {word} ({'; '.join(groups)})"


def _recovery_part(summary: dict[str, Any]) -> str:
    rec = summary.get("recovery") or {}
    slowest = rec.get("slowest_clean")
    if slowest:
        return f"slowest clean recovery {slowest['recovery_s']:.1f} s ({slowest['label']})"
    if summary["outages"]:
        overlapped = len(rec.get("overlapped") or [])
        return f"{len(summary['outages'])} outages, no clean recovery ({overlapped} overlapped)"
    return "no outages"


def verdict(summary: dict[str, Any]) -> str:
    """``PASS: `` or ``FAIL: `` and the run in one line."""
    m = summary["messages"]
    parts = []
    if m.get("delivered_once") is None:
        parts.append("message accounting unavailable (" + m.get("note", "no data") + ")")
    else:
        parts.append(f"naz delivered {m['delivered_once']}/{m['queued']} once")
        parts.append(fmt_lost(summary["lost"]))
        parts.append(f"{m['duplicated']} duplicated")
        if m.get("unexpected"):
            parts.append(f"{m['unexpected']} unexpected ids")
    naz = summary["naz"]
    if naz.get("rss_start_mb") is not None and naz.get("rss_end_mb") is not None:
        parts.append(f"RSS {naz['rss_start_mb']:.1f}→{naz['rss_end_mb']:.1f} MB")
    parts.append(_recovery_part(summary))
    unplanned = summary.get("unplanned_outages", {}).get("outages") or []
    if unplanned:
        parts.append(f"{len(unplanned)} unplanned outages (probe)")
    parts.append(f"naz restarts: {naz['restarts']}")
    result = (summary.get("outcome") or {}).get("result", "FAIL")
    codes = {r["code"] for r in (summary.get("outcome") or {}).get("reasons", [])}
    if "reader_stall" in codes:
        stall = summary["health"]["stall"]
        if stall.get("to_end"):
            parts.append("naz stopped reading responses")
        else:
            parts.append(f"naz read no responses for {stall['duration_s']:.0f} s")
    if "multiple_sessions" in codes:
        parts.append("more than one SMSC session at once")
    if "logs_mismatch" in codes:
        parts.append("logs differ from naz's files")
    return f"{result}: " + "; ".join(parts)


# --------------------------------------------------------------------------- context


def _flat(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return value


def naz_params(params: dict[str, Any]) -> dict[str, Any]:
    """The params that shape what naz faced: messages, RTT, chaos, and any naz_* key."""
    keys = [k for k in params if k in NAZ_PARAM_KEYS or k.startswith(("chaos_", "naz_"))]
    return {k: _flat(params[k]) for k in sorted(keys)}


def topology(data: RunData) -> list[dict[str, Any]]:
    """Host, its roles (inventory groups) and region, from topology.json (run_plan.yml)."""
    topo = data.topology or {}
    groups = topo.get("groups")
    regions = topo.get("regions") if isinstance(topo.get("regions"), dict) else {}
    if not isinstance(groups, dict):
        return []
    roles: dict[str, list[str]] = {}
    for group, hosts in sorted(groups.items()):
        for host in hosts if isinstance(hosts, list) else []:
            roles.setdefault(str(host), []).append(str(group))
    return [
        {"host": host, "roles": roles[host], "region": regions.get(host) or None}
        for host in sorted(roles)
    ]


def _ceiling(rtt_ms: Any, throughput: dict[str, Any]) -> tuple[float | None, str]:
    if not isinstance(rtt_ms, int | float) or isinstance(rtt_ms, bool) or rtt_ms <= 0:
        return None, "no lab_wan_rtt_ms: no ceiling"
    ceiling = round(1000.0 / rtt_ms, 2)
    note = (
        f"naz pops one message per Redis BRPOP, and Redis is across the WAN, so it cannot "
        f"take messages faster than ≈ 1/RTT = {ceiling} msg/s at {rtt_ms} ms"
    )
    overall = throughput.get("overall_msg_per_s")
    outside = throughput.get("goodput_outside_msg_per_s")
    if overall is not None:
        note += f"; measured {overall} msg/s overall ({overall / ceiling:.0%} of it)"
    if outside is not None:
        note += f", {outside} msg/s outside outages ({outside / ceiling:.0%})"
    return ceiling, note + "."


def _measured_median(rtt: Any) -> float | None:
    """The median of the last measure_rtt.yml before the run (topology.json), if any."""
    value = rtt.get("median_ms") if isinstance(rtt, dict) else None
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def context(data: RunData, summary: dict[str, Any]) -> dict[str, Any]:
    """What the run faced: duration, end, hosts and regions, RTT and its ceiling, naz."""
    params = data.params or {}
    rtt = params.get("lab_wan_rtt_ms")
    ceiling, note = _ceiling(rtt, summary.get("throughput") or {})
    topo = data.topology or {}
    return {
        "duration_s": summary["run"].get("duration_s"),
        "end_reason": summary["run"].get("end_reason"),
        "topology": topology(data),
        "topology_source": "topology.json" if data.topology is not None else None,
        "provider": topo.get("provider"),
        "rtt_ms": rtt,
        "rtt_ms_measured": _measured_median(topo.get("rtt_measured")),
        "ceiling_msg_per_s": ceiling,
        "ceiling_note": note,
        "naz_version": ((data.versions or {}).get("naz_host") or {}).get("naz"),
        "naz_params": naz_params(params),
    }
