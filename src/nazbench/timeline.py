# Copyright: nazbench contributors
# MIT License
"""The one reader of the chaos loop's timeline (JSON lines written by chaos_loop).

Used by the module itself (its summary), ``nazbench.runstatus`` (what is down now),
``nazbench.report.data`` (the outages of a run) and ``nazbench.lab.portprobe`` (the probe
against the timeline).  Standard library only and no nazbench imports: the same file is
shipped to the hosts as ``ansible.module_utils.chaos_timeline`` (a symlink in
plugins/module_utils).

Records, one JSON object a line, told apart by ``record``:

* ``plan``: the start of a loop (``at`` is time zero, ``host``, ``plan`` the windows);
* ``edge``: a stop or start (``service``, ``edge``, ``cause`` plan|heal|leftover,
  ``window``, ``planned_at``, ``actual_at``, ``drift_s``, ``outcome`` ok|failed, ...);
* ``skip``: a planned outage the loop did not begin (``reason`` after_grace|stale);
* ``stop_when`` / ``stop_when_timeout``: the stop condition was met / a check was killed;
* ``end``: the loop ended (``reason``, ``summary``); ``heal_only``: a heal-only run.

A line that is not a JSON object (a record torn by a crash, a stray value) is skipped and
counted in :attr:`Timeline.torn`.
"""

from __future__ import annotations

import json
import math

# How far before an edge a matching observation may be and still belong to it (seconds).
OUTAGE_SLACK_S = 5.0


