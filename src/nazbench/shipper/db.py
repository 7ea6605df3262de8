"""The shipper's side of PostgreSQL: positions in, batches of rows out.

One batch is one transaction: ``COPY`` the rows into a temporary staging table,
``INSERT INTO logs SELECT ... ON CONFLICT DO NOTHING`` (the unique key
``(source_host, source_file, source_offset, timestamp)`` makes a retried batch
harmless), and upsert the ``shipper_positions`` rows that the batch covers. A crash or a
lost connection therefore keeps both the rows and the positions, or neither.

Privileges this needs (and the tests grant nothing more, see
``nazbench.testing.pgcluster.SHIPPER_GRANTS``): CONNECT and TEMPORARY on the database,
USAGE on schema public, INSERT on ``logs`` (never SELECT: the shipper does not read
logs back), SELECT/INSERT/UPDATE on ``shipper_positions``.

Errors are split in two. Anything that is not about the rows themselves (connection
refused or lost, server shutting down, missing privileges) closes the connection and is
raised as ``DbUnavailable``; the caller keeps the batch and retries. A ``DataError``
(a value PostgreSQL will not store) must not block the shipper forever, so the batch is
written again row by row, each in a savepoint, and a row that still fails is replaced by
a row that keeps its content as escaped ASCII in ``metadata.unstorable``.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import errors

from nazbench.shipper.records import ROW_COLUMNS

log = logging.getLogger("nazbench.shipper")

_CREATE_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS nazbench_shipper_batch (
    "timestamp"   timestamptz NOT NULL,
    event         text,
    stage         text,
    client_id     text,
    log_id        text,
    error         text,
    metadata      text,
    run_id        text,
    level         text,
    source_file   text   NOT NULL,
    source_offset bigint NOT NULL
) ON COMMIT DELETE ROWS
"""
_COLS = (
    '"timestamp", event, stage, client_id, log_id, error, metadata, run_id, level, '
    "source_file, source_offset"
)
# The row tuples of records.py are in this order.
assert tuple(c.strip().strip('"') for c in _COLS.split(",")) == ROW_COLUMNS
_COPY = (
    "COPY nazbench_shipper_batch "
    '("timestamp", event, stage, client_id, log_id, error, metadata, run_id, level, '
    "source_file, source_offset) FROM STDIN (FORMAT BINARY)"
)
# Binary COPY (measured: about a third cheaper than text). metadata is staged as text
# (psycopg's binary jsonb dumper would JSON-encode our already-encoded string again)
# and becomes jsonb in the INSERT.
_COPY_TYPES = [
    "timestamptz",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "int8",
]
_INSERT = """
INSERT INTO logs ("timestamp", event, stage, client_id, log_id, error, metadata, run_id,
                  level, source_file, source_offset, source_host)
SELECT "timestamp", event, stage, client_id, log_id, error, metadata::jsonb, run_id,
       level, source_file, source_offset, %s
FROM nazbench_shipper_batch
ON CONFLICT DO NOTHING
"""
_INSERT_ONE = """
INSERT INTO logs ("timestamp", event, stage, client_id, log_id, error, metadata, run_id,
                  level, source_file, source_offset, source_host)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
"""
_UPSERT_POSITION = """
INSERT INTO shipper_positions (source_host, source_file, path, "offset", updated_at)
VALUES (%s, %s, %s, %s, now())
ON CONFLICT (source_host, source_file)
DO UPDATE SET path = EXCLUDED.path, "offset" = EXCLUDED."offset", updated_at = now()
"""
_LOAD_POSITIONS = """
SELECT source_file, path, "offset" FROM shipper_positions WHERE source_host = %s
"""


class DbUnavailable(Exception):
    """The batch could not be written for a reason other than its content; retry later."""


