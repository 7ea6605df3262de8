"""Unplanned outages (probe-vs-timeline.json "unplanned") in summary.json and report.html;
the report's ledger reader follows the one msg_id rule."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nazbench.report import cli
from nazbench.report.data import load

from .conftest import T0, accept, write_run

HEADING = "Unplanned outages (seen by the probe, not planned)"

PROBE = {
    "edges": 4,
    "matched": 4,
    "unmatched": [],
    "p50_abs_drift_s": 0.1,
    "p99_abs_drift_s": 0.2,
    "max_abs_drift_s": 0.2,
    "unplanned": [
        {"target": "redis", "down_at": T0 + 170.0, "up_at": None, "duration_s": None},
        {"target": "smsc", "down_at": T0 + 60.0, "up_at": T0 + 64.5, "duration_s": 4.5},
    ],
}


def _section(html: str) -> str:
    start = html.index(f"<h2>{HEADING}</h2>")
    end = html.index("<h2>", start + 4)
    return html[start:end]


def test_unplanned_outages_in_summary_and_report(hand_run: Path) -> None:
    (hand_run / "probe-vs-timeline.json").write_text(json.dumps(PROBE))
    summary = cli.build(hand_run)
    on_disk = json.loads((hand_run / "summary.json").read_text())
    u = on_disk["unplanned_outages"]
    assert u == summary["unplanned_outages"]
    assert u["source"] == "probe-vs-timeline.json" and u["note"] is None
    assert [(o["service"], o["down_at"], o["up_at"], o["duration_s"]) for o in u["outages"]] == [
        ("SMSC", T0 + 60.0, T0 + 64.5, 4.5),
        ("Redis", T0 + 170.0, None, None),
    ]
    assert "2 unplanned outages (probe)" in summary["verdict"]
    # the planned outages are the timeline's, untouched
    assert [o["label"] for o in summary["outages"]] == ["SMSC outage 1", "Redis outage 1"]
    section = _section((hand_run / "report.html").read_text(encoding="utf-8"))
    rows = re.findall(r"<tr>(.*?)</tr>", section)
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r) for r in rows]
    assert cells == [
        ["service", "down (min)", "up (min)", "down (s)"],
        ["SMSC", "1.00", "1.07", "4.5"],
        ["Redis", "2.83", "—", "—"],
    ]


@pytest.mark.parametrize(
    ("probe", "note"),
    [
        (None, "no probe-vs-timeline.json in the run directory"),
        ({"edges": 0, "matched": 0}, "has no unplanned list"),
        ({"edges": 0, "unplanned": []}, None),
    ],
)
def test_no_unplanned_outages_says_none(hand_run: Path, probe, note) -> None:
    if probe is not None:
        (hand_run / "probe-vs-timeline.json").write_text(json.dumps(probe))
    summary = cli.build(hand_run)
    u = summary["unplanned_outages"]
    assert u["outages"] == []
    assert (u["note"] is None) if note is None else (note in u["note"])
    assert "unplanned" not in summary["verdict"]
    section = _section((hand_run / "report.html").read_text(encoding="utf-8"))
    assert "<p>None.</p>" in section and "<table>" not in section


def test_unplanned_entries_without_down_at_are_left_out_and_said(hand_run: Path) -> None:
    probe = {"unplanned": [{"target": "smsc", "up_at": T0}, "junk", PROBE["unplanned"][1]]}
    (hand_run / "probe-vs-timeline.json").write_text(json.dumps(probe))
    u = cli.build(hand_run)["unplanned_outages"]
    assert [o["target"] for o in u["outages"]] == ["smsc"]
    assert u["skipped"] == 2 and "2 unplanned entries" in u["note"]


def test_report_ledger_keeps_only_the_run_s_canonical_ids_in_range(tmp_path: Path) -> None:
    rid = "idx-1"
    ledger = [accept(rid, i, T0 + i) for i in range(3)]
    ledger += [
        dict(accept(rid, 0, T0 + 5), msg_id=f"{rid}/01"),  # leading zero
        dict(accept(rid, 0, T0 + 6), msg_id=f"{rid}/3"),  # beyond count
        dict(accept(rid, 0, T0 + 7), msg_id=f"{rid}/+2"),
        dict(accept(rid, 0, T0 + 8), command_status="0x00000058"),  # rejected, text status
    ]
    run_dir = write_run(tmp_path, rid, count=3, ledger=ledger)
    data = load(run_dir)
    assert [(e.index, e.accepted) for e in data.ledger] == [
        (0, True),
        (1, True),
        (2, True),
        (0, False),
    ]
