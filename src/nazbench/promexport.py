"""Export one run's metrics from Prometheus to CSV files (stdlib only).

    python -m nazbench.promexport --url http://127.0.0.1:9090 --start 2026-11-28T09:33:11Z \
        --end 1795858900 --step 5s --run-id run-1 --out-dir artifacts/run-1/metrics \
        [--query NAME=PROMQL ...] [--only NAME ...] [--strict]

It runs on the observability host (Python 3.11, no third-party packages). Every query of
:data:`QUERIES` (plus ``--query`` additions/overrides) goes to ``/api/v1/query_range``;
``{run_id}`` and ``{window}`` (the rate window, ``--rate-window``) in a template are
replaced textually, so PromQL's own braces need no escaping. Prometheus refuses more than
11,000 points per series, so a longer range is fetched in consecutive chunks (same step,
no overlap) and the series are joined.

Output, in ``--out-dir``:

- ``<name>.csv`` per query that returned data: ``timestamp,value`` (epoch seconds and the
  sample as Prometheus printed it) plus one column per label whose value differs between
  the query's series (labels shared by all series go to the index instead);
- ``metrics-index.json``: per query its PromQL, file, series and point counts, chunks,
  label columns, constant labels, and ``status`` ``ok`` / ``empty`` / ``error`` (with the
  error). A failing or empty query is recorded and the others still run; ``--strict``
  makes the exit status 1 when any query failed or returned nothing. Exit status 2: bad
  arguments.

Labels ``run_id``, ``region`` and ``host`` come from Prometheus' scrape configuration.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

INDEX_SCHEMA = "nazbench-metrics-index/1"
MAX_POINTS = 11_000  # Prometheus' limit on points per series of one query_range
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")

# name -> PromQL template. The naz process is told apart from the SMSC's (both export
# process_*) by a metric only naz's hook exports, nazbench_naz_submit_sm_pending.
QUERIES: dict[str, str] = {
    # naz-cli's resident memory (bytes)
    "naz_rss_bytes": (
        'process_resident_memory_bytes{run_id="{run_id}"}'
        ' and on(instance) nazbench_naz_submit_sm_pending{run_id="{run_id}"}'
    ),
    # submit_sm naz wrote (per second)
    "naz_submit_sm_rate": (
        "sum by (host) (rate(nazbench_naz_messages_total"
        '{run_id="{run_id}",smpp_command="submit_sm",state="request"}[{window}]))'
    ),
    # submit_sm_resp naz received (per second), by response code
    "naz_submit_sm_resp_rate": (
        "sum by (host, response_code) (rate(nazbench_naz_messages_total"
        '{run_id="{run_id}",smpp_command="submit_sm_resp",state="response"}[{window}]))'
    ),
    # submit_sm the SMSC answered (per second), by command_status
    "smsc_submit_sm_rate": (
        'sum by (host, command_status) (rate(nazbench_smsc_submit_sm_total{run_id="{run_id}"}'
        "[{window}]))"
    ),
    # sessions bound at the SMSC right now (gauge) and bind requests answered, by result:
    # a client holding more than one session shows here (only naz binds in a run)
    "smsc_bound_sessions": 'sum by (host) (nazbench_smsc_bound_sessions{run_id="{run_id}"})',
    "smsc_binds_total": 'sum by (host, result) (nazbench_smsc_binds_total{run_id="{run_id}"})',
    # submit_sm -> submit_sm_resp latency, 50th and 99th percentile (seconds)
    "naz_submit_sm_latency_p50": (
        "histogram_quantile(0.5, sum by (le) (rate("
        'nazbench_naz_submit_sm_latency_seconds_bucket{run_id="{run_id}"}[{window}])))'
    ),
    "naz_submit_sm_latency_p99": (
        "histogram_quantile(0.99, sum by (le) (rate("
        'nazbench_naz_submit_sm_latency_seconds_bucket{run_id="{run_id}"}[{window}])))'
    ),
    # messages naz popped from Redis (counter) and unanswered submit_sm (counter)
    "naz_dequeued_total": 'nazbench_naz_broker_dequeued_total{run_id="{run_id}"}',
    "naz_unanswered_total": 'nazbench_naz_submit_sm_unanswered_total{run_id="{run_id}"}',
    # 1 while naz's broker cannot reach Redis
    "naz_redis_down": 'nazbench_naz_broker_redis_down{run_id="{run_id}"}',
    # the Redis list's length (redis_exporter --check-single-keys)
    "queue_length": 'redis_key_size{run_id="{run_id}",key="naz_benchmarks_queue"}',
    # every host's available memory (bytes) and busy CPU share (0-1)
    "host_memory_available_bytes": 'node_memory_MemAvailable_bytes{run_id="{run_id}"}',
    "host_cpu_busy_ratio": (
        '1 - avg by (host) (rate(node_cpu_seconds_total{run_id="{run_id}",mode="idle"}[{window}]))'
    ),
}


class ExportError(Exception):
    """A query that could not be answered (HTTP, network, or Prometheus error)."""


# --------------------------------------------------------------------------- parsing


def parse_time(text: str) -> float:
    """Epoch seconds from an epoch number or an ISO 8601 time (naive = UTC)."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(f"not a finite time: {text!r}")
        return value
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 time or epoch seconds: {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Seconds from ``5``, ``5s``, ``500ms``, ``1m``, ``2h``, ``1d``; must be > 0."""
    match = _DURATION_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a duration (e.g. 5s, 1m, 500ms): {text!r}")
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration must be > 0: {text!r}")
    return seconds


def render(template: str, run_id: str, window: str) -> str:
    """The PromQL of ``template`` for ``run_id`` (textual replacement, no str.format)."""
    if not _RUN_ID_RE.match(run_id):
        raise ValueError(f"run_id {run_id!r} must be 1-64 of [A-Za-z0-9_.-]")
    return template.replace("{run_id}", run_id).replace("{window}", window)


def chunks(start: float, end: float, step: float, max_points: int = MAX_POINTS):
    """Consecutive (start, end) ranges of at most ``max_points`` points each on one grid."""
    if end < start:
        raise ValueError("end is before start")
    if max_points < 1:
        raise ValueError("max_points must be >= 1")
    total = math.floor((end - start) / step + 1e-9) + 1
    out = []
    first = 0
    while first < total:
        last = min(first + max_points, total) - 1
        out.append((start + first * step, start + last * step))
        first = last + 1
    return out


# --------------------------------------------------------------------------- HTTP


def query_range(
    url: str, promql: str, start: float, end: float, step: float, *, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """The ``result`` list of one /api/v1/query_range call (a matrix)."""
    endpoint = url.rstrip("/") + "/api/v1/query_range"
    body = urllib.parse.urlencode(
        {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL is the operator's Prometheus
        endpoint,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            payload = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        try:
            err = json.loads(detail)
            detail = f"{err.get('errorType', '')}: {err.get('error', detail)}"
        except ValueError:
            detail = detail[:300]
        raise ExportError(f"HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise ExportError(f"cannot reach {endpoint}: {exc}") from None
    except ValueError as exc:
        raise ExportError(f"not JSON from {endpoint}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("status") != "success":
        error = payload.get("error") if isinstance(payload, dict) else payload
        raise ExportError(f"Prometheus error: {error}")
    data = payload.get("data") or {}
    if data.get("resultType") != "matrix":
        raise ExportError(f"expected a matrix, got {data.get('resultType')!r}")
    return list(data.get("result") or [])


def fetch(
    url: str,
    promql: str,
    start: float,
    end: float,
    step: float,
    *,
    max_points: int = MAX_POINTS,
    timeout: float = 30.0,
) -> tuple[list[tuple[dict[str, str], list[tuple[float, str]]]], int]:
    """All series of ``promql`` over [start, end], chunked; (series, number of chunks)."""
    merged: dict[tuple, tuple[dict[str, str], list[tuple[float, str]]]] = {}
    ranges = chunks(start, end, step, max_points)
    for lo, hi in ranges:
        for series in query_range(url, promql, lo, hi, step, timeout=timeout):
            metric = {str(k): str(v) for k, v in (series.get("metric") or {}).items()}
            key = tuple(sorted(metric.items()))
            entry = merged.setdefault(key, (metric, []))
            entry[1].extend((float(t), str(v)) for t, v in series.get("values") or [])
    out = []
    for metric, values in merged.values():
        seen: dict[float, str] = {}
        for t, v in values:
            seen[t] = v
        out.append((metric, sorted(seen.items())))
    out.sort(key=lambda item: sorted(item[0].items()))
    return out, len(ranges)


# --------------------------------------------------------------------------- output


def split_labels(metrics: list[dict[str, str]]) -> tuple[list[str], dict[str, str]]:
    """(labels whose value differs between series, labels all series share)."""
    names = sorted({name for m in metrics for name in m})
    varying, constant = [], {}
    for name in names:
        values = {m.get(name) for m in metrics}
        if len(values) == 1 and None not in values:
            constant[name] = next(iter(values))
        else:
            varying.append(name)
    return varying, constant


def write_csv(path: Path, series, varying: list[str]) -> int:
    """Write the rows; return the number of points."""
    tmp = path.with_name(f".{path.name}.tmp")
    points = 0
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "value", *varying])
        for metric, values in series:
            labels = [metric.get(name, "") for name in varying]
            for t, v in values:
                writer.writerow([f"{t:.3f}", v, *labels])
                points += 1
    os.replace(tmp, path)
    return points


def export(
    url: str,
    run_id: str,
    start: float,
    end: float,
    step: float,
    *,
    out_dir: Path,
    queries: dict[str, str] | None = None,
    window: str = "30s",
    max_points: int = MAX_POINTS,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Run every query, write the CSVs and metrics-index.json; return the index."""
    queries = dict(QUERIES if queries is None else queries)
    out_dir.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {
        "schema": INDEX_SCHEMA,
        "run_id": run_id,
        "url": url,
        "start": start,
        "end": end,
        "step_s": step,
        "rate_window": window,
        "max_points_per_series": max_points,
        "generated_at": round(time.time(), 3),
        "queries": {},
        "errors": [],
        "empty": [],
    }
    for name, template in queries.items():
        promql = render(template, run_id, window)
        entry: dict[str, Any] = {"promql": promql, "file": None, "series": 0, "points": 0}
        try:
            series, n_chunks = fetch(
                url, promql, start, end, step, max_points=max_points, timeout=timeout
            )
        except ExportError as exc:
            entry.update(status="error", error=str(exc))
            index["errors"].append(name)
        else:
            entry["chunks"] = n_chunks
            series = [s for s in series if s[1]]
            if not series:
                entry.update(status="empty", error=None)
                index["empty"].append(name)
            else:
                varying, constant = split_labels([m for m, _ in series])
                filename = f"{name}.csv"
                entry["points"] = write_csv(out_dir / filename, series, varying)
                entry.update(
                    status="ok",
                    error=None,
                    file=filename,
                    series=len(series),
                    label_columns=varying,
                    constant_labels=constant,
                )
        index["queries"][name] = entry
    tmp = out_dir / ".metrics-index.json.tmp"
    tmp.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / "metrics-index.json")
    return index


