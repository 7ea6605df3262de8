from __future__ import annotations

import datetime
import json
import logging
import os
import time
from pathlib import Path

import naz
import pytest

from nazbench.nazapp.logger import JsonLinesLogger

FIELDS = {
    "timestamp",
    "level",
    "event",
    "stage",
    "client_id",
    "log_id",
    "error",
    "run_id",
    "traceback",
    "metadata",
}


def lines(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "naz.jsonl"


def make(log_path: Path, **kw) -> JsonLinesLogger:
    # A write per line, so each test can read what it just logged; the buffered default
    # has its own test below.
    kw.setdefault("flush_interval", 0)
    kw.setdefault("client_id", "cid-1")
    kw.setdefault("run_id", "run-1")
    return JsonLinesLogger(log_path, **kw)


def test_naz_dict_becomes_one_json_line_with_the_seed_columns(log_path):
    logger = make(log_path, log_metadata={"pid": 42})
    logger.log(
        logging.INFO,
        {
            "event": "naz.Client.send_data",
            "stage": "start",
            "log_id": "405-jctnhvo",
            "smpp_command": "submit_sm",
            "msg": "\x00\x00\x00\x10binary-ish",
            "pdu": b"\x00\x01\xff",
        },
    )
    (rec,) = lines(log_path)
    assert set(rec) == FIELDS
    assert rec["event"] == "naz.Client.send_data"
    assert rec["stage"] == "start"
    assert rec["log_id"] == "405-jctnhvo"
    assert rec["client_id"] == "cid-1"
    assert rec["run_id"] == "run-1"
    assert rec["level"] == "INFO"
    assert rec["error"] is None
    assert rec["traceback"] is None
    assert rec["metadata"]["smpp_command"] == "submit_sm"
    assert rec["metadata"]["pid"] == 42
    assert rec["metadata"]["pdu"] == "\x00\x01\\xff"  # bytes: utf-8, backslashreplace
    ts = datetime.datetime.fromisoformat(rec["timestamp"])
    assert ts.utcoffset() == datetime.timedelta(0)
    assert len(rec["timestamp"].split(".")[1].split("+")[0]) == 6  # microseconds


def test_level_filtering_and_string_levels(log_path):
    logger = make(log_path, level="INFO")
    logger.log(logging.DEBUG, {"event": "hidden"})
    logger.debug("hidden too")
    logger.log(logging.WARNING, {"event": "shown"})
    logger.info("plain %s", "text")
    recs = lines(log_path)
    assert [r["event"] for r in recs] == ["shown", None]
    assert recs[1]["metadata"]["message"] == "plain text"
    logger.setLevel("DEBUG")
    logger.log(logging.DEBUG, {"event": "now shown"})
    assert lines(log_path)[-1]["event"] == "now shown"


def test_error_inside_except_carries_the_traceback_on_one_line(log_path):
    logger = make(log_path)
    try:
        raise ConnectionResetError(104, "Connection reset by peer")
    except ConnectionResetError as e:
        logger.log(logging.ERROR, {"event": "naz.Client.send_data", "error": repr(e)})
    logger.log(logging.ERROR, {"event": "no exception active", "error": "x"})
    text = log_path.read_text()
    assert len(text.splitlines()) == 2
    first, second = lines(log_path)
    assert first["error"].startswith("ConnectionResetError(104")
    assert "Traceback (most recent call last)" in first["traceback"]
    assert "ConnectionResetError: [Errno 104] Connection reset by peer" in first["traceback"]
    assert second["traceback"] is None  # naz's SimpleLogger would print "NoneType: None"


def test_explicit_exc_info_at_info_level(log_path):
    logger = make(log_path)
    logger.log(logging.INFO, {"event": "e"}, exc_info=ValueError("boom"))
    assert "ValueError: boom" in lines(log_path)[0]["traceback"]


def test_secrets_are_redacted(log_path):
    logger = make(log_path, secrets=["hunter22", None, "ab"])
    logger.log(logging.INFO, {"event": "bind", "msg": "system_id\x00hunter22\x00", "x": "ab"})
    rec = lines(log_path)[0]
    assert "hunter22" not in log_path.read_text()
    assert rec["metadata"]["msg"] == "system_id\x00{REDACTED}\x00"
    assert rec["metadata"]["x"] == "ab"  # too short to redact safely


def test_rotation_by_rename_is_noticed(log_path):
    logger = make(log_path, reopen_check_interval=0)
    logger.log(logging.INFO, {"event": "before"})
    rotated = log_path.with_suffix(".jsonl.1")
    os.rename(log_path, rotated)
    logger.log(logging.INFO, {"event": "after"})
    assert [r["event"] for r in lines(rotated)] == ["before"]
    assert [r["event"] for r in lines(log_path)] == ["after"]


def test_rotation_check_is_rate_limited_and_reopen_request_forces_it(log_path):
    logger = make(log_path, reopen_check_interval=3600)
    logger.log(logging.INFO, {"event": "one"})
    rotated = log_path.with_suffix(".jsonl.1")
    os.rename(log_path, rotated)
    logger.log(logging.INFO, {"event": "two"})  # not checked yet: still the old file
    logger.request_reopen()  # what SIGUSR1 does
    logger.log(logging.INFO, {"event": "three"})
    assert [r["event"] for r in lines(rotated)] == ["one", "two"]
    assert [r["event"] for r in lines(log_path)] == ["three"]


def test_deleted_file_is_recreated(log_path):
    logger = make(log_path, reopen_check_interval=0)
    logger.log(logging.INFO, {"event": "one"})
    log_path.unlink()
    logger.log(logging.INFO, {"event": "two"})
    assert [r["event"] for r in lines(log_path)] == ["two"]


def test_appends_to_an_existing_file(log_path):
    log_path.write_text('{"existing": true}\n')
    make(log_path).log(logging.INFO, {"event": "x"})
    assert len(log_path.read_text().splitlines()) == 2


def test_naz_client_accepts_it_and_logs_through_it(log_path):
    logger = make(log_path)
    naz.Client(
        smsc_host="127.0.0.1",
        smsc_port=2775,
        system_id="id",
        password="pw",
        broker=naz.broker.SimpleBroker(),
        logger=logger,
    )
    assert lines(log_path)[0]["event"] == "sanity_check_logger"


def test_unserialisable_values_do_not_break_the_line(log_path):
    logger = make(log_path)
    loop: dict = {}
    loop["self"] = loop
    logger.log(logging.INFO, {"event": "circular", "x": loop, "s": {1, 2}})
    rec = lines(log_path)[0]
    assert rec["event"] == "circular"
    assert "unserialisable" in rec["metadata"]


def test_buffered_lines_reach_the_file_within_the_flush_interval_and_on_close(log_path):
    logger = JsonLinesLogger(log_path, flush_interval=0.1)
    try:
        for i in range(50):
            logger.info({"event": "e", "log_id": str(i)})
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and len(log_path.read_text().splitlines()) < 50:
            time.sleep(0.02)
        assert [r["log_id"] for r in lines(log_path)] == [str(i) for i in range(50)]
        logger.info({"event": "last"})
    finally:
        logger.close()
    assert lines(log_path)[-1]["event"] == "last"
