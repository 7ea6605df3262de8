"""How a benchmark message carries its id through naz to the mock SMSC.

naz sends only SMPP fields on the wire (its ``log_id`` stays inside the client), so the
id travels at the start of ``short_message``: ``[nb:<msg_id>] <text>``. The producer
encodes it, the SMSC decodes it into its ledger, and reconciliation joins the two.

A ``msg_id`` is ``<run_id>/<index>``; ``run_id`` is restricted to ``[A-Za-z0-9_.-]`` so
the id survives every hop unchanged and is safe in file names and SQL literals.
"""

from __future__ import annotations

import re

RUN_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_BODY_RE = re.compile(rb"^\[nb:([A-Za-z0-9_.-]{1,64}/[0-9]{1,10})\] ")


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` or raise ``ValueError`` naming what is wrong with it."""
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise ValueError(
            f"run_id {run_id!r} must be 1-64 characters of letters, digits, '_', '.' or '-'"
        )
    return run_id


def make_id(run_id: str, index: int) -> str:
    """The id of message number ``index`` (0-based) of run ``run_id``."""
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    return f"{validate_run_id(run_id)}/{index}"


def encode_body(msg_id: str, text: str) -> str:
    """The ``short_message`` that carries ``msg_id`` ahead of ``text``."""
    return f"[nb:{msg_id}] {text}"


def decode_body(short_message: bytes | str) -> str | None:
    """The msg_id carried by ``short_message``, or None when it carries none."""
    raw = (
        short_message.encode("utf-8", "replace")
        if isinstance(short_message, str)
        else short_message
    )
    match = _BODY_RE.match(raw)
    return match.group(1).decode("ascii") if match else None


# Longest index spelling accepted: far beyond any run, short enough for int() to be cheap.
_MAX_INDEX_DIGITS = 18


def index_of(msg_id: object, run_id: str, first: int = 0, count: int | None = None) -> int | None:
    """Position (0-based, from ``first``) of ``msg_id`` among run ``run_id``'s ids, or None.

    The one rule for reading an index back: ``msg_id`` is a str ``<run_id>/<n>`` where
    ``n`` is ASCII digits written canonically (no sign, no leading zero except ``"0"``),
    ``n >= first`` and, when ``count`` is given, ``n < first + count``. Anything else
    (another run's id, ``"07"``, ``"+1"``, non-ASCII digits, None, a number) is None.
    """
    if not isinstance(msg_id, str) or not isinstance(run_id, str):
        return None
    prefix_len = len(run_id) + 1
    if len(msg_id) <= prefix_len or not msg_id.startswith(run_id) or msg_id[prefix_len - 1] != "/":
        return None
    tail = msg_id[prefix_len:]
    if len(tail) > _MAX_INDEX_DIGITS or not (tail.isascii() and tail.isdigit()):
        return None
    if tail[0] == "0" and tail != "0":
        return None
    position = int(tail) - first
    if position < 0 or (count is not None and position >= count):
        return None
    return position
