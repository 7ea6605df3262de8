"""nazbench.ledger: every non-blank ledger line gets exactly one category."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from nazbench import ledger
from nazbench.nazapp.reconcile import reconcile


def rec(msg_id, ts=None, status=0, **extra) -> str:
    fields = {"msg_id": msg_id, "command_status": status, **extra}
    if ts is not None:
        fields["ts"] = ts
    return json.dumps(fields) + "\n"


def cats(lines, run_id="r", **kw) -> list[str]:
    return [e.category for e in ledger.classify(lines, run_id, **kw)]


def test_categories_without_a_window():
    lines = [
        rec("r/0"),
        rec("r/07"),  # ours, but not an index
        rec("stranger"),  # no run's id: ours (reconcile calls it unexpected)
        rec("q/0"),
        rec("rr/0"),  # another run whose id starts with ours
        rec(None),
        "\n",
        "not json\n",
        "[1]\n",
        json.dumps({"command_status": 0}) + "\n",
        json.dumps({"msg_id": "r/1"}) + "\n",
        rec("r/1", status="zero"),
        rec("r/1", status=True),
        rec(5),
        '{"msg_id": "r/2", "command_s',  # torn
    ]
    entries = list(ledger.classify(lines, "r"))
    assert [e.category for e in entries] == [
        "ours",
        "ours",
        "ours",
        "other_run",
        "other_run",
        "null_id",
        *["malformed"] * 8,
    ]
    assert [e.index for e in entries[:3]] == [0, None, None]
    assert entries[6].lineno == 8  # the blank line is skipped but counted
    assert [e.why for e in entries[6:]] == [
        "not JSON",
        "not a JSON object",
        "no msg_id field",
        "command_status missing or not an integer",
        "command_status missing or not an integer",
        "command_status missing or not an integer",
        "msg_id is not a string",
        "not JSON",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0), (88, 88), ("0x00000045", 0x45), (" 0x58 ", 0x58), ("88", 88), ("0", 0)],
)
def test_status_is_normalised(value, expected):
    (entry,) = ledger.classify([rec("r/0", status=value)], "r")
    assert entry.status == expected and entry.accepted is (expected == 0)


@pytest.mark.parametrize("value", [None, "zero", "", 1.0, True, False, [0], {"a": 0}])
def test_bad_status_is_malformed(value):
    assert cats([rec("r/0", status=value)]) == ["malformed"]


def test_str_bytes_and_dicts_read_the_same():
    text = [rec("r/0", 1.0), rec(None, 2.0), "oops\n", rec("q/0", 3.0)]
    as_bytes = [line.encode() for line in text]
    as_dicts = [json.loads(text[0]), json.loads(text[1]), json.loads(text[3])]
    assert cats(text) == cats(as_bytes) == ["ours", "null_id", "malformed", "other_run"]
    assert cats(as_dicts) == ["ours", "null_id", "other_run"]
    assert cats([b'{"msg_id": "r/0", "command_status": 0, "x": "\xff"}\n']) == ["ours"]


def test_first_and_count_come_from_the_manifest():
    lines = [rec(f"r/{n}") for n in (9, 10, 11, 12)]
    got = [e.index for e in ledger.classify(lines, "r", first=10, count=2)]
    assert got == [None, 0, 1, None]


def test_the_window_opens_at_the_first_line_at_or_after_since():
    lines = [
        "torn before the run\n",  # before: not this run's damage
        rec(None, 5.0),
        rec("r/0", 9.0),
        rec("r/1"),  # no ts, before the window opened
        rec("r/2", 10.0),  # opens the window
        "torn inside the run\n",
        rec(None, 11.0),
        rec("q/0", 11.5),
        rec("r/3", 9.5),  # inside, but stamped before since (clock stepped back)
        json.dumps({"ts": 12.0}) + "\n",  # malformed inside the window
        rec("r/4"),  # no ts inside the window: judged by its fields
    ]
    assert cats(lines, since=10.0) == [
        "before",
        "before",
        "before",
        "before",
        "ours",
        "malformed",
        "null_id",
        "other_run",
        "before",
        "malformed",
        "ours",
    ]


def test_the_window_closes_after_until():
    lines = [
        rec("r/0", 10.0),
        rec("r/1", 20.0),
        "torn before the end\n",
        rec("r/2", 20.5),  # after until
        "torn after the end\n",  # no ts, after an after-line: after
        rec("r/3", 19.9),  # a late writer's line still inside: judged by its ts
        rec(None, 30.0),
    ]
    assert cats(lines, since=10.0, until=20.0) == [
        "ours",
        "ours",
        "malformed",
        "after",
        "after",
        "ours",
        "after",
    ]


@pytest.mark.parametrize("ts", [True, "12", float("nan"), None])
def test_a_ts_that_is_not_a_number_does_not_open_the_window(ts):
    line = json.dumps({"msg_id": "r/0", "command_status": 0, "ts": ts}) + "\n"
    assert cats([line, rec("r/1", 10.0)], since=10.0) == ["before", "ours"]


def test_read_lines_plain_gz_in_order_and_missing(tmp_path: Path):
    one = tmp_path / "ledger.jsonl.1.gz"
    with gzip.open(one, "wt") as fh:
        fh.write(rec("r/0", 1.0))
    two = tmp_path / "ledger.jsonl"
    two.write_bytes(rec("r/1", 2.0).encode() + b"\xff torn")
    assert [json.loads(x)["msg_id"] for x in list(ledger.read_lines([one, two]))[:2]] == [
        "r/0",
        "r/1",
    ]
    raw = list(ledger.read_lines([one, two], binary=True))
    assert raw[-1] == b"\xff torn" and all(isinstance(x, bytes) for x in raw)
    assert list(ledger.read_lines([two]))[-1] == "\ufffd torn"
    with pytest.raises(FileNotFoundError):
        list(ledger.read_lines([one, tmp_path / "missing"]))
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(ledger.READ_ERRORS):
        list(ledger.read_lines([bad]))
    bad.write_bytes(one.read_bytes()[:-6])  # truncated
    with pytest.raises(ledger.READ_ERRORS):
        list(ledger.read_lines([bad]))


def test_receipt_records_are_their_own_category():
    """The SMSC's receipt and receipt_ack lines are never counted as submit_sm results."""
    receipt = {"ts": 5.0, "record": "receipt", "session": "b.1", "sequence_number": 3}
    receipt |= {"message_id": "b-1", "msg_id": "r/0", "stat": "DELIVRD", "try": 1}
    ack = {"ts": 6.0, "record": "receipt_ack", "session": "b.1", "sequence_number": 3}
    ack |= {"message_id": "b-1", "msg_id": "r/0", "command_status": 0}
    lines = [rec("r/0", ts=4.0), json.dumps(receipt), json.dumps(ack), rec("r/1", ts=7.0)]
    entries = list(ledger.classify(lines, "r"))
    assert [e.category for e in entries] == ["ours", "receipt", "receipt", "ours"]
    assert (entries[2].msg_id, entries[2].status, entries[2].index) == ("r/0", 0, None)
    assert entries[1].status is None
    # before the window they are "before" like any line
    assert cats(lines, since=5.5) == ["before", "before", "receipt", "ours"]


def test_reconcile_counts_receipt_lines_apart():
    manifest = {"run_id": "r", "count": 2, "id_scheme": {"first_index": 0, "last_index": 1}}
    ack = json.dumps({"record": "receipt_ack", "msg_id": "r/0", "command_status": 0})
    receipt = json.dumps({"record": "receipt", "msg_id": "r/1", "stat": "UNDELIV"})
    result = reconcile(manifest, [rec("r/0"), rec("r/1"), ack, receipt])
    counts = result.counts()
    assert (counts["delivered_once"], counts["duplicated"], counts["malformed_lines"]) == (2, 0, 0)
    assert counts["receipt_lines"] == 2 and result.ok