def _number(value):
    """``value`` as a float if it is a finite int/float (not bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class Timeline:
    """Timeline records, in the order they were written, each with the host it came from.

    ``add_lines``/``add_records`` may be called once per file (one file per chaos host);
    the host of a batch is the one given, else the ``host`` of its plan record(s), else
    (a batch without a plan: more lines of the same file) the host of the last record.
    """

    def __init__(self):
        self._entries: list[tuple[str | None, dict]] = []
        self.torn = 0

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_records(cls, records, host=None, run_id=None):
        timeline = cls()
        timeline.add_records(records, host=host, run_id=run_id)
        return timeline

    @classmethod
    def from_path(cls, path, host=None, run_id=None):
        """Read one timeline file; FileNotFoundError propagates."""
        timeline = cls()
        timeline.add_path(path, host=host, run_id=run_id)
        return timeline

    def add_path(self, path, host=None, run_id=None):
        with open(path, encoding="utf-8", errors="replace") as handle:
            self.add_lines(handle, host=host, run_id=run_id)
        return self

    def add_lines(self, lines, host=None, run_id=None):
        records = []
        for raw in lines:
            line = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                self.torn += 1
        return self.add_records(records, host=host, run_id=run_id)

    def add_records(self, records, host=None, run_id=None):
        """Append records; non-objects are counted as torn; ``run_id`` keeps only that run
        (and records without a run_id)."""
        kept = []
        for rec in records:
            if not isinstance(rec, dict):
                self.torn += 1
                continue
            if run_id is not None and rec.get("run_id") not in (None, run_id):
                continue
            kept.append(rec)
        if host is None:
            plan_hosts = [r.get("host") for r in kept if r.get("record") == "plan"]
            current = next((h for h in plan_hosts if isinstance(h, str)), None)
            if current is None and self._entries:  # more of the same file
                current = self._entries[-1][0]
            for rec in kept:
                if rec.get("record") == "plan" and isinstance(rec.get("host"), str):
                    current = rec["host"]
                self._entries.append((current, rec))
        else:
            self._entries.extend((host, rec) for rec in kept)
        return self

    # ------------------------------------------------------------------ records

    def __len__(self):
        return len(self._entries)

    def records(self, kind=None) -> list[dict]:
        """All records (or those whose ``record`` is ``kind``), in order."""
        return [r for _h, r in self._entries if kind is None or r.get("record") == kind]

    def entries(self, kind=None) -> list[tuple[str | None, dict]]:
        """(host, record) pairs, in order."""
        return [(h, r) for h, r in self._entries if kind is None or r.get("record") == kind]

    def plans(self) -> list[dict]:
        return self.records("plan")

    def edges(self, ok=None, causes=None) -> list[dict]:
        """Edge records; ``ok=True`` only successful ones, ``causes`` a set of causes."""
        return [
            r
            for r in self.records("edge")
            if (ok is None or (r.get("outcome") == "ok") == ok)
            and (causes is None or r.get("cause") in causes)
        ]

    def skips(self) -> list[dict]:
        return self.records("skip")

    def ends(self) -> list[dict]:
        return self.records("end")

    def last_run(self) -> Timeline:
        """The records from the last plan record on (the whole timeline without one)."""
        start = 0
        for i, (_h, rec) in enumerate(self._entries):
            if rec.get("record") == "plan":
                start = i
        tail = Timeline()
        tail._entries = self._entries[start:]
        return tail

    # ------------------------------------------------------------------ outages

    def outages(self) -> list[dict]:
        """Every outage: an ok stop paired with the next ok start of its host and service.

        A failed start leaves the outage open (``start_failed`` true) until a later ok
        start (a retry, the heal, or the next run's ``leftover`` start) closes it.  A start
        with no open outage and a second stop while one is open are ignored.  Fields:
        service, host, run_id, window, kind (the fault kind; ``stop`` in timelines from
        before kinds), cause (of the closing start, None while open), stop_at, start_at
        (None while open or not stamped), planned_stop_at, planned_start_at,
        start_failed, open, duration_s (None while open).
        Sorted by stop time.
        """
        plans = {}  # run_id -> plan record, for planned times of heal-closed outages
        open_: dict[tuple, dict] = {}
        done: list[dict] = []
        for host, rec in self._entries:
            kind = rec.get("record")
            if kind == "plan":
                plans[rec.get("run_id")] = rec
                continue
            if kind != "edge" or not isinstance(rec.get("service"), str):
                continue
            key = (host, rec["service"])
            ok = rec.get("outcome") == "ok"
            if rec.get("edge") == "stop":
                if ok and key not in open_ and rec.get("cause") != "leftover":
                    open_[key] = _open_outage(host, rec, plans.get(rec.get("run_id")))
            elif rec.get("edge") == "start" and key in open_:
                outage = open_[key]
                if not ok:
                    outage["start_failed"] = True
                    continue
                del open_[key]
                _close_outage(outage, rec)
                done.append(outage)
        done.extend(open_.values())
        done.sort(key=lambda o: (o["stop_at"] is None, o["stop_at"] or 0.0, o["service"]))
        return done

    # ------------------------------------------------------------------ now

    def state(self, now: float) -> dict:
        """What the last run of this timeline says at ``now``.

        ``down``: services with an open outage; ``faults``: service -> the kind of its
        open outage; ``next_edge``: the next planned edge
        after ``now`` that was neither skipped nor is past the end
        (``{"service", "edge", "window", "at", "in_s"}``) or None; ``ended`` and ``end``:
        whether the run wrote its end record, and that record.
        """
        run = self.last_run()
        faults = {o["service"]: o["kind"] for o in run.outages() if o["open"]}
        ends = run.ends()
        end = ends[-1] if ends else None
        plans = run.plans()
        next_edge = None
        if plans and end is None:
            next_edge = _next_edge(plans[-1], run.skips(), now)
        return {
            "down": sorted(faults),
            "faults": dict(sorted(faults.items())),
            "next_edge": next_edge,
            "ended": end is not None,
            "end": end,
        }


def _open_outage(host, stop: dict, plan: dict | None) -> dict:
    window = stop.get("window")
    planned_start = _planned_start(plan, stop.get("service"), window)
    return {
        "service": stop["service"],
        "host": host,
        "run_id": stop.get("run_id"),
        "window": window,
        "kind": stop.get("kind") or "stop",  # timelines before fault kinds: stops
        "cause": None,
        "stop_at": _number(stop.get("actual_at")),
        "start_at": None,
        "planned_stop_at": _number(stop.get("planned_at")),
        "planned_start_at": planned_start,
        "start_failed": False,
        "open": True,
        "duration_s": None,
    }


def _close_outage(outage: dict, start: dict) -> None:
    outage["open"] = False
    outage["cause"] = start.get("cause")
    outage["start_at"] = _number(start.get("actual_at"))
    if start.get("cause") == "plan" and _number(start.get("planned_at")) is not None:
        outage["planned_start_at"] = _number(start["planned_at"])
    if outage["start_at"] is not None and outage["stop_at"] is not None:
        outage["duration_s"] = round(outage["start_at"] - outage["stop_at"], 3)


def _plan_windows(plan: dict | None, service):
    if not isinstance(plan, dict) or not isinstance(plan.get("plan"), dict):
        return []
    windows = plan["plan"].get(service)
    return [w for w in windows if isinstance(w, dict)] if isinstance(windows, list) else []


def _planned_start(plan: dict | None, service, window) -> float | None:
    at = _number((plan or {}).get("at"))
    if at is None or window is None:
        return None
    for w in _plan_windows(plan, service):
        if w.get("state") == "stop" and w.get("index") == window:
            end = _number(w.get("end_s"))
            return None if end is None else round(at + end, 3)
    return None


def _next_edge(plan: dict, skips: list[dict], now: float) -> dict | None:
    at0 = _number(plan.get("at"))
    windows = plan.get("plan")
    if at0 is None or not isinstance(windows, dict):
        return None
    skipped = {(s.get("service"), s.get("window")) for s in skips}
    upcoming = []
    for unit in windows:
        for w in _plan_windows(plan, unit):
            if w.get("state") != "stop" or (unit, w.get("index")) in skipped:
                continue
            for edge, raw in (("stop", w.get("start_s")), ("start", w.get("end_s"))):
                offset = _number(raw)
                if offset is not None and at0 + offset > now:
                    upcoming.append((at0 + offset, unit, edge, w.get("index")))
    if not upcoming:
        return None
    at, unit, edge, window = min(upcoming, key=lambda u: (u[0], u[1], u[2]))
    return {
        "service": unit,
        "edge": edge,
        "window": window,
        "at": round(at, 3),
        "in_s": round(at - now, 1),
    }


def read(paths, host_of=None, run_id=None) -> Timeline:
    """One Timeline from several files; ``host_of(path)`` names each file's host."""
    timeline = Timeline()
    for path in paths:
        timeline.add_path(path, host=host_of(path) if host_of else None, run_id=run_id)
    return timeline
