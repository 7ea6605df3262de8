"""The report's PNG plots (matplotlib, Agg backend, no pyplot state).

Every time plot's x axis is minutes since the run's start (t0) and shades the chaos
outages, one colour per service (legend "SMSC down", "Redis down"); the error-events plot
is a timeline per outage instead (x = seconds after that outage's stop). Legends sit below
the axes inside the figure (constrained layout), and the y range holds everything plotted.
A plot without data still renders, saying "no data" and why.

:func:`describe` says in words what each plot shows, with numbers: the report's alt texts
and captions.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import math
import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from nazbench.report.data import RunData, Series, iso, read_series
from nazbench.report.summary import BUCKET_S, MB, throughput_buckets

SERVICE_COLORS = {"SMSC": "#d62728", "Redis": "#1f77b4"}
OTHER_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22")
BAND_ALPHA = 0.22
LINE_COLOR = "#2ca02c"
FIGSIZE = (10.0, 4.2)
DPI = 100
FONT = 11

PLOTS = ("throughput", "latency", "unanswered", "error_events", "rss", "errors", "queue")
OPTIONAL_PLOTS = {"sessions": "smsc_bound_sessions"}  # plot -> the series it needs

EVENT_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def service_color(service: str, known: dict[str, str] | None = None) -> str:
    if service in SERVICE_COLORS:
        return SERVICE_COLORS[service]
    known = known if known is not None else {}
    if service not in known:
        known[service] = OTHER_COLORS[len(known) % len(OTHER_COLORS)]
    return known[service]


def _figure(title: str, height: float | None = None):
    fig = Figure(figsize=(FIGSIZE[0], height or FIGSIZE[1]), dpi=DPI, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(title, fontsize=FONT + 1)
    ax.tick_params(labelsize=FONT)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _minutes(t: float, t0: float) -> float:
    return (t - t0) / 60.0


def metric(data: RunData, name: str) -> Series | None:
    """A metric series of the run: RunData's, else read from the metrics directory."""
    series = data.metrics.get(name)
    if series is not None or data.metrics_dir is None:
        return series
    return read_series(data.metrics_dir, name)


def _totals(series: Series | None) -> list[tuple[float, float]]:
    """(t, sum over label sets), time ordered."""
    if not series:
        return []
    sums: dict[float, float] = collections.defaultdict(float)
    for t, v, _ in series.rows:
        sums[t] += v
    return sorted(sums.items())


def _gapped(pts: list[tuple[float, float]], t0: float) -> tuple[list[float], list[float]]:
    """x (minutes), y with a NaN where samples are missing, so the line breaks there."""
    if not pts:
        return [], []
    steps = [b[0] - a[0] for a, b in itertools.pairwise(pts)]
    step = statistics.median(steps) if steps else 0.0
    xs, ys = [], []
    for i, (t, v) in enumerate(pts):
        if i and step and t - pts[i - 1][0] > 2.5 * step:
            xs.append(_minutes(t - step, t0))
            ys.append(math.nan)
        xs.append(_minutes(t, t0))
        ys.append(v)
    return xs, ys


# The fault kind of a band (the chaos loop's services[].kinds) as its hatch; the seed's
# stop is plain, so runs without kinds look as they always did.
KIND_HATCH = {
    "kill": "xx",
    "pause": "..",
    "blackhole": "//",
    "reset": "\\\\",
    "half_open": "--",
    "loss": "//..",
    "latency": "-..",
    "stall": "\\\\..",  # Redis' CLIENT PAUSE
    # the mock SMSC's modes (the unit runs, the port accepts)
    "throttle": "++",
    "slow": "oo",
    "silent": "OO",
    "drop_resp": "**",
    "unbind": "||",
}


