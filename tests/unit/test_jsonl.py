"""nazbench.jsonl.objects: only JSON objects come out, damage is skipped."""

from nazbench import jsonl, runstatus


def test_objects_skips_torn_lines_and_non_objects():
    lines = ['{"a": 1}\n', '{"a": 2', "[1, 2]\n", "3\n", "null\n", "\n", b'{"b": "x"}\n']
    assert list(jsonl.objects(lines)) == [{"a": 1}, {"b": "x"}]


def test_runstatus_ledger_survives_a_line_that_is_json_but_not_an_object(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(
        '["r1/0"]\n'
        '{"msg_id": "r1/0", "ts": 10.0, "command_status": 0}\n'
        '{"msg_id": "r1/1", "ts": 11.0, "command_status": 88}\n'
        '{"msg_id": "r1/1", "ts": 12.0, "command_s'
    )
    status = runstatus.ledger_progress(ledger, "r1")
    assert (status["accepted"], status["unique"], status["rejected"]) == (1, 1, 1)
