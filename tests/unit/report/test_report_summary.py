"""summary.json: equal to the reconciliation CLI, recovery, goodput, lost, errors, inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nazbench.nazapp import reconcile as reconcile_cli
from nazbench.report import cli
from nazbench.report.data import RunDirError, load
from nazbench.report.summary import LOST_POPPED, LOST_QUEUED, LOST_UNKNOWN, build_summary

from .conftest import REDIS, SMSC, T0, accept, edge, write_run


def cli_counts(run_dir: Path, capsys, since: float | None) -> dict:
    ledger = next(p for p in run_dir.iterdir() if p.name.startswith("ledger.jsonl"))
    argv = ["--manifest", str(run_dir / "manifest.json"), "--ledger", str(ledger), "--json"]
    if since is not None:
        argv += ["--since", repr(since)]
    capsys.readouterr()
    assert reconcile_cli.main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_real_run_equals_reconcile_cli(real_run: Path, capsys) -> None:
    summary = cli.build(real_run)
    started = json.loads((real_run / "run.json").read_text())["started_at"]
    out = cli_counts(real_run, capsys, started)
    m = summary["messages"]
    assert m["reconcile"] == out["counts"]
    assert (m["queued"], m["delivered_once"], m["lost"], m["duplicated"]) == (2000, 1997, 3, 0)
    assert sorted(x["msg_id"] for x in summary["lost"]) == sorted(out["lost"])
    assert m["reconcile_json_agrees"] is True
    # the stop_when fired with 1997 < 2000 delivered: the queue was empty, so all 3 popped
    assert summary["queue_evidence"]["length_at_end"] == 0
    assert m["lost_popped"] == 3
    assert [x["outage"] for x in summary["lost"]] == [
        "SMSC outage 1",
        "SMSC outage 1",
        "SMSC outage 2",
    ]
    assert summary["verdict"].startswith("FAIL: naz delivered 1997/2000 once; 3 lost")
    assert "0 duplicated" in summary["verdict"]
    assert "RSS 35.0→36.5 MB" in summary["verdict"]
    assert [o["label"] for o in summary["outages"]] == [
        "SMSC outage 1",
        "Redis outage 1",
        "SMSC outage 2",
        "Redis outage 2",
    ]
    # run.json's chaos summary: SMSC down 73.035 s in total
    smsc = sum(o["duration_s"] for o in summary["outages"] if o["service"] == "SMSC")
    assert smsc == pytest.approx(73.035, abs=0.01)


def test_synthetic_anomalies_equal_reconcile_cli(tmp_path: Path, capsys) -> None:
    rid = "syn-2"
    ledger = [accept(rid, i, T0 + 10 + i) for i in range(20) if i not in (3, 7, 19)]
    ledger += [accept(rid, 5, T0 + 40), accept(rid, 5, T0 + 41), accept(rid, 6, T0 + 42)]
    ledger += [accept(rid, 7, T0 + 43, status=0x45)]  # rejected only -> lost
    ledger += [accept(rid, 1, T0 - 5)]  # before --since: ignored
    ledger += [accept("someone-else", 2, T0 + 44), accept(rid, 99, T0 + 45)]  # unexpected
    d = write_run(tmp_path, rid, count=20, ledger=ledger, run={"run_id": rid, "started_at": T0})
    with (d / "ledger.jsonl").open("a") as fh:
        fh.write("not json\n")
    summary = build_summary(load(d))
    out = cli_counts(d, capsys, T0)
    m = summary["messages"]
    assert m["reconcile"] == out["counts"]
    assert (m["lost"], m["duplicated"], m["unexpected"]) == (3, 2, 1)
    assert m["lost_rejected"] == 1
    assert m["duplicated_ids"] == out["duplicated"]


def test_recovery_goodput_and_lost_on_hand_built_timeline(hand_run: Path) -> None:
    s = build_summary(load(hand_run))
    smsc, redis = s["outages"]
    assert (smsc["label"], smsc["duration_s"], smsc["recovery_s"]) == ("SMSC outage 1", 30, 7.5)
    assert smsc["first_delivery_after"] == T0 + 137.5
    assert (redis["label"], redis["duration_s"], redis["recovery_s"]) == (
        "Redis outage 1",
        20,
        1.25,
    )
    assert smsc["delivered_during"] == 0 and smsc["overlaps"] == []
    t = s["throughput"]
    assert t["span_s"] == 211.25
    assert t["inside_s"] == 50 and t["outside_s"] == 161.25
    assert t["delivered_inside"] == 0 and t["delivered_outside"] == 98
    assert t["goodput_outside_msg_per_s"] == round(98 / 161.25, 3)
    assert t["goodput_inside_msg_per_s"] == 0.0
    m = s["messages"]
    assert (m["delivered_once"], m["lost"], m["duplicated"]) == (96, 3, 1)
    lost = {x["index"]: x for x in s["lost"]}
    assert lost[90]["class"] == LOST_POPPED and lost[90]["outage"] == "SMSC outage 1"
    assert (lost[90]["sent_after"], lost[90]["sent_before"]) == (T0 + 99, T0 + 137.5)
    assert lost[90]["errors"][0]["error"] == "[Errno 104] Connection reset by peer"
    assert lost[99]["class"] == LOST_UNKNOWN and lost[99]["outage"] is None
    assert m["lost_unknown"] == 1
    assert any("unknown" in n for n in s["notes"])
    assert "2 popped and lost in flight: all at SMSC outage 1" in s["verdict"]
    assert s["naz"]["restarts"] == 0
    assert s["naz"]["rss_source"].startswith("run.json")


def test_queue_length_metrics_tell_never_popped(hand_run: Path) -> None:
    csv = f"timestamp,value\n{T0 + 100:f},5\n{T0 + 239:f},1\n"
    (hand_run / "metrics").mkdir()
    (hand_run / "metrics" / "queue_length.csv").write_text(csv)
    s = build_summary(load(hand_run))
    lost = {x["index"]: x["class"] for x in s["lost"]}
    # one message still in Redis at the end: the highest index, 99
    assert lost == {90: LOST_POPPED, 91: LOST_POPPED, 99: LOST_QUEUED}
    assert s["queue_evidence"]["source"] == "metrics queue_length"
    assert "1 never left the queue" in s["verdict"]
    # still queued is not lost by naz: the two lost in flight fail the run, the queued one
    # only warns that the run ended before the queue was drained
    assert "3 not delivered" in s["verdict"]
    assert [r["code"] for r in s["outcome"]["reasons"]] == ["lost", "duplicated"]
    assert s["outcome"]["reasons"][0]["text"].startswith("2 of 100 messages lost")
    assert "not_drained" in [w["code"] for w in s["outcome"]["warnings"]]


def test_errors_counts_from_errors_csv(hand_run: Path) -> None:
    e = build_summary(load(hand_run))["errors"]
    assert e["rows"] == 2 and e["rows_of_other_runs_left_out"] == 1
    assert {x["error"]: x["count"] for x in e["by_error"]} == {
        "[Errno 104] Connection reset by peer": 1,
        "ConnectionRefusedError(111)": 1,
    }
    assert e["by_event"] == {"naz.Client.send_data": 1, "naz.Client.connect": 1}
    assert e["during_outages"] == 2 and e["outside_outages"] == 0


def test_errors_csv_without_header_uses_table_order(hand_run: Path) -> None:
    text = (hand_run / "errors.csv").read_text().split("\n", 1)[1]
    (hand_run / "errors.csv").write_text(text)
    assert build_summary(load(hand_run))["errors"]["rows"] == 2


def test_missing_inputs_recorded_not_fatal(tmp_path: Path) -> None:
    d = write_run(tmp_path, "bare", params={"experiment": "B"})
    s = cli.build(d)
    assert set(s["missing"]) >= {"run", "manifest", "ledger", "timeline", "errors", "metrics"}
    assert s["inputs"]["timeline"]["note"] == "experiment B: no chaos"
    assert s["messages"]["delivered_once"] is None
    assert "message accounting unavailable" in s["verdict"]
    assert s["naz"]["restarts"] == "unknown"
    for name in ("throughput", "rss", "errors", "queue"):
        assert (d / "plots" / f"{name}.png").stat().st_size > 1000
    assert (d / "report.html").exists() and (d / "summary.json").exists()


def test_ledger_without_timeline_or_errors(tmp_path: Path) -> None:
    rid = "nochaos"
    d = write_run(tmp_path, rid, count=3, ledger=[accept(rid, i, T0 + i) for i in range(3)], run={})
    s = cli.build(d)
    assert s["messages"]["delivered_once"] == 3 and s["outages"] == []
    assert s["throughput"]["goodput_inside_msg_per_s"] is None
    assert s["errors"]["source"] is None


def test_not_a_run_dir(tmp_path: Path, capsys) -> None:
    with pytest.raises(RunDirError, match="does not exist"):
        load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match=r"neither params\.json nor run\.json"):
        load(tmp_path / "empty")
    write_run(tmp_path, "known-1")
    assert cli.main(["build", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "known-1" in err


def test_runs_listing(tmp_path: Path, hand_run: Path, capsys) -> None:
    root = hand_run.parent
    write_run(root, "older", run={"run_id": "older", "started_at": T0 - 3600})
    (root / "wheelhouse").mkdir()
    cli.build(hand_run)
    assert cli.main(["runs", str(root), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in runs] == ["older", "hand-1"]
    assert [r["has_report"] for r in runs] == [False, True]
    assert runs[1]["date"] == "2027-01-15T08:00:00.000Z"


def test_compare_two_runs(hand_run: Path, real_run: Path) -> None:
    out = hand_run.parent / "cmp"
    assert cli.main(["compare", str(real_run), str(hand_run), "--out", str(out)]) == 0
    cmp = json.loads((out / "compare.json").read_text())
    rows = {r["name"]: (r["a"], r["b"]) for r in cmp["rows"]}
    assert rows["lost by naz (popped, not delivered)"] == (3, 3)
    assert rows["never left the queue (run ended)"] == (0, 0)
    assert rows["delivered once"] == (1997, 96)
    assert rows["naz RSS end, MB"] == (36.48, 36.5)
    assert rows["error rows"] == ("—", 2)
    html = (out / "compare.html").read_text()
    assert html.count("data:image/png;base64,") == 2
    assert (out / "plots" / "compare-throughput.png").exists()


def test_timeline_stop_without_start_is_open_to_the_end(tmp_path: Path) -> None:
    rid = "open-1"
    d = write_run(
        tmp_path,
        rid,
        count=2,
        ledger=[accept(rid, 0, T0 + 1)],
        timeline=[edge(rid, SMSC, "stop", T0 + 5), edge(rid, REDIS, "start", T0 + 6)],
        run={"run_id": rid, "started_at": T0, "duration_s": 60},
    )
    s = build_summary(load(d))
    (o,) = s["outages"]
    assert o["start_at"] is None and o["duration_s"] == 55
    assert "never saw the service start" in o["recovery_note"]
