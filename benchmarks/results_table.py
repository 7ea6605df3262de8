"""The figures of docs/RESULTS.md, printed from collected runs' summary.json.

Each run is a directory written by ``collect.yml`` (``artifacts/<run_id>/``); its report
is rebuilt first (``nazbench.report build``, offline), so the figures are those of the
current report code. Prints two Markdown tables: one row per run, and one row per
outage kind (service) over all the runs given.

    python benchmarks/results_table.py artifacts/smoke-a-1 artifacts/smoke-b-1 ...
    python benchmarks/results_table.py --no-build artifacts/paper60-1
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from nazbench.matrix import rss_slope_mb_per_h
from nazbench.report.cli import build


def run_row(s: dict[str, Any]) -> list[Any]:
    m, out = s["messages"], s.get("outcome") or {}
    lost_by_naz = m["lost"] - m.get("lost_never_popped", 0)
    slope = rss_slope_mb_per_h(s)
    stall = s["health"]["stall"]
    return [
        s["run_id"],
        f"{s['run']['experiment']} / {s['run']['profile']}",
        s["run"]["chaos_seed"] if s["run"]["experiment"] == "A" else "—",
        round((s["run"].get("duration_s") or 0) / 60, 1),
        m["queued"],
        m["delivered_once"],
        lost_by_naz,
        m.get("lost_never_popped", 0),
        m["duplicated"],
        len(s["outages"]),
        s["throughput"].get("goodput_outside_msg_per_s"),
        s["latency"].get("steady_p50_s"),
        s["latency"].get("p99_max_s"),
        f"{s['naz']['rss_start_mb']} → {s['naz']['rss_end_mb']}",
        round(slope, 2) if slope is not None else "—",
        s["health"]["sessions"].get("max_bound"),
        f"{stall['duration_s']:.0f} s" if stall.get("detected") else "no",
        out.get("result", "—") + (": " + ", ".join(r["code"] for r in out.get("reasons", [])))
        if out.get("reasons")
        else out.get("result", "—"),
    ]


RUN_HEADERS = [
    "run",
    "experiment / profile",
    "chaos seed",
    "minutes",
    "queued",
    "delivered once",
    "lost by naz",
    "never popped (run ended)",
    "duplicated",
    "outages",
    "msg/s outside outages",
    "latency p50 steady, s",
    "latency p99 max, s",
    "naz RSS start → end, MB",
    "RSS slope, MB/h",
    "SMSC sessions at once (max)",
    "reader stall",
    "result",
]


def kind_rows(sums: list[dict[str, Any]]) -> list[list[Any]]:
    """Per service: outages, lost in flight per outage, duplicated, clean recovery p50/max."""
    outages: dict[str, int] = collections.Counter()
    lost: dict[str, int] = collections.Counter()
    dups: dict[str, int] = collections.Counter()
    recov: dict[str, list[float]] = collections.defaultdict(list)
    overlapped: dict[str, int] = collections.Counter()
    for s in sums:
        by_label = {o["label"]: o for o in s["outages"]}
        for o in s["outages"]:
            outages[o["service"]] += 1
            if o.get("clean") and o["recovery_s"] is not None:
                recov[o["service"]].append(o["recovery_s"])
            elif not o.get("clean"):
                overlapped[o["service"]] += 1
        for x in s["lost"]:
            if x.get("outage") in by_label:
                lost[by_label[x["outage"]]["service"]] += 1
        for x in s.get("duplicated") or []:
            if x.get("outage") in by_label:
                dups[by_label[x["outage"]]["service"]] += 1
    rows = []
    for service in sorted(outages):
        r = recov[service]
        rows.append(
            [
                f"{service} stop",
                outages[service],
                lost[service],
                round(lost[service] / outages[service], 2),
                dups[service],
                len(r),
                round(statistics.median(r), 1) if r else "—",
                round(max(r), 1) if r else "—",
                overlapped[service],
            ]
        )
    return rows


KIND_HEADERS = [
    "outage kind",
    "outages",
    "lost in flight",
    "lost per outage",
    "duplicated",
    "clean recoveries",
    "recovery p50, s",
    "recovery max, s",
    "overlapped (left out)",
]


def keepalive_rows(sums: list[dict[str, Any]]) -> list[list[Any]]:
    """SMSC outages where naz logged an enquire_link error after the SMSC was back:
    when (s after the start) and how long after it the SMSC accepted again."""
    rows = []
    for s in sums:
        for o in s["outages"]:
            after = [t for t in o.get("enquire_link_errors_s") or [] if t >= 0]
            if o["service"] != "SMSC" or not after or o["recovery_s"] is None:
                continue
            first = min(after)
            rows.append([s["run_id"], o["label"], first, o["recovery_s"], o.get("clean")])
    return rows


def keepalive_summary(rows: list[list[Any]]) -> str:
    if not rows:
        return "no SMSC outage with an enquire_link error after the start"
    firsts = [r[2] for r in rows]
    gaps = [r[3] - r[2] for r in rows if r[3] >= r[2]]
    text = (
        f"{len(rows)} SMSC outages: naz's first enquire_link error {min(firsts):.1f}-"
        f"{max(firsts):.1f} s after the start (median {statistics.median(firsts):.1f})"
    )
    if gaps:
        text += (
            f"; accepts resumed {min(gaps):.1f}-{max(gaps):.1f} s after it (median "
            f"{statistics.median(gaps):.1f}) in {len(gaps)} of them"
        )
    return text


KEEPALIVE_HEADERS = ["run", "outage", "enquire_link error, s after start", "recovery, s", "clean"]


def markdown(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join("—" if c is None else str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="collected run directories")
    parser.add_argument("--no-build", action="store_true", help="read summary.json as it is")
    args = parser.parse_args(argv)
    sums = []
    for run in args.runs:
        if args.no_build:
            sums.append(json.loads((run / "summary.json").read_text(encoding="utf-8")))
        else:
            sums.append(build(run))
    print(markdown(RUN_HEADERS, [run_row(s) for s in sums]))
    print()
    print(markdown(KIND_HEADERS, kind_rows(sums)))
    print()
    keep = keepalive_rows(sums)
    print(markdown(KEEPALIVE_HEADERS, keep))
    print()
    print(keepalive_summary(keep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
