"""Turning the lines of one log file into ``logs`` rows.

A *record* starts at a line whose first byte is ``{`` (what ``JsonLinesLogger`` writes);
every following line that does not start with ``{`` (a plain Python traceback naz printed
after an ERROR line, a blank line inside one) is a *continuation* of it and ends up in
the record's ``metadata.traceback_lines``. A record is therefore only final when the
next record starts, when the file is closed after rotation, or when the caller decides
the file has been idle long enough (``finish()``). Its ``source_offset`` is the offset of
its first byte.

Nothing is dropped:

* a ``{`` line that is not valid JSON (cut short, not UTF-8, ...) becomes a row with
  ``event``/``level``/``error`` NULL and ``metadata = {"raw": <the line>, "malformed":
  <why>}`` (continuations still attach to it);
* a line that is neither a record nor after one (the first lines of a file, or lines
  written after a record was already finalized by the idle timeout) becomes a row of its
  own: ``metadata = {"raw": <the line>}``.

Timestamps. A JSON record's ``timestamp`` is parsed with ``datetime.fromisoformat`` (a
naive value is taken as UTC). Rows without a usable one (raw lines, malformed lines, a
missing or unparsable ``timestamp`` field) get the timestamp of the latest record read
before them in the same file, so they sort next to their neighbours; when there is none
(the file's first line, or the first line read after a restart) they get the time the
shipper read the line. ``metadata.timestamp_from`` says which (``"previous_record"`` or
``"read_time"``), and a bad original value is kept in ``metadata.timestamp_raw``.

Columns. ``timestamp, event, stage, client_id, log_id, error, run_id, level`` are split
out (non-string values as their JSON text). ``metadata`` is the record's own
``metadata`` object plus every other non-null top-level key (``traceback`` when naz had
one, anything unknown); a top-level key that collides with a key of the inner metadata
is kept as ``"_" + key``. PostgreSQL cannot store NUL characters, lone UTF-16 surrogates
or NaN in ``jsonb``/``text``, so those are replaced (U+FFFD, ``?``, the strings
``"NaN"``/``"Infinity"``) rather than letting one line block the shipper.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass, field
from typing import Any

# The columns a record's keys are split into; everything else goes to metadata.
TEXT_COLUMNS = ("event", "stage", "client_id", "log_id", "error", "run_id", "level")
SPLIT_KEYS = frozenset((*TEXT_COLUMNS, "timestamp", "metadata"))
# A runaway traceback must not grow memory without bound: past this many bytes of
# continuation the record is finalized and further lines become raw rows.
MAX_CONTINUATION_BYTES = 1 << 20

# Row tuple layout, in the staging table's column order (see db.py).
ROW_COLUMNS = (
    "timestamp",
    "event",
    "stage",
    "client_id",
    "log_id",
    "error",
    "metadata",
    "run_id",
    "level",
    "source_file",
    "source_offset",
)

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_decode = json.JSONDecoder().decode


def _finite(value: Any) -> Any:
    """NaN/Infinity (which jsonb cannot hold) as the strings JSON spelled them."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _dump(value: Any) -> str:
    try:
        return _dumps(value)
    except ValueError:  # allow_nan=False: a NaN or an infinity somewhere
        return _dumps(_finite(value))


def _clean_str(value: str) -> str:
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _clean(value: Any) -> Any:
    """Make a parsed JSON value storable in PostgreSQL (see the module docstring)."""
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, dict):
        return {_clean_str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return _dump(value)


def decode_raw(line: bytes) -> str:
    """A line as text for ``metadata.raw``: without its newline, bad bytes escaped."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    return line.decode("utf-8", "backslashreplace").replace("\x00", "\ufffd")


def parse_timestamp(value: Any) -> datetime.datetime | None:
    """ISO 8601 text -> aware datetime (naive = UTC); None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=datetime.UTC)
    return ts


@dataclass
class Pending:
    """A record that may still get continuation lines."""

    offset: int
    fields: dict[str, Any] | None  # the parsed JSON object; None for a malformed line
    raw: bytes
    malformed: str | None = None
    continuation: list[bytes] = field(default_factory=list)
    continuation_bytes: int = 0


