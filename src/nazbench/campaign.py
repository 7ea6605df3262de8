"""Campaigns: one seeded fault schedule across experiments, naz versions and seeds.

A campaign file names the axes and the cells (a cell is one inventory: a complete copy of
the benchmark's hosts); :func:`expand` makes the matrix of runs, :class:`Scheduler` runs
them over the cells (a queue: a free cell takes the next run) with a state file that
makes a second invocation of the same command resume: runs whose results were collected
are not run again, a run a dead controller had started is attached to on its cell (it
went on on its hosts) and collected, never started twice.

    python -m nazbench.campaign plan campaigns/versions.yml      # the runs, the sizing
    python -m nazbench.campaign run campaigns/versions.yml       # run or resume them

A campaign file (YAML)::

    campaign: versions            # its id: artifacts/campaign-<id>/
    profile: micro                # playbooks/profiles/<profile>.yml (default smoke)
    experiments: [A, B]           # A: the chaos loop; B: everything up (default [A])
    naz_versions: ["0.8.1", "0.7.9"]   # naz_cli_version of each run (default [0.8.1])
    seeds: [1, 2, 3]              # chaos seeds, or seed_count: 3 for 1..3 (default [1])
    cells: [inventories/lab]      # inventories, one run at a time each (default the lab),
                                  # or a count N: inventories/cells/cell1..N (nazbench.cells)
    vars: {message_count: 300}    # more -e for every run (optional)

Run ids are ``<campaign>-<experiment>-<version>-s<seed>`` (dots of the version kept).
Exit status of ``run``: 0 every run collected, 1 a run failed (named; the next
invocation tries it again), 2 bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from nazbench import cells as cells_module

ROOT = Path(__file__).resolve().parents[2]
ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+){1,3}$")
EXPERIMENTS = ("A", "B")
KEYS = ("campaign", "profile", "experiments", "naz_versions", "seeds", "seed_count",
        "cells", "vars", "thresholds")  # fmt: skip
# -e variables a campaign sets itself: its vars must not set them
OWN_VARS = ("run_id", "profile", "chaos_enabled", "chaos_seed", "naz_cli_version", "attach")
MAX_RUNS = 1000
MAX_CELLS = cells_module.MAX_CELLS
# per run besides the profile's chaos_duration: deploy (a naz version change), the queue
# fill, the drain and collect; measured on the lab (smoke: ~13 min for a 10-minute loop)
OVERHEAD_MIN = 3.0
STATUSES = ("pending", "running", "done", "failed")


def say(line: str, stream=None) -> None:
    """One line of output (stdout unless ``stream``), flushed: progress is watched live."""
    stream = stream or sys.stdout
    stream.write(line + "\n")
    stream.flush()


class BadInput(ValueError):
    """A campaign that cannot run (exit status 2); the message names every problem."""


@dataclass(frozen=True)
class Campaign:
    id: str
    profile: str
    experiments: tuple[str, ...]
    naz_versions: tuple[str, ...]
    seeds: tuple[int, ...]
    cells: tuple[str, ...]
    vars: dict = field(default_factory=dict)
    thresholds: str | None = None

    @property
    def dir(self) -> Path:
        return ROOT / "artifacts" / f"campaign-{self.id}"


@dataclass(frozen=True)
class PlannedRun:
    run_id: str
    experiment: str
    naz_version: str
    seed: int


def _list(data: dict, key: str, default: list, errors: list[str]) -> list:
    value = data.get(key, default)
    if not isinstance(value, list) or not value:
        errors.append(f"{key}: a non-empty list, got {value!r:.80}")
        return []
    if len(set(map(str, value))) != len(value):
        errors.append(f"{key}: {value!r:.80} names a level twice")
    return value


def _cells(data: dict, root: Path, errors: list[str]) -> list[str]:
    """The cells: inventories, or a count N of nazbench.cells' inventories/cells/cellK."""
    given = data.get("cells")
    if isinstance(given, int) and not isinstance(given, bool):
        if not 1 <= given <= MAX_CELLS:
            errors.append(f"cells: 1-{MAX_CELLS} cells, got {given}")
        return [f"inventories/cells/cell{k}" for k in range(1, given + 1)]
    cells = [str(c) for c in _list(data, "cells", ["inventories/lab"], errors)]
    errors += [f"cells: {c!r:.80} is no inventory (a directory or file)" for c in cells
               if not (root / c).exists()]  # fmt: skip
    return cells


