"""benchmarks/smsc_capacity.py with delivery receipts: the raw client and the ledger check.

The raw client runs against an in-process :class:`Smsc` (no subprocess, no pinning), with
a few dozen messages, so this stays fast.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from nazbench.smsc.metrics import SmscMetrics
from nazbench.smsc.server import Smsc, SmscConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import smsc_capacity  # benchmarks/ is not a package: imported from sys.path
from smsc_process import PASSWORD, SYSTEM_ID


def _run(tmp_path: Path, count: int, receipts: bool) -> tuple[smsc_capacity.RawResult, list]:
    config = SmscConfig(
        ledger_path=tmp_path / "ledger.jsonl",
        password=PASSWORD,
        system_id=SYSTEM_ID,
        port=0,
        receipts=receipts,
        receipt_delay=0.0,
        receipt_retry=0.0,
    )

    async def go() -> smsc_capacity.RawResult:
        async with Smsc(config, SmscMetrics(CollectorRegistry())) as smsc:
            return await smsc_capacity.raw_client(smsc.port, count, 20, 5, receipts)

    result = asyncio.run(asyncio.wait_for(go(), 20))
    lines = [json.loads(x) for x in config.ledger_path.read_text().splitlines()]
    return result, lines


def test_receipt_args_are_what_the_doc_says() -> None:
    assert smsc_capacity.SMSC_RECEIPT_ARGS == (
        "--receipts",
        "--receipt-delay=0",
        "--receipt-retry=0",
    )
    assert not smsc_capacity.parse_args([]).receipts
    assert smsc_capacity.parse_args(["--receipts"]).receipts


def test_raw_client_acks_every_receipt(tmp_path: Path) -> None:
    result, lines = _run(tmp_path, 60, receipts=True)
    assert (result.errors, result.receipts, result.acked) == (0, 60, 60)
    assert 0 < result.last_resp <= result.elapsed
    summary, problems = smsc_capacity.receipt_check(lines, result.receipts, result.acked)
    assert problems == []
    assert summary.startswith("ledger: 60 submit_sm, 60 receipt (")
    assert summary.endswith("60 receipt_ack ESME_ROK")


def test_raw_client_without_receipts_is_unchanged(tmp_path: Path) -> None:
    result, lines = _run(tmp_path, 40, receipts=False)
    assert (result.errors, result.receipts, result.acked) == (0, 0, 0)
    assert len(lines) == 40
    assert all("record" not in x for x in lines)


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda lines: lines.pop(), "receipt_ack ESME_ROK records, client sent"),
        (lambda lines: lines[-1].update(command_status=8), "with an error status"),
        (lambda lines: lines[1].update(**{"try": 2}), "sent more than once"),
        (lambda lines: lines[0].update(message_id="x-1"), "one to one"),
        (lambda lines: lines[-1].update(sequence_number=99), "acknowledged exactly once"),
    ],
)
def test_receipt_check_finds_problems(mutate, problem: str) -> None:
    lines = [
        {"session": "s", "sequence_number": 2, "message_id": "b-1", "msg_id": "raw/0",
         "command_status": 0},
        {"record": "receipt", "session": "s", "sequence_number": 1, "message_id": "b-1",
         "msg_id": "raw/0", "stat": "DELIVRD", "try": 1},
        {"record": "receipt_ack", "session": "s", "sequence_number": 1, "message_id": "b-1",
         "msg_id": "raw/0", "command_status": 0},
    ]  # fmt: skip
    assert smsc_capacity.receipt_check(lines, 1, 1)[1] == []
    mutate(lines)
    _, problems = smsc_capacity.receipt_check(lines, 1, 1)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("times", "best"),
    [
        ([], 0),
        ([5.0], 1),
        ([0.0, 0.5, 0.99, 1.0, 1.5], 3),  # [0, 1) holds 3; 1.0 starts the next window
        ([0.0, 2.0, 2.1, 2.2, 2.3, 2.95, 3.05, 9.0], 5),  # not aligned to whole seconds
    ],
)
def test_best_window_counts_the_busiest_second(times: list[float], best: int) -> None:
    assert smsc_capacity.best_window(times) == best


def test_best_window_width() -> None:
    times = [i / 4 for i in range(40)]  # 4/s for 10 s (exact in binary)
    assert smsc_capacity.best_window(times, 2.0) == 8
