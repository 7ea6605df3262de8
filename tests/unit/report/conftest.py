"""Small run directories for the report tests: synthetic ones and one real smoke run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
REAL_RUN = "run-20261128T093237Z"
T0 = 1_800_000_000.0
SMSC = "nazbench-smsc.service"
REDIS = "redis-server.service"


def manifest(run_id: str, count: int) -> dict:
    return {
        "schema": "nazbench-manifest/1",
        "run_id": run_id,
        "count": count,
        "seed": 1,
        "id_scheme": {"format": "<run_id>/<index>", "first_index": 0, "last_index": count - 1},
        "started_at": "2027-01-15T08:00:00+00:00",
        "producer": "nazbench test",
    }


def edge(run_id: str, service: str, kind: str, at: float, window: int = 0) -> dict:
    return {
        "record": "edge",
        "run_id": run_id,
        "service": service,
        "edge": kind,
        "cause": "plan",
        "window": window,
        "planned_at": at,
        "actual_at": at,
        "drift_s": 0.0,
        "outcome": "ok",
    }


def write_run(
    root: Path,
    run_id: str = "syn-1",
    *,
    count: int | None = None,
    ledger: list[dict] | None = None,
    timeline: list[dict] | None = None,
    errors_csv: str | None = None,
    run: dict | None = None,
    params: dict | None = None,
    extra: dict[str, str] | None = None,
) -> Path:
    """A run directory with only the files given (params.json always, unless params={})."""
    d = root / run_id
    d.mkdir(parents=True)
    if params != {}:
        p = {"run_id": run_id, "profile": "smoke", "experiment": "A", "message_count": count}
        p.update(params or {})
        (d / "params.json").write_text(json.dumps(p))
    if run is not None:
        (d / "run.json").write_text(json.dumps(run))
    if count is not None:
        (d / "manifest.json").write_text(json.dumps(manifest(run_id, count)))
    if ledger is not None:
        (d / "ledger.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ledger))
    if timeline is not None:
        (d / "timeline-ams1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in timeline))
    if errors_csv is not None:
        (d / "errors.csv").write_text(errors_csv)
    for name, text in (extra or {}).items():
        path = d / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return d


def accept(run_id: str, index: int, ts: float, status: int = 0) -> dict:
    return {
        "ts": ts,
        "session": "s.1",
        "sequence_number": index + 1,
        "msg_id": f"{run_id}/{index}",
        "message_id": f"b-{index:x}" if status == 0 else None,
        "command_status": status,
    }


@pytest.fixture
def real_run(tmp_path: Path) -> Path:
    """A copy of a real smoke run (experiment A, 2 outages per service, 3 lost)."""
    dest = tmp_path / "artifacts" / REAL_RUN
    shutil.copytree(DATA / REAL_RUN, dest)
    return dest


@pytest.fixture
def hand_run(tmp_path: Path) -> Path:
    """100 messages, one accept per second from T0+10; SMSC down 100-130, Redis 200-220.

    Accepted: 0..89 at T0+10..T0+99; 90 and 91 lost (popped as the SMSC went down),
    92..97 at T0+137.5.. (1 s apart); 98 duplicated (twice at T0+150, T0+151); 99 lost at
    the tail. Redis outage: nothing accepted inside; first accept after at T0+221.25 is a
    duplicate of 98. Errors: two rows during the SMSC outage, one for message 90.
    """
    rid = "hand-1"
    ledger = [accept(rid, i, T0 + 10 + i) for i in range(90)]
    ledger += [accept(rid, 92 + k, T0 + 137.5 + k) for k in range(6)]
    ledger += [accept(rid, 98, T0 + 150), accept(rid, 98, T0 + 221.25)]
    ledger.append(accept("other-run", 5, T0 + 50))  # another run's line: set apart
    timeline = [
        {"record": "plan", "run_id": rid, "at": T0, "stop_when": "x --redis-host 127.0.0.1"},
        edge(rid, SMSC, "stop", T0 + 100),
        edge(rid, SMSC, "start", T0 + 130),
        edge(rid, REDIS, "stop", T0 + 200),
        edge(rid, REDIS, "start", T0 + 220),
        {"record": "end", "run_id": rid, "at": T0 + 240, "reason": "duration"},
    ]
    header = (
        "timestamp,event,stage,client_id,log_id,error,metadata,run_id,level,source_host,"
        "source_file,source_offset,shipped_at\n"
    )
    errors = header + (
        "2027-01-15 08:01:50.5+00,naz.Client.send_data,end,c1,90-abcdefg,"
        '"[Errno 104] Connection reset by peer","{""a"": 1}",hand-1,ERROR,sfo1,f1,10,'
        "2027-01-15 08:05:00+00\n"
        "2027-01-15 08:01:55+00,naz.Client.connect,end,c1,,"
        '"ConnectionRefusedError(111)",{},hand-1,ERROR,sfo1,f1,20,2027-01-15 08:05:00+00\n'
        "2027-01-15 08:01:55+00,naz.Client.connect,end,c1,,"
        '"ConnectionRefusedError(111)",{},other-run,ERROR,sfo1,f1,30,2027-01-15 08:05:00+00\n'
    )
    run = {
        "run_id": rid,
        "started_at": T0,
        "duration_s": 240.0,
        "naz_restarts": 0,
        "naz_rss_start_bytes": 35_000_000.0,
        "naz_rss_end_bytes": 36_500_000.0,
    }
    return write_run(
        tmp_path / "artifacts",
        rid,
        count=100,
        ledger=ledger,
        timeline=timeline,
        errors_csv=errors,
        run=run,
    )
