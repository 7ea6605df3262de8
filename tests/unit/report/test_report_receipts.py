"""Delivery receipts in the report: totals, the per-outage table, warnings, the section."""

from __future__ import annotations

import json
from pathlib import Path

from nazbench.report import cli, render
from nazbench.report.data import load
from nazbench.report.summary import build_summary

from .conftest import SMSC, T0, accept, edge, write_run

RID = "rc-1"


def receipt(index: int, ts: float, tries: int = 1, stat: str = "DELIVRD") -> dict:
    return {
        "ts": ts,
        "record": "receipt",
        "session": "s.1",
        "sequence_number": 100 + index,
        "message_id": f"b-{index:x}",
        "msg_id": f"{RID}/{index}",
        "stat": stat,
        "try": tries,
    }


def ack(index: int, ts: float, status: int = 0) -> dict:
    return {
        "ts": ts,
        "record": "receipt_ack",
        "session": "s.1",
        "sequence_number": 100 + index,
        "message_id": f"b-{index:x}",
        "msg_id": f"{RID}/{index}",
        "command_status": status,
    }


def run_with_receipts(tmp_path: Path) -> dict:
    """6 messages; an SMSC outage from T0+20 to T0+40. Receipts 0-2 before it (acked after
    0.5 s), 3-4 after it (acked after 30 s: naz's acks behind its backlog), 5 never acked."""
    ledger = []
    for i in range(6):
        at = T0 + 1 + i if i < 3 else T0 + 41 + i
        ledger.append(accept(RID, i, at))
        ledger.append(receipt(i, at + 1, stat="UNDELIV" if i == 4 else "DELIVRD"))
        if i < 3:
            ledger.append(ack(i, at + 1.5))
        elif i < 5:
            ledger.append(ack(i, at + 31))
    ledger.sort(key=lambda r: r["ts"])
    timeline = [edge(RID, SMSC, "stop", T0 + 20), edge(RID, SMSC, "start", T0 + 40)]
    run = {"run_id": RID, "started_at": T0, "duration_s": 120, "naz_restarts": 0}
    d = write_run(tmp_path, RID, count=6, ledger=ledger, timeline=timeline, run=run)
    return build_summary(load(d)), d


def test_receipts_overall_and_per_outage(tmp_path: Path) -> None:
    s, _ = run_with_receipts(tmp_path)
    r = s["receipts"]
    assert s["messages"]["delivered_once"] == 6  # receipts never count as submit_sm
    assert (r["sent"], r["acked_once"], r["never_acked"], r["acked_more_than_once"]) == (6, 5, 1, 0)
    assert r["by_stat"] == {"DELIVRD": 5, "UNDELIV": 1}
    assert r["ack_latency_s"] == {"n": 5, "p50": 0.5, "p99": 30.0, "max": 30.0}
    before, after = r["per_outage"]
    assert before["window"] == "before the first outage"
    assert (before["sent"], before["never_acked"], before["ack_latency_s"]["max"]) == (3, 0, 0.5)
    assert after["window"].startswith("in or after ") and "smsc" in after["window"].lower()
    assert (after["sent"], after["never_acked"], after["ack_latency_s"]["p50"]) == (3, 1, 30.0)


def test_a_receipt_never_acknowledged_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    s, _ = run_with_receipts(tmp_path)
    warnings = {w["code"]: w["text"] for w in s["outcome"]["warnings"]}
    assert warnings["receipts_never_acked"] == (
        "1 of 6 delivery receipts never acknowledged (no deliver_sm_resp with status 0)"
    )
    assert "receipts_never_acked" not in {x["code"] for x in s["outcome"]["reasons"]}


def test_the_page_has_the_receipts_section_with_its_tables(tmp_path: Path) -> None:
    s, d = run_with_receipts(tmp_path)
    page = render.report_html(s, d)
    section = page[page.index("<h2>Delivery receipts") :]
    section = section[: section.index("<h2>", 5)]
    assert "never acknowledged</th><td class=n>1</td>" in section
    assert "0.5 / 30 / 30" in section
    assert "in or after" in section and "before the first outage" in section


def test_without_receipts_the_section_says_why(tmp_path: Path) -> None:
    d = write_run(tmp_path, RID, count=1, ledger=[accept(RID, 0, T0 + 1)])
    s = build_summary(load(d))
    assert s["receipts"]["sent"] == 0 and s["receipts"]["per_outage"] == []
    assert "no delivery receipts" in s["receipts"]["note"]
    assert "receipts_never_acked" not in {w["code"] for w in s["outcome"]["warnings"]}
    assert "sent no delivery receipts" in render.report_html(s, d)


def test_compare_puts_the_receipts_side_by_side(tmp_path: Path) -> None:
    _, with_receipts = run_with_receipts(tmp_path / "a")
    without = write_run(tmp_path / "b", "plain-1", count=1, ledger=[accept("plain-1", 0, T0 + 1)])
    out = tmp_path / "cmp"
    assert cli.main(["compare", str(with_receipts), str(without), "--out", str(out)]) == 0
    rows = {
        r["name"]: (r["a"], r["b"]) for r in json.loads((out / "compare.json").read_text())["rows"]
    }
    assert rows["receipts sent"] == (6, 0)
    assert rows["receipts acknowledged once"] == (5, 0)
    assert rows["receipts acknowledged more than once"] == (0, 0)
    assert rows["receipts never acknowledged"] == (1, 0)
    assert rows["receipt → ack p99, s"][1] == "—"  # no receipt, no latency
    assert rows["receipt → ack p50, s"][0] == 0.5 and rows["receipt → ack p99, s"][0] == 30
