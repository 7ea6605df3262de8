"""report.data reads outages through nazbench.timeline: a failed start leaves one open."""

from pathlib import Path

from nazbench.report.data import load

from .conftest import REDIS, SMSC, T0, edge, write_run


def test_a_failed_start_is_open_until_the_heal_and_damage_is_noted(tmp_path: Path) -> None:
    rid = "fail-1"
    timeline = [
        {"record": "plan", "run_id": rid, "at": T0, "host": "ams1"},
        edge(rid, SMSC, "stop", T0 + 5),
        {**edge(rid, SMSC, "start", T0 + 10), "outcome": "failed"},
        {**edge(rid, SMSC, "start", T0 + 12), "cause": "heal"},
        edge(rid, REDIS, "stop", T0 + 20),
        {**edge(rid, REDIS, "start", T0 + 25), "outcome": "failed"},
        edge("other-run", REDIS, "start", T0 + 26),
    ]
    d = write_run(tmp_path, rid, count=1, timeline=timeline)
    with (d / "timeline-ams1.jsonl").open("a") as fh:
        fh.write('{"record": "end", "run_id"')
    data = load(d)
    smsc, redis = data.outages
    assert (smsc.unit, smsc.stop_at, smsc.start_at, smsc.start_cause) == (
        SMSC,
        T0 + 5,
        T0 + 12,
        "heal",
    )
    assert (redis.unit, redis.start_at, redis.number, redis.host) == (REDIS, None, 1, "ams1")
    assert any("its start failed" in n for n in data.notes)
    assert any("1 damaged lines" in n for n in data.notes)
    assert all(r["_host"] == "ams1" for r in data.timeline)
