"""naz's health: a reader stall, more than one SMSC session, latency, unanswered, rates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nazbench.report.data import load
from nazbench.report.summary import build_summary

from .conftest import DATA, SMSC, T0, accept, edge, write_run

SMOKE = "run-20261130T042531Z"


def series(points: list[tuple[float, float]]) -> str:
    return "timestamp,value\n" + "".join(f"{T0 + t:f},{v}\n" for t, v in points)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    dest = tmp_path_factory.mktemp("smoke") / SMOKE
    shutil.copytree(DATA / SMOKE, dest)
    return build_summary(load(dest))


def steady_run(tmp_path: Path, metrics: dict[str, str], *, ledger=None, timeline=None) -> dict:
    """1500 messages accepted 5/s from T0+10 to T0+310 (unless ``ledger``), with metrics."""
    rid = "health-1"
    if ledger is None:
        ledger = [accept(rid, i, T0 + 10 + 0.2 * i) for i in range(1500)]
    run = {"run_id": rid, "started_at": T0, "duration_s": 320, "naz_restarts": 0}
    extra = {f"metrics/{name}.csv": text for name, text in metrics.items()}
    d = write_run(tmp_path, rid, count=1500, ledger=ledger, timeline=timeline, run=run, extra=extra)
    return build_summary(load(d))


STEPS = range(0, 325, 5)
RESP_OK = series([(t, 5.0 if t >= 15 else 0.0) for t in STEPS])
# naz stops reading at T0+100: its resp rate falls to 0 and unanswered rises to 7,419
RESP_STALL = series([(t, 5.0 if 15 <= t <= 100 else 0.0) for t in STEPS])
UNANSWERED = series([(t, 0 if t < 200 else round(7419 * (t - 195) / 125)) for t in STEPS])


def test_stall_to_the_end_is_a_failure(tmp_path: Path) -> None:
    s = steady_run(
        tmp_path, {"naz_submit_sm_resp_rate": RESP_STALL, "naz_unanswered_total": UNANSWERED}
    )
    stall = s["health"]["stall"]
    assert stall["detected"] is True and stall["to_end"] is True
    # the first zero sample (T0+105) covers T0+75..105: silence provably from T0+75
    assert stall["from"] == pytest.approx(T0 + 75, abs=0.2)
    assert stall["to"] == pytest.approx(T0 + 309.8)
    assert stall["duration_s"] == pytest.approx(234.8, abs=0.3)
    assert "naz_unanswered_total rose from 0 to 7,419" in stall["evidence"]
    assert "(to the end of the run)" in stall["evidence"]
    reasons = {r["code"]: r["text"] for r in s["outcome"]["reasons"]}
    assert reasons["reader_stall"] == stall["evidence"]
    assert s["unanswered"]["at_end"] == 7419 and s["unanswered"]["max"] == 7419
    assert "naz stopped reading responses" in s["verdict"]


def test_a_stall_that_ends_says_naz_resumed(tmp_path: Path) -> None:
    # naz reads nothing from T0+100 to T0+200, then answers again (smoke-a-1: 77 s)
    resp = series([(t, 0.0 if 130 <= t <= 200 else 5.0) for t in STEPS])
    s = steady_run(tmp_path, {"naz_submit_sm_resp_rate": resp})
    stall = s["health"]["stall"]
    assert stall["detected"] is True and stall["to_end"] is False
    assert stall["evidence"].endswith("then resumed.")
    assert "stopped reading" not in stall["evidence"]
    assert "naz read no responses for" in s["verdict"]


def test_stall_from_unanswered_alone(tmp_path: Path) -> None:
    s = steady_run(tmp_path, {"naz_unanswered_total": UNANSWERED})
    stall = s["health"]["stall"]
    assert stall["detected"] is True and stall["source"].endswith("naz_unanswered_total")
    assert stall["from"] == pytest.approx(T0 + 195, abs=0.2)


def test_no_stall_when_naz_reads(tmp_path: Path) -> None:
    s = steady_run(tmp_path, {"naz_submit_sm_resp_rate": RESP_OK})
    stall = s["health"]["stall"]
    assert stall["detected"] is False and stall["episodes"] == []
    assert "reader_stall" not in [r["code"] for r in s["outcome"]["reasons"]]


def test_an_outage_is_no_stall(tmp_path: Path) -> None:
    """SMSC down 100-200: nothing accepted, naz's resp rate 0 throughout."""
    rid = "health-1"
    ledger = [accept(rid, i, T0 + 10 + 0.2 * i) for i in range(450)]
    ledger += [accept(rid, 450 + i, T0 + 200 + 0.2 * i) for i in range(550)]
    # rate() over 30 s: 0 once the window holds no answer (T0+130) until answers resume
    resp = series([(t, 0.0 if 130 <= t <= 215 else 5.0) for t in STEPS])
    timeline = [edge(rid, SMSC, "stop", T0 + 100), edge(rid, SMSC, "start", T0 + 190)]
    s = steady_run(tmp_path, {"naz_submit_sm_resp_rate": resp}, ledger=ledger, timeline=timeline)
    stall = s["health"]["stall"]
    assert stall["detected"] is False
    # naz's answers came back 15 s after the first acceptance: not even an episode
    assert stall["episodes"] == []


