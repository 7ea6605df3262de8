"""Whole JSON files: written atomically (a crash leaves the old file or the new one)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_text(path: Path, text: str, *, fsync: bool = False) -> None:
    """Replace ``path`` with ``text`` through a temporary file beside it."""
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: Path, data: Any, *, indent: int = 2, fsync: bool = False) -> None:
    """``data`` as sorted, indented JSON with a final newline, replaced atomically."""
    write_text(path, json.dumps(data, indent=indent, sort_keys=True) + "\n", fsync=fsync)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when there is no such file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a JSON object")
    return data
