"""A minimal SMPP server for the nazapp tests: binds anyone, accepts every submit_sm.

It records the benchmark msg_id of each submit_sm (``ledger``) the way the real mock SMSC
does, so tests can reconcile what naz sent. Run standalone with
``python fake_smsc.py PORT [--close-on-unbind]`` for manual experiments.
"""

from __future__ import annotations

import asyncio
import codecs
import struct
import sys

import naz

from nazbench import msgid

BIND_TRX, SUBMIT_SM, ENQUIRE_LINK, UNBIND = 0x9, 0x4, 0x15, 0x6
RESP = 0x80000000


def _cstr(body: bytes, pos: int) -> tuple[bytes, int]:
    end = body.index(b"\x00", pos)
    return body[pos:end], end + 1


def short_message(body: bytes) -> tuple[int, bytes]:
    pos = _cstr(body, 0)[1] + 2  # service_type, source ton/npi
    pos = _cstr(body, pos)[1] + 2  # source_addr, dest ton/npi
    pos = _cstr(body, pos)[1] + 3  # destination_addr, esm_class, protocol_id, priority
    pos = _cstr(body, pos)[1]  # schedule_delivery_time
    pos = _cstr(body, pos)[1] + 2  # validity_period, registered_delivery, replace_if_present
    data_coding, _default, length = body[pos], body[pos + 1], body[pos + 2]
    return data_coding, body[pos + 3 : pos + 3 + length]


class FakeSmsc:
    def __init__(self, close_on_unbind: bool = False) -> None:
        self.close_on_unbind = close_on_unbind
        self.ledger: list[dict] = []
        self.commands: list[int] = []
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []
        naz.codec.register_codecs()

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for w in self.writers:
                w.close()
            await self.server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        try:
            while True:
                header = await reader.readexactly(16)
                length, command_id, _status, seq = struct.unpack(">IIII", header)
                body = await reader.readexactly(length - 16)
                self.commands.append(command_id)
                if command_id == SUBMIT_SM:
                    coding, raw = short_message(body)
                    text = codecs.decode(raw, "gsm0338") if coding == 0 else raw
                    self.ledger.append({"msg_id": msgid.decode_body(text), "command_status": 0})
                    out = f"m{len(self.ledger)}".encode() + b"\x00"
                elif command_id == BIND_TRX:
                    out = b"fake\x00"
                elif command_id in (ENQUIRE_LINK, UNBIND):
                    out = b""
                else:
                    continue
                writer.write(struct.pack(">IIII", 16 + len(out), command_id | RESP, 0, seq) + out)
                await writer.drain()
                if command_id == UNBIND and self.close_on_unbind:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _main(port: int, close_on_unbind: bool) -> None:
    smsc = FakeSmsc(close_on_unbind)
    await smsc.start(port)
    while True:
        await asyncio.sleep(1)
        sys.stderr.write(f"submit_sm received: {len(smsc.ledger)}\n")


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1]), "--close-on-unbind" in sys.argv))
