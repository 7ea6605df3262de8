"""run.json from what run_finish.yml fetched (nazbench.runsummary)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nazbench import runsummary

T0 = 1_800_000_000.0
SMSC, REDIS = "nazbench-smsc.service", "redis-server.service"


def jl(records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def edge(service, kind, at, outcome="ok"):
    return {
        "record": "edge",
        "run_id": "r1",
        "service": service,
        "edge": kind,
        "cause": "plan",
        "window": 0,
        "planned_at": at,
        "actual_at": at,
        "drift_s": 0.0,
        "outcome": outcome,
    }


def make_run(tmp_path: Path, *, chaos=True, accepted=(0, 1, 2), end=True, extra_ledger="") -> Path:
    d = tmp_path / "r1"
    d.mkdir()
    (d / "params.json").write_text(
        json.dumps(
            {
                "run_id": "r1",
                "experiment": "A" if chaos else "B",
                "profile": "micro",
                "message_count": 3,
                "chaos_enabled": chaos,
            }
        )
    )
    (d / "start.json").write_text(json.dumps({"started_at": T0, "naz_rss_start_bytes": 3.0e7}))
    (d / "end.json").write_text(
        json.dumps(
            {"finished_at": T0 + 500, "queue_end": 0, "naz_restarts": 0, "naz_rss_end_bytes": 3.1e7}
        )
    )
    (d / "manifest.json").write_text(
        json.dumps(
            {
                "schema": "nazbench-manifest/1",
                "run_id": "r1",
                "count": 3,
                "seed": 1,
                "id_scheme": {"format": "<run_id>/<index>", "first_index": 0, "last_index": 2},
            }
        )
    )
    ledger = [{"msg_id": f"r1/{i}", "command_status": 0, "ts": T0 + 10 + i} for i in accepted]
    (d / "ledger.jsonl").write_text(jl(ledger) + extra_ledger)
    if chaos:
        records = [
            {"record": "plan", "run_id": "r1", "at": T0 + 1, "host": "ams1", "pid": 1, "plan": {}},
            edge(SMSC, "stop", T0 + 20),
            edge(SMSC, "start", T0 + 30),
        ]
        if end:
            records.append(
                {
                    "record": "end",
                    "run_id": "r1",
                    "at": T0 + 60,
                    "reason": "stop_when",
                    "error": None,
                    "still_stopped": [],
                    "summary": {
                        "services": {SMSC: {"outages": 1, "downtime_s": 10.0, "max_drift_s": 0.0}}
                    },
                }
            )
        (d / "timeline-ams1.jsonl").write_text(jl(records))
        probe = [
            {"t": T0, "target": "smsc", "state": "up"},
            {"t": T0 + 20.2, "target": "smsc", "state": "down"},
            {"t": T0 + 30.1, "target": "smsc", "state": "up"},
            # a crash that systemd restarted: nobody planned it
            {"t": T0 + 40.0, "target": "smsc", "state": "down"},
            {"t": T0 + 41.5, "target": "smsc", "state": "up"},
        ]
        (d / "probe.jsonl").write_text(jl(probe))
    return d


def test_a_clean_chaos_run(tmp_path):
    d = make_run(tmp_path)
    run = runsummary.summarise(d)
    assert run["problems"] == [] and run["every_message_delivered_once"] is True
    assert run["started_at"] == T0 and run["ended_at"] == T0 + 60 and run["duration_s"] == 60.0
    assert run["end_reasons"] == {"ams1": "stop_when"}
    assert run["chaos"]["ams1"]["services"][SMSC]["outages"] == 1
    probe = json.loads((d / "probe-vs-timeline.json").read_text())
    assert probe["matched"] == 2 and probe["p99_abs_drift_s"] == pytest.approx(0.2)
    assert run["unplanned_outages"] == 1 == len(probe["unplanned"])
    assert json.loads((d / "reconcile.json").read_text())["counts"]["delivered_once"] == 3
    assert json.loads((d / "run.json").read_text()) == run


def test_a_loop_without_end_record_is_a_problem_not_a_pass(tmp_path):
    run = runsummary.summarise(make_run(tmp_path, end=False))
    assert run["problems"] == [
        "chaos loop on ams1: no end record: the loop was killed or never began"
    ]
    assert run["ended_at"] == T0 + 12  # the last accepted message, for want of the loop's end


def test_experiment_b_with_a_loss_or_a_stray_line_is_a_problem(tmp_path):
    run = runsummary.summarise(make_run(tmp_path, chaos=False, accepted=(0, 1)))
    assert run["problems"] and "1 lost" in run["problems"][0]
    assert run["ended_at"] == T0 + 11 and run["finished_at"] == T0 + 500
    assert run["probe_vs_timeline"] == {} and run["chaos"] == {}


def test_malformed_and_null_id_ledger_lines_are_counted(tmp_path):
    extra = "{torn\n" + json.dumps({"msg_id": None, "command_status": 0, "ts": T0 + 20}) + "\n"
    run = runsummary.summarise(make_run(tmp_path, chaos=False, extra_ledger=extra))
    assert run["reconcile"]["malformed_lines"] == 1 and run["reconcile"]["null_msg_id_lines"] == 1
    assert run["every_message_delivered_once"] is False and run["problems"]


def test_missing_inputs_fail_loudly(tmp_path, capsys):
    d = make_run(tmp_path)
    (d / "ledger.jsonl").unlink()
    assert runsummary.main([str(d)]) == 2
    assert "ledger.jsonl is missing" in capsys.readouterr().err


def test_a_loop_ended_by_a_signal_is_a_problem(tmp_path):
    d = make_run(tmp_path)
    path = d / "timeline-ams1.jsonl"
    path.write_text(path.read_text().replace('"reason": "stop_when"', '"reason": "signal"'))
    run = runsummary.summarise(d)
    assert run["problems"] == [
        "chaos loop on ams1 was interrupted by a signal before its planned end"
    ]
