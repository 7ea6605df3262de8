"""Read a run directory (``artifacts/<run_id>/``) into one object; every input optional.

What a run directory may hold (see playbooks/run_chaos.yml and collect.yml):

- ``params.json`` (run parameters), ``run.json`` (run_chaos.yml's summary),
  ``manifest.json`` (the producer's manifest), ``reconcile.json`` (its reconciliation),
  ``versions.json`` (versions, when collect.yml writes it);
- ``ledger.jsonl`` or ``ledger.jsonl.gz`` (the SMSC's ledger lines of the run);
- ``timeline-<host>.jsonl`` (the chaos loop's timeline per chaos host);
- ``errors.csv`` (the seed's error query on the ``logs`` table, with a header);
- ``metrics/*.csv`` + ``metrics/metrics-index.json`` (nazbench.promexport), or the same
  files directly in the run directory;
- ``logs-check.json`` (collect.yml: naz's log records in its files vs rows in ``logs``,
  :func:`nazbench.collect.check.logs_check`);
- ``topology.json`` (optional, run_plan.yml: ``{"provider": "lab", "groups": {"naz_clients":
  ["sfo1"], ...}, "regions": {"sfo1": "sfo3", ...}, "rtt_measured": <the last
  measure_rtt.yml result between the naz and SMSC hosts, or null>}``; not an input).

A run directory needs ``params.json`` or ``run.json``; everything else that is missing is
listed in ``RunData.missing`` and the numbers that depend on it say so.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from nazbench import ledger
from nazbench.timeline import Timeline

# The logs table's columns (roles/timescaledb/files/schema.sql), in order: what
# ``SELECT * FROM logs`` exports.
LOG_COLUMNS = (
    "timestamp",
    "event",
    "stage",
    "client_id",
    "log_id",
    "error",
    "metadata",
    "run_id",
    "level",
    "source_host",
    "source_file",
    "source_offset",
    "shipped_at",
)

SERVICE_NAMES = {"nazbench-smsc.service": "SMSC", "redis-server.service": "Redis"}


class RunDirError(Exception):
    """The directory is not a run directory (missing, or no params.json / run.json)."""


def service_name(unit: str) -> str:
    return SERVICE_NAMES.get(unit, unit.removesuffix(".service"))


@dataclasses.dataclass
class Outage:
    """One stop → start of one service, from the chaos timeline (actual times)."""

    unit: str
    host: str
    number: int  # 1-based per service, in time order
    window: int | None
    stop_at: float
    start_at: float | None  # None: the timeline never saw it start again
    start_cause: str | None = None
    kind: str = "stop"  # the chaos loop's fault kind (services[].kinds)

    @property
    def service(self) -> str:
        return service_name(self.unit)

    @property
    def label(self) -> str:
        return f"{self.service} outage {self.number}"

    def end(self, fallback: float) -> float:
        return self.start_at if self.start_at is not None else max(fallback, self.stop_at)


@dataclasses.dataclass
class LedgerEntry:
    ts: float
    index: int  # position of the id in the run (manifest index), -1 when not parseable
    accepted: bool
    session: str | None = None  # the SMSC's session id of the line


@dataclasses.dataclass
class ErrorRow:
    ts: float | None
    event: str
    error: str
    log_id: str
    stage: str
    run_id: str


@dataclasses.dataclass
class Series:
    """One metric CSV of nazbench.promexport: rows of (timestamp, value, labels)."""

    name: str
    rows: list[tuple[float, float, dict[str, str]]]

    def by_labels(self) -> dict[tuple, list[tuple[float, float]]]:
        out: dict[tuple, list[tuple[float, float]]] = {}
        for t, v, labels in self.rows:
            out.setdefault(tuple(sorted(labels.items())), []).append((t, v))
        for points in out.values():
            points.sort()
        return out

    def totals(self) -> list[tuple[float, float]]:
        """(timestamp, sum over every label set) in time order: one value per sample time."""
        sums: dict[float, float] = {}
        for t, v, _labels in self.rows:
            sums[t] = sums.get(t, 0.0) + v
        return sorted(sums.items())


@dataclasses.dataclass
class RunData:
    dir: Path
    run_id: str
    params: dict | None = None
    run: dict | None = None
    manifest: dict | None = None
    reconcile_json: dict | None = None
    versions: dict | None = None
    logs_check: dict | None = None
    topology: dict | None = None
    ledger_path: Path | None = None
    ledger_lines: list[str] | None = None
    ledger: list[LedgerEntry] = dataclasses.field(default_factory=list)
    timeline_paths: list[Path] = dataclasses.field(default_factory=list)
    timeline: list[dict] = dataclasses.field(default_factory=list)
    outages: list[Outage] = dataclasses.field(default_factory=list)
    errors_path: Path | None = None
    errors: list[ErrorRow] | None = None
    errors_other_runs: int = 0
    metrics_dir: Path | None = None
    metrics_index: dict | None = None
    metrics: dict[str, Series] = dataclasses.field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [name for name, info in self.inputs.items() if not info["present"]]

    @property
    def since(self) -> float | None:
        """The --since run_chaos.yml gave the reconciliation: the run's start."""
        value = (self.run or {}).get("started_at")
        return float(value) if isinstance(value, int | float) else None

    @property
    def experiment(self) -> str | None:
        return (self.params or {}).get("experiment") or (self.run or {}).get("experiment")

    @property
    def profile(self) -> str | None:
        return (self.params or {}).get("profile") or (self.run or {}).get("profile")

    @property
    def expected(self) -> int | None:
        for source, key in ((self.manifest, "count"), (self.params, "message_count")):
            if source and isinstance(source.get(key), int | str) and str(source[key]).isdigit():
                return int(source[key])
        messages = (self.run or {}).get("messages")
        return (
            int(messages) if isinstance(messages, int | str) and str(messages).isdigit() else None
        )

    @property
    def accepted(self) -> list[LedgerEntry]:
        return [e for e in self.ledger if e.accepted]

    def t0(self) -> float | None:
        """Time zero of the plots: the run's start, else the first ledger line."""
        if self.since is not None:
            return self.since
        started = (self.manifest or {}).get("started_at")
        if isinstance(started, str):
            try:
                return parse_ts(started)
            except ValueError:
                pass
        return self.ledger[0].ts if self.ledger else None

    def t_end(self) -> float | None:
        """End of the plots: the latest of ledger, outages, timeline end, run duration."""
        candidates = [e.ts for e in self.ledger[-1:]]
        candidates += [o.start_at or o.stop_at for o in self.outages]
        candidates += [r["at"] for r in self.timeline if r.get("record") == "end" and "at" in r]
        t0 = self.t0()
        duration = (self.run or {}).get("duration_s")
        if t0 is not None and isinstance(duration, int | float):
            candidates.append(t0 + float(duration))
        return max(candidates) if candidates else None


