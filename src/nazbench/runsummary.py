"""Finish a run on the controller: reconcile, compare the probe, write run.json.

    python -m nazbench.runsummary artifacts/<run_id>

Reads what run_finish.yml fetched into the run's directory (params.json, start.json,
end.json, manifest.json, ledger.jsonl, timeline-<host>.jsonl, probe.jsonl) and writes
``reconcile.json``, ``probe-vs-timeline.json`` (experiment A) and ``run.json``, then prints
a few lines for the playbook to show. Every time in them is a host's epoch seconds.

``run.json["problems"]`` lists what makes the run invalid as a benchmark (a chaos loop
that failed or left no end record, experiment B with any discrepancy); the playbook fails
naming them. Losses in experiment A are results, not problems. Exit 2 when an input is
missing or unreadable (nothing is guessed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nazbench import jsonl, ledger
from nazbench.jsonfile import read_json, write_json
from nazbench.lab import portprobe
from nazbench.nazapp.producer import read_manifest
from nazbench.nazapp.reconcile import read_ledgers, reconcile
from nazbench.timeline import Timeline

UNITS = {"nazbench-smsc.service": "smsc", "redis-server.service": "redis"}


class MissingInput(Exception):
    pass


def _need(run_dir: Path, name: str) -> dict[str, Any]:
    data = read_json(run_dir / name)
    if data is None:
        raise MissingInput(f"{run_dir / name} is missing")
    return data


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        return list(jsonl.objects(fh))


def chaos_hosts(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Per chaos host: how its loop ended (from its own timeline's last end record)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(run_dir.glob("timeline-*.jsonl")):
        host = path.stem.removeprefix("timeline-")
        tl = Timeline.from_path(path, host=host).last_run()
        ends = tl.ends()
        end = ends[-1] if ends else None
        out[host] = {
            "end_reason": end.get("reason") if end else None,
            "error": end.get("error")
            if end
            else "no end record: the loop was killed or never began",
            "ended_at": end.get("at") if end else None,
            "summary": end.get("summary") if end else None,
            "still_stopped": end.get("still_stopped", []) if end else None,
        }
    return out


def summarise(run_dir: Path) -> dict[str, Any]:
    params = _need(run_dir, "params.json")
    start = _need(run_dir, "start.json")
    end = _need(run_dir, "end.json")
    started_at = float(start["started_at"])
    manifest_path = run_dir / "manifest.json"
    ledger_path = run_dir / "ledger.jsonl"
    for path in (manifest_path, ledger_path):
        if not path.is_file():
            raise MissingInput(f"{path} is missing")
    result = reconcile(read_manifest(manifest_path), read_ledgers([ledger_path]), since=started_at)
    write_json(run_dir / "reconcile.json", result.to_dict())

    problems: list[str] = []
    chaos: dict[str, Any] = {}
    compare: dict[str, Any] = {}
    if params.get("chaos_enabled"):
        chaos = chaos_hosts(run_dir)
        if not chaos:
            problems.append("no chaos timeline was fetched")
        for host, info in chaos.items():
            if info["end_reason"] in (None, "error", "locked"):
                problems.append(f"chaos loop on {host}: {info['error']}")
            elif info["end_reason"] == "signal":
                problems.append(
                    f"chaos loop on {host} was interrupted by a signal before its planned end"
                )
            elif info["still_stopped"]:
                problems.append(
                    f"chaos loop on {host} left {', '.join(info['still_stopped'])} stopped"
                )
        probe = run_dir / "probe.jsonl"
        if not probe.is_file():
            raise MissingInput(f"{probe} is missing")
        timeline = [
            rec for path in sorted(run_dir.glob("timeline-*.jsonl")) for rec in _jsonl(path)
        ]
        compare = portprobe.compare(_jsonl(probe), timeline, UNITS)
        write_json(run_dir / "probe-vs-timeline.json", compare)
    elif not result.ok:
        problems.append(
            f"experiment B (no faults) has discrepancies: {len(result.lost)} lost, "
            f"{len(result.duplicated)} duplicated; see reconcile.json"
        )

    # The run ended when its last message was accepted or its chaos loops ended, whichever
    # came last (hosts' clocks); the finish itself may come hours later, after an attach.
    ended = [c["ended_at"] for c in chaos.values() if c["ended_at"] is not None]
    ended += [
        e.ts
        for e in ledger.classify(read_ledgers([ledger_path]), params["run_id"], since=started_at)
        if e.category == ledger.OURS and e.accepted and e.ts is not None
    ][-1:]
    ended_at = max(ended) if ended else float(end["finished_at"])
    run = {
        "run_id": params["run_id"],
        "experiment": params.get("experiment"),
        "profile": params.get("profile"),
        "messages": params.get("message_count"),
        "started_at": started_at,
        "ended_at": ended_at,
        "duration_s": round(ended_at - started_at, 1),
        "end_reasons": {host: c["end_reason"] for host, c in chaos.items()},
        "chaos": {host: c["summary"] for host, c in chaos.items()},
        "finished_at": end.get("finished_at"),
        "probe_vs_timeline": {k: v for k, v in compare.items() if k != "pairs"},
        "unplanned_outages": len(compare.get("unplanned", [])),
        "reconcile": result.counts(),
        "every_message_delivered_once": result.ok,
        "naz_restarts": end.get("naz_restarts"),
        "queue_end": end.get("queue_end"),
        "naz_rss_start_bytes": start.get("naz_rss_start_bytes"),
        "naz_rss_end_bytes": end.get("naz_rss_end_bytes"),
        "problems": problems,
    }
    write_json(run_dir / "run.json", run)
    return run


def lines(run: dict[str, Any]) -> list[str]:
    c = run["reconcile"]
    out = [
        f"run {run['run_id']} (experiment {run['experiment']}, {run['profile']}): "
        f"{run['duration_s']} s to the last message or the loop's end; loops ended by "
        f"{run['end_reasons'] or 'none (experiment B)'}",
        f"messages: {c['expected']} queued, {c['delivered_once']} delivered once, "
        f"{c['lost']} lost, "
        f"{c['duplicated']} duplicated, {c['malformed_lines']} malformed and "
        f"{c['null_msg_id_lines']} null-id ledger lines",
    ]
    for host, summary in run["chaos"].items():
        for unit, s in (summary or {}).get("services", {}).items():
            out.append(
                f"{host} {unit}: {s.get('outages')} outages, {s.get('downtime_s')} s down, "
                f"max drift {s.get('max_drift_s')} s"
            )
    probe = run["probe_vs_timeline"]
    if probe:
        out.append(
            f"probe: {probe.get('matched')}/{probe.get('edges')} edges seen, p99 drift "
            f"{probe.get('p99_abs_drift_s')} s, {run['unplanned_outages']} unplanned outages"
        )
    out.append(
        f"naz: {run['naz_restarts']} restarts, RSS {run['naz_rss_start_bytes']} -> "
        f"{run['naz_rss_end_bytes']} bytes; queue at the end {run['queue_end']}"
    )
    out += [f"PROBLEM: {p}" for p in run["problems"]]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nazbench.runsummary")
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        run = summarise(args.run_dir)
    except (MissingInput, OSError, ValueError, KeyError) as exc:
        sys.stderr.write(f"runsummary: error: {exc}\n")
        return 2
    sys.stdout.write("\n".join(lines(run)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
