"""Which outage lost (or duplicated) each message: log lines, dequeue time, neighbours;
clean and overlapped recoveries; what each outage's error window shows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nazbench.report.data import load
from nazbench.report.summary import build_summary

from .conftest import DATA, REDIS, SMSC, T0, accept, edge, write_run

SMOKE = "run-20261130T042531Z"
HEADER = (
    "timestamp,event,stage,client_id,log_id,error,metadata,run_id,level,source_host,"
    "source_file,source_offset,shipped_at\n"
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """summary.json of a copy of the issue-14 smoke run (2 outages per service, 3 lost)."""
    dest = tmp_path_factory.mktemp("smoke") / SMOKE
    shutil.copytree(DATA / SMOKE, dest)
    return build_summary(load(dest))


def test_message_1843_is_lost_to_smsc_outage_2_by_its_log_lines(smoke: dict) -> None:
    lost = {x["index"]: x for x in smoke["lost"]}
    x = lost[1843]
    assert (x["outage"], x["decided_by"], x["silent"]) == ("SMSC outage 2", "log lines", False)
    assert "04:33:31.28" in x["evidence"] and "inside SMSC outage 2" in x["evidence"]
    assert "Redis outage 2 had ended 2.6 s earlier" in x["evidence"]
    # the neighbours' window alone spans both outages
    assert x["outages_overlapping"] == ["Redis outage 2", "SMSC outage 2"]


def test_smoke_run_other_losses_and_silence(smoke: dict) -> None:
    lost = {x["index"]: x for x in smoke["lost"]}
    assert (lost[1063]["outage"], lost[1063]["decided_by"]) == ("SMSC outage 1", "log lines")
    # 1062 logged nothing: naz_dequeued_total crossed 1063 in 04:29:45.7-50.7, when only
    # SMSC outage 1 began
    x = lost[1062]
    assert (x["outage"], x["decided_by"], x["silent"]) == ("SMSC outage 1", "dequeue time", True)
    assert "naz_dequeued_total reached 1063" in x["evidence"]
    assert smoke["silent_losses"] == 1
    assert smoke["duplicated"] == []


def test_smoke_run_slowest_clean_recovery_excludes_overlapped(smoke: dict) -> None:
    by_label = {o["label"]: o for o in smoke["outages"]}
    assert by_label["Redis outage 2"]["recovery_s"] == pytest.approx(78.214)
    assert by_label["Redis outage 2"]["clean"] is False
    assert by_label["Redis outage 2"]["recovery_overlapped"] is True
    assert by_label["SMSC outage 1"]["clean"] is True
    assert smoke["recovery"] == {
        "slowest_clean": {"label": "SMSC outage 1", "recovery_s": 35.269},
        "clean": ["Redis outage 1", "SMSC outage 1"],
        "overlapped": ["Redis outage 2", "SMSC outage 2"],
    }
    assert "slowest clean recovery 35.3 s (SMSC outage 1)" in smoke["verdict"]
    assert "78.2" not in smoke["verdict"]


def test_smoke_run_error_windows(smoke: dict) -> None:
    by_label = {o["label"]: o for o in smoke["outages"]}
    smsc = by_label["SMSC outage 1"]
    assert smsc["first_error_s"] == pytest.approx(0.084, abs=0.001)
    # recovery waited on naz's keep-alive: its enquire_link failed 31.6 s after the start
    assert smsc["enquire_link_errors_s"] == [pytest.approx(31.648, abs=0.001)]
    groups = {(g["event"], g["count"]) for g in smsc["errors_window"]}
    assert ("naz.Client.receive_data", 1) in groups
    redis = by_label["Redis outage 1"]
    (only,) = redis["errors_window"]
    assert (only["event"], only["count"]) == ("nazbench.RedisBroker", 10)
    assert (only["first_s"], only["last_s"]) == (0.348, 25.374)
    assert "enquire_link_errors_s" not in redis


def _two_outage_run(tmp_path: Path, *, counter: str | None, restarts: int | None = 0) -> dict:
    """10 messages; 4 lost between accepts at T0+13 and T0+100; Redis down 20-40,
    SMSC down 50-70. The neighbours' window holds both outages."""
    rid = "attr-1"
    ledger = [accept(rid, i, T0 + 10 + i) for i in range(4)]
    ledger += [accept(rid, i, T0 + 95 + i) for i in range(5, 10)]
    timeline = [
        edge(rid, REDIS, "stop", T0 + 20),
        edge(rid, REDIS, "start", T0 + 40),
        edge(rid, SMSC, "stop", T0 + 50),
        edge(rid, SMSC, "start", T0 + 70),
    ]
    run = {"run_id": rid, "started_at": T0, "duration_s": 120}
    if restarts is not None:
        run["naz_restarts"] = restarts
    extra = {"metrics/naz_dequeued_total.csv": counter} if counter else None
    d = write_run(tmp_path, rid, count=10, ledger=ledger, timeline=timeline, run=run, extra=extra)
    return build_summary(load(d))