def short_windows(tmp_path: Path, resp_after: float | None) -> dict:
    """The SMSC up 60 s, down 20 s, four times; naz rebinds 20 s after each start and then
    submits 5/s for 40 s. naz's answers stop after T0+100 (``resp_after`` None: never
    answered again) or come back ``resp_after`` s after each rebind (a normal reader)."""
    rid = "health-1"
    ledger, timeline, resp, i = [], [], [], 0
    for k in range(4):
        start = 80.0 * k  # SMSC up [start, start + 60), down 20 s
        timeline += [edge(rid, SMSC, "stop", T0 + start + 60, k)]
        timeline += [edge(rid, SMSC, "start", T0 + start + 80, k)]
        for j in range(200):  # bound at start + 20, accepting to start + 60
            ledger.append(accept(rid, i, T0 + start + 20 + 0.2 * j))
            i += 1
    for t in range(0, 330, 5):
        up = 20 <= t % 80 <= 60 + 30  # a 30 s rate window trails the last answer
        answering = t <= 100 if resp_after is None else (t % 80) >= 20 + resp_after
        resp.append((t, 5.0 if up and answering else 0.0))
    return steady_run(
        tmp_path, {"naz_submit_sm_resp_rate": series(resp)}, ledger=ledger, timeline=timeline
    )


def test_a_stall_goes_on_across_outages(tmp_path: Path) -> None:
    """reconnect-1's shape: naz rebinds after each SMSC restart and sends, never answered."""
    stall = short_windows(tmp_path, resp_after=None)["health"]["stall"]
    # each window accepts for 40 s only, but naz got no answer across three of them
    assert stall["detected"] is True
    assert stall["duration_s"] > 150
    assert stall["to_end"] is True


def test_reconnects_with_answers_are_no_stall(tmp_path: Path) -> None:
    """Same schedule, naz's answers back 10 s after each rebind: short silences only."""
    stall = short_windows(tmp_path, resp_after=10)["health"]["stall"]
    assert stall["detected"] is False


def test_three_bound_sessions_for_8_s(tmp_path: Path) -> None:
    bound = series([(0, 1), (5, 1), (97, 1), (100, 3), (105, 3), (108, 1), (300, 1)])
    s = steady_run(tmp_path, {"smsc_bound_sessions": bound})
    sessions = s["health"]["sessions"]
    assert sessions["source"] == "metrics smsc_bound_sessions"
    assert sessions["max_bound"] == 3
    assert sessions["multi"] == [{"from": T0 + 100, "to": T0 + 105, "max": 3}]
    assert [r["code"] for r in s["outcome"]["reasons"]] == ["multiple_sessions"]


def test_one_sample_of_two_sessions_is_not_flagged(tmp_path: Path) -> None:
    bound = series([(0, 1), (100, 2), (105, 1), (300, 1)])
    s = steady_run(tmp_path, {"smsc_bound_sessions": bound})
    assert s["health"]["sessions"]["multi"] == []
    assert s["outcome"]["result"] == "PASS"


