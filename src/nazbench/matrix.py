"""Figures of many runs side by side: per cell of axes, their means and intervals, and a gate.

Each run is a collected directory with a summary.json (``nazbench.report``). A run gives
the figures of :data:`FIGURES` (:func:`run_figures`); :func:`matrix` groups runs by axes
(:data:`AXES`: experiment, profile, naz_version, chaos_seed) and gives per cell and figure
n, mean, a bootstrap interval and the runs needed for ±10 % of the mean, and the
differences between the levels of each axis with the other axes held equal (bootstrap
interval and permutation p-value); :func:`gate` checks cells' means against thresholds.

    python -m nazbench.matrix artifacts/smoke-a-1 artifacts/smoke-b-1 --by experiment
    python -m nazbench.matrix artifacts/run-* --thresholds gate.yml --json matrix.json

Exit status: 0 done (no threshold breached); 1 a threshold breached (each breach named);
2 bad input (a directory without summary.json, an unknown axis, bad thresholds).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import statistics
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from nazbench import stats

__all__ = [
    "AXES",
    "FIGURES",
    "gate",
    "load_thresholds",
    "main",
    "matrix",
    "render",
    "rss_slope_mb_per_h",
    "run_figures",
]

MB_PER_H = 3600.0
# per run; the unit is in the name (rates are per message, counts are messages)
FIGURES = (
    "loss_rate",
    "duplicated",
    "recovery_p50_s",
    "recovery_p99_s",
    "receipt_ack_p99_s",
    "throughput_msg_per_s",
    "rss_slope_mb_per_h",
)
AXES = ("experiment", "profile", "naz_version", "chaos_seed")
LIMITS = ("max", "min")
LEVEL = 0.95
RESAMPLES = 10000
HALF_WIDTH = 0.10  # runs_needed: an interval of ± this share of the mean


class BadInput(ValueError):
    """Input the matrix cannot use (exit status 2)."""


# --------------------------------------------------------------------------- one run


def rss_slope_mb_per_h(s: dict[str, Any]) -> float | None:
    """naz RSS end - start over the run's span, MB per hour (two-point slope)."""
    naz, span = s.get("naz") or {}, (s.get("throughput") or {}).get("span_s")
    if naz.get("rss_start_mb") is None or naz.get("rss_end_mb") is None or not span:
        return None
    return (naz["rss_end_mb"] - naz["rss_start_mb"]) / span * MB_PER_H


def naz_version(s: dict[str, Any]) -> str | None:
    """naz's version on the naz host (versions.json's naz_host.naz), else a top-level naz."""
    versions = s.get("versions") or {}
    host = versions.get("naz_host")
    if isinstance(host, dict) and host.get("naz") is not None:
        return str(host["naz"])
    return str(versions["naz"]) if versions.get("naz") is not None else None


def clean_recoveries(s: dict[str, Any]) -> list[float]:
    """Recovery seconds of the run's clean outages (no other outage overlapping it)."""
    listed = set((s.get("recovery") or {}).get("clean") or [])
    out = []
    for o in s.get("outages") or []:
        clean = o["clean"] if "clean" in o else o.get("label") in listed
        if clean and o.get("recovery_s") is not None:
            out.append(float(o["recovery_s"]))
    return out