# --------------------------------------------------------------------------- helpers


def parse_ts(text: str) -> float:
    """Epoch seconds from epoch text or ISO 8601 / PostgreSQL timestamptz text."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    norm = text.replace("Z", "+00:00")
    # PostgreSQL prints offsets as +00 or +05:30; fromisoformat wants +HH:MM
    if len(norm) >= 3 and norm[-3] in "+-" and norm[-2:].isdigit():
        norm += ":00"
    when = dt.datetime.fromisoformat(norm)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise RunDirError(f"{path} is not valid JSON: {exc}") from None
    return data if isinstance(data, dict) else None


# --------------------------------------------------------------------------- loading


def load(run_dir: str | Path) -> RunData:
    """Everything a run directory holds; raises RunDirError when it is not one."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"run directory {str(path)!r} does not exist")
    params = _read_json(path / "params.json")
    run = _read_json(path / "run.json")
    if params is None and run is None:
        raise RunDirError(f"{path} has neither params.json nor run.json: not a run directory")
    run_id = str((params or {}).get("run_id") or (run or {}).get("run_id") or path.name)
    data = RunData(dir=path, run_id=run_id, params=params, run=run)

    def note(name: str, file: Path | None, present: bool, why: str | None = None) -> None:
        entry: dict[str, Any] = {"present": present}
        if file is not None:
            entry["path"] = file.name if file.parent == path else str(file.relative_to(path))
        if why:
            entry["note"] = why
        data.inputs[name] = entry

    note("params", path / "params.json", params is not None)
    note("run", path / "run.json", run is not None)
    for name in ("manifest", "reconcile", "versions"):
        value = _read_json(path / f"{name}.json")
        setattr(data, "reconcile_json" if name == "reconcile" else name, value)
        note(name, path / f"{name}.json", value is not None)
    data.logs_check = _read_json(path / "logs-check.json")
    note("logs_check", path / "logs-check.json", data.logs_check is not None)
    data.topology = _read_json(path / "topology.json")
    _load_ledger(data, note)
    _load_timeline(data, note)
    _load_errors(data, note)
    _load_metrics(data, note)
    return data