# --------------------------------------------------------------------------- CLI


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nazbench.promexport",
        description="Export a run's metrics from Prometheus (query_range) to CSV files.",
    )
    p.add_argument("--url", default="http://127.0.0.1:9090", help="Prometheus base URL")
    p.add_argument("--start", required=True, help="ISO 8601 time or epoch seconds")
    p.add_argument("--end", required=True, help="ISO 8601 time or epoch seconds")
    p.add_argument("--step", default="5s", help="resolution, e.g. 5s (default), 1m")
    p.add_argument("--run-id", required=True)
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--rate-window", default="30s", help="range of rate() queries (30s)")
    p.add_argument(
        "--query",
        action="append",
        default=[],
        metavar="NAME=PROMQL",
        help="add or override a query (repeatable; {run_id} and {window} are replaced)",
    )
    p.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="run only these queries"
    )
    p.add_argument("--max-points", type=int, default=MAX_POINTS, help=argparse.SUPPRESS)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request")
    p.add_argument(
        "--strict", action="store_true", help="exit 1 when any query failed or was empty"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        start, end = parse_time(args.start), parse_time(args.end)
        step = parse_duration(args.step)
        parse_duration(args.rate_window)
        if end < start:
            raise ValueError("--end is before --start")
        if not _RUN_ID_RE.match(args.run_id):
            raise ValueError(f"--run-id {args.run_id!r} must be 1-64 of [A-Za-z0-9_.-]")
        queries = dict(QUERIES)
        for item in args.query:
            name, sep, promql = item.partition("=")
            if not sep or not _NAME_RE.match(name) or not promql.strip():
                raise ValueError(f"--query wants NAME=PROMQL (NAME of [A-Za-z0-9_]): {item!r}")
            queries[name] = promql
        if args.only:
            unknown = sorted(set(args.only) - set(queries))
            if unknown:
                raise ValueError(f"--only: unknown queries {unknown}; known: {sorted(queries)}")
            queries = {k: v for k, v in queries.items() if k in args.only}
    except ValueError as exc:
        parser.error(str(exc))
    index = export(
        args.url,
        args.run_id,
        start,
        end,
        step,
        out_dir=args.out_dir,
        queries=queries,
        window=args.rate_window,
        max_points=args.max_points,
        timeout=args.timeout,
    )
    ok = [n for n, q in index["queries"].items() if q["status"] == "ok"]
    sys.stdout.write(
        json.dumps(
            {
                "out_dir": str(args.out_dir),
                "ok": ok,
                "empty": index["empty"],
                "errors": {n: index["queries"][n]["error"] for n in index["errors"]},
            }
        )
        + "\n"
    )
    if args.strict and (index["errors"] or index["empty"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
