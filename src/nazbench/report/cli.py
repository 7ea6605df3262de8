"""Command line of the run report; see the package docstring.

Exit status: 0 done; 2 a run directory is missing or is not one (the message lists the
runs known in its parent directory).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from nazbench.report import plots, render
from nazbench.report.data import RunData, RunDirError, known_runs, load
from nazbench.report.summary import build_summary


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def build(run_dir: str | Path) -> dict[str, Any]:
    """Write summary.json, report.html and plots/*.png into ``run_dir``; return the summary."""
    data = load(run_dir)
    summary = build_summary(data)
    summary["plots"] = plots.render_all(data, data.dir)
    summary["plot_text"] = plots.describe(data)
    _write(data.dir / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    _write(data.dir / "report.html", render.report_html(summary, data.dir))
    return summary


def _fmt(value: Any) -> Any:
    return "—" if value is None else value


def compare(dir_a: str | Path, dir_b: str | Path, out: str | Path | None = None) -> dict:
    """compare.json, compare.html and two overlay plots of two runs in ``out``."""
    runs: list[RunData] = [load(dir_a), load(dir_b)]
    sums = [build_summary(r) for r in runs]
    out_dir = (
        Path(out)
        if out
        else runs[0].dir.parent / f"compare-{runs[0].dir.name}-vs-{runs[1].dir.name}"
    )
    out_dir.mkdir(parents=True, exist_ok=True)

    def row(name: str, getter) -> dict[str, Any]:
        values = []
        for s in sums:
            try:
                values.append(_fmt(getter(s)))
            except (KeyError, TypeError):
                values.append("—")
        return {"name": name, "a": values[0], "b": values[1]}

    def slowest_clean(s):
        # an outage overlapped by another one is not a recovery of its own (summary.py)
        slowest = (s.get("recovery") or {}).get("slowest_clean")
        return slowest["recovery_s"] if slowest else None

    def lost_by_naz(s):
        return s["messages"]["lost"] - s["messages"].get("lost_never_popped", 0)

    rows = [
        row("result", lambda s: (s.get("outcome") or {})["result"]),
        row("experiment", lambda s: s["run"]["experiment"]),
        row("profile", lambda s: s["run"]["profile"]),
        row("naz version", lambda s: s["context"]["naz_version"]),
        row("messages queued", lambda s: s["messages"]["queued"]),
        row("delivered once", lambda s: s["messages"]["delivered_once"]),
        row("lost by naz (popped, not delivered)", lost_by_naz),
        row("never left the queue (run ended)", lambda s: s["messages"]["lost_never_popped"]),
        row("duplicated", lambda s: s["messages"]["duplicated"]),
        row("outages", lambda s: len(s["outages"])),
        row("slowest clean recovery, s", slowest_clean),
        row("reply latency p50 steady, s", lambda s: s["latency"]["steady_p50_s"]),
        row("reply latency p99 max, s", lambda s: s["latency"]["p99_max_s"]),
        row("most SMSC sessions at once", lambda s: s["health"]["sessions"]["max_bound"]),
        row("reader stall, s", lambda s: s["health"]["stall"]["duration_s"] or 0),
        row("throughput overall, msg/s", lambda s: s["throughput"]["overall_msg_per_s"]),
        row(
            "goodput outside outages, msg/s", lambda s: s["throughput"]["goodput_outside_msg_per_s"]
        ),
        row("goodput inside outages, msg/s", lambda s: s["throughput"]["goodput_inside_msg_per_s"]),
        row("sending span, s", lambda s: s["throughput"]["span_s"]),
        row("error rows", lambda s: s["errors"].get("rows")),
        row("distinct error strings", lambda s: s["errors"].get("distinct_errors")),
        row("receipts sent", lambda s: s["receipts"]["sent"]),
        row("receipts acknowledged once", lambda s: s["receipts"]["acked_once"]),
        row(
            "receipts acknowledged more than once", lambda s: s["receipts"]["acked_more_than_once"]
        ),
        row("receipts never acknowledged", lambda s: s["receipts"]["never_acked"]),
        row("receipt → ack p50, s", lambda s: round(s["receipts"]["ack_latency_s"]["p50"], 2)),
        row("receipt → ack p99, s", lambda s: round(s["receipts"]["ack_latency_s"]["p99"], 2)),
        row("naz RSS start, MB", lambda s: s["naz"]["rss_start_mb"]),
        row("naz RSS end, MB", lambda s: s["naz"]["rss_end_mb"]),
        row("naz RSS max, MB", lambda s: s["naz"].get("rss_max_mb")),
        row("naz restarts", lambda s: s["naz"]["restarts"]),
    ]
    counts = [{e["error"]: e["count"] for e in s["errors"].get("by_error", [])} for s in sums]
    errors = sorted(
        set(counts[0]) | set(counts[1]), key=lambda e: -(counts[0].get(e, 0) + counts[1].get(e, 0))
    )
    top_errors = [
        {"error": e, "a": counts[0].get(e, 0), "b": counts[1].get(e, 0)} for e in errors[:25]
    ]
    plot_paths = {
        "throughput": out_dir / "plots" / "compare-throughput.png",
        "rss": out_dir / "plots" / "compare-rss.png",
    }
    plots.save(plots.plot_compare_throughput(runs), plot_paths["throughput"])
    plots.save(plots.plot_compare_rss(runs), plot_paths["rss"])
    result = {
        "schema": "nazbench-compare/1",
        "runs": [
            {
                "run_id": s["run_id"],
                "dir": str(r.dir),
                "verdict": s["verdict"],
                "outcome": render.outcome(s),
                "missing": s["missing"],
            }
            for r, s in zip(runs, sums, strict=True)
        ],
        "rows": rows,
        "top_errors": top_errors,
        "plots": {k: str(p.relative_to(out_dir)) for k, p in plot_paths.items()},
        "plot_text": _compare_plot_text(sums),
        "summaries": sums,
    }
    _write(out_dir / "compare.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
    _write(out_dir / "compare.html", render.compare_html(result, plot_paths))
    result["out_dir"] = str(out_dir)
    return result


def _compare_plot_text(sums: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Alt texts of the two overlay plots, with each run's numbers."""

    def num(value: Any) -> str:
        return "?" if value is None else f"{value:g}"

    tp, rss = [], []
    for label, s in zip(("A", "B"), sums, strict=True):
        t, naz = s.get("throughput") or {}, s.get("naz") or {}
        tp.append(
            f"{label} ({s['run_id']}): {num(t.get('overall_msg_per_s'))} msg/s overall, "
            f"{num(t.get('goodput_outside_msg_per_s'))} outside its {len(s.get('outages') or [])} "
            "outages"
        )
        rss.append(
            f"{label} ({s['run_id']}): {num(naz.get('rss_start_mb'))} MB at the start, "
            f"{num(naz.get('rss_end_mb'))} MB at the end"
        )
    return {
        "throughput": {
            "alt": "Accepted submit_sm per second of both runs over time; " + "; ".join(tp) + "."
        },
        "rss": {"alt": "naz-cli resident memory of both runs over time; " + "; ".join(rss) + "."},
    }


def format_runs(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "(no runs)"
    lines = [f"{'run_id':<32} {'date':<24} {'profile':<8} {'exp':<4} {'messages':>8}  report"]
    for r in runs:
        lines.append(
            f"{r['run_id']:<32} {r['date'] or '?':<24} {r['profile'] or '-':<8} "
            f"{r['experiment'] or '-':<4} {r['messages'] or '-'!s:>8}  "
            f"{'yes' if r['has_report'] else 'no'}"
        )
    return "\n".join(lines)


def _not_a_run(exc: Exception, path: str) -> int:
    parent = Path(path).parent
    sys.stderr.write(f"report: error: {exc}\n")
    runs = known_runs(parent)
    sys.stderr.write(f"known runs in {parent}/:\n{format_runs(runs)}\n")
    return 2


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nazbench.report", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="summary.json, report.html and plots of one run")
    b.add_argument("run_dir")
    c = sub.add_parser("compare", help="two runs side by side: compare.html + compare.json")
    c.add_argument("run_a")
    c.add_argument("run_b")
    c.add_argument("--out", help="output directory (default <parent>/compare-<a>-vs-<b>)")
    r = sub.add_parser("runs", help="list the runs in an artifacts directory")
    r.add_argument("root", nargs="?", default="artifacts")
    r.add_argument("--json", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    if args.cmd == "runs":
        runs = known_runs(args.root)
        if args.json:
            sys.stdout.write(json.dumps(runs, indent=2) + "\n")
        else:
            sys.stdout.write(format_runs(runs) + "\n")
        return 0
    if args.cmd == "build":
        try:
            summary = build(args.run_dir)
        except RunDirError as exc:
            return _not_a_run(exc, args.run_dir)
        sys.stdout.write(f"{summary['verdict']}\n")
        sys.stdout.write(f"wrote {Path(args.run_dir) / 'report.html'} and summary.json\n")
        if summary["missing"]:
            sys.stdout.write(f"missing inputs: {', '.join(summary['missing'])}\n")
        return 0
    for path in (args.run_a, args.run_b):
        try:
            load(path)
        except RunDirError as exc:
            return _not_a_run(exc, path)
    result = compare(args.run_a, args.run_b, args.out)
    sys.stdout.write(f"wrote {result['out_dir']}/compare.html and compare.json\n")
    return 0
