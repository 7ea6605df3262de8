"""The one reader of the mock SMSC's ledger (see nazbench.smsc.ledger for what it writes).

One SMSC ledger holds every run, in time order, and may hold damage (a line torn by a
crash, a line without an id). :func:`classify` turns its lines into :class:`Entry`s, one
per non-blank line, each in exactly one category:

- ``ours``: a well-formed line of run ``run_id``: its ``msg_id`` starts with
  ``<run_id>/``, or is a string without ``/`` (no run's id at all). ``index`` is
  :func:`nazbench.msgid.index_of` of it, None when it is not one of the run's ids.
- ``other_run``: a well-formed line whose ``msg_id`` is another run's (``<other>/...``).
- ``null_id``: a well-formed line whose ``msg_id`` is null (the SMSC read no id).
- ``receipt``: a well-formed object with a ``record`` key: the SMSC's delivery-receipt
  records (``"record": "receipt"`` when it sent a deliver_sm, ``"receipt_ack"`` when the
  client's deliver_sm_resp came; nazbench.smsc.receipts). Never a submit_sm result;
  ``msg_id`` and ``status`` (the ack's command_status) are kept when they are valid.
- ``malformed``: not JSON, not an object, without ``msg_id``, a ``msg_id`` that is neither
  a string nor null, or a ``command_status`` that is not an integer (or integer text
  such as ``"0x00000045"``); ``why`` says which.
- ``before``: outside the window at its start. The window opens at the first JSON object
  whose numeric ``ts`` is ``>= since``: every line before it (malformed ones too) is
  ``before``, and so is a later object whose own ``ts`` is older than ``since``.
- ``after``: outside the window at its end (only with ``until``): an object whose ``ts``
  is ``> until``, and any line that has no ``ts`` once such an object has been seen.

Inside the window time comes first: an object with a numeric ``ts`` outside
``[since, until]`` is ``before``/``after`` even when its other fields are damaged.
``ts`` itself is optional (a line without it is judged by its other fields).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from nazbench.msgid import index_of

OURS = "ours"
OTHER_RUN = "other_run"
NULL_ID = "null_id"
MALFORMED = "malformed"
RECEIPT = "receipt"
BEFORE = "before"
AFTER = "after"
CATEGORIES = (OURS, OTHER_RUN, NULL_ID, MALFORMED, RECEIPT, BEFORE, AFTER)

Line = str | bytes | dict


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One non-blank ledger line and what it is."""

    lineno: int  # 1-based, counting blank lines, across all inputs of one classify()
    category: str
    line: Line  # the line exactly as given (str, bytes or dict)
    ts: float | None = None
    msg_id: str | None = None
    status: int | None = None  # command_status, normalised to int; None when malformed
    index: int | None = None  # for ``ours``: position in the run (index_of), else None
    why: str | None = None  # for ``malformed``
    record: dict | None = None  # for ``receipt``: the decoded line (receipt_record reads it)

    @property
    def accepted(self) -> bool:
        return self.status == 0


@dataclasses.dataclass(frozen=True, slots=True)
class ReceiptRecord:
    """The fields of a ``receipt`` entry (nazbench.smsc.receipts writes them)."""

    kind: str  # "receipt" (a deliver_sm sent) or "receipt_ack" (its deliver_sm_resp came)
    message_id: str | None  # the SMSC's message_id the receipt is about
    stat: str | None  # the final state a "receipt" carries (DELIVRD, UNDELIV, ...)


def receipt_record(entry: Entry) -> ReceiptRecord | None:
    """The receipt fields of a ``receipt`` entry; None for any other entry."""
    record = entry.record
    if entry.category != RECEIPT or record is None:
        return None

    def text(key: str) -> str | None:
        value = record.get(key)
        return value if isinstance(value, str) else None

    return ReceiptRecord(str(record.get("record")), text("message_id"), text("stat"))


