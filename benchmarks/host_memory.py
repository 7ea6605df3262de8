"""Memory of the observability stack and naz-cli on one lab host, sampled during a run.

The seed's naz host was a 1 GB droplet. This samples, every --interval seconds, for the
processes of a lab container (default nazbench-sfo1), the proportional set size (PSS, from
/proc/<pid>/smaps_rollup) of every process of each systemd unit given, and prints the
peak per unit and the peak of their sum against the goal (600 MB). PSS splits shared
pages (PostgreSQL's shared buffers, shared libraries) between the processes that map
them, so summing it over a unit's processes does not count them twice, as RSS would.

    python benchmarks/host_memory.py --duration 120          # while a run is going on
    python benchmarks/host_memory.py --container nazbench-sfo1 --json

A process belongs to the unit named at the end of its cgroup path
(.../libpod-<container id>/system.slice/<unit>). It samples from the host's /proc: inside
the container root lacks CAP_SYS_PTRACE and may not read other users' smaps_rollup.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

DEFAULT_UNITS = (
    "postgresql@15-main.service",
    "prometheus.service",
    "nazbench-log-shipper.service",
    "nazbench-naz-cli.service",
)
GOAL_MB = 600.0


def container_id(container: str) -> str:
    return subprocess.run(
        ["podman", "inspect", "--format", "{{.Id}}", container],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def sample(cid: str, units: list[str]) -> dict:
    """PSS in kB and process count per unit, for the processes of container cid."""
    pss = dict.fromkeys(units, 0)
    procs = dict.fromkeys(units, 0)
    marker = f"libpod-{cid}/"
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                paths = [line.rstrip("\n").split(":", 2)[2] for line in f]
            unit = next(
                (
                    p.rsplit("/", 1)[-1]
                    for p in paths
                    if marker in p and p.rsplit("/", 1)[-1] in pss
                ),
                None,
            )
            if unit is None:
                continue
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss[unit] += int(line.split()[1])
                        procs[unit] += 1
                        break
        except (OSError, IndexError, ValueError):
            continue  # the process ended between listing and reading
    return {"pss_kb": pss, "processes": procs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--container", default="nazbench-sfo1")
    ap.add_argument("--unit", action="append", dest="units", help="a systemd unit (repeat)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds to sample for")
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    units = args.units or list(DEFAULT_UNITS)

    peak = {u: 0 for u in units}
    peak_total = 0
    samples = 0
    missing: set[str] = set(units)
    cid = container_id(args.container)
    end = time.monotonic() + args.duration
    while True:
        s = sample(cid, units)
        samples += 1
        total = sum(s["pss_kb"].values())
        peak_total = max(peak_total, total)
        for u in units:
            peak[u] = max(peak[u], s["pss_kb"][u])
            if s["processes"][u]:
                missing.discard(u)
        if not args.json:
            print(f"sample {samples}: total {total / 1024:.1f} MB", file=sys.stderr, flush=True)
        if time.monotonic() + args.interval > end:
            break
        time.sleep(args.interval)

    result = {
        "container": args.container,
        "samples": samples,
        "interval_s": args.interval,
        "peak_pss_mb": {u: round(peak[u] / 1024, 1) for u in units},
        "peak_total_pss_mb": round(peak_total / 1024, 1),
        "goal_mb": GOAL_MB,
        "within_goal": peak_total / 1024 < GOAL_MB,
        "units_without_processes": sorted(missing),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for u in units:
            note = "  (no process found)" if u in missing else ""
            print(f"{u:32s} peak PSS {result['peak_pss_mb'][u]:8.1f} MB{note}")
        print(
            f"{'sum (peak of the sum)':32s} peak PSS {result['peak_total_pss_mb']:8.1f} MB"
            f"  goal < {GOAL_MB:.0f} MB: {'met' if result['within_goal'] else 'NOT met'}"
        )
    return 0 if not missing else 1


if __name__ == "__main__":
    sys.exit(main())