def run_figures(summary: dict[str, Any]) -> dict[str, Any]:
    """A run's figures (:data:`FIGURES`, None when the run cannot tell) and axes.

    loss_rate: messages lost by naz (lost - lost_never_popped: those left in Redis when the
    run ended are not naz's) over messages queued; duplicated: messages accepted more than
    once; recovery_p50_s/p99_s: nearest-rank over the clean outages' recovery seconds;
    receipt_ack_p99_s: the receipts' ack latency p99; throughput_msg_per_s: accepted msg/s
    outside outages; rss_slope_mb_per_h: :func:`rss_slope_mb_per_h`.
    """
    run = summary.get("run") or {}
    m = summary.get("messages") or {}
    lost, queued = m.get("lost"), m.get("queued")
    loss_rate = None
    if lost is not None and queued:
        loss_rate = (lost - (m.get("lost_never_popped") or 0)) / queued
    recov = clean_recoveries(summary)
    acks = ((summary.get("receipts") or {}).get("ack_latency_s") or {}).get("p99")
    return {
        "run_id": summary.get("run_id"),
        "experiment": run.get("experiment"),
        "profile": run.get("profile"),
        "naz_version": naz_version(summary),
        "chaos_seed": run.get("chaos_seed"),
        "loss_rate": loss_rate,
        "duplicated": m.get("duplicated"),
        "recovery_p50_s": stats.percentile(recov, 50) if recov else None,
        "recovery_p99_s": stats.percentile(recov, 99) if recov else None,
        "receipt_ack_p99_s": acks,
        "throughput_msg_per_s": (summary.get("throughput") or {}).get("goodput_outside_msg_per_s"),
        "rss_slope_mb_per_h": rss_slope_mb_per_h(summary),
    }


# --------------------------------------------------------------------------- many runs


