"""report.html and compare.html: one self-contained file each (inline CSS, base64 PNGs).

Nothing in them refers to the network: no scripts, fonts, stylesheets or links. Both read
on a phone: a viewport tag, every table in a box of its own that scrolls sideways, long
tokens break, each chart shrinks to the width and opens at full size (``<details>``
toggle). For assistive technology: a verdict word first, a caption on every table, row
headers, charts whose alt text says what they show with numbers.

Older summaries (without ``outcome``, ``context``, ``latency`` … ) still render: every
section falls back to what the summary has, or says what is missing.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

CSS = """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1100px;color:#1d1d1d;padding:.5em 12px 2em;overflow-wrap:anywhere}
h1{font-size:1.45em;margin:.6em 0 .4em}
h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ccc;padding-bottom:.15em}
h3{font-size:1.05em;margin-top:1.3em}
.tw{overflow-x:auto;max-width:100%;margin:.6em 0}
table{border-collapse:collapse;font-size:.92em}
caption{text-align:left;font-weight:600;padding:.25em 0;color:#333}
td,th{border:1px solid #ccc;padding:.3em .55em;text-align:left;vertical-align:top;
overflow-wrap:anywhere;min-width:6em}
thead th{background:#eef0f2}
th[scope=row]{background:#f7f7f8;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;min-width:3.5em}
.verdict{border:3px solid #2e7d32;background:#f1f8f1;border-radius:6px;padding:.6em 1em;
margin:.8em 0}
.verdict.fail{border-color:#c62828;background:#fdf1f1}
.verdict .word{font-size:2.6em;font-weight:800;letter-spacing:.06em;margin:0;border:0;
padding:0;line-height:1.1;color:#1b5e20}
.verdict.fail .word{color:#b71c1c}
.verdict .who{display:block;font-size:.4em;letter-spacing:0;color:#333}
.verdict h3{margin:.6em 0 .2em;font-size:1em}
.verdict ul{margin:.2em 0;padding-left:1.3em}
.muted{color:#555;font-size:.92em}
figure{margin:.8em 0}
figcaption{font-size:.92em;color:#333;margin-top:.3em}
.fig img{max-width:100%;height:auto;display:block}
.zoom{font-size:.9em;margin:.3em 0}
.zoom summary{cursor:pointer;color:#0b57d0}
.zoom[open]+.fig{overflow-x:auto}
.zoom[open]+.fig img{max-width:none}
code{font-size:.9em}
"""

VIEWPORT = '<meta name=viewport content="width=device-width,initial-scale=1">'


# --------------------------------------------------------------------------- formatting


def fmt(value: Any) -> str:
    """Text of a value: — for None, yes/no, trimmed floats, lists comma-separated."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, list | tuple | set):
        return ", ".join(fmt(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {fmt(v)}" for k, v in value.items()) if value else "none"
    return str(value)


def esc(value: Any) -> str:
    return html.escape(fmt(value))


def _attr(text: str) -> str:
    return html.escape(text, quote=True)


def table(
    caption: str,
    headers: list[str] | None,
    rows: list[list[Any]],
    numeric: set[int] | None = None,
) -> str:
    """A captioned table in its own sideways-scrolling box; column 0 is the row header."""
    numeric = numeric or set()
    head = ""
    if headers:
        head = (
            "<thead><tr>"
            + "".join(f"<th scope=col>{esc(h)}</th>" for h in headers)
            + "</tr></thead>"
        )
    body = []
    for row in rows:
        cells = [f"<th scope=row>{esc(row[0])}</th>"] if row else []
        cells += [
            f"<td{' class=n' if i in numeric and _numeric(c) else ''}>{esc(c)}</td>"
            for i, c in enumerate(row)
            if i > 0
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="tw"><table><caption>{esc(caption)}</caption>{head}'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float) or value is None:
        return True
    try:
        float(str(value).split(" / ")[0])
    except ValueError:
        return False
    return True


def kv(caption: str, pairs: list[tuple[str, Any]]) -> str:
    """Name → value rows: each name a row header, no (empty) column header row."""
    return table(caption, None, [[k, v] for k, v in pairs], numeric={1})


def figure(path: Path, alt: str, caption: str | None = None) -> str:
    """A chart shrunk to the page's width, with a toggle to see it at full size."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return (
        "<figure>"
        '<details class="zoom"><summary>Full size (scroll sideways)</summary></details>'
        f'<div class="fig"><img alt="{_attr(alt)}" src="data:image/png;base64,{data}"></div>'
        f"{cap}</figure>"
    )


def page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"{VIEWPORT}<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
        f"{body}\n</body></html>\n"
    )


def _t(ts: float | None, s: dict[str, Any]) -> str | None:
    t0 = s["run"]["t0"]
    if ts is None or t0 is None:
        return None
    return f"{(ts - t0) / 60:.2f}"


def _s(value: Any) -> str | None:
    """Seconds as text (None stays None)."""
    return None if value is None else fmt(round(float(value), 1))


# --------------------------------------------------------------------------- verdict


def outcome(s: dict[str, Any]) -> dict[str, Any]:
    """``{"result": "PASS"|"FAIL", "reasons": [{code, text}], "warnings": [...]}``.

    The summary's ``outcome`` when it has one; else derived from an older summary (the
    verdict line's "PASS: "/"FAIL: " prefix, else the message accounting).
    """
    o = s.get("outcome")
    if isinstance(o, dict) and o.get("result") in ("PASS", "FAIL"):
        return {
            "result": o["result"],
            "reasons": [r for r in o.get("reasons") or [] if isinstance(r, dict)],
            "warnings": [w for w in o.get("warnings") or [] if isinstance(w, dict)],
        }
    line = str(s.get("verdict") or "")
    if line[:6] in ("PASS: ", "FAIL: "):
        return {
            "result": line[:4],
            "reasons": [{"code": "verdict", "text": line[6:]}],
            "warnings": [],
        }
    m = s.get("messages") or {}
    reasons = []
    if m.get("delivered_once") is None:
        why = m.get("note") or "no data"
        reasons.append({"code": "no_accounting", "text": f"message accounting unavailable: {why}"})
    else:
        for key, text in (
            ("lost", "messages lost"),
            ("duplicated", "messages delivered more than once"),
            ("unexpected", "unexpected message ids accepted"),
        ):
            if m.get(key):
                reasons.append({"code": key, "text": f"{m[key]} {text}"})
    if reasons:
        return {"result": "FAIL", "reasons": reasons, "warnings": []}
    text = f"all {m.get('queued')} messages delivered exactly once"
    return {"result": "PASS", "reasons": [{"code": "delivered", "text": text}], "warnings": []}


def verdict_block(s: dict[str, Any], heading_id: str = "verdict", label: str = "") -> str:
    o = outcome(s)
    cls = "pass" if o["result"] == "PASS" else "fail"
    who = f'<span class="who">{esc(label)}</span>' if label else ""
    parts = [
        f'<section class="verdict {cls}" aria-labelledby="{heading_id}">',
        f'<h2 class="word" id="{heading_id}">{who}{esc(o["result"])}</h2>',
    ]
    if o["reasons"]:
        title = "Why" if o["result"] == "FAIL" else "Checked"
        parts.append(f"<h3>{title}</h3><ul>")
        parts += [f"<li>{esc(r.get('text'))}</li>" for r in o["reasons"]]
        parts.append("</ul>")
    if o["warnings"]:
        parts.append("<h3>Warnings</h3><ul>")
        parts += [f"<li>{esc(w.get('text'))}</li>" for w in o["warnings"]]
        parts.append("</ul>")
    parts.append(f'<p class="muted">{esc(s.get("verdict"))}</p></section>')
    return "".join(parts)


# --------------------------------------------------------------------------- report


def report_html(summary: dict[str, Any], run_dir: Path) -> str:
    s = summary
    parts = [
        f"<h1>nazbench run {esc(s['run_id'])}</h1>",
        verdict_block(s),
        f'<p class="muted">experiment {esc(s["run"]["experiment"])}, profile '
        f"{esc(s['run']['profile'])}, started {esc(s['run']['t0_iso'])}, "
        f"generated {esc(s['generated_at'])} by {esc(s['generator'])}</p>",
    ]
    for section in (
        _context,
        _messages,
        _outages,
        _error_events,
        _throughput,
        _latency,
        _unanswered,
        _receipts,
        _health,
        _queue,
        _naz,
        _errors,
        _unplanned,
        _params,
        _inputs,
    ):
        section(s, parts, run_dir)
    if s.get("notes"):
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in s["notes"]))
        parts.append("</ul>")
    return page(f"nazbench {s['run_id']}", "\n".join(parts))


def _plot(s: dict[str, Any], parts: list[str], run_dir: Path, name: str, caption=None) -> None:
    """The plot ``name`` of the run, if it was drawn, with its alt text and caption."""
    rel = (s.get("plots") or {}).get(name)
    if not rel or not (run_dir / rel).exists():
        return
    text = (s.get("plot_text") or {}).get(name) or {}
    alt = text.get("alt") or f"Chart {name} of run {s['run_id']} (no description recorded)."
    parts.append(figure(run_dir / rel, alt, caption or text.get("caption")))


def _context(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    ctx = s.get("context") or {}
    run = s.get("run") or {}
    params = s.get("params") or {}
    versions = s.get("versions") or {}
    parts.append("<h2>Run</h2>")
    rtt = ctx.get("rtt_ms", params.get("lab_wan_rtt_ms"))
    ceiling = ctx.get("ceiling_msg_per_s")
    if ceiling is None and isinstance(rtt, int | float) and rtt > 0:
        ceiling = round(1000.0 / rtt, 1)
    naz_version = ctx.get("naz_version") or (versions.get("naz_host") or {}).get("naz")
    parts.append(
        kv(
            "What ran, for how long and why it ended",
            [
                (
                    "experiment / profile",
                    f"{fmt(run.get('experiment'))} / {fmt(run.get('profile'))}",
                ),
                ("started", run.get("t0_iso")),
                ("duration, s", ctx.get("duration_s", run.get("duration_s"))),
                ("why it ended", ctx.get("end_reason", run.get("end_reason"))),
                ("provider", ctx.get("provider")),
                ("round-trip time naz ↔ SMSC, ms (configured)", rtt),
                ("round-trip time, ms (measured)", ctx.get("rtt_ms_measured")),
                ("ceiling ≈ 1/RTT, msg/s", ceiling),
                ("naz version", naz_version),
                ("chaos seed", run.get("chaos_seed")),
            ],
        )
    )
    if ctx.get("ceiling_note"):
        parts.append(f'<p class="muted">{esc(ctx["ceiling_note"])}</p>')
    topology = ctx.get("topology") or []
    if topology:
        parts.append(
            table(
                "Which host ran what, in which region",
                ["host", "roles", "region"],
                [[h.get("host"), h.get("roles") or [], h.get("region")] for h in topology],
            )
        )
    naz_params = ctx.get("naz_params") or {}
    if naz_params:
        parts.append(kv("naz parameters", sorted(naz_params.items())))


def _messages(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    parts.append("<h2>Messages</h2>")
    m = s["messages"]
    if m.get("delivered_once") is None:
        parts.append(f"<p>Not available: {esc(m.get('note'))}.</p>")
    else:
        rows = [
            ("queued (manifest)", m["queued"]),
            ("delivered exactly once", m["delivered_once"]),
            ("lost", m["lost"]),
            ("… popped by naz, lost in flight", m["lost_popped"]),
            ("… never popped (still queued)", m["lost_never_popped"]),
            ("… unknown which", m["lost_unknown"]),
            ("… rejected by the SMSC", m["lost_rejected"]),
        ]
        if "silent_losses" in s:
            rows.append(("… lost without any naz error (silent)", s["silent_losses"]))
        rows += [
            ("duplicated (ids)", m["duplicated"]),
            ("duplicate extra accepts", m["duplicate_extra_accepts"]),
            ("unexpected ids", m["unexpected"]),
            ("same as reconcile.json", m["reconcile_json_agrees"]),
        ]
        parts.append(kv("Message accounting (manifest vs SMSC ledger)", rows))
        parts.append(
            '<p class="muted">From manifest.json and ledger.jsonl through '
            "nazbench.nazapp.reconcile (the same call as run_chaos.yml, --since the run's "
            "start). Lost messages: the queue is FIFO with one consumer, so a lost message "
            "followed by a delivered one was popped and lost in flight; after the last "
            "delivered message only an end-of-run queue length can tell.</p>"
        )
    for key, title in (("lost", "Lost messages"), ("duplicated", "Duplicated messages")):
        items = s.get(key)
        if not isinstance(items, list) or not items:
            continue
        parts.append(f"<h3>{title}</h3>")
        parts.append(_message_table(s, items[:200], f"{title}: each id, why and when"))
        if len(items) > 200:
            parts.append(f'<p class="muted">… {len(items) - 200} more in summary.json</p>')


def _message_table(s: dict[str, Any], items: list[dict[str, Any]], caption: str) -> str:
    extra = any("decided_by" in x or "evidence" in x for x in items)
    headers = ["msg_id", "what happened", "outage", "sent after (min)", "sent before (min)"]
    if extra:
        headers += ["decided by", "evidence", "silent (no naz error)"]
    headers.append("naz errors with its log_id")
    rows = []
    for x in items:
        row = [
            x.get("msg_id"),
            x.get("class"),
            x.get("outage") or "outside outages",
            _t(x.get("sent_after"), s),
            _t(x.get("sent_before"), s),
        ]
        if extra:
            row += [x.get("decided_by"), x.get("evidence"), x.get("silent")]
        errors = x.get("errors") or []
        row.append("; ".join(f"{e.get('event')}: {e.get('error')}" for e in errors) or "none")
        rows.append(row)
    return table(caption, headers, rows, numeric={3, 4})


def _outages(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    parts.append("<h2>Outages and recovery</h2>")
    outages = s.get("outages") or []
    if not outages:
        parts.append("<p>No outages (no chaos timeline, or experiment B).</p>")
        return
    new = any("clean" in o for o in outages)
    headers = ["outage", "stopped (min)", "started (min)", "down (s)", "delivered while down"]
    headers += ["recovery (s)"]
    if new:
        headers += [
            "clean (no overlap)",
            "first naz error (s after stop)",
            "enquire_link errors (s after start)",
        ]
    headers.append("note")
    rows = []
    for o in outages:
        kind = o.get("kind", "stop")
        row = [
            o["label"] if kind == "stop" else f"{o['label']} ({kind})",
            _t(o["stop_at"], s),
            _t(o["start_at"], s),
            o["duration_s"],
            o["delivered_during"],
            o["recovery_s"],
        ]
        if new:
            row += [
                o.get("clean"),
                _s(o.get("first_error_s")),
                [_s(x) for x in o.get("enquire_link_errors_s") or []],
            ]
        row.append(o.get("recovery_note") or "")
        rows.append(row)
    parts.append(
        table(
            "Each outage: when, how long, and how long naz took to deliver again",
            headers,
            rows,
            numeric={1, 2, 3, 4, 5, 7},
        )
    )
    parts.append(
        '<p class="muted">Times from the chaos timeline (actual edges); recovery = the '
        "service's start → the first submit_sm the SMSC accepted after it (ledger). Clean: "
        "no other outage overlapped it up to that first delivery.</p>"
    )
    kinds = s.get("faults_by_kind") or []
    if kinds:
        parts.append(
            table(
                "By fault kind: what each kind of fault cost (losses and duplicates as the "
                "evidence attributes them; naz's error rows of overlapping outages count "
                "under each)",
                ["kind", "outages", "services", "down (s)", "lost", "duplicated",
                 "recovery p50 / p99 / max (s)", "naz error rows"],
                [
                    [k["kind"], k["outages"], ", ".join(k["services"]), k["downtime_s"],
                     k["lost"], k["duplicated"], _triple(k["recovery_s"]), k["naz_error_rows"]]
                    for k in kinds
                ],
                numeric={1, 3, 4, 5, 7},
            )
        )  # fmt: skip
    rec = s.get("recovery")
    if isinstance(rec, dict):
        slow = rec.get("slowest_clean") or {}
        parts.append(
            kv(
                "Recovery, clean outages only (no other outage overlapping)",
                [
                    (
                        "slowest clean recovery, s",
                        f"{fmt(slow.get('recovery_s'))} ({fmt(slow.get('label'))})"
                        if slow
                        else None,
                    ),
                    ("clean outages", rec.get("clean") or []),
                    ("overlapping outages (left out)", rec.get("overlapped") or []),
                ],
            )
        )


def _error_events(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    parts.append("<h2>What naz logged after each outage</h2>")
    _plot(s, parts, run_dir, "error_events")
    rows = []
    for o in s.get("outages") or []:
        for e in o.get("errors_window") or []:
            rows.append(
                [
                    o["label"],
                    e.get("event"),
                    e.get("error"),
                    e.get("count"),
                    _s(e.get("first_s")),
                    _s(e.get("last_s")),
                ]
            )
    if rows:
        parts.append(
            table(
                "naz errors per outage, from the fault to the first accepted submit_sm",
                ["outage", "event", "error", "count", "first (s)", "last (s)"],
                rows,
                numeric={3, 4, 5},
            )
        )


def _throughput(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    t = s["throughput"]
    parts.append("<h2>Throughput</h2>")
    if t.get("span"):
        parts.append(
            kv(
                "Accepted submit_sm per second (SMSC ledger)",
                [
                    ("sending span (first → last accept), s", t["span_s"]),
                    ("overall, msg/s", t["overall_msg_per_s"]),
                    ("peak 10 s bin, msg/s", t["peak_bucket_msg_per_s"]),
                    ("goodput outside outages, msg/s", t["goodput_outside_msg_per_s"]),
                    ("goodput inside outages, msg/s", t["goodput_inside_msg_per_s"]),
                    ("time inside / outside outages, s", f"{t['inside_s']} / {t['outside_s']}"),
                ]
                + [
                    (f"goodput while {svc} down, msg/s", v["goodput_inside_msg_per_s"])
                    for svc, v in t["per_service"].items()
                ],
            )
        )
    else:
        parts.append(f"<p>{esc(t.get('note'))}</p>")
    # the summary's comparison of the series with the ledger, then why resp/s lags
    own = ((s.get("plot_text") or {}).get("throughput") or {}).get("caption")
    note = " ".join(x for x in ((s.get("rates") or {}).get("note"), own) if x) or None
    _plot(s, parts, run_dir, "throughput", caption=note)


def _latency(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    parts.append("<h2>Reply latency (submit_sm → submit_sm_resp)</h2>")
    lat = s.get("latency")
    if isinstance(lat, dict):
        parts.append(
            kv(
                "naz's reply latency quantiles over the run, seconds",
                [
                    ("steady p50 (outside outages), s", lat.get("steady_p50_s")),
                    (
                        "p50 median / max, s",
                        f"{fmt(lat.get('p50_median_s'))} / {fmt(lat.get('p50_max_s'))}",
                    ),
                    (
                        "p99 median / max, s",
                        f"{fmt(lat.get('p99_median_s'))} / {fmt(lat.get('p99_max_s'))}",
                    ),
                    ("source", lat.get("source")),
                ],
            )
        )
        per = lat.get("per_outage") or []
        if per:
            parts.append(
                table(
                    "Worst p99 latency after each outage",
                    ["outage", "p99 max after it (s)"],
                    [[p.get("label"), p.get("p99_max_after_s")] for p in per],
                    numeric={1},
                )
            )
    _plot(s, parts, run_dir, "latency")


def _unanswered(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    parts.append("<h2>Unanswered submit_sm</h2>")
    un = s.get("unanswered")
    if isinstance(un, dict):
        parts.append(
            kv(
                "submit_sm naz sent that never got a reply",
                [
                    ("at the end", un.get("at_end")),
                    ("at most", un.get("max")),
                    ("source", un.get("source")),
                    ("what it counts", un.get("note")),
                ],
            )
        )
    _plot(s, parts, run_dir, "unanswered")


def _receipts(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    r = s.get("receipts")
    if not isinstance(r, dict):
        return
    parts.append("<h2>Delivery receipts (deliver_sm → naz's deliver_sm_resp)</h2>")
    if r.get("note"):
        parts.append(f"<p>{esc(r['note'])}</p>")
        return
    lat = r.get("ack_latency_s") or {}
    parts.append(
        kv(
            "Receipts the SMSC sent for the run's messages, and naz's acknowledgements",
            [
                ("sent", r.get("sent")),
                ("resent (no ack in time)", r.get("resent")),
                ("acknowledged once", r.get("acked_once")),
                ("acknowledged more than once", r.get("acked_more_than_once")),
                ("never acknowledged", r.get("never_acked")),
                ("answered with an error status", r.get("error_acks")),
                ("acks of receipts sent before the run", r.get("acks_without_receipt")),
                ("final states", r.get("by_stat")),
                ("receipt → ack p50 / p99 / max (s)", _triple(lat)),
            ],
        )
    )
    rows = [
        [
            w["window"],
            w["sent"],
            w["acked_once"],
            w["acked_more_than_once"],
            w["never_acked"],
            _triple(w.get("ack_latency_s") or {}),
        ]
        for w in r.get("per_outage") or []
    ]
    if rows:
        parts.append(
            table(
                "By outage: receipts first sent in or after each outage, until the next one",
                ["window", "sent", "acked once", "more than once", "never", "ack p50/p99/max (s)"],
                rows,
                numeric={1, 2, 3, 4},
            )
        )


def _triple(lat: dict[str, Any]) -> str:
    return " / ".join(fmt(lat.get(k)) for k in ("p50", "p99", "max"))


def _health(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    health = s.get("health")
    has_plot = "sessions" in (s.get("plots") or {})
    if not isinstance(health, dict) and not has_plot:
        return
    parts.append("<h2>Client health</h2>")
    health = health if isinstance(health, dict) else {}
    sess = health.get("sessions") or {}
    if sess:
        parts.append(
            kv(
                "SMPP sessions naz held at the SMSC",
                [
                    ("most sessions bound at once", sess.get("max_bound")),
                    ("sessions seen in the ledger", sess.get("ledger_sessions")),
                    ("source", sess.get("source")),
                    ("note", sess.get("note")),
                ],
            )
        )
        multi = sess.get("multi") or []
        if multi:
            parts.append(
                table(
                    "Times with more than one session bound",
                    ["from (min)", "to (min)", "sessions"],
                    [[_t(x.get("from"), s), _t(x.get("to"), s), x.get("max")] for x in multi],
                    numeric={1, 2},
                )
            )
    stall = health.get("stall") or {}
    if stall:
        parts.append(
            kv(
                "Did naz stall (sending nothing while it could)?",
                [
                    ("stall detected", stall.get("detected")),
                    ("from (min)", _t(stall.get("from"), s)),
                    ("to (min)", _t(stall.get("to"), s)),
                    ("duration, s", stall.get("duration_s")),
                    ("evidence", stall.get("evidence")),
                    ("source", stall.get("source")),
                ],
            )
        )
    _plot(s, parts, run_dir, "sessions")


def _queue(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    parts.append("<h2>Queue</h2>")
    q = s.get("queue_evidence") or {}
    parts.append(
        kv(
            "The Redis queue at the end of the run",
            [("length at the end", q.get("length_at_end")), ("source", q.get("source"))],
        )
    )
    _plot(s, parts, run_dir, "queue")


def _naz(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    naz = s["naz"]
    parts.append("<h2>naz process and memory</h2>")
    parts.append(
        kv(
            "naz-cli restarts and resident memory",
            [
                ("restarts", naz["restarts"]),
                (
                    "RSS start / end, MB",
                    f"{fmt(naz.get('rss_start_mb'))} / {fmt(naz.get('rss_end_mb'))}",
                ),
                (
                    "RSS min / max, MB",
                    f"{fmt(naz.get('rss_min_mb'))} / {fmt(naz.get('rss_max_mb'))}",
                ),
                ("RSS source", naz.get("rss_source")),
                ("messages popped (metrics)", naz.get("dequeued_at_end")),
            ],
        )
    )
    _plot(s, parts, run_dir, "rss")


def _errors(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    err = s["errors"]
    parts.append("<h2>Errors naz logged</h2>")
    if err.get("source") is None:
        parts.append(f"<p>{esc(err.get('note'))}</p>")
        return
    parts.append(
        kv(
            "Error log records of the run (errors.csv)",
            [
                ("rows", err["rows"]),
                ("during outages", err["during_outages"]),
                ("outside outages", err["outside_outages"]),
                ("distinct error strings", err["distinct_errors"]),
            ],
        )
    )
    _plot(s, parts, run_dir, "errors")
    parts.append(
        table(
            "Error strings, most frequent first",
            ["error", "count"],
            [[e["error"], e["count"]] for e in err["by_error"]],
            {1},
        )
    )
    parts.append(
        table(
            "Error records by naz log event",
            ["event", "count"],
            [[k or "(no event)", v] for k, v in err["by_event"].items()],
            {1},
        )
    )


def _unplanned(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    u = s.get("unplanned_outages") or {}
    outages = u.get("outages") or []
    parts.append("<h2>Unplanned outages (seen by the probe, not planned)</h2>")
    if outages:
        rows = [
            [o["service"], _t(o["down_at"], s), _t(o["up_at"], s), o["duration_s"]] for o in outages
        ]
        parts.append(
            table(
                "Outages the TCP probe saw that the chaos timeline did not plan",
                ["service", "down (min)", "up (min)", "down (s)"],
                rows,
                numeric={1, 2, 3},
            )
        )
        parts.append(
            '<p class="muted">Outages the independent TCP probe saw that the chaos timeline '
            "did not plan (e.g. a crash restarted by systemd); up — means the probe never "
            "saw the port again.</p>"
        )
    else:
        parts.append("<p>None.</p>")
    if u.get("note"):
        parts.append(f'<p class="muted">{esc(u["note"])}</p>')


def _flat(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in sorted(d.items()):
        if isinstance(v, dict) and v:
            out += _flat(v, f"{prefix}{k} / ")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _params(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    parts.append("<h2>Parameters and versions</h2>")
    params = s.get("params") or {}
    parts.append(
        kv("Run parameters (params.json)", _flat(params)) if params else "<p>no params.json</p>"
    )
    versions = s.get("versions")
    parts.append(
        kv("Versions (versions.json)", _flat(versions))
        if versions
        else f"<p>no versions.json; producer: {esc(s.get('producer'))}</p>"
    )


def _inputs(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    parts.append("<h2>Inputs</h2>")
    parts.append(
        table(
            "The run directory's files this report read",
            ["input", "present", "file", "note"],
            [
                [k, "yes" if v.get("present") else "MISSING", v.get("path"), v.get("note", "")]
                for k, v in (s.get("inputs") or {}).items()
            ],
        )
    )


# --------------------------------------------------------------------------- compare


def compare_html(cmp: dict[str, Any], plot_paths: dict[str, Path]) -> str:
    a, b = cmp["runs"]
    parts = [f"<h1>nazbench: {esc(a['run_id'])} vs {esc(b['run_id'])}</h1>"]
    for i, run in enumerate((a, b)):
        fake = {"outcome": run.get("outcome"), "verdict": run.get("verdict"), "messages": {}}
        parts.append(verdict_block(fake, f"verdict-{i}", run["run_id"]))
    parts.append("<h2>Side by side</h2>")
    parts.append(
        table(
            f"{a['run_id']} (A) and {b['run_id']} (B), measure by measure",
            ["measure", f"A: {a['run_id']}", f"B: {b['run_id']}"],
            [[r["name"], r["a"], r["b"]] for r in cmp["rows"]],
            numeric={1, 2},
        )
    )
    texts = cmp.get("plot_text") or {}
    for name, title in (("throughput", "Throughput"), ("rss", "naz memory")):
        if name in plot_paths:
            alt = (texts.get(name) or {}).get("alt") or f"{title} of both runs over time."
            parts.append(f"<h2>{esc(title)}</h2>" + figure(plot_paths[name], alt))
    if cmp["top_errors"]:
        parts.append("<h2>Errors by string</h2>")
        parts.append(
            table(
                "How often each error string was logged in each run",
                ["error", f"A: {a['run_id']}", f"B: {b['run_id']}"],
                [[e["error"], e["a"], e["b"]] for e in cmp["top_errors"]],
                numeric={1, 2},
            )
        )
    return page(f"nazbench {a['run_id']} vs {b['run_id']}", "\n".join(parts))
