"""Reading JSON-lines files that may hold damage: a torn last line, a stray value."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


def objects(lines: Iterable[str | bytes]) -> Iterator[dict[str, Any]]:
    """The JSON objects among ``lines``, in order.

    A line that is not JSON (a record torn by a crash) or is JSON but not an object
    (``[]``, ``3``, ``null``) is skipped: the callers read ledgers and timelines whose
    every meaningful line is an object, and count or report what they keep.
    """
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record
