"""nazbench.lab.smppprobe: what one session sees of the SMSC in each of its modes (the
e2e fault-kind test asks it from the naz host; here the SMSC runs in process)."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from nazbench.lab import smppprobe
from nazbench.smsc.metrics import SmscMetrics
from nazbench.smsc.modes import parse_mode
from nazbench.smsc.server import Smsc, SmscConfig

PASSWORD = "probe-pw"  # a throwaway server on loopback


def _seen(tmp_path: Path, mode: dict | None, **kwargs) -> dict:
    config = SmscConfig(ledger_path=tmp_path / "ledger.jsonl", password=PASSWORD, port=0)

    async def go() -> dict:
        async with Smsc(config, SmscMetrics(CollectorRegistry())) as smsc:
            if mode is not None:
                smsc.set_mode(parse_mode(mode))
            return await asyncio.to_thread(
                smppprobe.probe, "127.0.0.1", smsc.port, "nazbench", PASSWORD, **kwargs
            )

    return asyncio.run(asyncio.wait_for(go(), 30))


@pytest.mark.parametrize(
    ("mode", "seen"),
    [
        (None, "accepted"),
        ({"name": "throttle", "fraction": 1}, "throttled"),
        ({"name": "silent"}, "no answer"),
        ({"name": "drop_resp", "fraction": 1}, "closed after submit"),
        ({"name": "unbind"}, "unbound"),
        ({"name": "slow", "delay_s": 1}, "accepted slowly"),
    ],
)
def test_each_mode_is_told_apart(tmp_path: Path, mode: dict | None, seen: str) -> None:
    result = _seen(tmp_path, mode, wait_s=2.5, slow_s=0.8)
    assert result["seen"] == seen, result
    assert result["t0"] <= result["t1"]


def test_a_slow_answer_is_timed(tmp_path: Path) -> None:
    result = _seen(tmp_path, {"name": "slow", "delay_s": 1}, wait_s=3, slow_s=0.8)
    assert result["bind_s"] >= 1.0 and result["submit_s"] >= 1.0, result


def test_a_wrong_password_and_no_listener(tmp_path: Path, unused_port: int) -> None:
    config = SmscConfig(ledger_path=tmp_path / "ledger.jsonl", password=PASSWORD, port=0)

    async def go() -> dict:
        async with Smsc(config, SmscMetrics(CollectorRegistry())) as smsc:
            return await asyncio.to_thread(
                smppprobe.probe, "127.0.0.1", smsc.port, "nazbench", "wrong", wait_s=2
            )

    assert asyncio.run(go())["seen"] == "bind refused ESME_RINVPASWD"
    assert smppprobe.probe("127.0.0.1", unused_port, "x", "y")["seen"] == "refused"


def test_the_cli_prints_one_json_line(tmp_path: Path, capsys) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    secret = tmp_path / "pw"
    secret.write_text("x\n")
    assert smppprobe.main(["--host", "127.0.0.1", "--port", str(port), "--system-id", "a",
                           "--password-file", str(secret)]) == 0  # fmt: skip
    line = json.loads(capsys.readouterr().out)
    assert line["seen"] == "refused" and set(line) == {"t0", "t1", "seen", "bind_s", "submit_s"}
