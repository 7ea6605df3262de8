"""The ledger file on its own: append-only, torn lines, boot ids."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from nazbench.smsc.ledger import Ledger, choose_boot_id, last_boot_id

from .conftest import run


def _line(message_id: str | None, status: int = 0) -> str:
    return json.dumps({"message_id": message_id, "command_status": status}) + "\n"


def test_open_creates_parents_and_appends(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "ledger.jsonl"
    ledger = Ledger(path)
    ledger.open()
    ledger.write(b'{"a":1}\n', 1)
    ledger.close()
    ledger = Ledger(path)
    ledger.open()
    ledger.write(b'{"a":2}\n{"a":3}\n', 2)
    assert ledger.lines_written == 2
    ledger.close()
    ledger.close()  # idempotent
    assert path.read_text() == '{"a":1}\n{"a":2}\n{"a":3}\n'


def test_a_torn_last_line_is_fenced_off(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_text(_line("5-1") + '{"message_id": "7-')
    ledger = Ledger(path)
    ledger.open()
    ledger.write(_line("9-0").encode(), 1)
    ledger.close()
    lines = path.read_text().splitlines()
    assert lines == [_line("5-1").strip(), '{"message_id": "7-', _line("9-0").strip()]


def test_boot_id_is_past_every_boot_id_in_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    assert last_boot_id(path) is None
    assert choose_boot_id(path, now_ms=1000) == 1000
    path.write_text(_line("ff-1") + _line(None, 0x58) + _line("10-3") + "garbage\n" + '{"x')
    assert last_boot_id(path) == 0xFF
    # the clock went backwards: still past the ledger
    assert choose_boot_id(path, now_ms=5) == 0x100
    assert choose_boot_id(path, now_ms=10_000) == 10_000


def test_background_fsync_and_async_close(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"

    async def scenario() -> None:
        ledger = Ledger(path, fsync_interval=0.01)
        ledger.open()
        ledger.start()
        ledger.write(b"{}\n", 1)
        await asyncio.sleep(0.1)
        assert not ledger._dirty  # the loop fsynced it
        await ledger.aclose()
        assert not ledger.is_open

    run(scenario())
    assert path.read_text() == "{}\n"