COUNTER = "timestamp,value\n" + "".join(
    f"{T0 + t:f},{v}\n" for t, v in [(0, 0), (15, 4), (45, 4), (55, 5), (100, 10)]
)


def test_dequeue_time_beats_the_neighbours_window(tmp_path: Path) -> None:
    s = _two_outage_run(tmp_path, counter=COUNTER)
    (x,) = s["lost"]
    assert (x["outage"], x["decided_by"]) == ("SMSC outage 1", "dequeue time")
    # no errors.csv: whether it logged anything is unknown
    assert x["silent"] is None and s["silent_losses"] is None


def test_without_exact_counter_the_neighbours_decide(tmp_path: Path) -> None:
    (x,) = _two_outage_run(tmp_path / "a", counter=None)["lost"]
    assert (x["outage"], x["decided_by"]) == ("Redis outage 1", "neighbours' window")
    assert x["outages_overlapping"] == ["Redis outage 1", "SMSC outage 1"]
    # restarts unknown: the counter may have restarted, so it is not used
    (y,) = _two_outage_run(tmp_path / "b", counter=COUNTER, restarts=None)["lost"]
    assert y["decided_by"] == "neighbours' window"


def test_log_line_just_after_an_outage_ended(tmp_path: Path) -> None:
    rid = "attr-2"
    ledger = [accept(rid, 0, T0 + 10), accept(rid, 2, T0 + 80)]
    timeline = [edge(rid, REDIS, "stop", T0 + 20), edge(rid, REDIS, "start", T0 + 40)]
    errors = HEADER + (
        "2027-01-15 08:00:42+00,naz.Client.send_data,end,c1,1-abcdefg,boom,{},attr-2,"
        "ERROR,sfo1,f1,1,2027-01-15 08:05:00+00\n"
    )
    run = {"run_id": rid, "started_at": T0, "naz_restarts": 0}
    d = write_run(
        tmp_path, rid, count=3, ledger=ledger, timeline=timeline, errors_csv=errors, run=run
    )
    (x,) = build_summary(load(d))["lost"]
    assert (x["outage"], x["decided_by"], x["silent"]) == ("Redis outage 1", "log lines", False)
    assert "2.0 s after Redis outage 1 ended" in x["evidence"]
    assert "just ended" in x["evidence"]


def test_duplicated_messages_are_attributed(hand_run: Path) -> None:
    s = build_summary(load(hand_run))
    (d,) = s["duplicated"]
    assert (d["index"], d["accepts"]) == (98, 2)
    assert d["accepted_at"] == [T0 + 150, T0 + 221.25]
    assert (d["outage"], d["decided_by"], d["silent"]) == (
        "Redis outage 1",
        "neighbours' window",
        True,
    )
    # the hand run's message 90 logged its reset during the SMSC outage
    lost = {x["index"]: x for x in s["lost"]}
    assert (lost[90]["decided_by"], lost[90]["outage"]) == ("log lines", "SMSC outage 1")
    assert lost[99]["decided_by"] is None and lost[99]["outage"] is None