def describe_dsn(dsn: str) -> str:
    """``user@host:port/dbname`` of a DSN, for logs: never the password."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "(a DSN libpq cannot parse)"
    return (
        f"{parts.get('user', '(default user)')}@{parts.get('host', '(default host)')}:"
        f"{parts.get('port', '5432')}/{parts.get('dbname', '(default db)')}"
    )


def dsn_password(dsn: str) -> str | None:
    """The password in a DSN, so that messages can be scrubbed of it."""
    try:
        return psycopg.conninfo.conninfo_to_dict(dsn).get("password")  # type: ignore[return-value]
    except psycopg.Error:
        return None


class Writer:
    """A connection that writes batches; reconnects on the next call after a failure."""

    def __init__(
        self,
        dsn: str,
        source_host: str,
        *,
        connect_timeout: float = 5.0,
        application_name: str = "nazbench-shipper",
    ) -> None:
        self.dsn = dsn
        self.source_host = source_host
        self.connect_timeout = connect_timeout
        self.application_name = application_name
        self.conn: psycopg.Connection[Any] | None = None
        self._password = dsn_password(dsn)
        try:
            self._dsn_keys = set(psycopg.conninfo.conninfo_to_dict(dsn))
        except psycopg.Error:
            self._dsn_keys = set()

    def scrub(self, text: str) -> str:
        """``text`` with the DSN's password (if any, and if it occurs) replaced."""
        if self._password and len(self._password) >= 3:
            return text.replace(self._password, "{REDACTED}")
        return text

    # ------------------------------------------------------------------ connection

    def _connection(self) -> psycopg.Connection[Any]:
        if self.conn is not None and not self.conn.closed:
            return self.conn
        # The DSN's own connect_timeout/application_name win over the defaults here.
        extra: dict[str, Any] = {}
        if "connect_timeout" not in self._dsn_keys:
            extra["connect_timeout"] = max(1, round(self.connect_timeout))
        if "application_name" not in self._dsn_keys:
            extra["application_name"] = self.application_name
        try:
            conn = psycopg.connect(self.dsn, autocommit=True, **extra)
            conn.execute("SET TIME ZONE 'UTC'")
            conn.execute(_CREATE_STAGING)
        except psycopg.Error as exc:
            raise DbUnavailable(self.scrub(f"connect: {exc}".strip())) from None
        self.conn = conn
        log.info("connected to %s", describe_dsn(self.dsn))
        return conn

    def close(self) -> None:
        """Close the connection (if open)."""
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    def _fail(self, exc: BaseException, what: str) -> DbUnavailable:
        self.close()
        return DbUnavailable(self.scrub(f"{what}: {type(exc).__name__}: {exc}".strip()))

    # ------------------------------------------------------------------ reads

    def load_positions(self) -> dict[str, tuple[str, int]]:
        """``{source_file: (path, offset)}`` committed so far for this source host."""
        conn = self._connection()
        try:
            rows = conn.execute(_LOAD_POSITIONS, [self.source_host]).fetchall()
        except psycopg.Error as exc:
            raise self._fail(exc, "load positions") from None
        return {source_file: (path, int(offset)) for source_file, path, offset in rows}

    # ------------------------------------------------------------------ writes

    def write(self, rows: Sequence[tuple[Any, ...]], positions: dict[str, tuple[str, int]]) -> int:
        """Write ``rows`` and ``positions`` in one transaction; return rows inserted."""
        conn = self._connection()
        try:
            return self._write_copy(conn, rows, positions)
        except errors.DataError as exc:
            log.warning("batch rejected (%s); writing it row by row", self.scrub(str(exc)))
        except psycopg.Error as exc:
            raise self._fail(exc, "write") from None
        try:
            return self._write_rows(conn, rows, positions)
        except psycopg.Error as exc:
            raise self._fail(exc, "write row by row") from None

    def _positions(self, cur: psycopg.Cursor[Any], positions: dict[str, tuple[str, int]]) -> None:
        if positions:
            cur.executemany(
                _UPSERT_POSITION,
                [(self.source_host, key, path, off) for key, (path, off) in positions.items()],
            )

    def _write_copy(
        self,
        conn: psycopg.Connection[Any],
        rows: Iterable[tuple[Any, ...]],
        positions: dict[str, tuple[str, int]],
    ) -> int:
        with conn.transaction(), conn.cursor() as cur:
            inserted = 0
            if rows:
                with cur.copy(_COPY) as copy:
                    copy.set_types(_COPY_TYPES)
                    write_row = copy.write_row
                    for row in rows:
                        write_row(row)
                cur.execute(_INSERT, [self.source_host])
                inserted = max(cur.rowcount, 0)
            self._positions(cur, positions)
        return inserted

    def _write_rows(
        self,
        conn: psycopg.Connection[Any],
        rows: Sequence[tuple[Any, ...]],
        positions: dict[str, tuple[str, int]],
    ) -> int:
        inserted = 0
        with conn.transaction(), conn.cursor() as cur:
            for row in rows:
                try:
                    with conn.transaction():
                        cur.execute(_INSERT_ONE, [*row, self.source_host])
                except errors.DataError as exc:
                    log.warning(
                        "row at %s:%s unstorable (%s), kept escaped",
                        row[-2],
                        row[-1],
                        self.scrub(str(exc)),
                    )
                    cur.execute(_INSERT_ONE, [*unstorable_row(row, str(exc)), self.source_host])
                inserted += max(cur.rowcount, 0)
            self._positions(cur, positions)
        return inserted


def unstorable_row(row: tuple[Any, ...], why: str) -> tuple[Any, ...]:
    """A row PostgreSQL surely accepts, keeping ``row``'s content as escaped ASCII."""
    ts = row[0] if isinstance(row[0], datetime.datetime) else None
    if ts is None or not (1900 <= ts.year <= 9000):
        ts = datetime.datetime.now(datetime.UTC)
    meta = {"unstorable": ascii(row[1:9]), "ship_error": ascii(why)}
    return (ts, None, None, None, None, None, json.dumps(meta), None, None, row[-2], row[-1])
