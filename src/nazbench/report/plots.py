"""The report's PNG plots (matplotlib, Agg backend, no pyplot state).

Every plot's x axis is minutes since the run's start (t0) and every time plot shades the
chaos outages, one colour per service (legend "SMSC down", "Redis down"). A plot without
data still renders, saying "no data" and why.
"""

from __future__ import annotations

import collections
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure

from nazbench.report.data import RunData, iso
from nazbench.report.summary import BUCKET_S, MB, throughput_buckets

SERVICE_COLORS = {"SMSC": "#d62728", "Redis": "#1f77b4"}
OTHER_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22")
BAND_ALPHA = 0.22
LINE_COLOR = "#2ca02c"
FIGSIZE = (10.0, 3.6)
DPI = 100

PLOTS = ("throughput", "rss", "errors", "queue")


def service_color(service: str, known: dict[str, str] | None = None) -> str:
    if service in SERVICE_COLORS:
        return SERVICE_COLORS[service]
    known = known if known is not None else {}
    if service not in known:
        known[service] = OTHER_COLORS[len(known) % len(OTHER_COLORS)]
    return known[service]


def _figure(title: str):
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    fig.subplots_adjust(left=0.08, right=0.80, top=0.88, bottom=0.15)
    return fig, ax


def _minutes(t: float, t0: float) -> float:
    return (t - t0) / 60.0


def shade_outages(ax, data: RunData, t0: float) -> list:
    """One translucent band per outage, coloured by service; returns the patches."""
    end = data.t_end() or t0
    patches, labelled, others = [], set(), {}
    for o in data.outages:
        label = f"{o.service} down" if o.service not in labelled else None
        labelled.add(o.service)
        patch = ax.axvspan(
            _minutes(o.stop_at, t0),
            _minutes(o.end(end), t0),
            color=service_color(o.service, others),
            alpha=BAND_ALPHA,
            lw=0,
            label=label,
            zorder=0,
        )
        patch.set_gid(f"outage:{o.label}")
        patches.append(patch)
    return patches