def shade_outages(ax, data: RunData, t0: float) -> list:
    """One translucent band per outage, coloured by service and hatched by fault kind;
    returns the patches."""
    end = data.t_end() or t0
    patches, labelled, others = [], set(), {}
    for o in data.outages:
        key = (o.service, o.kind)
        name = f"{o.service} down" if o.kind == "stop" else f"{o.service} {o.kind}"
        label = name if key not in labelled else None
        labelled.add(key)
        patch = ax.axvspan(
            _minutes(o.stop_at, t0),
            _minutes(o.end(end), t0),
            color=service_color(o.service, others),
            alpha=BAND_ALPHA,
            lw=0,
            label=label,
            zorder=0,
            hatch=KIND_HATCH.get(o.kind),
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
        fontsize=FONT + 1,
        color="#666666",
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(ax, ncol: int = 3) -> None:
    """The axes' legend below them, inside the figure (constrained layout makes room)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.figure.legend(
            handles,
            labels,
            loc="outside lower center",
            ncol=min(ncol, len(handles)),
            fontsize=FONT - 1,
            frameon=False,
        )


def _finish(ax, data: RunData, t0: float, ncol: int = 3) -> None:
    t_end = data.t_end()
    if t_end is not None and t_end > t0:
        ax.set_xlim(0, _minutes(t_end, t0))
    ax.set_xlabel(f"minutes since run start ({iso(t0)})", fontsize=FONT)
    _legend(ax, ncol)


def _top(values: list[float], floor: float = 0.1) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return max([*finite, floor]) * 1.1


# --------------------------------------------------------------------------- throughput

RATE_SERIES = (
    # name, label, colour, style, width
    ("smsc_submit_sm_rate", "SMSC accepted/s (Prometheus smsc_submit_sm_rate)", "#9467bd", "--"),
    ("naz_submit_sm_rate", "naz sent submit_sm/s (Prometheus naz_submit_sm_rate)", "#8c564b", ":"),
    (
        "naz_submit_sm_resp_rate",
        "naz counted submit_sm_resp/s (Prometheus; lags after reconnects)",
        "#ff7f0e",
        "-",
    ),
)


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
    plotted = list(ys)
    ax.step(
        xs,
        ys,
        where="post",
        color=LINE_COLOR,
        lw=2.0,
        label=f"SMSC accepted/s (ledger, {BUCKET_S:g} s bins)",
    )
    for name, label, color, style in RATE_SERIES:
        pts = _totals(metric(data, name))
        if not pts:
            continue
        gx, gy = _gapped(pts, t0)
        ax.plot(gx, gy, color=color, ls=style, lw=1.4, label=label)
        plotted += [v for _, v in pts]
    ax.set_ylabel("msg/s", fontsize=FONT)
    ax.set_ylim(bottom=0, top=_top(plotted))
    _finish(ax, data, t0, ncol=2)
    return fig


# --------------------------------------------------------------------------- latency


def plot_latency(data: RunData) -> Figure:
    fig, ax = _figure(f"{data.run_id}: naz submit_sm → submit_sm_resp latency")
    t0 = data.t0()
    p50 = _totals(metric(data, "naz_submit_sm_latency_p50"))
    p99 = _totals(metric(data, "naz_submit_sm_latency_p99"))
    if t0 is None or not (p50 or p99):
        _no_data(ax, "no naz_submit_sm_latency_p50/p99 metrics (Prometheus)")
        return fig
    shade_outages(ax, data, t0)
    plotted = []
    for pts, label, color in ((p50, "p50", "#2ca02c"), (p99, "p99", "#ff7f0e")):
        if pts:
            gx, gy = _gapped(pts, t0)
            ax.plot(gx, gy, color=color, lw=1.6, marker=".", ms=3, label=f"{label} (naz)")
            plotted += [v for _, v in pts]
    positive = [v for v in plotted if v > 0]
    if positive and max(positive) / min(positive) > 50:
        ax.set_yscale("log")
        ax.set_ylim(min(positive) / 1.5, max(positive) * 1.5)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.set_ylabel("seconds (log scale)", fontsize=FONT)
    else:
        ax.set_ylim(bottom=0, top=_top(plotted))
        ax.set_ylabel("seconds", fontsize=FONT)
    _finish(ax, data, t0)
    return fig


def plot_unanswered(data: RunData) -> Figure:
    fig, ax = _figure(f"{data.run_id}: submit_sm naz sent without a reply (naz_unanswered_total)")
    t0 = data.t0()
    pts = _totals(metric(data, "naz_unanswered_total"))
    if t0 is None or not pts:
        _no_data(ax, "no naz_unanswered_total metrics (Prometheus)")
        return fig
    shade_outages(ax, data, t0)
    gx, gy = _gapped(pts, t0)
    ax.step(gx, gy, where="post", color="#d62728", lw=1.8, label="naz_unanswered_total")
    ax.set_ylabel("submit_sm", fontsize=FONT)
    ax.set_ylim(bottom=0, top=_top([v for _, v in pts], floor=1.0))
    ax.yaxis.get_major_locator().set_params(integer=True)
    _finish(ax, data, t0)
    return fig


# --------------------------------------------------------------------------- error events


def outage_windows(data: RunData) -> list[tuple[Any, float, float | None]]:
    """(outage, window end, first accepted submit_sm after its start) per outage.

    The window runs from the outage's stop to the first submit_sm the SMSC accepted after
    the service started again; without one, to the end of the run.
    """
    accepted = [e.ts for e in data.accepted]
    end = data.t_end()
    out = []
    for o in data.outages:
        first = None
        if o.start_at is not None:
            i = bisect.bisect_right(accepted, o.start_at)
            first = accepted[i] if i < len(accepted) else None
        w_end = first if first is not None else (end if end is not None else o.end(o.stop_at))
        out.append((o, max(w_end, o.end(w_end)), first))
    return out


def plot_error_events(data: RunData) -> Figure:
    n = max(len(data.outages), 1)
    fig, ax = _figure(
        f"{data.run_id}: what naz logged from each outage to its first accepted submit_sm",
        height=max(FIGSIZE[1], 1.6 + 0.55 * n),
    )
    if not data.outages:
        _no_data(ax, "no outages (no chaos timeline)")
        return fig
    if data.errors is None:
        _no_data(ax, "no errors.csv (logs table export)")
        return fig
    windows = outage_windows(data)
    rows = [r for r in data.errors if r.ts is not None]
    events = [e for e, _ in collections.Counter(r.event for r in rows).most_common()]
    marker = {e: EVENT_MARKERS[i % len(EVENT_MARKERS)] for i, e in enumerate(events)}
    colors = {e: f"C{i % 10}" for i, e in enumerate(events)}
    labelled: set[str] = set()
    x_max = 1.0
    others: dict[str, str] = {}
    for y, (o, w_end, first) in enumerate(windows):
        down_end = (o.start_at if o.start_at is not None else w_end) - o.stop_at
        ax.barh(
            y,
            down_end,
            left=0,
            height=0.6,
            color=service_color(o.service, others),
            alpha=BAND_ALPHA,
            lw=0,
            label=f"{o.service} down" if f"{o.service} down" not in labelled else None,
            zorder=0,
        )
        labelled.add(f"{o.service} down")
        x_max = max(x_max, w_end - o.stop_at, down_end)
        if first is not None:
            ax.plot(
                [first - o.stop_at],
                [y],
                marker="|",
                ms=22,
                mew=3,
                color=LINE_COLOR,
                ls="none",
                label="first accepted submit_sm" if "first" not in labelled else None,
                zorder=3,
            )
            labelled.add("first")
        for r in rows:
            if o.stop_at <= r.ts <= w_end:
                ax.plot(
                    [r.ts - o.stop_at],
                    [y],
                    marker=marker[r.event],
                    ms=8,
                    ls="none",
                    color=colors[r.event],
                    mfc="none" if marker[r.event] not in ("P", "X", "*") else colors[r.event],
                    label=(r.event or "(no event)") if r.event not in labelled else None,
                    alpha=0.85,
                    zorder=2,
                )
                labelled.add(r.event)
    ax.set_yticks(range(len(windows)), [o.label for o, _, _ in windows], fontsize=FONT)
    ax.set_ylim(len(windows) - 0.5, -0.5)
    ax.set_xlim(-0.02 * x_max, x_max * 1.04)
    ax.set_xlabel("seconds after the outage's stop", fontsize=FONT)
    _legend(ax, ncol=3)
    return fig


# --------------------------------------------------------------------------- others


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
    ax.set_ylabel("MB", fontsize=FONT)
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
    ax.set_ylabel("errors / minute", fontsize=FONT)
    ax.set_ylim(bottom=0, top=_top(list(bottom.values()), floor=1.0))
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
            fontsize=FONT - 1,
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
    ax.set_ylabel("messages", fontsize=FONT)
    ax.set_ylim(bottom=0)
    _finish(ax, data, t0)
    return fig


def plot_sessions(data: RunData) -> Figure:
    fig, ax = _figure(f"{data.run_id}: SMPP sessions bound at the SMSC")
    t0 = data.t0()
    series = metric(data, "smsc_bound_sessions")
    if t0 is None or not series:
        _no_data(ax, "no smsc_bound_sessions metrics (Prometheus)")
        return fig
    shade_outages(ax, data, t0)
    pts = _totals(series)
    gx, gy = _gapped(pts, t0)
    ax.step(gx, gy, where="post", color="#17becf", lw=1.8, label="smsc_bound_sessions")
    ax.axhline(1, color="#7f7f7f", ls=":", lw=1.0, label="one session (expected)")
    ax.set_ylabel("sessions", fontsize=FONT)
    ax.set_ylim(bottom=0, top=_top([v for _, v in pts], floor=2.0))
    ax.yaxis.get_major_locator().set_params(integer=True)
    _finish(ax, data, t0)
    return fig


BUILDERS = {
    "throughput": plot_throughput,
    "latency": plot_latency,
    "unanswered": plot_unanswered,
    "error_events": plot_error_events,
    "rss": plot_rss,
    "errors": plot_errors,
    "queue": plot_queue,
    "sessions": plot_sessions,
}


def save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)


def render_all(data: RunData, out_dir: Path) -> dict[str, str]:
    """Write plots/<name>.png for every plot; return name -> path relative to the run dir.

    The optional plots (:data:`OPTIONAL_PLOTS`) only when the run has their series.
    """
    out = {}
    for name, builder in BUILDERS.items():
        if name in OPTIONAL_PLOTS and not metric(data, OPTIONAL_PLOTS[name]):
            continue
        path = out_dir / "plots" / f"{name}.png"
        save(builder(data), path)
        out[name] = str(path.relative_to(out_dir))
    return out


# --------------------------------------------------------------------------- words


def _n(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "?"
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _at(t: float, t0: float) -> str:
    return f"{_n(_minutes(t, t0))} min"


def _outage_at(data: RunData, t: float) -> str | None:
    """The outage that was down at ``t`` or most recently ended before it."""
    end = data.t_end() or t
    before = [o for o in data.outages if o.stop_at <= t]
    down = [o for o in before if t <= o.end(end)]
    if down:
        return f"during {down[-1].label}"
    if before:
        last = max(before, key=lambda o: o.end(end))
        return f"{_n(t - last.end(end), 0)} s after {last.label} ended"
    return None


def _outages_phrase(data: RunData) -> str:
    counts = collections.Counter(o.service for o in data.outages)
    if not counts:
        return "no outages"
    parts = ", ".join(f"{n} {svc}" for svc, n in sorted(counts.items()))
    return f"{len(data.outages)} outages ({parts})"


def describe(data: RunData) -> dict[str, dict[str, str | None]]:
    """Per plot: ``alt`` (what it shows, with numbers) and a ``caption`` or None."""
    t0 = data.t0()
    out: dict[str, dict[str, str | None]] = {}
    out["throughput"] = _describe_throughput(data, t0)
    out["latency"] = _describe_latency(data, t0)
    out["unanswered"] = _describe_unanswered(data, t0)
    out["error_events"] = _describe_error_events(data)
    out["rss"] = _describe_rss(data)
    out["errors"] = _describe_errors(data)
    out["queue"] = _describe_queue(data, t0)
    if metric(data, "smsc_bound_sessions"):
        out["sessions"] = _describe_sessions(data, t0)
    return out


def _describe_throughput(data: RunData, t0: float | None) -> dict[str, str | None]:
    buckets = throughput_buckets(data)
    if t0 is None or not buckets:
        return {"alt": "Throughput chart: no data (no ledger lines of this run).", "caption": None}
    end = data.t_end() or t0
    down = [(o.stop_at, o.end(end)) for o in data.outages]
    outside = [r for t, r in buckets if r > 0 and not any(a <= t < b for a, b in down)]
    typical = statistics.median(outside) if outside else max(r for _, r in buckets)
    words = [
        f"Line chart of submit_sm per second over {_n(_minutes(end, t0))} minutes: "
        f"the SMSC accepted about {_n(typical)} msg/s (ledger, 10 s bins) "
        f"outside the {_outages_phrase(data)}, which are shaded"
    ]
    for name, what in (
        ("smsc_submit_sm_rate", "the SMSC's own rate"),
        ("naz_submit_sm_rate", "naz's sent rate"),
    ):
        pts = _totals(metric(data, name))
        if pts:
            words.append(f"{what} (Prometheus) follows it, peaking at {_n(max(v for _, v in pts))}")
    caption = None
    resp = _totals(metric(data, "naz_submit_sm_resp_rate"))
    if resp:
        peak_t, peak = max(resp, key=lambda p: p[1])
        lag = _resp_lag_minutes(resp, buckets)
        words.append(
            f"naz's submit_sm_resp/s is 0 for {_n(lag)} min while the SMSC was accepting, "
            f"then peaks at {_n(peak)} msg/s at {_at(peak_t, t0)}"
        )
        p99 = _totals(metric(data, "naz_submit_sm_latency_p99"))
        worst = f" (p99 reply latency up to {_n(max(v for _, v in p99))} s)" if p99 else ""
        caption = (
            "The ledger, smsc_submit_sm_rate and naz_submit_sm_rate agree: they count submit_sm "
            "as naz sends them and the SMSC accepts them. naz_submit_sm_resp_rate counts the "
            "replies when naz handles them; after a reconnect naz handled replies late"
            f"{worst}, so that line sits at 0 for {_n(lag)} min while the SMSC was accepting "
            f"and then bursts to {_n(peak)} msg/s as the backlog is read."
        )
    return {"alt": "; ".join(words) + ".", "caption": caption}


def _resp_lag_minutes(resp: list[tuple[float, float]], buckets: list[tuple[float, float]]) -> float:
    """Minutes during which naz's resp rate was ~0 while the ledger showed accepts."""
    starts = [t for t, _ in buckets]
    steps = [b[0] - a[0] for a, b in itertools.pairwise(resp)]
    step = statistics.median(steps) if steps else 0.0
    total = 0.0
    for t, v in resp:
        i = bisect.bisect_right(starts, t) - 1
        if i >= 0 and v < 0.5 and buckets[i][1] >= 1.0:
            total += step
    return total / 60.0


def _describe_latency(data: RunData, t0: float | None) -> dict[str, str | None]:
    p50 = _totals(metric(data, "naz_submit_sm_latency_p50"))
    p99 = _totals(metric(data, "naz_submit_sm_latency_p99"))
    if t0 is None or not (p50 or p99):
        return {"alt": "Latency chart: no data (no naz latency metrics).", "caption": None}
    words = ["Line chart of naz's submit_sm to submit_sm_resp latency over time, outages shaded"]
    if p50:
        words.append(
            f"p50 is usually {_n(statistics.median(v for _, v in p50), 2)} s "
            f"and reaches {_n(max(v for _, v in p50))} s"
        )
    if p99:
        t, worst = max(p99, key=lambda p: p[1])
        where = _outage_at(data, t)
        words.append(
            f"p99 is usually {_n(statistics.median(v for _, v in p99), 2)} s and reaches "
            f"{_n(worst)} s at {_at(t, t0)}" + (f" ({where})" if where else "")
        )
    caption = (
        "Gaps: no replies in that scrape interval, so no quantile. A log scale when the "
        "values span more than 50 times."
    )
    return {"alt": "; ".join(words) + ".", "caption": caption}


def _describe_unanswered(data: RunData, t0: float | None) -> dict[str, str | None]:
    pts = _totals(metric(data, "naz_unanswered_total"))
    if t0 is None or not pts:
        return {"alt": "Unanswered chart: no data (no naz_unanswered_total).", "caption": None}
    rises = [(b[0], b[1]) for a, b in itertools.pairwise(pts) if b[1] > a[1]]
    text = (
        f"Step chart of naz_unanswered_total: {_n(pts[0][1], 0)} at the start, "
        f"{_n(max(v for _, v in pts), 0)} at most, {_n(pts[-1][1], 0)} at the end"
    )
    if rises:
        text += "; it rose at " + ", ".join(f"{_at(t, t0)} (to {_n(v, 0)})" for t, v in rises[:6])
    return {
        "alt": text + ".",
        "caption": "submit_sm naz sent and never got a submit_sm_resp for (a running total).",
    }


def _describe_error_events(data: RunData) -> dict[str, str | None]:
    if not data.outages:
        return {"alt": "Error-event timeline: no outages in this run.", "caption": None}
    if data.errors is None:
        return {"alt": "Error-event timeline: no data (no errors.csv).", "caption": None}
    rows = [r for r in data.errors if r.ts is not None]
    parts = []
    for o, w_end, first in outage_windows(data):
        inside = [r for r in rows if o.stop_at <= r.ts <= w_end]
        events = collections.Counter(r.event for r in inside)
        what = ", ".join(f"{n} {e or '(no event)'}" for e, n in events.most_common(3)) or "none"
        rec = f"first accept at {_n(first - o.stop_at, 0)} s" if first else "no accept after"
        parts.append(f"{o.label}: {len(inside)} errors ({what}); {rec}")
    return {
        "alt": "Timeline, one row per outage, x = seconds after the outage's stop, markers = "
        "naz log events: " + "; ".join(parts) + ".",
        "caption": "One row per outage, from the service's stop (x = 0) to the first submit_sm "
        "the SMSC accepted after it started again (green tick); the shaded bar is the time the "
        "service was down. Markers: naz's error log records, by event.",
    }


def _describe_rss(data: RunData) -> dict[str, str | None]:
    series = data.metrics.get("naz_rss_bytes")
    if not series:
        return {"alt": "naz RSS chart: no data (no naz_rss_bytes metrics).", "caption": None}
    pts = sorted((t, v) for t, v, _ in series.rows)
    vals = [v / MB for _, v in pts]
    return {
        "alt": f"Line chart of naz-cli resident memory: {_n(vals[0])} MB at the start, "
        f"{_n(vals[-1])} MB at the end, between {_n(min(vals))} and {_n(max(vals))} MB.",
        "caption": None,
    }


def _describe_errors(data: RunData) -> dict[str, str | None]:
    if data.errors is None:
        return {"alt": "Errors chart: no data (no errors.csv).", "caption": None}
    rows = [r for r in data.errors if r.ts is not None]
    if not rows:
        return {"alt": "Errors chart: no errors were logged.", "caption": None}
    t0 = data.t0() or rows[0].ts
    per = collections.Counter(int((r.ts - t0) // 60) for r in rows)
    minute, peak = max(per.items(), key=lambda kv: kv[1])
    events = collections.Counter(r.event for r in rows)
    top = ", ".join(f"{e or '(no event)'} {n}" for e, n in events.most_common(3))
    return {
        "alt": f"Stacked bars of naz error log records per minute: {len(rows)} in all, at most "
        f"{peak} in minute {minute}; by event: {top}.",
        "caption": None,
    }


def _describe_queue(data: RunData, t0: float | None) -> dict[str, str | None]:
    series = data.metrics.get("queue_length")
    words = []
    if series:
        pts = _totals(series)
        words.append(
            f"Redis queue length (Prometheus) peaks at {_n(max(v for _, v in pts), 0)} and ends "
            f"at {_n(pts[-1][1], 0)}"
        )
    if data.accepted and data.expected:
        left = data.expected - len({e.index for e in data.accepted})
        words.append(f"messages not yet delivered (ledger) fall from {data.expected} to {left}")
    if not words:
        why = "no queue_length metrics, no ledger"
        return {"alt": f"Queue chart: no data ({why}).", "caption": None}
    return {"alt": "Line chart: " + "; ".join(words) + ".", "caption": None}


def _describe_sessions(data: RunData, t0: float | None) -> dict[str, str | None]:
    pts = _totals(metric(data, "smsc_bound_sessions"))
    above = [t for t, v in pts if v > 1]
    text = f"Step chart of SMPP sessions bound at the SMSC: at most {_n(max(v for _, v in pts), 0)}"
    if above and t0 is not None:
        text += f"; more than one from {_at(above[0], t0)} to {_at(above[-1], t0)}"
    return {"alt": text + ".", "caption": None}


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
    ax.set_ylim(bottom=0, top=_top([r for d in runs for _, r in throughput_buckets(d)]))
    ax.set_xlabel("minutes since run start (ticks at the bottom: that run's outages)")
    _legend(ax, ncol=2)
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
    _legend(ax, ncol=2)
    return fig
