"""The result first: summary.json "outcome" (PASS/FAIL, reasons, warnings), the one-line
verdict that starts with it, and the run's context."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nazbench.report.data import load
from nazbench.report.outcome import _seen_together, _where
from nazbench.report.summary import build_summary

from .conftest import DATA, T0, accept, write_run

SMOKE = "run-20261130T042531Z"
LOGS_OK = {"run_id": "ok-1", "db_rows": 10, "file_records": 10, "equal": True, "reasons": []}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    dest = tmp_path_factory.mktemp("smoke") / SMOKE
    shutil.copytree(DATA / SMOKE, dest)
    return build_summary(load(dest))


def codes(items: list[dict]) -> list[str]:
    return [x["code"] for x in items]


def warned(s: dict) -> list[str]:
    """Warning codes but the missing inputs every small synthetic run has."""
    return [c for c in codes(s["outcome"]["warnings"]) if c != "missing_inputs"]


def clean_run(
    tmp_path: Path,
    *,
    run: dict | None = None,
    logs: dict | None = None,
    more: list[dict] | None = None,
    **kw,
) -> dict:
    """3 messages, each accepted once (plus ``more`` ledger lines); optional run.json /
    logs-check.json overrides."""
    rid = "ok-1"
    r = {"run_id": rid, "started_at": T0, "duration_s": 10, "naz_restarts": 0}
    r.update(run or {})
    extra = {"logs-check.json": json.dumps(LOGS_OK if logs is None else logs)}
    extra.update(kw.pop("extra", {}))
    d = write_run(
        tmp_path,
        rid,
        count=3,
        ledger=[accept(rid, i, T0 + 1 + i) for i in range(3)] + (more or []),
        run=r,
        extra=extra,
        **kw,
    )
    return build_summary(load(d))


def test_smoke_run_fails_on_its_lost_messages(smoke: dict) -> None:
    out = smoke["outcome"]
    assert out["result"] == "FAIL"
    assert codes(out["reasons"]) == ["lost"]
    assert out["reasons"][0]["text"] == (
        "3 of 2000 messages lost: 2 at SMSC outage 1, 1 at SMSC outage 2 (1 without any log line)"
    )
    assert codes(out["warnings"]) == ["unanswered_at_end"]
    assert smoke["verdict"].startswith("FAIL: naz delivered 1997/2000 once; 3 lost (3 popped")
    assert "2 at SMSC outage 1, 1 at SMSC outage 2" in smoke["verdict"]


def test_smoke_run_context(smoke: dict) -> None:
    c = smoke["context"]
    assert (c["duration_s"], c["end_reason"], c["rtt_ms"]) == (609.8, "stop_when", 154)
    assert c["ceiling_msg_per_s"] == 6.49
    assert "3.829 msg/s overall (59% of it)" in c["ceiling_note"]
    assert c["naz_version"] == "0.8.1"
    assert c["topology"] == [] and c["provider"] is None
    assert c["naz_params"]["chaos_services_stop"] == "20s, 40s"
    assert c["naz_params"]["message_count"] == 2000
    assert "dir" not in c["naz_params"]


def test_clean_run_passes(tmp_path: Path) -> None:
    s = clean_run(tmp_path)
    assert (s["outcome"]["result"], s["outcome"]["reasons"], warned(s)) == ("PASS", [], [])
    (missing,) = s["outcome"]["warnings"]
    assert missing["text"] == "missing inputs: reconcile, versions, timeline, errors, metrics"
    assert (
        s["verdict"]
        == "PASS: naz delivered 3/3 once; 0 lost; 0 duplicated; no outages; naz restarts: 0"
    )


def test_logs_mismatch_fails(tmp_path: Path) -> None:
    logs = {**LOGS_OK, "db_rows": 9, "equal": False, "reasons": ["9 rows in logs vs 10 records"]}
    s = clean_run(tmp_path, logs=logs)
    assert s["outcome"]["result"] == "FAIL"
    (reason,) = s["outcome"]["reasons"]
    assert reason["code"] == "logs_mismatch" and "9 rows in logs vs 10 records" in reason["text"]
    assert s["verdict"].startswith("FAIL: ")


def test_naz_restarts_fail_and_unknown_warns(tmp_path: Path) -> None:
    s = clean_run(tmp_path / "a", run={"naz_restarts": 2})
    assert codes(s["outcome"]["reasons"]) == ["naz_restarted"]
    s = clean_run(tmp_path / "b", run={"naz_restarts": None})
    assert s["outcome"]["result"] == "PASS"
    assert warned(s) == ["naz_restarts_unknown"]


def test_missing_inputs_and_accounting(tmp_path: Path) -> None:
    d = write_run(tmp_path, "bare", params={"experiment": "B"})
    s = build_summary(load(d))
    assert codes(s["outcome"]["reasons"]) == ["accounting_unavailable"]
    assert "missing_inputs" in codes(s["outcome"]["warnings"])
    assert "naz_restarts_unknown" in codes(s["outcome"]["warnings"])
    assert s["verdict"].startswith("FAIL: message accounting unavailable")


def test_unplanned_outages_warn_duplicates_fail(tmp_path: Path) -> None:
    probe = {"unplanned": [{"target": "smsc", "down_at": T0 + 2, "up_at": T0 + 3}]}
    s = clean_run(tmp_path / "a", extra={"probe-vs-timeline.json": json.dumps(probe)})
    assert s["outcome"]["result"] == "PASS"
    assert warned(s) == ["unplanned_outages"]
    assert "1 unplanned outages (probe)" in s["verdict"]
    s = clean_run(tmp_path / "b", more=[accept("ok-1", 1, T0 + 5)])
    assert codes(s["outcome"]["reasons"]) == ["duplicated"]
    assert s["outcome"]["reasons"][0]["text"].startswith("1 messages accepted more than once")


def test_topology_in_context(tmp_path: Path) -> None:
    # topology.json as run_plan.yml writes it: groups -> hosts, host -> region
    topo = {
        "provider": "lab",
        "groups": {
            "naz_clients": ["sfo1"],
            "observability": ["sfo1"],
            "redis_servers": ["ams1"],
            "smsc_servers": ["ams1"],
        },
        "regions": {"ams1": "ams3", "sfo1": ""},
        "rtt_measured": {"from": "sfo1", "to": "ams1", "median_ms": 155.1, "p90_ms": 158.0},
    }
    s = clean_run(
        tmp_path, params={"lab_wan_rtt_ms": 100}, extra={"topology.json": json.dumps(topo)}
    )
    c = s["context"]
    assert c["topology"] == [
        {"host": "ams1", "roles": ["redis_servers", "smsc_servers"], "region": "ams3"},
        {"host": "sfo1", "roles": ["naz_clients", "observability"], "region": None},
    ]
    assert (c["provider"], c["rtt_ms_measured"]) == ("lab", 155.1)
    assert (c["rtt_ms"], c["ceiling_msg_per_s"]) == (100, 10.0)


def test_where_lists_outages_in_order_and_groups_many() -> None:
    few = [{"outage": "SMSC outage 10"}, {"outage": "SMSC outage 9"}, {"outage": None}]
    assert _where(few) == "1 at SMSC outage 9, 1 at SMSC outage 10, 1 outside any outage"
    many = [{"outage": f"SMSC outage {i}"} for i in range(1, 7)] + [{"outage": "SMSC outage 2"}]
    many += [{"outage": "Redis outage 1"}]
    assert _where(many) == "1 at 1 Redis outages (1 each), 7 at 6 SMSC outages (1 to 2 each)"


def test_unplanned_outages_of_both_targets_at_once_point_at_the_probe() -> None:
    def u(target: str, at: float) -> dict:
        return {"target": target, "down_at": at}

    assert _seen_together([u("smsc", 100.0), u("redis", 100.4), u("redis", 300.0)]) == 2
    assert _seen_together([u("smsc", 100.0), u("redis", 102.0), u("smsc", 100.5)]) == 0