def _load_ledger(data: RunData, note) -> None:
    path = data.dir / "ledger.jsonl"
    if not path.exists() and (data.dir / "ledger.jsonl.gz").exists():
        path = data.dir / "ledger.jsonl.gz"
    if not path.exists():
        note("ledger", path, False)
        return
    with ledger.open_ledger(path) as fh:
        lines = fh.readlines()
    data.ledger_path, data.ledger_lines = path, lines
    note("ledger", path, True)
    first = int(((data.manifest or {}).get("id_scheme") or {}).get("first_index", 0))
    entries = ledger.classify(
        lines, data.run_id, since=data.since, first=first, count=data.expected
    )
    for entry in entries:
        if entry.category == ledger.OURS and entry.index is not None and entry.ts is not None:
            session = _session(entry.line)
            data.ledger.append(LedgerEntry(entry.ts, entry.index, entry.accepted, session))
    data.ledger.sort(key=lambda e: e.ts)


def _session(line: Any) -> str | None:
    """The ``session`` field of a ledger line (str, bytes or dict), None when absent."""
    record = line
    if not isinstance(line, dict):
        try:
            record = json.loads(line)
        except ValueError:
            return None
    value = record.get("session") if isinstance(record, dict) else None
    return str(value) if value is not None else None


def _load_timeline(data: RunData, note) -> None:
    paths = sorted(data.dir.glob("timeline-*.jsonl"))
    if not paths and (data.dir / "timeline.jsonl").exists():
        paths = [data.dir / "timeline.jsonl"]
    data.timeline_paths = paths
    if not paths:
        why = "experiment B: no chaos" if data.experiment == "B" else None
        note("timeline", data.dir / "timeline-<host>.jsonl", False, why)
        return
    note("timeline", paths[0], True)
    data.inputs["timeline"]["paths"] = [p.name for p in paths]
    timeline = Timeline()
    for path in paths:
        host = path.stem.removeprefix("timeline-") if path.stem != "timeline" else "?"
        before = len(timeline)
        timeline.add_path(path, host=host, run_id=data.run_id)
        for _host, rec in timeline.entries()[before:]:
            data.timeline.append({**rec, "_host": host})
    if timeline.torn:
        data.notes.append(f"the chaos timeline has {timeline.torn} damaged lines (skipped).")
    numbers: dict[str, int] = {}
    for o in timeline.outages():  # in stop order; a failed start leaves an outage open
        if o["stop_at"] is None:
            continue
        numbers[o["service"]] = numbers.get(o["service"], 0) + 1
        outage = Outage(
            unit=o["service"],
            host=o["host"],
            number=numbers[o["service"]],
            window=o["window"],
            stop_at=o["stop_at"],
            start_at=o["start_at"],
            start_cause=o["cause"],
            kind=o["kind"],
        )
        data.outages.append(outage)
        if o["start_at"] is None:
            failed = " (its start failed)" if o["start_failed"] else ""
            data.notes.append(
                f"{outage.label}: the timeline has no start after its stop{failed} "
                "(shaded to the end of the run)."
            )
    data.outages.sort(key=lambda o: (o.stop_at, o.unit))


