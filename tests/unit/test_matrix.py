"""nazbench.matrix: per-run figures from summary.json, the matrix of cells, the gate, the CLI.

Real runs: the tracked smoke fixture (its summary built here), and the collected runs in
artifacts/ when this checkout has them (artifacts/ is not tracked; those tests skip).
"""

from __future__ import annotations

import importlib
import json
import math
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nazbench import matrix as mx
from nazbench import stats
from nazbench.report.data import load
from nazbench.report.summary import build_summary

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
FIXTURE = ROOT / "tests" / "unit" / "report" / "data" / "run-20261130T042531Z"
REAL = ["smoke-a-1", "smoke-b-1", "paper60-1", "reconnect-1", "receipts-smoke-1"]
have_artifacts = pytest.mark.skipif(
    not all((ARTIFACTS / r / "summary.json").is_file() for r in REAL),
    reason="the collected runs artifacts/{" + ",".join(REAL) + "} are not in this checkout",
)


def read(run: str) -> dict[str, Any]:
    return json.loads((ARTIFACTS / run / "summary.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def real() -> dict[str, dict[str, Any]]:
    return {r: read(r) for r in REAL}


@pytest.fixture(scope="module")
def fixture_summary(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    dest = tmp_path_factory.mktemp("fixture") / FIXTURE.name
    shutil.copytree(FIXTURE, dest)
    return build_summary(load(dest))


def summary(
    run_id: str,
    experiment: str = "A",
    *,
    naz: str = "0.8.1",
    profile: str = "smoke",
    seed: int = 1,
    queued: int = 1000,
    lost: int = 0,
    never_popped: int = 0,
    duplicated: int = 0,
    recoveries: tuple[float, ...] = (),
    overlapped: tuple[float, ...] = (),
    throughput: float | None = 5.0,
    rss: tuple[float, float] = (35.0, 36.0),
    span_s: float = 3600.0,
    ack_p99: float | None = None,
) -> dict[str, Any]:
    """The parts of a summary.json that the matrix reads."""
    outages = [
        {"label": f"SMSC outage {i + 1}", "clean": True, "recovery_s": r}
        for i, r in enumerate(recoveries)
    ] + [
        {"label": f"Redis outage {i + 1}", "clean": False, "recovery_s": r}
        for i, r in enumerate(overlapped)
    ]
    return {
        "run_id": run_id,
        "run": {"experiment": experiment, "profile": profile, "chaos_seed": seed},
        "versions": {"naz_host": {"naz": naz, "python": "3.11.2"}},
        "messages": {
            "queued": queued,
            "lost": lost,
            "lost_never_popped": never_popped,
            "duplicated": duplicated,
        },
        "outages": outages,
        "recovery": {"clean": [o["label"] for o in outages if o["clean"]]},
        "throughput": {"goodput_outside_msg_per_s": throughput, "span_s": span_s},
        "naz": {"rss_start_mb": rss[0], "rss_end_mb": rss[1]},
        "receipts": {"ack_latency_s": {"p99": ack_p99}} if ack_p99 is not None else None,
    }


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


# --------------------------------------------------------------------------- run_figures


def test_run_figures_of_the_smoke_fixture(fixture_summary: dict[str, Any]) -> None:
    s = fixture_summary
    f = mx.run_figures(s)
    m = s["messages"]
    assert (m["queued"], m["lost"], m["lost_never_popped"]) == (2000, 3, 0)
    assert f["loss_rate"] == 3 / 2000
    assert f["duplicated"] == 0
    clean = [o["recovery_s"] for o in s["outages"] if o["clean"]]
    assert clean == [1.057, 35.269]
    assert (f["recovery_p50_s"], f["recovery_p99_s"]) == (1.057, 35.269)
    assert f["receipt_ack_p99_s"] is None  # no receipts in that run: p99 None
    assert f["throughput_msg_per_s"] == s["throughput"]["goodput_outside_msg_per_s"] == 4.828
    naz, span = s["naz"], s["throughput"]["span_s"]
    assert f["rss_slope_mb_per_h"] == pytest.approx(
        (naz["rss_end_mb"] - naz["rss_start_mb"]) / span * 3600
    )
    assert f["rss_slope_mb_per_h"] == pytest.approx((36.61 - 34.78) / 521.512 * 3600)
    assert (f["experiment"], f["profile"], f["naz_version"], f["chaos_seed"]) == (
        "A",
        "smoke",
        "0.8.1",
        1236279399,
    )


@have_artifacts
def test_run_figures_of_the_collected_runs(real: dict[str, dict[str, Any]]) -> None:
    figs = {r: mx.run_figures(s) for r, s in real.items()}
    # lost by naz = lost - never popped (still in Redis when the run ended), over queued
    assert figs["smoke-a-1"]["loss_rate"] == 3 / 2000
    assert figs["smoke-b-1"]["loss_rate"] == 0
    assert figs["paper60-1"]["loss_rate"] == (5303 - 5297) / 24000
    assert figs["reconnect-1"]["loss_rate"] == (4313 - 4279) / 6000
    assert figs["receipts-smoke-1"]["loss_rate"] == (524 - 522) / 2000
    for r, s in real.items():
        m = s["messages"]
        assert figs[r]["loss_rate"] == (m["lost"] - m["lost_never_popped"]) / m["queued"]
        assert figs[r]["duplicated"] == m["duplicated"] == 0
        clean = [o["recovery_s"] for o in s["outages"] if o["label"] in s["recovery"]["clean"]]
        if clean:
            assert figs[r]["recovery_p50_s"] == nearest_rank(clean, 50)
            assert figs[r]["recovery_p99_s"] == max(clean)  # fewer than 100 outages
        else:
            assert figs[r]["recovery_p50_s"] is figs[r]["recovery_p99_s"] is None
        assert figs[r]["throughput_msg_per_s"] == s["throughput"]["goodput_outside_msg_per_s"]
        assert figs[r]["naz_version"] == s["versions"]["naz_host"]["naz"] == "0.8.1"
        assert figs[r]["experiment"] == s["run"]["experiment"]
        assert figs[r]["chaos_seed"] == s["run"]["chaos_seed"]
    # by hand from the summaries' outages
    assert (figs["smoke-a-1"]["recovery_p50_s"], figs["smoke-a-1"]["recovery_p99_s"]) == (
        1.751,
        20.313,
    )
    assert figs["receipts-smoke-1"]["recovery_p50_s"] == 17.397  # 3rd of 6
    assert figs["reconnect-1"]["recovery_p50_s"] == 15.211  # 7th of 13
    assert figs["paper60-1"]["recovery_p50_s"] is None  # every outage overlapped
    assert figs["smoke-b-1"]["recovery_p99_s"] is None  # experiment B: no outages
    assert figs["receipts-smoke-1"]["receipt_ack_p99_s"] == pytest.approx(39.940515995025635)
    assert figs["smoke-a-1"]["receipt_ack_p99_s"] is None
    assert figs["smoke-a-1"]["rss_slope_mb_per_h"] == pytest.approx(
        (37.02 - 34.99) / 507.665 * 3600
    )
    assert figs["smoke-b-1"]["throughput_msg_per_s"] == 6.182


def test_run_figures_without_reconciliation_or_clean_flags() -> None:
    s = summary("x", recoveries=(4.0, 2.0, 9.0))
    s["messages"] = {"queued": 100, "delivered_once": None, "note": "no ledger"}
    for o in s["outages"]:
        del o["clean"]  # older summaries: only recovery.clean lists them
    s["recovery"]["clean"] = ["SMSC outage 1", "SMSC outage 3"]
    s["naz"] = {"rss_start_mb": None, "rss_end_mb": None}
    f = mx.run_figures(s)
    assert f["loss_rate"] is None
    assert f["duplicated"] is None
    assert (f["recovery_p50_s"], f["recovery_p99_s"]) == (4.0, 9.0)
    assert f["rss_slope_mb_per_h"] is None


def test_loss_rate_leaves_out_messages_never_popped() -> None:
    # 30 lost, 25 of them still in Redis when the run ended: naz lost 5 of 1000
    assert mx.run_figures(summary("x", lost=30, never_popped=25))["loss_rate"] == 5 / 1000


def test_overlapped_outages_are_left_out() -> None:
    f = mx.run_figures(summary("x", recoveries=(3.0,), overlapped=(100.0,)))
    assert f["recovery_p99_s"] == 3.0


def test_results_table_uses_the_one_definition() -> None:
    results_table = importlib.import_module("benchmarks.results_table")
    assert results_table.rss_slope_mb_per_h is mx.rss_slope_mb_per_h


# --------------------------------------------------------------------------- matrix


@have_artifacts
def test_matrix_of_the_collected_runs_by_experiment(real: dict[str, dict[str, Any]]) -> None:
    result = mx.matrix(list(real.values()), by=("experiment",))
    a, b = result["cells"]
    assert a["key"] == {"experiment": "A"} and b["key"] == {"experiment": "B"}
    assert a["runs"] == ["smoke-a-1", "paper60-1", "reconnect-1", "receipts-smoke-1"]
    assert b["runs"] == ["smoke-b-1"]
    losses = [3 / 2000, 6 / 24000, 34 / 6000, 2 / 2000]
    la = a["figures"]["loss_rate"]
    assert la["n"] == 4
    assert la["mean"] == pytest.approx(sum(losses) / 4)
    assert min(losses) <= la["ci"][0] < la["mean"] < la["ci"][1] <= max(losses)
    assert la["runs_needed"] == stats.runs_needed(losses, 0.1 * la["mean"])
    assert b["figures"]["loss_rate"] == {
        "n": 1,
        "mean": 0.0,
        "ci": [0.0, 0.0],
        "runs_needed": None,
        "values": [0.0],
    }
    assert a["figures"]["recovery_p50_s"]["n"] == 3  # paper60-1 has no clean recovery
    assert a["figures"]["recovery_p50_s"]["mean"] == pytest.approx((1.751 + 15.211 + 17.397) / 3)
    assert b["figures"]["recovery_p99_s"]["n"] == 0
    assert b["figures"]["recovery_p99_s"]["mean"] is None
    assert a["figures"]["receipt_ack_p99_s"]["n"] == 1
    (d,) = result["differences"]
    assert (d["axis"], d["a"], d["b"], d["holding"]) == ("experiment", "A", "B", {})
    dl = d["figures"]["loss_rate"]
    assert dl["diff"] == pytest.approx(la["mean"])  # B lost nothing
    # 5 splits (which run is "B"): |diff| >= observed only with B = 0 or B = reconnect-1
    assert dl["p"] == pytest.approx(2 / 5)
    assert d["figures"]["recovery_p99_s"] == {
        "n_a": 3,
        "n_b": 0,
        "diff": None,
        "ci": None,
        "p": None,
    }
    assert d["figures"]["duplicated"]["p"] == 1.0


def test_matrix_is_deterministic_and_json() -> None:
    sums = [summary(f"r{i}", throughput=3.0 + i * 0.7, lost=i) for i in range(6)]
    one = mx.matrix(sums, by=("experiment",))
    assert one == mx.matrix(sums, by=("experiment",))
    other = mx.matrix(sums, by=("experiment",), resamples=50, seed=9)
    assert (
        one["cells"][0]["figures"]["throughput_msg_per_s"]["ci"]
        != (other["cells"][0]["figures"]["throughput_msg_per_s"]["ci"])
    )
    assert json.loads(json.dumps(one)) == one


def test_differences_hold_the_other_axes_equal() -> None:
    sums = [
        summary("a1", "A", naz="0.8.1", throughput=5.0),
        summary("a2", "A", naz="0.8.1", throughput=6.0),
        summary("a3", "A", naz="0.7.9", throughput=2.0),
        summary("a4", "A", naz="0.7.9", throughput=3.0),
        summary("b1", "B", naz="0.8.1", throughput=7.0),
    ]
    result = mx.matrix(sums)  # by experiment, naz_version
    assert [c["label"] for c in result["cells"]] == [
        "experiment=A, naz_version=0.7.9",
        "experiment=A, naz_version=0.8.1",
        "experiment=B, naz_version=0.8.1",
    ]
    diffs = [(d["axis"], d["a"], d["b"], d["holding"]) for d in result["differences"]]
    # B has no 0.7.9 run: no experiment difference at 0.7.9, no version difference in B
    assert diffs == [
        ("experiment", "A", "B", {"naz_version": "0.8.1"}),
        ("naz_version", "0.7.9", "0.8.1", {"experiment": "A"}),
    ]
    exp, ver = result["differences"]
    assert exp["figures"]["throughput_msg_per_s"]["diff"] == pytest.approx(5.5 - 7.0)
    assert exp["figures"]["throughput_msg_per_s"]["n_a"] == 2
    v = ver["figures"]["throughput_msg_per_s"]
    assert v["diff"] == pytest.approx(2.5 - 5.5)  # a - b, not b - a
    assert v["ci"][1] < 0
    # 6 splits of {2, 3, 5, 6} into 2 + 2: only {2,3} | {5,6} and its mirror are 3 apart
    assert v["p"] == pytest.approx(2 / 6)


def test_three_levels_give_every_pair() -> None:
    sums = [summary(f"r{i}", e) for i, e in enumerate("CAB")]
    result = mx.matrix(sums, by=("experiment",))
    assert [(d["a"], d["b"]) for d in result["differences"]] == [
        ("A", "B"),
        ("A", "C"),
        ("B", "C"),
    ]


def test_runs_needed_in_cells() -> None:
    sums = [summary(f"r{i}", throughput=t) for i, t in enumerate([4.0, 5.0, 6.0])]
    f = mx.matrix(sums, by=("experiment",))["cells"][0]["figures"]
    # sd 1, mean 5, half-width 0.5: (1.96 / 0.5)^2 = 15.4 -> 16
    assert f["throughput_msg_per_s"]["runs_needed"] == 16
    assert f["duplicated"]["runs_needed"] is None  # mean 0: no 10 % of it


def test_matrix_rejects_unknown_axes() -> None:
    with pytest.raises(ValueError, match="colour"):
        mx.matrix([summary("r")], by=("experiment", "colour"))
    with pytest.raises(ValueError, match="distinct"):
        mx.matrix([summary("r")], by=())


# --------------------------------------------------------------------------- gate

LOOSE = {
    "duplicated": {"max": 0},
    "loss_rate": {"max": 0.01},
    "recovery_p99_s": {"max": 120},
    "rss_slope_mb_per_h": {"max": 20},
}


@have_artifacts
def test_gate_on_the_collected_runs(real: dict[str, dict[str, Any]]) -> None:
    result = mx.matrix(list(real.values()), by=("experiment",))
    assert mx.gate(result, LOOSE) == []
    breaches = mx.gate(result, {"loss_rate": {"max": 0.001}, "duplicated": {"max": 0}})
    la = result["cells"][0]["figures"]["loss_rate"]
    lo, hi = la["ci"]
    mean = (3 / 2000 + 6 / 24000 + 34 / 6000 + 2 / 2000) / 4
    assert breaches == [
        f"experiment=A: loss_rate mean {mean:.4g} (95% CI [{lo:.4g}, {hi:.4g}], n=4) "
        "is above the max 0.001"
    ]
    assert breaches[0].startswith("experiment=A: loss_rate mean 0.002104 (95% CI [")


def test_gate_exact_lines() -> None:
    sums = [
        summary("a1", "A", duplicated=2, throughput=4.0),
        summary("a2", "A", duplicated=2, throughput=4.0),
        summary("b1", "B", duplicated=0, throughput=6.0),
    ]
    result = mx.matrix(sums, by=("experiment",))
    assert mx.gate(result, {"duplicated": {"max": 0}, "throughput_msg_per_s": {"min": 5}}) == [
        "experiment=A: duplicated mean 2 (95% CI [2, 2], n=2) is above the max 0",
        "experiment=A: throughput_msg_per_s mean 4 (95% CI [4, 4], n=2) is below the min 5",
    ]
    assert mx.gate(result, {"duplicated": {"max": 2}, "throughput_msg_per_s": {"min": 4}}) == []


def test_gate_skips_cells_without_the_figure() -> None:
    result = mx.matrix([summary("b", "B")], by=("experiment",))
    assert result["cells"][0]["figures"]["recovery_p99_s"]["n"] == 0
    assert mx.gate(result, {"recovery_p99_s": {"max": 0}}) == []


@pytest.mark.parametrize(
    ("thresholds", "named"),
    [
        ({"loss": {"max": 0}, "dups": {"max": 0}}, "loss, dups"),
        ({"loss_rate": {"maximum": 0.1}}, "maximum"),
        ({"loss_rate": {"max": "low"}}, "loss_rate: max must be a number"),
        ({"loss_rate": {"max": True}}, "loss_rate: max must be a number"),
        ({"loss_rate": {}}, "loss_rate: limits must be a non-empty mapping"),
        ({"loss_rate": 0.1}, "loss_rate: limits must be"),
        (["loss_rate"], "must be a mapping"),
    ],
)
def test_bad_thresholds_are_rejected(thresholds: Any, named: str) -> None:
    result = mx.matrix([summary("r")], by=("experiment",))
    with pytest.raises(ValueError, match="thresholds") as exc:
        mx.gate(result, thresholds)
    assert named in str(exc.value)


# --------------------------------------------------------------------------- CLI


def run_dirs(tmp_path: Path, sums: list[dict[str, Any]]) -> list[str]:
    out = []
    for s in sums:
        d = tmp_path / s["run_id"]
        d.mkdir()
        (d / "summary.json").write_text(json.dumps(s), encoding="utf-8")
        out.append(str(d))
    return out


@pytest.fixture
def dirs(tmp_path: Path) -> list[str]:
    return run_dirs(
        tmp_path,
        [
            summary("a1", "A", lost=2, recoveries=(10.0, 30.0)),
            summary("a2", "A", lost=4, recoveries=(20.0,)),
            summary("b1", "B", throughput=6.0),
        ],
    )


def test_cli_prints_tables(dirs: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert mx.main([*dirs, "--by", "experiment"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3 runs by experiment\n")
    for figure in mx.FIGURES:
        assert f"### {figure}\n" in out
    assert "| experiment | n | mean | 95% CI | runs for ±10% |" in out
    assert "| B | 1 | 0 | [0, 0] | — |" in out  # B's loss rate
    assert "| A | 2 | 0.003 | [0.002, 0.004] | 86 |" in out  # 2/1000 and 4/1000
    assert "| loss_rate | experiment: A - B | — | 2 / 1 | 0.003 | [0.002, 0.004] | 0.667 |" in out
    assert "### gate" not in out


def test_cli_gate_breach_exits_1(
    dirs: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    th = tmp_path / "gate.json"
    th.write_text(json.dumps({"loss_rate": {"max": 0.001}, "recovery_p99_s": {"max": 25}}))
    out_json = tmp_path / "m.json"
    assert (
        mx.main([*dirs, "--by", "experiment", "--thresholds", str(th), "--json", str(out_json)])
        == 1
    )
    cap = capsys.readouterr()
    lines = [
        "experiment=A: loss_rate mean 0.003 (95% CI [0.002, 0.004], n=2) is above the max 0.001",
        "experiment=A: recovery_p99_s mean 25 (95% CI [20, 30], n=2) is above the max 24",
    ]
    doc = json.loads(out_json.read_text())
    assert doc["breaches"] == mx.gate(doc, doc["thresholds"])
    assert doc["breaches"][0] == lines[0]
    assert len(doc["breaches"]) == 1  # recovery p99 25 is not above 25
    assert lines[1] not in cap.out
    assert f"- BREACH {lines[0]}" in cap.out
    assert lines[0] in cap.err
    assert [c["label"] for c in doc["cells"]] == ["experiment=A", "experiment=B"]


def test_cli_gate_yaml_pass(
    dirs: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    th = tmp_path / "gate.yml"
    th.write_text("loss_rate:\n  max: 0.01\nduplicated:\n  max: 0\n")
    assert mx.main([*dirs, "--thresholds", str(th)]) == 0
    assert "### gate\n\nall thresholds met\n" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--by", "experiment,colour"], "colour"),
        (["--resamples", "0"], "resamples"),
    ],
)
def test_cli_bad_options_exit_2(
    dirs: list[str], extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mx.main([*dirs, *extra]) == 2
    assert message in capsys.readouterr().err


def test_cli_directory_without_summary_exits_2(
    dirs: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "not-built"
    empty.mkdir()
    assert mx.main([*dirs, str(empty), str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert f"{empty} has no summary.json" in err


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("gate.json", '{"loss": {"max": 0}}', "unknown figure(s) in thresholds: loss"),
        ("gate.json", "{not json", "is not valid JSON"),
        ("gate.yml", "loss_rate: [1, 2", "is not valid YAML"),
        ("gate.yml", "loss_rate:\n  under: 1\n", "unknown key(s) under"),
        ("gate.txt", "{}", "expected a .json, .yml or .yaml file"),
    ],
)
def test_cli_bad_thresholds_exit_2(
    dirs: list[str],
    tmp_path: Path,
    name: str,
    text: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    th = tmp_path / name
    th.write_text(text)
    assert mx.main([*dirs, "--thresholds", str(th)]) == 2
    assert message in capsys.readouterr().err


def test_cli_missing_thresholds_file_exits_2(
    dirs: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mx.main([*dirs, "--thresholds", str(tmp_path / "nope.yml")]) == 2
    assert "cannot read thresholds file" in capsys.readouterr().err


def test_cli_as_a_module(dirs: list[str], tmp_path: Path) -> None:
    th = tmp_path / "gate.json"
    th.write_text(json.dumps({"loss_rate": {"max": 0}}))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nazbench.matrix",
            *dirs,
            "--by",
            "experiment",
            "--thresholds",
            str(th),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "1 threshold breach(es):\nexperiment=A: loss_rate mean 0.003" in done.stderr


@have_artifacts
def test_cli_on_the_collected_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert mx.main([str(ARTIFACTS / r) for r in REAL] + ["--by", "experiment"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("5 runs by experiment\n")
    assert "| B | 1 | 0 | [0, 0] | — |" in out
    assert "| loss_rate | experiment: A - B | — | 4 / 1 | 0.002104 |" in out
    assert statistics.fmean([3 / 2000, 6 / 24000, 34 / 6000, 2 / 2000]) == pytest.approx(
        0.0021041666
    )
