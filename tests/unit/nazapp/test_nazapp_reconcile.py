from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest

from nazbench.nazapp.producer import MANIFEST_SCHEMA
from nazbench.nazapp.reconcile import main, reconcile


def manifest(count: int = 8, run_id: str = "run-1") -> dict:
    return {
        "schema": MANIFEST_SCHEMA,
        "run_id": run_id,
        "count": count,
        "seed": 1,
        "queue": "q",
        "encoding": "gsm0338",
        "id_scheme": {"first_index": 0},
    }


def line(msg_id, status=0, **extra) -> str:
    return json.dumps({"msg_id": msg_id, "command_status": status, "session": "s", **extra})


# run-1/0..7: 0,1,2 delivered once; 3 accepted twice; 4 accepted three times;
# 5 never seen; 6 rejected twice (throttled, then queue full); 7 rejected then accepted.
LEDGER = [
    line("run-1/0"),
    line("run-1/1", message_id="m1"),
    line("run-1/2"),
    line("run-1/3"),
    line("run-1/3"),
    line("run-1/4"),
    line("run-1/4"),
    line("run-1/4"),
    line("run-1/6", 0x58),
    line("run-1/6", "0x00000014"),
    line("run-1/7", 0x58),
    line("run-1/7"),
    line("run-2/0"),  # another run
    line("run-1/8"),  # beyond count
    line("run-1/07"),  # not the canonical spelling of an index
    line("stranger", 0),
    line("stranger", 0),
    line("stranger-rejected", 0x45),  # rejected unknown ids are not "unexpected"
    line(None, 0),
    line(None, 0x45),
    "",
    "not json",
    json.dumps({"command_status": 0}),
    json.dumps({"msg_id": "run-1/0", "command_status": "zero"}),
]


def test_all_categories_from_a_hand_built_ledger():
    r = reconcile(manifest(), LEDGER)
    assert r.delivered_once == 4  # 0, 1, 2, 7
    assert r.duplicated == {"run-1/3": 2, "run-1/4": 3}
    assert r.lost == ["run-1/5", "run-1/6"]
    assert r.rejected_only == {"run-1/6": [0x58, 0x14]}
    assert r.unexpected == {"run-1/8": 1, "run-1/07": 1, "stranger": 2}
    assert r.other_run_lines == 1  # run-2/0: the ledger is shared by runs
    assert r.null_msg_id_lines == 2
    assert r.null_msg_id_accepted == 1
    assert r.malformed_lines == 3
    assert r.ledger_lines == 23  # blank line skipped
    assert r.accepted_lines == 14  # the other run's accepted line is set apart
    assert r.rejected_lines == 5
    assert not r.ok
    counts = r.counts()
    assert counts["duplicate_extra_accepts"] == 3
    assert counts["delivered_once"] + counts["lost"] + counts["duplicated"] == counts["expected"]


def test_a_clean_run_is_ok():
    r = reconcile(manifest(3), [line(f"run-1/{i}") for i in (2, 0, 1)])
    assert r.ok
    assert r.delivered_once == 3
    assert (r.lost, r.duplicated, r.unexpected) == ([], {}, {})


def test_accepts_decoded_dicts_and_bytes():
    r = reconcile(
        manifest(2),
        [{"msg_id": "run-1/0", "command_status": 0}, b'{"msg_id": "run-1/1", "command_status": 0}'],
    )
    assert r.ok


def test_streams_100k_lines_quickly():
    n = 100_000
    lines = (line(f"run-1/{i}") for i in range(n))
    t0 = time.perf_counter()
    r = reconcile(manifest(n), lines)
    elapsed = time.perf_counter() - t0
    assert r.delivered_once == n and r.ok
    assert elapsed < 5.0


