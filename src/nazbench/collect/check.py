"""logs-check.json and versions.json: what collect.yml writes from the hosts' answers."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import re
import subprocess
from collections.abc import Iterable
from typing import Any

_VERSION_RE = re.compile(r"\b(\d+(?:\.\d+)+\S*)")


def _loaded(item: Any) -> dict[str, Any]:
    """A host's JSON answer, as text or already parsed."""
    return json.loads(item) if isinstance(item, str | bytes) else item


def logs_check(run_id: str, cutoff: float, files: Iterable[Any], db: Any) -> dict[str, Any]:
    """The run's records counted in naz's files (count-records answers, one per naz host)
    against its rows in ``logs`` (the db-counts answer).

    ``equal`` needs the same count on both sides, no duplicate row, and at least one
    record: 0 == 0 means naz wrote nothing for the run (or the count looked in the wrong
    place), which is not a pass. ``reasons`` says what failed.
    """
    counts = [_loaded(f) for f in files]
    file_records = sum(c["records"] for c in counts)
    db = _loaded(db)
    db_rows, db_duplicates = db["rows"], db["duplicate_rows"]
    reasons = []
    if file_records == 0:
        reasons.append("no record of the run in naz's files up to the cut-off")
    if db_rows != file_records:
        reasons.append(f"{db_rows} rows in logs vs {file_records} records in naz's files")
    if db_duplicates:
        reasons.append(f"{db_duplicates} duplicate rows (one source line shipped twice)")
    return {
        "run_id": run_id,
        "cutoff": cutoff,
        "file_records": file_records,
        "file_records_after_cutoff": sum(c.get("after_cutoff", 0) for c in counts),
        "file_records_without_timestamp": sum(c.get("no_timestamp", 0) for c in counts),
        "file_non_json_lines": sum(c["non_json_lines"] for c in counts),
        "db_rows": db_rows,
        "db_error_rows": db["error_rows"],
        "db_duplicate_rows": db_duplicates,
        "db_rows_after_cutoff": db["all_rows"] - db_rows,
        "db_caught_up": db.get("caught_up"),
        "equal": not reasons,
        "reasons": reasons,
    }


def program_version(command: str) -> str | None:
    """The first version number ``<command> --version`` prints, None without one."""
    try:
        out = subprocess.run(
            [command, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = (out.stdout or out.stderr).strip().splitlines()[:1]
    match = _VERSION_RE.search(first[0]) if first else None
    return match.group(1) if match else None


def host_versions(packages: Iterable[str] = (), programs: dict[str, str] | None = None) -> dict:
    """Python's version, installed ``packages``' and ``programs``' (key -> command)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    for key, command in (programs or {}).items():
        out[key] = program_version(command)
    return out


def versions(naz_host: Any, observability_host: Any, ansible_core: str) -> dict[str, Any]:
    """versions.json: what ran on the naz host and the observability host, and Ansible."""
    return {
        "naz_host": _loaded(naz_host),
        "observability_host": _loaded(observability_host),
        "ansible_core": ansible_core,
    }