def parse(data: Any, root: Path | None = None) -> Campaign:
    """A campaign file's content as a :class:`Campaign`; BadInput naming every problem."""
    root = root or ROOT
    if not isinstance(data, dict):
        raise BadInput(f"a campaign file is a mapping, got {type(data).__name__}")
    errors = [f"{k}: unknown key (known: {', '.join(KEYS)})" for k in data if k not in KEYS]
    cid = data.get("campaign")
    if not isinstance(cid, str) or not ID_RE.match(cid):
        errors.append(f"campaign: an id of letters, digits, '_', '.', '-' (1-40), got {cid!r:.80}")
    profile = data.get("profile", "smoke")
    if (
        not isinstance(profile, str)
        or not (root / "playbooks/profiles" / f"{profile}.yml").is_file()
    ):
        errors.append(f"profile: {profile!r:.80} is not in playbooks/profiles/")
    experiments = _list(data, "experiments", ["A"], errors)
    errors += [f"experiments: {e!r:.40} is not A or B" for e in experiments if e not in EXPERIMENTS]
    versions = [str(v) for v in _list(data, "naz_versions", ["0.8.1"], errors)]
    errors += [f"naz_versions: {v!r:.40} is not a release number (0.8.1)" for v in versions
               if not VERSION_RE.match(v)]  # fmt: skip
    if "seeds" in data and "seed_count" in data:
        errors.append("seeds, seed_count: give one of them")
    if "seed_count" in data:
        count = data["seed_count"]
        ok = isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= MAX_RUNS
        if not ok:
            errors.append(f"seed_count: an integer 1-{MAX_RUNS}, got {count!r:.40}")
        seeds = list(range(1, count + 1)) if ok else []
    else:
        seeds = _list(data, "seeds", [1], errors)
        errors += [f"seeds: {s!r:.40} is not an integer >= 0" for s in seeds
                   if isinstance(s, bool) or not isinstance(s, int) or s < 0]  # fmt: skip
    cells = _cells(data, root, errors)
    extra = data.get("vars", {})
    if not isinstance(extra, dict):
        errors.append(f"vars: a mapping of -e variables, got {extra!r:.80}")
        extra = {}
    errors += [f"vars: {k} is set by the campaign itself (its axes and run ids)"
               for k in extra if k in OWN_VARS]  # fmt: skip
    thresholds = data.get("thresholds")
    if thresholds is not None and not (
        isinstance(thresholds, str) and (root / thresholds).is_file()
    ):
        errors.append(f"thresholds: {thresholds!r:.80} is no file (the gate's thresholds)")
    runs = len(experiments) * len(versions) * len(seeds)
    if runs > MAX_RUNS:
        errors.append(f"the matrix has {runs} runs; at most {MAX_RUNS}")
    if errors:
        raise BadInput("; ".join(errors))
    return Campaign(cid, profile, tuple(experiments), tuple(versions), tuple(seeds),
                    tuple(cells), dict(extra), thresholds)  # fmt: skip


