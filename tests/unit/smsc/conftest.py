"""Helpers for the mock SMSC tests: a raw SMPP client and a bounded asyncio runner."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from nazbench.smsc import pdu
from nazbench.smsc.metrics import SmscMetrics
from nazbench.smsc.server import Smsc, SmscConfig

PASSWORD = "s3cret"  # a literal is fine in tests only
SYSTEM_ID = "nazbench"


def run(coro: Coroutine[Any, Any, Any], timeout: float = 8.0) -> Any:
    """Run ``coro`` in a fresh event loop, failing the test if it takes over ``timeout``."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def read_ledger(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def make_smsc(config: SmscConfig) -> Smsc:
    return Smsc(config, SmscMetrics(CollectorRegistry()))


def metric(smsc: Smsc, name: str, **labels: str) -> float:
    value = smsc.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def body(text: str) -> bytes:
    return text.encode("ascii")


class RawClient:
    """A minimal SMPP client over a real socket, for poking at the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.seq = 1

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_pdu(self, timeout: float = 5.0) -> pdu.Pdu:
        head = await asyncio.wait_for(self.reader.readexactly(16), timeout)
        (length,) = struct.unpack(">I", head[:4])
        rest = await asyncio.wait_for(self.reader.readexactly(length - 16), timeout)
        return pdu.decode_pdu(head + rest)

    async def read_pdus(self, count: int, timeout: float = 5.0) -> list[pdu.Pdu]:
        return [await self.read_pdu(timeout) for _ in range(count)]

    async def bind(
        self,
        system_id: str = SYSTEM_ID,
        password: str = PASSWORD,
        command_id: int = pdu.BIND_TRANSCEIVER,
    ) -> pdu.Pdu:
        await self.send(pdu.encode_bind(command_id, self.next_seq(), system_id, password))
        return await self.read_pdu()

    async def submit(self, text: str) -> pdu.Pdu:
        await self.send(pdu.encode_submit_sm(self.next_seq(), body(text)))
        return await self.read_pdu()

    async def closed_by_peer(self, timeout: float = 3.0) -> bool:
        """True when the server closes the connection (EOF) within ``timeout``."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), timeout):
                pass
        except ConnectionError:
            return True  # a reset is a close too
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@pytest.fixture
def config(tmp_path: Path) -> SmscConfig:
    return SmscConfig(
        ledger_path=tmp_path / "ledger.jsonl",
        password=PASSWORD,
        system_id=SYSTEM_ID,
        port=0,
        shutdown_grace=2.0,
    )
