"""Fault kinds in the report: each outage names its kind, and a table per kind."""

from __future__ import annotations

from pathlib import Path

from ansible.module_utils.chaos_plan import KINDS

from nazbench.report import plots, render
from nazbench.report.data import load
from nazbench.report.summary import build_summary
from nazbench.smsc.modes import FAULT_MODES

from .conftest import REDIS, SMSC, T0, accept, edge, write_run

RID = "kinds-1"


def _edge(service: str, what: str, at: float, kind: str, window: int = 0) -> dict:
    return {**edge(RID, service, what, at, window), "kind": kind}


def run_with_kinds(tmp_path: Path) -> tuple[dict, Path]:
    """10 messages, one a second from T0+1. The SMSC is paused T0+3.5..T0+6.5 (messages
    3-5 never accepted: lost at it); Redis stopped T0+20..T0+22 (no loss); the SMSC
    stopped T0+30..T0+31. Deliveries resume 1 s after the pause and 2 s after the stops."""
    accepted = [0, 1, 2, 6, 7, 8, 9]
    times = {0: 1, 1: 2, 2: 3, 6: 7.5, 7: 8, 8: 24, 9: 33}
    ledger = [accept(RID, i, T0 + times[i]) for i in accepted]
    timeline = [
        _edge(SMSC, "stop", T0 + 3.5, "pause"),
        _edge(SMSC, "start", T0 + 6.5, "pause"),
        _edge(REDIS, "stop", T0 + 20, "stop"),
        _edge(REDIS, "start", T0 + 22, "stop"),
        _edge(SMSC, "stop", T0 + 30, "stop", 1),
        _edge(SMSC, "start", T0 + 31, "stop", 1),
    ]
    run = {"run_id": RID, "started_at": T0, "duration_s": 60, "naz_restarts": 0}
    d = write_run(tmp_path, RID, count=10, ledger=ledger, timeline=timeline, run=run)
    return build_summary(load(d)), d


def test_each_kind_gets_its_outages_losses_and_recovery(tmp_path: Path) -> None:
    s, _ = run_with_kinds(tmp_path)
    assert [(o["label"], o["kind"]) for o in s["outages"]] == [
        ("SMSC outage 1", "pause"),
        ("Redis outage 1", "stop"),
        ("SMSC outage 2", "stop"),
    ]
    kinds = {k["kind"]: k for k in s["faults_by_kind"]}
    assert set(kinds) == {"pause", "stop"}
    pause, stop = kinds["pause"], kinds["stop"]
    assert (pause["outages"], pause["services"], pause["downtime_s"]) == (1, ["SMSC"], 3.0)
    assert (stop["outages"], sorted(stop["services"]), stop["downtime_s"]) == (
        2,
        ["Redis", "SMSC"],
        3.0,
    )
    lost_at = {x["outage"] for x in s["lost"]}
    assert s["messages"]["lost"] == 3 and lost_at == {"SMSC outage 1"}, s["lost"]
    assert (pause["lost"], stop["lost"]) == (3, 0)
    assert pause["duplicated"] == stop["duplicated"] == 0
    assert pause["recovery_s"] == {"n": 1, "p50": 1.0, "p99": 1.0, "max": 1.0}
    assert stop["recovery_s"]["n"] == 2 and stop["recovery_s"]["max"] == 2.0


def test_the_page_shows_the_kind_table_and_marks_outages_by_kind(tmp_path: Path) -> None:
    s, d = run_with_kinds(tmp_path)
    page = render.report_html(s, d)
    section = page[page.index("By fault kind") :]
    assert "<th scope=row>pause</th><td class=n>1</td><td>SMSC</td>" in section
    assert "<th scope=row>stop</th><td class=n>2</td><td>Redis, SMSC</td>" in section
    assert "SMSC outage 1 (pause)" in page
    assert "SMSC outage 2 (stop)" not in page  # the seed's kind is not spelled out


def test_timelines_from_before_kinds_are_stops(tmp_path: Path) -> None:
    timeline = [edge(RID, SMSC, "stop", T0 + 3.5), edge(RID, SMSC, "start", T0 + 6.5)]
    d = write_run(tmp_path, RID, count=1, ledger=[accept(RID, 0, T0 + 1)], timeline=timeline)
    s = build_summary(load(d))
    assert [k["kind"] for k in s["faults_by_kind"]] == ["stop"]


def test_the_plots_hatch_each_kind_and_name_it_in_the_legend(tmp_path: Path) -> None:
    _, d = run_with_kinds(tmp_path)
    ax = plots.plot_throughput(load(d)).axes[0]
    bands = {p.get_gid(): p for p in ax.patches if (p.get_gid() or "").startswith("outage:")}
    assert bands["outage:SMSC outage 1"].get_hatch() == plots.KIND_HATCH["pause"]
    assert bands["outage:SMSC outage 2"].get_hatch() is None  # the seed's stop stays plain
    assert bands["outage:Redis outage 1"].get_hatch() is None
    labels = ax.get_legend_handles_labels()[1]
    assert {"SMSC pause", "SMSC down", "Redis down"} <= set(labels), labels
    assert len(set(plots.KIND_HATCH.values())) == len(plots.KIND_HATCH)  # one pattern each
    assert set(FAULT_MODES) <= set(plots.KIND_HATCH)  # the SMSC kinds too
    # and every kind the chaos loop knows but the seed's stop
    assert set(KINDS) - {"stop"} == set(plots.KIND_HATCH)