class Assembler:
    """Per-file state: turns ``(offset, line)`` pairs into row tuples.

    ``feed()`` returns the rows that became final; ``finish()`` finalizes the pending
    record. ``safe_offset`` is the offset below which every byte is in a returned row:
    what may be committed as the file's position.
    """

    def __init__(self, source_file: str, offset: int = 0) -> None:
        self.source_file = source_file
        self.safe_offset = offset
        self.pending: Pending | None = None
        self.last_ts: datetime.datetime | None = None
        self.rows_emitted = 0

    def feed(self, offset: int, line: bytes, out: list[tuple[Any, ...]]) -> None:
        """Consume one complete line that starts at ``offset``; append final rows to ``out``."""
        end = offset + len(line)
        if line[:1] == b"{":
            if self.pending is not None:
                out.append(self._finalize(self.pending))
            try:
                fields = _decode(line.decode("utf-8"))
                malformed = None
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
                fields, malformed = None, f"{type(exc).__name__}: {exc}"
            self.pending = Pending(offset, fields, line, malformed)
            self.safe_offset = offset
            return
        pending = self.pending
        if pending is not None and pending.continuation_bytes < MAX_CONTINUATION_BYTES:
            pending.continuation.append(line)
            pending.continuation_bytes += len(line)
            return
        if pending is not None:
            out.append(self._finalize(pending))
            self.pending = None
        out.append(self._raw_row(offset, line, {}))
        self.safe_offset = end

    def finish(self, end_offset: int, out: list[tuple[Any, ...]]) -> None:
        """The file has nothing more for now (idle, EOF in ``--once``, or closed)."""
        if self.pending is not None:
            out.append(self._finalize(self.pending))
            self.pending = None
        self.safe_offset = end_offset

    # ------------------------------------------------------------------ rows

    def _fallback_ts(self, meta: dict[str, Any]) -> datetime.datetime:
        if self.last_ts is not None:
            meta["timestamp_from"] = "previous_record"
            return self.last_ts
        meta["timestamp_from"] = "read_time"
        return datetime.datetime.now(datetime.UTC)

    def _raw_row(self, offset: int, line: bytes, extra: dict[str, Any]) -> tuple[Any, ...]:
        meta: dict[str, Any] = {"raw": decode_raw(line), **extra}
        ts = self._fallback_ts(meta)
        self.rows_emitted += 1
        return (
            ts,
            None,
            None,
            None,
            None,
            None,
            _dump(meta),
            None,
            None,
            self.source_file,
            offset,
        )

    def _finalize(self, pending: Pending) -> tuple[Any, ...]:  # noqa: PLR0912
        fields = pending.fields
        continuation = None
        if pending.continuation:
            continuation = [decode_raw(c) for c in pending.continuation]
        if fields is None or not isinstance(fields, dict):
            extra: dict[str, Any] = {"malformed": pending.malformed or "not a JSON object"}
            if continuation is not None:
                extra["traceback_lines"] = continuation
            return self._raw_row(pending.offset, pending.raw, extra)
        if b"\\u" in pending.raw:
            fields = _clean(fields)
        get = fields.get
        inner = get("metadata")
        if type(inner) is dict:
            meta = inner  # a fresh object from json.loads: no need to copy
        elif inner is None:
            meta = {}
        else:
            meta = {"metadata": inner}
        for key in fields.keys() - SPLIT_KEYS:
            value = fields[key]
            if value is not None:
                meta["_" + key if key in meta else key] = value
        if continuation is not None:
            meta["traceback_lines"] = continuation
        raw_ts = get("timestamp")
        ts = parse_timestamp(raw_ts)
        if ts is None:
            if raw_ts is not None:
                meta["timestamp_raw"] = raw_ts
            ts = self._fallback_ts(meta)
        else:
            self.last_ts = ts
        self.rows_emitted += 1
        event, stage, client_id = get("event"), get("stage"), get("client_id")
        log_id, error, run_id, level = get("log_id"), get("error"), get("run_id"), get("level")
        if not (
            (event is None or type(event) is str)
            and (stage is None or type(stage) is str)
            and (client_id is None or type(client_id) is str)
            and (log_id is None or type(log_id) is str)
            and (error is None or type(error) is str)
            and (run_id is None or type(run_id) is str)
            and (level is None or type(level) is str)
        ):
            event, stage, client_id, log_id, error, run_id, level = map(
                _text, (event, stage, client_id, log_id, error, run_id, level)
            )
        return (
            ts,
            event,
            stage,
            client_id,
            log_id,
            error,
            _dump(meta),
            run_id,
            level,
            self.source_file,
            pending.offset,
        )
