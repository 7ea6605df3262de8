"""Lines -> rows without a database: records, traceback continuations, raw and bad lines."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

from nazbench.shipper import cli
from nazbench.shipper.core import (
    FINGERPRINT_BYTES,
    MIN_FINGERPRINT_BYTES,
    fingerprint,
    source_key,
)
from nazbench.shipper.db import describe_dsn
from nazbench.shipper.records import ROW_COLUMNS, Assembler
from nazbench.testing.nazlog import TRACEBACK, naz_lines

COL = {name: i for i, name in enumerate(ROW_COLUMNS)}


def feed_all(data: bytes, *, finish: bool = True, key: str = "k") -> tuple[Assembler, list]:
    asm, out, offset = Assembler(key), [], 0
    for line in data.splitlines(keepends=True):
        asm.feed(offset, line, out)
        offset += len(line)
    if finish:
        asm.finish(offset, out)
    return asm, out


def meta(row: tuple) -> dict:
    return json.loads(row[COL["metadata"]])


def test_record_columns_and_metadata() -> None:
    line = next(naz_lines(1, run_id="r9"))
    _, rows = feed_all(line)
    assert len(rows) == 1
    row = rows[0]
    assert row[COL["timestamp"]] == datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC)
    assert row[COL["event"]] == "naz.Client.dequeue_messages"
    assert row[COL["stage"]] == "start"
    assert row[COL["level"]] == "DEBUG"
    assert row[COL["run_id"]] == "r9"
    assert row[COL["client_id"]] == "nazbench-r9"
    assert row[COL["error"]] is None
    assert row[COL["source_file"]] == "k"
    assert row[COL["source_offset"]] == 0
    # the inner metadata, and no null traceback
    assert meta(row) == json.loads(line)["metadata"]


def test_traceback_lines_attach_to_the_preceding_record() -> None:
    data = b"".join(naz_lines(3, traceback_every=2))  # record 1 is followed by TRACEBACK
    asm, rows = feed_all(data, finish=False)
    # record 2 is not final yet: a traceback might still follow it
    assert len(rows) == 2
    first, second = rows
    assert "traceback_lines" not in meta(first)
    assert meta(second)["traceback_lines"] == TRACEBACK.rstrip("\n").split("\n")
    record_lines = data.splitlines(keepends=True)
    assert second[COL["source_offset"]] == len(record_lines[0])
    # the safe position is the start of the open record, not the end of the data
    third_offset = len(data) - len(record_lines[-1])
    assert asm.safe_offset == third_offset
    out: list = []
    asm.finish(len(data), out)
    assert [r[COL["source_offset"]] for r in out] == [third_offset]
    assert asm.safe_offset == len(data)


def test_lines_not_after_a_record_become_raw_rows() -> None:
    record = next(naz_lines(1))
    data = b"Traceback (most recent call last):\n  File x\n" + record + b"plain\n"
    _, rows = feed_all(data)
    assert len(rows) == 3
    orphan1, orphan2, rec = rows
    assert orphan1[COL["event"]] is None and orphan1[COL["level"]] is None
    assert meta(orphan1) == {
        "raw": "Traceback (most recent call last):",
        "timestamp_from": "read_time",
    }
    assert meta(orphan2)["raw"] == "  File x"
    assert orphan2[COL["source_offset"]] == len(b"Traceback (most recent call last):\n")
    # "plain" comes after the record: it is its continuation
    assert meta(rec)["traceback_lines"] == ["plain"]
    now = datetime.datetime.now(datetime.UTC)
    assert abs((now - orphan1[COL["timestamp"]]).total_seconds()) < 60


def test_malformed_json_is_kept_with_the_previous_records_timestamp() -> None:
    record = next(naz_lines(1))
    data = record + b'{"timestamp": "2024-05-01T12:00:01+00:00", "event": \n' + b"after\n"
    _, rows = feed_all(data)
    assert len(rows) == 2
    bad = rows[1]
    m = meta(bad)
    assert m["raw"].startswith('{"timestamp": "2024-05-01T12:00:01')
    assert m["malformed"].startswith("JSONDecodeError")
    assert m["traceback_lines"] == ["after"]
    assert m["timestamp_from"] == "previous_record"
    assert bad[COL["timestamp"]] == rows[0][COL["timestamp"]]
    assert bad[COL["event"]] is None


def test_values_postgresql_cannot_store_are_replaced() -> None:
    line = (
        b'{"timestamp": "2024-05-01T12:00:00", "level": 40, "event": "a\\u0000b", '
        b'"error": {"code": 1}, "metadata": {"s": "\\ud800x", "n": NaN, "big": 1e999}, '
        b'"extra": 1, "traceback": "tb"}\n'
    )
    _, rows = feed_all(line + b'{"no_ts": 1, "metadata": [1]}\n' + b"{\xff\xfe}\n")
    row = rows[0]
    assert row[COL["timestamp"]] == datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC)
    assert row[COL["event"]] == "a\ufffdb"
    assert row[COL["level"]] == "40"
    assert json.loads(row[COL["error"]]) == {"code": 1}
    m = meta(row)
    assert m == {"s": "?x", "n": "NaN", "big": "Infinity", "extra": 1, "traceback": "tb"}
    row[COL["metadata"]].encode("utf-8")  # storable
    second = meta(rows[1])
    assert second["metadata"] == [1] and second["no_ts"] == 1
    assert second["timestamp_from"] == "previous_record"
    not_utf8 = meta(rows[2])
    assert not_utf8["raw"] == "{\\xff\\xfe}"
    assert not_utf8["malformed"].startswith("UnicodeDecodeError")


def test_collision_between_top_level_and_inner_metadata_keys() -> None:
    line = b'{"timestamp": "2024-05-01T12:00:00+00:00", "x": 1, "metadata": {"x": 2}}\n'
    _, rows = feed_all(line)
    assert meta(rows[0]) == {"x": 2, "_x": 1}


def test_fingerprint_needs_a_long_enough_first_line(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b'{"partial')
    fd = os.open(path, os.O_RDONLY)
    try:
        assert fingerprint(fd) is None
        with path.open("ab") as f:
            f.write(b'"}\nshort\n')  # two whole lines, but under MIN_FINGERPRINT_BYTES
        assert fingerprint(fd) is None
        with path.open("ab") as f:
            f.write(b"x" * MIN_FINGERPRINT_BYTES + b"\n")
        first = fingerprint(fd)
        assert first is not None
        with path.open("ab") as f:
            f.write(b"y" * 1000)
        assert fingerprint(fd) == first  # later bytes do not change it
        st = os.fstat(fd)
        assert source_key(fd) == f"{st.st_dev}:{st.st_ino}:{first}"
    finally:
        os.close(fd)
    no_newline = tmp_path / "g"
    no_newline.write_bytes(b"y" * (FINGERPRINT_BYTES - 1))
    fd = os.open(no_newline, os.O_RDONLY)
    try:
        assert fingerprint(fd) is None
        with no_newline.open("ab") as f:
            f.write(b"y")
        assert fingerprint(fd) is not None  # FINGERPRINT_BYTES without a newline
    finally:
        os.close(fd)


def test_dsn_file_format_and_description(tmp_path: Path, caplog) -> None:
    dsn_file = tmp_path / "shipper.dsn"
    dsn_file.write_text(
        "# the shipper's database\nhost=db.example port=5433 dbname=nazbench\n\n"
        "user=nazbench_shipper password=Secr3t-pw\n"
    )
    dsn_file.chmod(0o644)
    args = cli.build_parser().parse_args(["--dsn-file", str(dsn_file)])
    dsn = cli.resolve_dsn(args)
    assert dsn == (
        "host=db.example port=5433 dbname=nazbench user=nazbench_shipper password=Secr3t-pw"
    )
    assert "readable by everyone" in caplog.text
    assert describe_dsn(dsn) == "nazbench_shipper@db.example:5433/nazbench"
    assert "Secr3t" not in describe_dsn("postgresql://u:Secr3t-pw@h/db")
    assert "Secr3t" not in describe_dsn("host=h password='Secr3t-pw")  # unparsable
