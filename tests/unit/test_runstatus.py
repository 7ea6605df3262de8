import json

import pytest

from nazbench import runstatus


def _line(msg_id, ts, status=0):
    return json.dumps({"ts": ts, "msg_id": msg_id, "command_status": status}) + "\n"


def test_ledger_progress_counts_only_this_run_since_the_start(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(
        _line("r1/0", 5.0)  # before since
        + _line("r2/0", 11.0)  # another run
        + _line("r2/1", 11.5)  # a run whose id shares no prefix with r2/ ... r2 is not r
        + _line("r/0", 12.0)
        + _line("r/1", 13.0)
        + _line("r/1", 14.0)  # a duplicate
        + _line("r/2", 15.0, status=0x58)
        + _line(None, 16.0)
        + "not json r/ \n"
    )
    got = runstatus.ledger_progress(ledger, "r", since=10.0)
    assert got == {"accepted": 3, "unique": 2, "rejected": 1, "first_ts": 12.0, "last_ts": 14.0}


def test_missing_ledger_is_zero_progress(tmp_path):
    assert runstatus.ledger_progress(tmp_path / "none", "r")["accepted"] == 0


def test_bad_run_id_is_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        runstatus.main(["ledger", "--ledger", str(tmp_path / "x"), "--run-id", "a b"])
    assert "run_id" in capsys.readouterr().err