def _load_errors(data: RunData, note) -> None:
    path = data.dir / "errors.csv"
    if not path.exists():
        note("errors", path, False)
        return
    data.errors_path = path
    rows: list[ErrorRow] = []
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            columns, pending = list(LOG_COLUMNS), []
        elif "event" in header and "error" in header:
            columns, pending = [h.strip() for h in header], []
        else:  # the seed's COPY without HEADER: the table's column order
            columns, pending = list(LOG_COLUMNS), [header]
        for raw in [*pending, *reader]:
            if not raw:
                continue
            rec = dict(zip(columns, raw, strict=False))
            run_id = rec.get("run_id") or ""
            if run_id and run_id != data.run_id:
                data.errors_other_runs += 1
                continue
            try:
                ts = parse_ts(rec.get("timestamp") or "")
            except ValueError:
                ts = None
            rows.append(
                ErrorRow(
                    ts=ts,
                    event=rec.get("event") or "",
                    error=rec.get("error") or "",
                    log_id=rec.get("log_id") or "",
                    stage=rec.get("stage") or "",
                    run_id=run_id,
                )
            )
    rows.sort(key=lambda r: (r.ts is None, r.ts or 0.0))
    data.errors = rows
    note("errors", path, True)
    if data.errors_other_runs:
        data.notes.append(
            f"errors.csv holds {data.errors_other_runs} rows of other runs; they are left out."
        )


# what the report reads from nazbench.promexport's output
METRICS = (
    "naz_rss_bytes",
    "naz_submit_sm_rate",
    "naz_submit_sm_resp_rate",
    "queue_length",
    "naz_dequeued_total",
    "naz_unanswered_total",
    "naz_submit_sm_latency_p50",
    "naz_submit_sm_latency_p99",
    "smsc_submit_sm_rate",
    "smsc_bound_sessions",
    "smsc_binds_total",
    "host_memory_available_bytes",
    "host_cpu_busy_ratio",
)


def read_series(metrics_dir: Path, name: str) -> Series | None:
    """``<metrics_dir>/<name>.csv`` (nazbench.promexport) as a Series; None when absent or
    without a finite sample. Rows whose timestamp or value is not a number are skipped."""
    path = metrics_dir / f"{name}.csv"
    if not path.exists():
        return None
    rows = []
    with path.open(newline="", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            try:
                t, v = float(rec.pop("timestamp")), float(rec.pop("value"))
            except (TypeError, ValueError, KeyError):
                continue
            if math.isfinite(t) and math.isfinite(v):
                rows.append((t, v, {k: val for k, val in rec.items() if k}))
    return Series(name, rows) if rows else None


def _load_metrics(data: RunData, note) -> None:
    candidates = [data.dir / "metrics", data.dir]
    mdir = next((d for d in candidates if (d / "metrics-index.json").exists()), None)
    if mdir is None:
        mdir = next(
            (d for d in candidates if any((d / f"{m}.csv").exists() for m in METRICS)), None
        )
    data.metrics_dir = mdir
    if mdir is None:
        note("metrics", data.dir / "metrics", False)
        return
    data.metrics_index = _read_json(mdir / "metrics-index.json")
    note("metrics", mdir / "metrics-index.json", True)
    for name in METRICS:
        series = read_series(mdir, name)
        if series is not None:
            data.metrics[name] = series
    data.inputs["metrics"]["series"] = sorted(data.metrics)


def known_runs(root: str | Path) -> list[dict[str, Any]]:
    """Run directories under ``root``: id, date, profile, experiment, messages, report."""
    out = []
    root = Path(root)
    if not root.is_dir():
        return out
    for path in sorted(root.iterdir()):
        if not path.is_dir():
            continue
        try:
            params, run = _read_json(path / "params.json"), _read_json(path / "run.json")
        except RunDirError:
            continue
        if params is None and run is None:
            continue
        started = (run or {}).get("started_at")
        if not isinstance(started, int | float):
            manifest_started = None
            with contextlib.suppress(RunDirError):
                manifest_started = (_read_json(path / "manifest.json") or {}).get("started_at")
            try:
                started = parse_ts(manifest_started) if manifest_started else None
            except ValueError:
                started = None
        if started is None:
            started = (path / ("params.json" if params else "run.json")).stat().st_mtime
        out.append(
            {
                "run_id": (params or {}).get("run_id") or (run or {}).get("run_id") or path.name,
                "dir": str(path),
                "date": iso(float(started)),
                "profile": (params or {}).get("profile") or (run or {}).get("profile"),
                "experiment": (params or {}).get("experiment") or (run or {}).get("experiment"),
                "messages": (params or {}).get("message_count") or (run or {}).get("messages"),
                "has_run_json": run is not None,
                "has_report": (path / "report.html").exists(),
            }
        )
    out.sort(key=lambda r: r["date"] or "")
    return out