def status(value: Any) -> int | None:
    """``command_status`` as an int: an int, or int text (``"0x00000045"``, ``"88"``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip(), 0)
        except ValueError:
            return None
    return None


def _ts(record: dict) -> float | None:
    value = record.get("ts")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _decode(line: Line) -> tuple[Any, str | None]:
    """(decoded JSON value, None) or (None, why it is malformed)."""
    if isinstance(line, dict):
        return line, None
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    try:
        return json.loads(line), None
    except ValueError:
        return None, "not JSON"


def classify(
    lines: Iterable[Line],
    run_id: str,
    *,
    since: float | None = None,
    until: float | None = None,
    first: int = 0,
    count: int | None = None,
) -> Iterator[Entry]:
    """An :class:`Entry` per non-blank line of ``lines`` (see the module's docstring).

    ``first``/``count`` are the run's id scheme (manifest ``id_scheme.first_index`` and
    ``count``), passed to :func:`nazbench.msgid.index_of` for ``ours`` entries.
    """
    prefix = f"{run_id}/"
    opened = since is None
    ended = False
    for lineno, line in enumerate(lines, 1):
        if not isinstance(line, dict) and not line.strip():
            continue
        record, why = _decode(line)
        if why is None and not isinstance(record, dict):
            record, why = None, "not a JSON object"
        ts = _ts(record) if record is not None else None
        if not opened:
            if ts is None or ts < since:
                yield Entry(lineno, BEFORE, line, ts)
                continue
            opened = True
        if ts is not None:
            if since is not None and ts < since:
                yield Entry(lineno, BEFORE, line, ts)
                continue
            if until is not None and ts > until:
                ended = True
                yield Entry(lineno, AFTER, line, ts)
                continue
        elif ended:
            yield Entry(lineno, AFTER, line)
            continue
        category, msg_id, code, why = _fields(record, why, prefix)
        index = index_of(msg_id, run_id, first, count) if category == OURS else None
        kept = record if category == RECEIPT else None
        yield Entry(lineno, category, line, ts, msg_id, code, index, why, kept)


def _fields(  # noqa: PLR0911 - one return per category
    record: dict | None, why: str | None, prefix: str
) -> tuple[str, str | None, int | None, str | None]:
    """(category, msg_id, status, why malformed) of a line inside the window."""
    if record is None:
        return MALFORMED, None, None, why
    if "record" in record:  # a receipt record, not a submit_sm result
        msg_id = record.get("msg_id")
        return (
            RECEIPT,
            msg_id if isinstance(msg_id, str) else None,
            status(record.get("command_status")),
            None,
        )
    if "msg_id" not in record:
        return MALFORMED, None, None, "no msg_id field"
    code = status(record.get("command_status"))
    if code is None:
        return MALFORMED, None, None, "command_status missing or not an integer"
    msg_id = record["msg_id"]
    if msg_id is None:
        return NULL_ID, None, code, None
    if not isinstance(msg_id, str):
        return MALFORMED, None, None, "msg_id is not a string"
    category = OTHER_RUN if "/" in msg_id and not msg_id.startswith(prefix) else OURS
    return category, msg_id, code, None


def open_ledger(path: Path, binary: bool = False) -> IO[Any]:
    """A ledger file for reading (``.gz``: gunzipped); text is UTF-8 with replacement."""
    if path.suffix == ".gz":
        if binary:
            return gzip.open(path, "rb")
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    if binary:
        return open(path, "rb")
    return open(path, encoding="utf-8", errors="replace")


def read_lines(paths: Iterable[Path], binary: bool = False) -> Iterator[Any]:
    """The lines of all ledgers, in the order given (oldest file first).

    Raises OSError (FileNotFoundError for a missing file), EOFError or
    gzip.BadGzipFile: a ledger that cannot be read is an error, never an empty ledger.
    """
    for path in paths:
        with open_ledger(path, binary) as fh:
            yield from fh


# what reading a damaged or missing ledger file raises
READ_ERRORS = (OSError, EOFError, zlib.error)