def _no_data(ax, why: str) -> None:
    ax.text(
        0.5,
        0.5,
        f"no data\n{why}",
        ha="center",
        va="center",
        transform=ax.transAxes,
        fontsize=11,
        color="#666666",
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _finish(ax, data: RunData, t0: float) -> None:
    t_end = data.t_end()
    if t_end is not None and t_end > t0:
        ax.set_xlim(0, _minutes(t_end, t0))
    ax.set_xlabel(f"minutes since run start ({iso(t0)})")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def plot_throughput(data: RunData) -> Figure:
    fig, ax = _figure(f"{data.run_id}: throughput (submit_sm accepted by the SMSC)")
    t0 = data.t0()
    buckets = throughput_buckets(data)
    if t0 is None or not buckets:
        _no_data(ax, "no ledger lines of this run")
        return fig
    shade_outages(ax, data, t0)
    xs = [_minutes(t, t0) for t, _ in buckets]
    ys = [r for _, r in buckets]
    ax.step(xs, ys, where="post", color=LINE_COLOR, lw=1.4, label=f"ledger, {BUCKET_S:g} s bins")
    series = data.metrics.get("naz_submit_sm_resp_rate")
    if series:
        sums: dict[float, float] = collections.defaultdict(float)
        for t, v, _ in series.rows:
            sums[t] += v
        pts = sorted(sums.items())
        ax.plot(
            [_minutes(t, t0) for t, _ in pts],
            [v for _, v in pts],
            color="#ff7f0e",
            lw=1.0,
            alpha=0.9,
            label="naz submit_sm_resp/s (Prometheus)",
        )
    ax.set_ylabel("msg/s")
    ax.set_ylim(bottom=0, top=max(*ys, 0.1) * 1.15)
    _finish(ax, data, t0)
    return fig


def plot_rss(data: RunData) -> Figure:
    fig, ax = _figure(f"{data.run_id}: naz-cli resident memory")
    t0 = data.t0()
    series = data.metrics.get("naz_rss_bytes")
    if t0 is None or not series:
        run = data.run or {}
        start, end = run.get("naz_rss_start_bytes"), run.get("naz_rss_end_bytes")
        why = "no naz_rss_bytes metrics (Prometheus)"
        if isinstance(start, int | float) and isinstance(end, int | float):
            why += f"\nrun.json: start {start / MB:.1f} MB, end {end / MB:.1f} MB"
        _no_data(ax, why)
        return fig
    shade_outages(ax, data, t0)
    for key, pts in series.by_labels().items():
        label = ",".join(f"{k}={v}" for k, v in key) or "naz RSS"
        ax.plot([_minutes(t, t0) for t, _ in pts], [v / MB for _, v in pts], lw=1.4, label=label)
    ax.set_ylabel("MB")
    _finish(ax, data, t0)
    return fig


def plot_errors(data: RunData, top: int = 6) -> Figure:
    fig, ax = _figure(f"{data.run_id}: naz errors per minute, by event")
    t0 = data.t0()
    rows = [r for r in data.errors or [] if r.ts is not None]
    if t0 is None or data.errors is None:
        _no_data(ax, "no errors.csv (logs table export)")
        return fig
    shade_outages(ax, data, t0)
    if not rows:
        ax.text(0.5, 0.5, "no errors logged", ha="center", va="center", transform=ax.transAxes)
        ax.set_ylim(0, 1)
        _finish(ax, data, t0)
        return fig
    events = collections.Counter(r.event for r in rows)
    keep = [e for e, _ in events.most_common(top)]
    per: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in rows:
        name = r.event if r.event in keep else "other"
        per[name][int((r.ts - t0) // 60)] += 1
    minutes = sorted({m for c in per.values() for m in c})
    bottom = dict.fromkeys(minutes, 0)
    for name in [*keep, "other"]:
        if name not in per:
            continue
        heights = [per[name].get(m, 0) for m in minutes]
        ax.bar(
            [m + 0.5 for m in minutes],
            heights,
            width=0.9,
            bottom=[bottom[m] for m in minutes],
            label=name or "(no event)",
            zorder=2,
        )
        for m, h in zip(minutes, heights, strict=True):
            bottom[m] += h
    ax.set_ylabel("errors / minute")
    _finish(ax, data, t0)
    return fig


def plot_queue(data: RunData) -> Figure:
    fig, ax = _figure(f"{data.run_id}: queue length")
    t0 = data.t0()
    series = data.metrics.get("queue_length")
    accepted = data.accepted
    if t0 is None or (not series and not accepted):
        _no_data(ax, "no queue_length metrics and no ledger")
        return fig
    shade_outages(ax, data, t0)
    if series:
        for key, pts in series.by_labels().items():
            label = "Redis list length (Prometheus)" + (
                " " + ",".join(f"{k}={v}" for k, v in key) if key else ""
            )
            ax.plot([_minutes(t, t0) for t, _ in pts], [v for _, v in pts], lw=1.4, label=label)
    else:
        ax.text(
            0.98,
            0.95,
            "no queue_length metrics",
            ha="right",
            va="top",
            transform=ax.transAxes,
            color="#666666",
            fontsize=9,
        )
    expected = data.expected
    if accepted and expected:
        seen: set[int] = set()
        xs, ys = [0.0], [expected]
        for e in accepted:
            seen.add(e.index)
            xs.append(_minutes(e.ts, t0))
            ys.append(expected - len(seen))
        ax.plot(xs, ys, color="#7f7f7f", ls="--", lw=1.0, label="not yet delivered (ledger)")
    ax.set_ylabel("messages")
    ax.set_ylim(bottom=0)
    _finish(ax, data, t0)
    return fig


BUILDERS = {
    "throughput": plot_throughput,
    "rss": plot_rss,
    "errors": plot_errors,
    "queue": plot_queue,
}


def save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)


def render_all(data: RunData, out_dir: Path) -> dict[str, str]:
    """Write plots/<name>.png for every plot; return name -> path relative to the run dir."""
    out = {}
    for name, builder in BUILDERS.items():
        path = out_dir / "plots" / f"{name}.png"
        save(builder(data), path)
        out[name] = str(path.relative_to(out_dir))
    return out


# --------------------------------------------------------------------------- comparison


def plot_compare_throughput(runs: list[RunData]) -> Figure:
    fig, ax = _figure("throughput (ledger, 10 s bins), minutes since each run's start")
    drawn = False
    for data, color in zip(runs, ("#2ca02c", "#9467bd", "#ff7f0e"), strict=False):
        t0, buckets = data.t0(), throughput_buckets(data)
        if t0 is None or not buckets:
            continue
        ax.step(
            [_minutes(t, t0) for t, _ in buckets],
            [r for _, r in buckets],
            where="post",
            color=color,
            lw=1.2,
            label=f"{data.run_id} ({data.experiment or '?'})",
        )
        for o in data.outages:
            ax.axvspan(
                _minutes(o.stop_at, t0),
                _minutes(o.end(data.t_end() or o.stop_at), t0),
                ymin=0.0,
                ymax=0.04,
                color=color,
                alpha=0.6,
                lw=0,
            )
        drawn = True
    if not drawn:
        _no_data(ax, "no ledger in either run")
        return fig
    ax.set_ylabel("msg/s")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("minutes since run start (ticks at the bottom: that run's outages)")
    fig.subplots_adjust(right=0.72)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def plot_compare_rss(runs: list[RunData]) -> Figure:
    fig, ax = _figure("naz-cli resident memory, minutes since each run's start")
    drawn = False
    for data, color in zip(runs, ("#2ca02c", "#9467bd", "#ff7f0e"), strict=False):
        t0 = data.t0()
        series = data.metrics.get("naz_rss_bytes")
        run = data.run or {}
        if t0 is not None and series:
            pts = sorted((t, v) for t, v, _ in series.rows)
            ax.plot(
                [_minutes(t, t0) for t, _ in pts],
                [v / MB for _, v in pts],
                color=color,
                lw=1.2,
                label=f"{data.run_id}",
            )
            drawn = True
        elif isinstance(run.get("naz_rss_start_bytes"), int | float) and isinstance(
            run.get("naz_rss_end_bytes"), int | float
        ):
            dur = float(run.get("duration_s") or 0.0) / 60.0
            ax.plot(
                [0.0, dur],
                [run["naz_rss_start_bytes"] / MB, run["naz_rss_end_bytes"] / MB],
                color=color,
                marker="o",
                ls=":",
                lw=1.0,
                label=f"{data.run_id} (run.json start/end only)",
            )
            drawn = True
    if not drawn:
        _no_data(ax, "no RSS data in either run")
        return fig
    ax.set_ylabel("MB")
    ax.set_xlabel("minutes since run start")
    fig.subplots_adjust(right=0.72)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig
