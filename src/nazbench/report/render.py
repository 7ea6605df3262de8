"""report.html and compare.html: one self-contained file each (inline CSS, base64 PNGs).

Nothing in them refers to the network: no scripts, fonts, stylesheets or links.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.verdict{font-size:1.1em;background:#f6f8fa;border-left:4px solid #2ca02c;padding:.6em 1em}
.bad{border-left-color:#d62728}.muted{color:#666;font-size:.9em}
img{max-width:100%;display:block;margin:.5em 0}code{font-size:.9em}
"""


def esc(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return esc(f"{value:.3f}".rstrip("0").rstrip("."))
    return html.escape(str(value))


def img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def table(headers: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=n' if i in numeric else ''}>{esc(c)}</td>" for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def kv(pairs: list[tuple[str, Any]]) -> str:
    return table(["", ""], [[k, v] for k, v in pairs], numeric={1})


def page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
        f"{body}\n</body></html>\n"
    )


def report_html(summary: dict[str, Any], run_dir: Path) -> str:
    s = summary
    m = s["messages"]
    ok = m.get("delivered_once") is not None and m.get("delivered_once") == m.get("queued")
    parts = [
        f"<h1>nazbench run {esc(s['run_id'])}</h1>",
        f'<p class="verdict{"" if ok else " bad"}">{esc(s["verdict"])}</p>',
        f'<p class="muted">experiment {esc(s["run"]["experiment"])}, profile '
        f"{esc(s['run']['profile'])}, started {esc(s['run']['t0_iso'])}, "
        f"generated {esc(s['generated_at'])} by {esc(s['generator'])}</p>",
        "<h2>Messages</h2>",
    ]
    _messages(s, parts, run_dir)
    _outages(s, parts, run_dir)
    _unplanned(s, parts, run_dir)
    _throughput(s, parts, run_dir)
    _plots(s, parts, run_dir)
    _naz(s, parts, run_dir)
    _errors(s, parts, run_dir)
    _params(s, parts, run_dir)
    parts.append("<h2>Inputs</h2>")
    parts.append(
        table(
            ["input", "present", "file", "note"],
            [
                [k, "yes" if v["present"] else "MISSING", v.get("path"), v.get("note", "")]
                for k, v in s["inputs"].items()
            ],
        )
    )
    if s["notes"]:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in s["notes"]))
        parts.append("</ul>")
    return page(f"nazbench {s['run_id']}", "\n".join(parts))


def _messages(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    m = s["messages"]
    if m.get("delivered_once") is None:
        parts.append(f"<p>Not available: {esc(m.get('note'))}.</p>")
    else:
        parts.append(
            kv(
                [
                    ("queued (manifest)", m["queued"]),
                    ("delivered exactly once", m["delivered_once"]),
                    ("lost", m["lost"]),
                    ("… popped by naz, lost in flight", m["lost_popped"]),
                    ("… never popped (still queued)", m["lost_never_popped"]),
                    ("… unknown which", m["lost_unknown"]),
                    ("… rejected by the SMSC", m["lost_rejected"]),
                    ("duplicated (ids)", m["duplicated"]),
                    ("duplicate extra accepts", m["duplicate_extra_accepts"]),
                    ("unexpected ids", m["unexpected"]),
                    ("same as reconcile.json", m["reconcile_json_agrees"]),
                ]
            )
        )
        parts.append(
            '<p class="muted">From manifest.json and ledger.jsonl through '
            "nazbench.nazapp.reconcile (the same call as run_chaos.yml, --since the run's "
            "start). Lost messages: the queue is FIFO with one consumer, so a lost message "
            "followed by a delivered one was popped and lost in flight; after the last "
            "delivered message only an end-of-run queue length can tell.</p>"
        )
    if s["lost"]:
        rows = [
            [
                x["msg_id"],
                x["class"],
                x["outage"] or "outside outages",
                _t(x["sent_after"], s),
                _t(x["sent_before"], s),
                "; ".join(f"{e['event']}: {e['error']}" for e in x["errors"]) or "—",
            ]
            for x in s["lost"][:200]
        ]
        parts.append("<h3>Lost messages</h3>")
        parts.append(
            table(
                [
                    "msg_id",
                    "what happened",
                    "outage",
                    "sent after (min)",
                    "sent before (min)",
                    "naz errors with its log_id",
                ],
                rows,
                numeric={3, 4},
            )
        )
        if len(s["lost"]) > 200:
            parts.append(f"<p class=muted>… {len(s['lost']) - 200} more in summary.json</p>")


def _outages(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    parts.append("<h2>Outages and recovery</h2>")
    if s["outages"]:
        rows = [
            [
                o["label"],
                _t(o["stop_at"], s),
                _t(o["start_at"], s),
                o["duration_s"],
                o["delivered_during"],
                o["recovery_s"],
                o["recovery_note"] or "",
            ]
            for o in s["outages"]
        ]
        parts.append(
            table(
                [
                    "outage",
                    "stopped (min)",
                    "started (min)",
                    "down (s)",
                    "delivered while down",
                    "recovery (s)",
                    "note",
                ],
                rows,
                numeric={1, 2, 3, 4, 5},
            )
        )
        parts.append(
            '<p class="muted">Times from the chaos timeline (actual edges); recovery = the '
            "service's start → the first submit_sm the SMSC accepted after it (ledger).</p>"
        )
    else:
        parts.append("<p>No outages (no chaos timeline, or experiment B).</p>")


def _unplanned(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    u = s.get("unplanned_outages") or {}
    outages = u.get("outages") or []
    parts.append("<h2>Unplanned outages (seen by the probe, not planned)</h2>")
    if outages:
        rows = [
            [o["service"], _t(o["down_at"], s), _t(o["up_at"], s), o["duration_s"]] for o in outages
        ]
        parts.append(
            table(["service", "down (min)", "up (min)", "down (s)"], rows, numeric={1, 2, 3})
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


def _throughput(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    t = s["throughput"]
    parts.append("<h2>Throughput</h2>")
    if t.get("span"):
        parts.append(
            kv(
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
                ]
            )
        )
    else:
        parts.append(f"<p>{esc(t.get('note'))}</p>")


def _plots(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    plots = s.get("plots", {})
    for name, title in (
        ("throughput", "Throughput over time"),
        ("queue", "Queue length"),
        ("rss", "naz RSS"),
        ("errors", "Errors per minute by event"),
    ):
        if name in plots and (run_dir / plots[name]).exists():
            parts.append(f"<h3>{esc(title)}</h3>" + img(run_dir / plots[name], title))


def _naz(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    naz = s["naz"]
    parts.append("<h2>naz</h2>")
    parts.append(
        kv(
            [
                ("restarts", naz["restarts"]),
                (
                    "RSS start / end, MB",
                    f"{esc(naz.get('rss_start_mb'))} / {esc(naz.get('rss_end_mb'))}",
                ),
                (
                    "RSS min / max, MB",
                    f"{esc(naz.get('rss_min_mb'))} / {esc(naz.get('rss_max_mb'))}",
                ),
                ("RSS source", naz.get("rss_source")),
                ("messages popped (metrics)", naz.get("dequeued_at_end")),
            ]
        )
    )


def _errors(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    err = s["errors"]
    parts.append("<h2>Errors</h2>")
    if err.get("source") is None:
        parts.append(f"<p>{esc(err.get('note'))}</p>")
    else:
        parts.append(
            kv(
                [
                    ("rows", err["rows"]),
                    ("during outages", err["during_outages"]),
                    ("outside outages", err["outside_outages"]),
                    ("distinct error strings", err["distinct_errors"]),
                ]
            )
        )
        parts.append(
            table(["error", "count"], [[e["error"], e["count"]] for e in err["by_error"]], {1})
        )
        parts.append(table(["event", "count"], [[k, v] for k, v in err["by_event"].items()], {1}))


def _params(s: dict[str, Any], parts: list[str], run_dir: Path) -> None:
    parts.append("<h2>Parameters and versions</h2>")
    params = s.get("params") or {}
    parts.append(
        kv(
            [
                (k, json.dumps(v) if isinstance(v, list | dict) else v)
                for k, v in sorted(params.items())
            ]
        )
        if params
        else "<p>no params.json</p>"
    )
    versions = s.get("versions")
    parts.append(
        kv(
            [
                (k, json.dumps(v) if isinstance(v, list | dict) else v)
                for k, v in sorted(versions.items())
            ]
        )
        if versions
        else f"<p>no versions.json; producer: {esc(s.get('producer'))}</p>"
    )


def _t(ts: float | None, s: dict[str, Any]) -> str | None:
    t0 = s["run"]["t0"]
    if ts is None or t0 is None:
        return None
    return f"{(ts - t0) / 60:.2f}"


def compare_html(cmp: dict[str, Any], plot_paths: dict[str, Path]) -> str:
    a, b = cmp["runs"]
    parts = [
        f"<h1>nazbench: {esc(a['run_id'])} vs {esc(b['run_id'])}</h1>",
        f'<p class="verdict">{esc(a["run_id"])}: {esc(a["verdict"])}</p>',
        f'<p class="verdict">{esc(b["run_id"])}: {esc(b["verdict"])}</p>',
        table(
            ["", a["run_id"], b["run_id"]],
            [[r["name"], r["a"], r["b"]] for r in cmp["rows"]],
            numeric={1, 2},
        ),
    ]
    for name, title in (("throughput", "Throughput"), ("rss", "naz RSS")):
        if name in plot_paths:
            parts.append(f"<h2>{esc(title)}</h2>" + img(plot_paths[name], title))
    if cmp["top_errors"]:
        parts.append("<h2>Errors by string</h2>")
        parts.append(
            table(
                ["error", a["run_id"], b["run_id"]],
                [[e["error"], e["a"], e["b"]] for e in cmp["top_errors"]],
                numeric={1, 2},
            )
        )
    return page(f"nazbench {a['run_id']} vs {b['run_id']}", "\n".join(parts))
