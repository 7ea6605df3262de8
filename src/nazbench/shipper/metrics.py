"""Prometheus metrics of the log shipper (all named ``nazbench_shipper_*``)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

PREFIX = "nazbench_shipper_"


class ShipperMetrics:
    """The shipper's metric families, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = REGISTRY if registry is None else registry
        self.registry = reg
        self.lines_read = Counter(
            PREFIX + "lines_read", "Complete lines read from log files.", registry=reg
        )
        self.rows_written = Counter(
            PREFIX + "rows_written",
            "Rows inserted into logs (rows already there, e.g. a retried batch, not counted).",
            registry=reg,
        )
        self.rows_duplicate = Counter(
            PREFIX + "rows_duplicate",
            "Rows sent but already in logs (ON CONFLICT DO NOTHING): retries after an "
            "ambiguous commit.",
            registry=reg,
        )
        self.batches = Counter(
            PREFIX + "batches", "Batches committed (rows and positions).", registry=reg
        )
        self.db_errors = Counter(
            PREFIX + "db_errors",
            "Failed database operations (connect, load positions, write), each retried.",
            registry=reg,
        )
        self.lag_bytes = Gauge(
            PREFIX + "lag_bytes",
            "Bytes in the followed files past the committed positions (file size - offset).",
            registry=reg,
        )
        self.lag_seconds = Gauge(
            PREFIX + "lag_seconds",
            "Now minus the timestamp of the newest record committed (NaN before the first).",
            registry=reg,
        )
        self.last_shipped_timestamp = Gauge(
            PREFIX + "last_shipped_record_timestamp_seconds",
            "Unix time of the newest record committed (0 before the first).",
            registry=reg,
        )
        self.backlog_rows = Gauge(
            PREFIX + "backlog_rows", "Rows read and waiting to be committed.", registry=reg
        )
        self.db_connected = Gauge(
            PREFIX + "db_connected",
            "1 while the last database operation succeeded, else 0.",
            registry=reg,
        )
        self.files_open = Gauge(
            PREFIX + "files_open",
            "Log files being read (the current one plus rotated ones being finished).",
            registry=reg,
        )
        self.lag_seconds.set(float("nan"))