def _order(value: Any) -> tuple[int, Any]:
    """Sort key for axis levels of mixed kinds: numbers, then strings, then None."""
    if value is None:
        return (2, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def cell_label(key: dict[str, Any]) -> str:
    return ", ".join(f"{axis}={'—' if v is None else v}" for axis, v in key.items())


def _figure_cell(values: list[float], level: float, resamples: int, seed: int) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mean": None, "ci": None, "runs_needed": None, "values": []}
    mean = statistics.fmean(values)
    lo, hi = stats.bootstrap_ci(values, level=level, resamples=resamples, seed=seed)
    needed = stats.runs_needed(values, HALF_WIDTH * abs(mean), level) if mean != 0 else None
    return {"n": len(values), "mean": mean, "ci": [lo, hi], "runs_needed": needed, "values": values}


def _figure_diff(
    a: list[float], b: list[float], level: float, resamples: int, seed: int
) -> dict[str, Any]:
    out: dict[str, Any] = {"n_a": len(a), "n_b": len(b), "diff": None, "ci": None, "p": None}
    if a and b:
        lo, hi = stats.diff_ci(a, b, level=level, resamples=resamples, seed=seed)
        out.update(
            diff=statistics.fmean(a) - statistics.fmean(b),
            ci=[lo, hi],
            p=stats.permutation_p(a, b, resamples=resamples, seed=seed),
        )
    return out


def matrix(
    summaries: Iterable[dict[str, Any]],
    by: Sequence[str] = ("experiment", "naz_version"),
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Runs grouped by the axes ``by``; per cell and figure, and between levels of an axis.

    ``cells``: one per combination of the axes' values that has runs (sorted), with its
    runs and per figure n (runs that have the figure), mean, ``ci`` (bootstrap at
    ``level``) and runs_needed (for a half-width of 10 % of the mean; None when the mean
    is 0 or with fewer than 2 values). ``differences``: for each axis and each pair of its
    levels, per combination of the other axes having both, per figure mean(a) - mean(b)
    with its bootstrap ``ci`` and two-sided permutation ``p``. Seeded: deterministic.
    """
    by = tuple(by)
    unknown = [a for a in by if a not in AXES]
    if not by or unknown or len(set(by)) != len(by):
        raise BadInput(
            f"axes to group by must be distinct names among {', '.join(AXES)}; "
            f"got {', '.join(by) or 'none'}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    rows = [run_figures(s) for s in summaries]
    groups: dict[tuple, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in rows:
        groups[tuple(r[a] for a in by)].append(r)
    keys = sorted(groups, key=lambda k: tuple(_order(v) for v in k))
    cells = []
    for k in keys:
        key = dict(zip(by, k, strict=True))
        figures = {
            f: _figure_cell([r[f] for r in groups[k] if r[f] is not None], level, resamples, seed)
            for f in FIGURES
        }
        cells.append(
            {
                "key": key,
                "label": cell_label(key),
                "runs": [r["run_id"] for r in groups[k]],
                "figures": figures,
            }
        )
    by_key = {tuple(c["key"].values()): c for c in cells}
    differences = []
    for i, axis in enumerate(by):
        levels = sorted({k[i] for k in keys}, key=_order)
        rests = sorted({k[:i] + k[i + 1 :] for k in keys}, key=lambda t: tuple(map(_order, t)))
        for la, lb in itertools.combinations(levels, 2):
            for rest in rests:
                ca = by_key.get((*rest[:i], la, *rest[i:]))
                cb = by_key.get((*rest[:i], lb, *rest[i:]))
                if ca is None or cb is None:
                    continue
                holding = dict(zip(by[:i] + by[i + 1 :], rest, strict=True))
                differences.append(
                    {
                        "axis": axis,
                        "a": la,
                        "b": lb,
                        "holding": holding,
                        "figures": {
                            f: _figure_diff(
                                ca["figures"][f]["values"],
                                cb["figures"][f]["values"],
                                level,
                                resamples,
                                seed,
                            )
                            for f in FIGURES
                        },
                    }
                )
    return {
        "by": list(by),
        "level": level,
        "resamples": resamples,
        "seed": seed,
        "half_width_share": HALF_WIDTH,
        "runs": rows,
        "cells": cells,
        "differences": differences,
    }


# --------------------------------------------------------------------------- the gate


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def check_thresholds(thresholds: Any) -> dict[str, dict[str, float]]:
    """``{figure: {"max"|"min": number}}`` as given, or BadInput naming what is wrong."""
    if not isinstance(thresholds, dict):
        raise BadInput(
            f"thresholds must be a mapping of figure to limits, not {type(thresholds).__name__}"
        )
    unknown = [str(f) for f in thresholds if f not in FIGURES]
    if unknown:
        raise BadInput(
            f"unknown figure(s) in thresholds: {', '.join(unknown)} (known: {', '.join(FIGURES)})"
        )
    problems = []
    for figure, limits in thresholds.items():
        if not isinstance(limits, dict) or not limits:
            problems.append(f"{figure}: limits must be a non-empty mapping with max and/or min")
            continue
        bad_keys = [str(k) for k in limits if k not in LIMITS]
        if bad_keys:
            problems.append(
                f"{figure}: unknown key(s) {', '.join(bad_keys)} (known: {', '.join(LIMITS)})"
            )
        problems += [
            f"{figure}: {k} must be a number, not {v!r}"
            for k, v in limits.items()
            if k in LIMITS and not _number(v)
        ]
    if problems:
        raise BadInput("bad thresholds: " + "; ".join(problems))
    return thresholds


def fmt(x: Any) -> str:
    """A figure for a table or a message: 4 significant digits, — for None."""
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def fmt_ci(ci: Sequence[float] | None) -> str:
    return "—" if ci is None else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def gate(matrix_result: dict[str, Any], thresholds: dict[str, dict[str, float]]) -> list[str]:
    """One line per breach: a cell whose mean of a figure is above its max or below its min.

    Cells without the figure (no run has it) are not breaches. Unknown figures, unknown
    limit keys or non-numeric limits: ValueError (BadInput) naming them.
    """
    check_thresholds(thresholds)
    pct = round(matrix_result.get("level", LEVEL) * 100)
    breaches = []
    for cell in matrix_result["cells"]:
        for figure, limits in thresholds.items():
            f = cell["figures"][figure]
            mean = f["mean"]
            if mean is None:
                continue
            for kind, limit in limits.items():
                beyond = mean > limit if kind == "max" else mean < limit
                if beyond:
                    side = "above" if kind == "max" else "below"
                    breaches.append(
                        f"{cell['label']}: {figure} mean {fmt(mean)} ({pct}% CI "
                        f"{fmt_ci(f['ci'])}, n={f['n']}) is {side} the {kind} {fmt(limit)}"
                    )
    return breaches


# --------------------------------------------------------------------------- the CLI


def load_thresholds(path: Path) -> dict[str, dict[str, float]]:
    """Thresholds from a .json or .yml/.yaml file, checked (BadInput when wrong)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read thresholds file {path}: {exc.strerror or exc}") from exc
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BadInput(f"thresholds file {path} is not valid JSON: {exc}") from exc
    elif suffix in {".yml", ".yaml"}:
        try:
            import yaml  # noqa: PLC0415 - only thresholds files need PyYAML
        except ImportError as exc:
            raise BadInput(f"reading {path} needs PyYAML; give a .json file instead") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BadInput(f"thresholds file {path} is not valid YAML: {exc}") from exc
    else:
        raise BadInput(f"thresholds file {path}: expected a .json, .yml or .yaml file")
    return check_thresholds(data)


def load_summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "summary.json"
    if not run_dir.is_dir():
        raise BadInput(f"{run_dir} is not a directory")
    if not path.is_file():
        raise BadInput(
            f"{run_dir} has no summary.json (build it: python -m nazbench.report build {run_dir})"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BadInput(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadInput(f"{path} is not a run summary (not a JSON object)")
    return data


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render(result: dict[str, Any], breaches: list[str] | None = None) -> str:
    """Markdown: per figure a table of cells, then the differences, then the gate."""
    by, pct = result["by"], round(result["level"] * 100)
    need = f"runs for ±{round(result.get('half_width_share', HALF_WIDTH) * 100)}%"
    out = [f"{len(result['runs'])} runs by {', '.join(by)}"]
    for figure in FIGURES:
        rows = [
            [
                *cell["key"].values(),
                f["n"],
                f["mean"],
                fmt_ci(f["ci"]),
                f["runs_needed"],
            ]
            for cell in result["cells"]
            for f in [cell["figures"][figure]]
        ]
        out += [f"### {figure}", _table([*by, "n", "mean", f"{pct}% CI", need], rows)]
    if result["differences"]:
        rows = []
        for d in result["differences"]:
            held = cell_label(d["holding"]) or "—"
            for figure in FIGURES:
                f = d["figures"][figure]
                rows.append(
                    [
                        figure,
                        f"{d['axis']}: {fmt(d['a'])} - {fmt(d['b'])}",
                        held,
                        f"{f['n_a']} / {f['n_b']}",
                        f["diff"],
                        fmt_ci(f["ci"]),
                        None if f["p"] is None else f"{f['p']:.3g}",
                    ]
                )
        headers = ["figure", "a - b", "holding", "n a / b", "mean a - b", f"{pct}% CI", "p"]
        out += ["### differences", _table(headers, rows)]
    else:
        out += ["### differences", "no axis has two levels with the other axes equal"]
    if breaches is not None:
        out.append("### gate")
        out.append("\n".join(f"- BREACH {b}" for b in breaches) or "all thresholds met")
    return "\n\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nazbench.matrix", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run directories")
    parser.add_argument(
        "--by",
        default="experiment,naz_version",
        help=f"axes to group by, comma-separated, among {','.join(AXES)} "
        "(default: experiment,naz_version)",
    )
    parser.add_argument("--thresholds", type=Path, help="gate thresholds, .json or .yml")
    parser.add_argument("--json", type=Path, dest="json_out", help="write the matrix as JSON")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    try:
        by = [a.strip() for a in args.by.split(",") if a.strip()]
        thresholds = load_thresholds(args.thresholds) if args.thresholds else None
        summaries = [load_summary(d) for d in args.runs]
        result = matrix(summaries, by, resamples=args.resamples, seed=args.seed)
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    breaches = gate(result, thresholds) if thresholds is not None else None
    sys.stdout.write(render(result, breaches))
    if args.json_out:
        doc = {**result, "thresholds": thresholds, "breaches": breaches}
        try:
            args.json_out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            sys.stderr.write(f"error: cannot write {args.json_out}: {exc.strerror or exc}\n")
            return 2
    if breaches:
        sys.stderr.write(f"{len(breaches)} threshold breach(es):\n")
        sys.stderr.write("".join(f"{b}\n" for b in breaches))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
