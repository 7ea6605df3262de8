"""Counting one run's records in naz's JSON-lines log files, independently of the shipper.

A *record of the run* is a line of ``<log_path>`` or one of its rotated copies
(``<log_path>*``: logrotate renames, never compresses or truncates) that parses as a JSON
object whose ``run_id`` is the run's. It counts when its ``timestamp`` is at or before the
cut-off. Lines that are not JSON (tracebacks naz printed, a torn last line) are counted
apart, as are the run's records without a usable timestamp.

Files are read line by line (never whole) through handles all opened before the first is
read, so a rotation while the files are being read neither hides nor repeats one; two
names of one file (same inode) are read once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import json
import os
from pathlib import Path
from typing import Any

from nazbench.msgid import validate_run_id
from nazbench.shipper.records import parse_timestamp

# naz's timestamps have one reader: the shipper's (any UTC offset; naive means UTC; never
# through the local time zone). Sharing the parser keeps the count independent of the
# shipper's path through the file, which is what makes it a check.
record_time = parse_timestamp


def epoch_to_utc(epoch: float) -> dt.datetime:
    """Epoch seconds as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def log_files(log_path: str | Path) -> list[str]:
    """``log_path`` and its rotated copies, in name order."""
    return sorted(glob.glob(glob.escape(str(log_path)) + "*"))


def count_records(run_id: str, log_path: str | Path, cutoff: float) -> dict[str, Any]:
    """Counts of ``run_id``'s records in naz's log files, up to ``cutoff`` (epoch s)."""
    validate_run_id(run_id)
    limit = epoch_to_utc(cutoff)
    totals = {"records": 0, "after_cutoff": 0, "no_timestamp": 0, "non_json_lines": 0}
    files = []
    with contextlib.ExitStack() as stack:
        handles, seen = [], set()
        for path in log_files(log_path):
            try:
                handle = stack.enter_context(open(path, "rb"))
            except (FileNotFoundError, IsADirectoryError):
                continue  # rotated away between listing and opening
            stat = os.fstat(handle.fileno())
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                handles.append((path, handle))
        for path, handle in handles:
            counts = _count_file(handle, run_id, limit)
            files.append({"path": path, **counts})
            for key in totals:
                totals[key] += counts[key]
    return {"run_id": run_id, "cutoff": cutoff, **totals, "files": files}


def _count_file(lines, run_id: str, limit: dt.datetime) -> dict[str, int]:
    counts = {"records": 0, "after_cutoff": 0, "no_timestamp": 0, "non_json_lines": 0}
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:  # also UnicodeDecodeError
            counts["non_json_lines"] += 1
            continue
        if not isinstance(record, dict) or record.get("run_id") != run_id:
            continue
        when = record_time(record.get("timestamp"))
        if when is None:
            counts["no_timestamp"] += 1
        elif when <= limit:
            counts["records"] += 1
        else:
            counts["after_cutoff"] += 1
    return counts
