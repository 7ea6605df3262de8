"""Which run collect.yml works on, read from the artifacts directory.

A *run* is a directory ``<artifacts>/<run_id>`` with a ``run.json`` (written at the end of
run_chaos.yml) or, if its controller died before that, only a ``start.json`` (copied
from the naz host once the run has started): an *unfinished* run. A directory with only
a ``params.json`` is a run that was refused or failed before it started: not a run. Runs
are ordered newest first by the time their newest marker file was written (file times
are epoch seconds: no time zone is involved), so an unfinished run is the default only
when it is the newest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nazbench.msgid import validate_run_id

REMOTE_DIR = "/var/tmp/nazbench-collect"  # noqa: S108 - on the observability host


class PickError(Exception):
    """The run asked for cannot be collected; the message says why and what to do."""


@dataclass(frozen=True)
class Run:
    run_id: str
    dir: Path
    finished: bool
    written_at: float  # mtime of run.json, or of start.json for an unfinished run


def known_runs(artifacts: str | Path) -> list[Run]:
    """The runs in ``artifacts``, newest first (ties by name)."""
    root = Path(artifacts)
    runs = []
    if not root.is_dir():
        return runs
    for path in root.iterdir():
        if not path.is_dir():
            continue
        marker = next((path / n for n in ("run.json", "start.json") if (path / n).is_file()), None)
        if marker is None:
            continue
        runs.append(Run(path.name, path, marker.name == "run.json", marker.stat().st_mtime))
    return sorted(runs, key=lambda r: (-r.written_at, r.run_id))


def _known_text(runs: list[Run]) -> str:
    text = f"Known runs, newest first: {', '.join(r.run_id for r in runs)}."
    unfinished = [r.run_id for r in runs if not r.finished]
    if unfinished:
        text += f" Unfinished (started, no run.json): {', '.join(unfinished)}."
    return text


def _number(run_json: dict, key: str, path: Path) -> float | None:
    value = run_json.get(key)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PickError(f"{path}: {key} is not epoch seconds: {value!r}") from None


def time_range(run_dir: Path) -> tuple[float | None, float | None]:
    """(start, end) of a finished run in epoch seconds, from its run.json.

    ``end`` is ``ended_at`` when run_chaos.yml wrote one, else ``started_at + duration_s``.
    """
    path = run_dir / "run.json"
    try:
        run_json = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PickError(f"{path} cannot be read: {exc}") from None
    if not isinstance(run_json, dict):
        raise PickError(f"{path} is not a JSON object")
    start = _number(run_json, "started_at", path)
    end = _number(run_json, "ended_at", path)
    duration = _number(run_json, "duration_s", path)
    if end is None and start is not None and duration is not None:
        end = start + duration
    return start, end


def _find(runs: list[Run], asked: list[str]) -> list[Run]:
    by_id = {r.run_id: r for r in runs}
    unknown = [a for a in asked if a not in by_id]
    if unknown:
        raise PickError(f"Unknown run {', '.join(unknown)}. {_known_text(runs)}")
    return [by_id[a] for a in asked]


def pick(
    artifacts: str | Path,
    run_id: str | None = None,
    compare: str | None = None,
    from_hosts: bool = True,
) -> dict[str, Any]:
    """What collect.yml works on: one run (``run_id``, default the newest) or two (``compare``).

    The answer is the playbook's ``nazbench_collect`` fact: the run's directory, its time
    range, whether it is unfinished, the arguments of ``python -m nazbench.report`` and a
    sentence saying what collect does. Raises :class:`PickError`.
    """
    artifacts = Path(artifacts)
    runs = known_runs(artifacts)
    if not runs:
        raise PickError(
            f"No run in {artifacts} (a run is a directory with a run.json, written at the end "
            "of playbooks/run_chaos.yml). Run that first."
        )
    known = [r.run_id for r in runs]
    if compare:
        ids = [part.strip() for part in compare.split(",")]
        if len(ids) != 2 or not all(ids):
            raise PickError(
                "compare takes two run ids separated by a comma, e.g. -e compare=run-a,run-b "
                f"(got {compare})"
            )
        pair = _find(runs, ids)
        for run in pair:
            if not run.finished:
                raise PickError(
                    f"Run {run.run_id} is unfinished (started, no run.json): collect it "
                    f"first (-e run_id={run.run_id})."
                )
        a, b = pair
        out = artifacts / f"compare-{a.run_id}-vs-{b.run_id}"
        return {
            "mode": "compare",
            "artifacts": str(artifacts),
            "known": known,
            "unfinished": False,
            "from_hosts": False,
            "compare": {"a": str(a.dir), "b": str(b.dir), "out": str(out)},
            "report_args": ["compare", str(a.dir), str(b.dir), "--out", str(out)],
            "says": f"Comparing runs {a.run_id} and {b.run_id} into {out}.",
        }
    (run,) = _find(runs, [run_id]) if run_id else runs[:1]
    start, end = time_range(run.dir) if run.finished else (None, None)
    if from_hosts:
        try:
            validate_run_id(run.run_id)
        except ValueError as exc:
            raise PickError(str(exc)) from None
        if run.finished and (start is None or end is None):
            raise PickError(
                f"{run.dir}/run.json has no started_at and duration_s (or ended_at): the "
                "metrics have no time range. Use -e collect_from_hosts=false."
            )
    return {
        "mode": "run",
        "artifacts": str(artifacts),
        "known": known,
        "run_id": run.run_id,
        "dir": str(run.dir),
        "unfinished": not run.finished,
        "start": start,
        "end": end,
        "remote_dir": f"{REMOTE_DIR}/{run.run_id}",
        "from_hosts": from_hosts,
        "report_args": ["build", str(run.dir)],
        "says": (
            f"Collecting run {run.run_id} into {run.dir} "
            f"({'from the hosts and ' if from_hosts else ''}the report)."
        ),
    }