def test_overlapping_ledger_sessions(tmp_path: Path) -> None:
    rid = "health-1"
    ledger = [accept(rid, i, T0 + 10 + 0.2 * i) for i in range(1500)]
    for i, line in enumerate(ledger):  # a second session interleaved for 30 s
        if 500 <= i < 650 and i % 2:
            line["session"] = "s.2"
    s = steady_run(tmp_path / "a", {}, ledger=ledger)
    sessions = s["health"]["sessions"]
    assert (sessions["source"], sessions["ledger_sessions"]) == ("ledger sessions", 2)
    (span,) = sessions["multi"]
    assert span["max"] == 2 and span["to"] - span["from"] == pytest.approx(29.6, abs=0.3)
    assert "multiple_sessions" in [r["code"] for r in s["outcome"]["reasons"]]
    # one session after another: fine
    for i, line in enumerate(ledger):
        line["session"] = "s.1" if i < 700 else "s.2"
    s = steady_run(tmp_path / "b", {}, ledger=ledger)
    assert s["health"]["sessions"]["multi"] == []


def test_latency_steady_and_after_outage(tmp_path: Path) -> None:
    rid = "health-1"
    timeline = [edge(rid, SMSC, "stop", T0 + 100), edge(rid, SMSC, "start", T0 + 130)]
    p50 = series([(t, 2.0 if 100 <= t < 190 else 0.2) for t in STEPS])
    p99 = series([(t, 40.0 if t == 140 else 0.3) for t in STEPS])
    s = steady_run(
        tmp_path,
        {"naz_submit_sm_latency_p50": p50, "naz_submit_sm_latency_p99": p99},
        timeline=timeline,
    )
    lat = s["latency"]
    assert lat["steady_p50_s"] == 0.2 and lat["p50_max_s"] == 2.0
    assert lat["p99_max_s"] == 40.0 and lat["p99_median_s"] == 0.3
    assert lat["per_outage"] == [{"label": "SMSC outage 1", "p99_max_after_s": 40.0}]


def test_rates_note_names_the_matching_series(tmp_path: Path) -> None:
    half = series([(t, 2.5) for t in STEPS])
    full = series([(t, 5.0) for t in STEPS])
    s = steady_run(tmp_path, {"naz_submit_sm_resp_rate": half, "naz_submit_sm_rate": full})
    r = s["rates"]
    assert r["ledger_msg_per_s"] == pytest.approx(5.0, abs=0.2)
    assert r["series"]["naz_submit_sm_resp_rate"]["minutes_off"] == r["minutes_with_traffic"]
    assert r["series"]["naz_submit_sm_rate"]["minutes_off"] == 0
    assert "naz_submit_sm_rate matches the ledger best" in r["note"]


def test_smoke_run_health(smoke: dict) -> None:
    stall = smoke["health"]["stall"]
    assert stall["detected"] is False
    # around SMSC outage 1 naz got no answer while the SMSC accepted 379 submits: 6 just
    # before it stopped, 373 in the 58 s after naz rebound; 59 s of accepting, under 60
    longest = max(stall["episodes"], key=lambda e: e["accepting_s"])
    assert (longest["accepting_s"], longest["accepted"]) == (pytest.approx(59.048), 379)
    sessions = smoke["health"]["sessions"]
    assert (sessions["source"], sessions["ledger_sessions"], sessions["multi"]) == (
        "ledger sessions",
        3,
        [],
    )
    assert smoke["unanswered"] == {
        "at_end": 1,
        "max": 1,
        "source": "metrics naz_unanswered_total",
        "note": smoke["unanswered"]["note"],
    }
    lat = smoke["latency"]
    assert (lat["steady_p50_s"], lat["p99_max_s"]) == (0.175, 59.378)
    assert lat["per_outage"][1] == {"label": "SMSC outage 1", "p99_max_after_s": 59.378}
    assert "naz_submit_sm_rate matches the ledger best" in smoke["rates"]["note"]