def load(path: Path, root: Path | None = None) -> Campaign:
    root = root or ROOT
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(f"cannot read campaign file {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise BadInput(f"campaign file {path} is not valid YAML: {exc}") from exc
    return parse(data, root)


def expand(c: Campaign) -> list[PlannedRun]:
    """Every run of the matrix, seed by seed: whatever stops a campaign early leaves
    complete comparisons (every experiment and version of the first seeds) behind."""
    return [
        PlannedRun(f"{c.id}-{exp}-{version}-s{seed}", exp, version, seed)
        for seed, version, exp in itertools.product(c.seeds, c.naz_versions, c.experiments)
    ]


def _parse_duration_ms(value: Any) -> int:
    """The chaos loop's own duration parser (plugins/module_utils/chaos_plan.py)."""
    import ansible.module_utils  # noqa: PLC0415 - the controller's ansible

    utils = str(ROOT / "plugins" / "module_utils")
    if utils not in ansible.module_utils.__path__:
        ansible.module_utils.__path__.append(utils)
    from ansible.module_utils.chaos_plan import parse_duration_ms  # noqa: PLC0415

    return parse_duration_ms(value)


def minutes_per_run(c: Campaign, root: Path | None = None) -> float:
    """An estimate: the profile's chaos_duration (default 10m) plus :data:`OVERHEAD_MIN`."""
    root = root or ROOT
    profile = yaml.safe_load((root / "playbooks/profiles" / f"{c.profile}.yml").read_text())
    duration = (profile or {}).get("chaos_duration", "10m")
    return _parse_duration_ms(duration) / 60_000 + OVERHEAD_MIN


# --------------------------------------------------------------------------- state


class State:
    """Each run's status (pending, running on a cell, done, failed) in a JSON file,
    replaced atomically on every change, so a controller that dies loses nothing."""

    def __init__(self, path: Path, runs: list[PlannedRun]) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.runs = {r.run_id: {"status": "pending"} for r in runs}
        try:
            saved = json.loads(path.read_text(encoding="utf-8")).get("runs", {})
        except FileNotFoundError:
            saved = {}
        except (OSError, ValueError) as exc:
            raise BadInput(f"campaign state {path} cannot be read: {exc}") from exc
        for run_id, entry in saved.items():
            if run_id in self.runs and entry.get("status") in STATUSES:
                self.runs[run_id] = entry

    def set(self, key: str, status: str, /, **info: Any) -> None:
        """The run ``key`` (its id in the matrix) is now ``status``; ``info`` kept with it
        (its cell, attempt, the run id of the attempt, an error)."""
        with self.lock:
            self.runs[key] = {**self.runs[key], "status": status, **info}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps({"runs": self.runs}, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, self.path)

    def count(self) -> dict[str, int]:
        with self.lock:
            counts = dict.fromkeys(STATUSES, 0)
            for entry in self.runs.values():
                counts[entry["status"]] += 1
            return counts


def progress(state: State, cells: int, now: float, started: float, finished: list[float]) -> str:
    """``done d, running r, left l, failed f; ETA`` (mean of this invocation's run times
    times the runs left over the cells; none before the first run ends)."""
    n = state.count()
    line = f"done {n['done']}, running {n['running']}, left {n['pending']}, failed {n['failed']}"
    if finished and n["pending"] + n["running"]:
        mean = sum(finished) / len(finished)
        waves = -(-(n["pending"] + n["running"]) // cells)
        line += f"; about {waves * mean / 60:.0f} min left"
    return line + f" ({(now - started) / 60:.1f} min in)"


# --------------------------------------------------------------------------- scheduling


def _attempt_id(run_id: str, attempt: int) -> str:
    return run_id if attempt == 1 else f"{run_id}-r{attempt}"


# execute(run, cell, attach) -> exit status: runs (or, attach=True, attaches to) one run
# on one cell and collects it
Execute = Callable[[PlannedRun, str, bool], int]


class Scheduler:
    """Runs a campaign's runs over its cells, one at a time per cell."""

    def __init__(self, campaign: Campaign, state: State, execute: Execute,
                 report: Callable[[str], None] = say, clock=time.monotonic) -> None:  # fmt: skip
        self.c, self.state, self.execute, self.report, self.clock = (
            campaign,
            state,
            execute,
            report,
            clock,
        )
        self.queue = [r for r in expand(campaign) if state.runs[r.run_id]["status"] != "done"]
        self.lock = threading.Lock()
        self.started = clock()
        self.durations: list[float] = []

    def _next(self, cell: str) -> tuple[PlannedRun, bool] | None:
        """This cell's run a dead controller left running (attach to it), else the next
        one not yet started. A run left running on a cell no longer listed is failed."""
        with self.lock:
            for run in self.queue:
                entry = self.state.runs[run.run_id]
                if entry["status"] == "running" and entry.get("cell") == cell:
                    self.queue.remove(run)
                    return run, True
            for run in list(self.queue):
                entry = self.state.runs[run.run_id]
                if entry["status"] == "running" and entry.get("cell") not in self.c.cells:
                    self.queue.remove(run)
                    gone = f"was running on cell {entry.get('cell')}, no longer listed"
                    self.state.set(run.run_id, "failed", error=gone)
                    continue
                if entry["status"] in ("pending", "failed"):
                    self.queue.remove(run)
                    return run, False
            return None

    def _worker(self, cell: str) -> None:
        while (job := self._next(cell)) is not None:
            run, attach = job
            t0 = self.clock()
            entry = self.state.runs[run.run_id]
            # a run that failed is tried again under a run id of its own (-r2, -r3, ...):
            # what the failed attempt left on the hosts is never mixed into the new one
            attempt = entry.get("attempt", 1) + (entry["status"] == "failed")
            actual = entry["run_id"] if attach else _attempt_id(run.run_id, attempt)
            self.state.set(run.run_id, "running", cell=cell, attempt=attempt, run_id=actual)
            self.report(f"{actual}: {'attaching on' if attach else 'starting on'} {cell}")
            try:
                rc = self.execute(replace(run, run_id=actual), cell, attach)
            except Exception as exc:  # a run's failure is recorded, not fatal
                rc, error = -1, f"{type(exc).__name__}: {exc}"
            else:
                error = f"exit status {rc}" if rc else None
            if rc == 0:
                self.state.set(run.run_id, "done", cell=cell, error=None)
                if not attach:  # an attach takes only a run's rest: no measure of a run
                    with self.lock:
                        self.durations.append(self.clock() - t0)
            else:
                self.state.set(run.run_id, "failed", cell=cell, error=error)
            self.report(f"{actual}: {'done' if rc == 0 else 'FAILED (' + error + ')'}; "
                        + progress(self.state, len(self.c.cells), self.clock(), self.started,
                                   self.durations))  # fmt: skip

    def run(self) -> list[str]:
        """Run every run not done; the ids of the failed ones."""
        now = self.clock()
        self.report(
            f"campaign {self.c.id}: {progress(self.state, len(self.c.cells), now, now, [])}"
        )
        workers = [threading.Thread(target=self._worker, args=(cell,), name=cell)
                   for cell in self.c.cells]  # fmt: skip
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return sorted(r for r, e in self.state.runs.items() if e["status"] == "failed")


# --------------------------------------------------------------------------- ansible


def run_argv(c: Campaign, run: PlannedRun, cell: str, attach: bool) -> list[list[str]]:
    """The ansible-playbook commands of one run on one cell: run_chaos.yml (or, for a run
    a dead controller started, run_chaos.yml -e attach=<run>), then collect.yml."""
    inv = ["-i", cell]
    if attach:
        first = ["ansible-playbook", *inv, "playbooks/run_chaos.yml", "-e", f"attach={run.run_id}"]
    else:
        extra = {
            **c.vars, "run_id": run.run_id, "profile": c.profile,
            "chaos_enabled": run.experiment == "A", "chaos_seed": run.seed,
            "naz_cli_version": run.naz_version,
        }  # fmt: skip
        first = ["ansible-playbook", *inv, "playbooks/run_chaos.yml", "-e", json.dumps(extra)]
    collect = ["ansible-playbook", *inv, "playbooks/collect.yml", "-e", f"run_id={run.run_id}"]
    return [first, collect]


def ansible_execute(c: Campaign, root: Path | None = None) -> Execute:
    """Execute that runs :func:`run_argv`'s commands, each run's output in
    ``<campaign dir>/logs/<run_id>.log``."""
    root = root or ROOT

    def execute(run: PlannedRun, cell: str, attach: bool) -> int:
        log_dir = c.dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        with (log_dir / f"{run.run_id}.log").open("a", encoding="utf-8") as log:
            for argv in run_argv(c, run, cell, attach):
                log.write(f"$ {' '.join(argv)}\n")
                log.flush()
                rc = subprocess.run(argv, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                                    check=False).returncode  # fmt: skip
                if rc:
                    return rc
        return 0

    return execute


# --------------------------------------------------------------------------- runner

RUNNING = 3  # exit status of run/start when another runner holds the campaign


def _try_lock(c: Campaign):
    """The campaign's runner lock (an open file holding flock), or None when another
    runner holds it."""
    c.dir.mkdir(parents=True, exist_ok=True)
    fh = (c.dir / "runner.lock").open("a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


def _held(c: Campaign) -> bool:
    """Whether a runner holds the campaign (the lock is taken and given back at once)."""
    lock = _try_lock(c)
    if lock is None:
        return True
    lock.close()
    return False


def _result(c: Campaign) -> dict | None:
    try:
        return json.loads((c.dir / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_campaign(c: Campaign, state: State) -> int:
    """Run (or resume) every run, then the statistics and the gate; the outcome in
    <campaign dir>/result.json. RUNNING when another runner holds the campaign."""
    deadline = time.monotonic() + 2  # a status look may hold the lock for a moment
    while (lock := _try_lock(c)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if lock is None:
        say(f"campaign {c.id}: another runner is running it", sys.stderr)
        return RUNNING
    with lock:
        (c.dir / "result.json").unlink(missing_ok=True)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        failed = Scheduler(c, state, ansible_execute(c)).run()
        for run_id in failed:
            say(f"campaign {c.id}: {run_id} failed ({state.runs[run_id].get('error')}); "
                "run the same command again to try it again", sys.stderr)  # fmt: skip
        rc = 1 if failed else statistics(c, state)
        outcome = {"rc": rc, "failed": failed, "at": time.time()}
        if not failed:
            matrix_doc = json.loads((c.dir / "matrix.json").read_text())
            outcome["breaches"] = matrix_doc.get("breaches") or []
        (c.dir / "result.json").write_text(json.dumps(outcome) + "\n")
        return rc


def start(c: Campaign, file: Path) -> int:
    """Start a runner of the campaign in a session of its own (it goes on when the
    playbook that started it dies), unless one is running already; either way 0."""
    if _held(c):
        say(f"campaign {c.id}: a runner is running it already; watching that one")
        return 0
    (c.dir / "result.json").unlink(missing_ok=True)
    with (c.dir / "runner.log").open("a") as log:
        subprocess.Popen(
            [sys.executable, "-m", "nazbench.campaign", "run", str(file)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=ROOT,
        )  # fmt: skip
    deadline = time.monotonic() + 10
    while not _held(c) and _result(c) is None:  # until it holds the lock (or is done)
        if time.monotonic() > deadline:
            say(f"campaign {c.id}: the runner did not start; see {c.dir / 'runner.log'}")
            return 1
        time.sleep(0.1)
    say(f"campaign {c.id}: runner started (log: {c.dir / 'runner.log'})")
    return 0


def status(c: Campaign, state: State) -> dict:
    """One look for the run_watch action: ``line`` (progress), ``over`` (the runner
    ended: every run done and the statistics made, or runs failed), ``failed`` (why the
    campaign cannot go on: a runner that is gone without a result)."""
    n = state.count()
    line = (f"campaign {c.id}: done {n['done']}, running {n['running']}, "
            f"left {n['pending']}, failed {n['failed']}")  # fmt: skip
    if _held(c):
        return {"line": line, "over": False, "failed": None, "dir": str(c.dir)}
    result = _result(c)
    if result is None:
        return {"line": line, "over": False, "failed": (
            f"campaign {c.id}: no runner is running it and it has no result (killed?); "
            "run the same command again to resume it"), "dir": str(c.dir)}  # fmt: skip
    return {"line": line, "over": True, "failed": None, "result": result, "dir": str(c.dir)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("plan", "run", "start", "status"))
    parser.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    try:
        c = load(args.file)
        runs = expand(c)
        state = State(c.dir / "state.json", runs)
    except BadInput as exc:
        say(f"campaign: {exc}", sys.stderr)
        return 2
    if args.command == "plan":
        per_run = minutes_per_run(c)
        for r in runs:
            say(f"{r.run_id}: experiment {r.experiment}, naz {r.naz_version}, seed {r.seed}, "
                f"{state.runs[r.run_id]['status']}")  # fmt: skip
        left = sum(1 for r in runs if state.runs[r.run_id]["status"] != "done")
        waves = -(-left // len(c.cells))
        say(f"{len(runs)} runs ({left} not done) of about {per_run:.0f} min each on "
            f"{len(c.cells)} cell(s): about {waves * per_run / 60:.1f} h")  # fmt: skip
        return 0
    if args.command == "status":
        say(json.dumps(status(c, state)))
        return 0
    generated = [cell for cell in c.cells if cell.startswith("inventories/cells/")]
    if generated and args.command in ("start", "run"):
        cells_module.make_cells(len(generated))  # new cells are provisioned by their 1st run
    if args.command == "start":
        return start(c, args.file.resolve())
    return run_campaign(c, state)


def statistics(c: Campaign, state: State, root: Path | None = None) -> int:
    """The matrix of the campaign's runs (nazbench.matrix: per experiment and naz version,
    means and intervals, differences), in <campaign dir>/matrix.json, and its gate."""
    root = root or ROOT
    from nazbench import matrix  # noqa: PLC0415 - matplotlib-free, but only needed here

    dirs = [str(root / "artifacts" / e.get("run_id", r)) for r, e in sorted(state.runs.items())]
    argv = [*dirs, "--by", "experiment,naz_version", "--json", str(c.dir / "matrix.json")]
    if c.thresholds:
        argv += ["--thresholds", str(root / c.thresholds)]
    with (c.dir / "matrix.md").open("w", encoding="utf-8") as out, contextlib.redirect_stdout(out):
        return matrix.main(argv)


if __name__ == "__main__":
    sys.exit(main())