def test_cli_text_json_gz_and_exit_codes(tmp_path: Path, capsys):
    m = tmp_path / "manifest.json"
    m.write_text(json.dumps(manifest()))
    half = len(LEDGER) // 2
    l1 = tmp_path / "ledger.jsonl"
    l1.write_text("\n".join(LEDGER[:half]) + "\n")
    l2 = tmp_path / "ledger.1.jsonl.gz"
    with gzip.open(l2, "wt") as fh:
        fh.write("\n".join(LEDGER[half:]) + "\n")

    assert main(["--manifest", str(m), "--ledger", str(l1), "--ledger", str(l2), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["counts"]["delivered_once"] == 4
    assert out["lost"] == ["run-1/5", "run-1/6"]
    assert out["duplicated"] == {"run-1/3": 2, "run-1/4": 3}
    assert out["rejected_only"] == {"run-1/6": [0x58, 0x14]}
    assert out["ok"] is False

    args = ["--manifest", str(m), "--ledger", str(l1), "--ledger", str(l2)]
    assert main([*args, "--fail-on-discrepancy"]) == 1
    text = capsys.readouterr().out
    assert "DISCREPANCIES" in text
    assert "lost ids: run-1/5, run-1/6" in text
    assert "run-1/4 x3" in text


def test_cli_unreadable_inputs(tmp_path: Path, capsys):
    m = tmp_path / "manifest.json"
    assert main(["--manifest", str(m), "--ledger", str(tmp_path / "l")]) == 2
    assert "cannot read manifest" in capsys.readouterr().err
    m.write_text(json.dumps({"schema": "other"}))
    assert main(["--manifest", str(m), "--ledger", str(tmp_path / "l")]) == 2
    m.write_text(json.dumps(manifest()))
    assert main(["--manifest", str(m), "--ledger", str(tmp_path / "missing")]) == 2
    assert "cannot read ledger" in capsys.readouterr().err


@pytest.mark.parametrize("first_index", [0, 10])
def test_first_index_is_honoured(first_index):
    m = manifest(2)
    m["id_scheme"]["first_index"] = first_index
    r = reconcile(m, [line(f"run-1/{first_index}"), line(f"run-1/{first_index + 1}")])
    assert r.ok


def test_other_runs_and_lines_before_since_are_set_apart():
    manifest = {"run_id": "B", "count": 2}
    ledger = [
        {"ts": 5.0, "msg_id": None, "command_status": 0},  # before the run
        {"ts": 6.0, "msg_id": "A/0", "command_status": 0},  # an earlier run
        {"ts": 11.0, "msg_id": "B/0", "command_status": 0},
        {"ts": 12.0, "msg_id": "B/1", "command_status": 0},
    ]
    result = reconcile(manifest, ledger, since=10.0)
    counts = result.counts()
    assert result.ok
    assert counts["delivered_once"] == 2
    assert counts["before_since_lines"] == 2  # the A/0 line is older than since too
    assert counts["other_run_lines"] == 0
    without_since = reconcile(manifest, ledger)
    assert without_since.counts()["other_run_lines"] == 1
    assert without_since.counts()["null_msg_id_lines"] == 1
    assert not without_since.ok


def test_damage_inside_the_window_counts_and_damage_before_it_does_not():
    manifest = {"run_id": "B", "count": 1}
    ledger = [
        "torn by a crash long before the run",
        '{"ts": 5.0, "msg_id": null, "command_status": 0}',
        '{"ts": 11.0, "msg_id": "B/0", "command_status": 0}',  # opens the window
        b"torn inside the run",
        '{"ts": 12.0, "msg_id": null, "command_status": "0x00000000"}',
        '{"ts": 12.5, "msg_id": "B/0", "command_status": "zero"}',
    ]
    result = reconcile(manifest, ledger, since=10.0)
    counts = result.counts()
    assert counts["before_since_lines"] == 2
    assert counts["malformed_lines"] == 2
    assert counts["null_msg_id_lines"] == 1 and counts["null_msg_id_accepted"] == 1
    assert counts["delivered_once"] == 1
    assert not result.ok
    assert result.malformed_examples == [
        "line 4: not JSON",
        "line 6: command_status missing or not an integer",
    ]
    assert reconcile(manifest, ledger[:3], since=10.0).ok


def test_index_rule_is_msgid_index_of():
    m = manifest(12)
    m["id_scheme"]["first_index"] = 2
    ids = ["run-1/2", "run-1/13", "run-1/14", "run-1/1", "run-1/02", "run-1/+3", "run-1/\u0663"]
    r = reconcile(m, [line(i) for i in ids])
    assert r.delivered_once == 2  # 2 and 13: positions 0 and 11
    assert sorted(r.unexpected) == sorted(ids[2:])


def receipt(msg_id, message_id, ts, stat="DELIVRD", tries=1) -> str:
    return json.dumps(
        {
            "ts": ts,
            "record": "receipt",
            "session": "s",
            "sequence_number": 1,
            "message_id": message_id,
            "msg_id": msg_id,
            "stat": stat,
            "try": tries,
        }
    )


def ack(msg_id, message_id, ts, status=0) -> str:
    return json.dumps(
        {
            "ts": ts,
            "record": "receipt_ack",
            "session": "s",
            "sequence_number": 1,
            "message_id": message_id,
            "msg_id": msg_id,
            "command_status": status,
        }
    )


def test_receipts_are_tallied_per_receipt_and_leave_the_submit_sm_categories_alone():
    submits = [line(f"run-1/{i}", ts=100.0 + i) for i in range(4)]
    receipts = [
        # m0: acked once, 2.5 s after its deliver_sm
        receipt("run-1/0", "m0", 101.0),
        ack("run-1/0", "m0", 103.5),
        # m1: nacked (throttled), resent, acked 10 s after the first try
        receipt("run-1/1", "m1", 102.0, stat="UNDELIV"),
        ack("run-1/1", "m1", 102.5, status=0x58),
        receipt("run-1/1", "m1", 110.0, stat="UNDELIV", tries=2),
        ack("run-1/1", "m1", 112.0),
        # m2: sent three times, never acknowledged
        receipt("run-1/2", "m2", 103.0),
        receipt("run-1/2", "m2", 133.0, tries=2),
        receipt("run-1/2", "m2", 163.0, tries=3),
        # m3: acknowledged twice (two accepted deliver_sm_resp)
        receipt("run-1/3", "m3", 104.0, stat="EXPIRED"),
        ack("run-1/3", "m3", 105.0),
        ack("run-1/3", "m3", 106.0),
        # another run's receipt and an ack whose receipt is not in the window: not ours / apart
        receipt("run-2/0", "x0", 104.0),
        ack("run-1/9", "m9", 107.0),
    ]
    result = reconcile(manifest(count=4), submits + receipts)
    assert result.counts()["delivered_once"] == 4
    assert result.ok
    assert result.receipt_lines == len(receipts)
    got = result.to_dict()["receipts"]
    assert got == {
        "sent": 4,
        "resent": 3,
        "acked_once": 2,
        "acked_more_than_once": 1,
        "never_acked": 1,
        "error_acks": 1,
        "acks_without_receipt": 1,
        "by_stat": {"DELIVRD": 2, "EXPIRED": 1, "UNDELIV": 1},
        # latencies 2.5 (m0), 10.0 (m1), 1.0 (m3): nearest rank
        "ack_latency_s": {"n": 3, "p50": 2.5, "p99": 10.0, "max": 10.0},
    }
    assert result.receipts["m1"].ack_latency == 10.0
    assert result.receipts["m2"].ack_latency is None


def test_no_receipts_give_zero_counts_and_no_latency():
    result = reconcile(manifest(count=1), [line("run-1/0")])
    got = result.to_dict()["receipts"]
    assert got["sent"] == 0 and got["never_acked"] == 0
    assert got["ack_latency_s"] == {"n": 0, "p50": None, "p99": None, "max": None}
