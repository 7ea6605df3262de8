"""How many submit_sm/s the mock SMSC answers on one core, and how that compares to naz.

Starts ``python -m nazbench.smsc`` in a subprocess pinned to one CPU core on loopback, then

1. drives it with a pipelining raw-socket client (bind, then ``--window`` submit_sm in
   flight) for ``--count`` messages and reports submit_sm/s;
2. drives the same server with naz 0.8.1 (``naz.Client`` + ``SimpleBroker`` pre-filled
   with ``--naz-count`` messages), counting submit_sm_resp through a naz hook, and reports
   naz's peak rate;
3. prints the ratio (the goal is >= 100x: the SMSC must never be the bottleneck).

Both clients run in this process, pinned to a different core than the server. Every
figure is cross-checked against the SMSC's ledger.

    .venv/bin/python benchmarks/smsc_capacity.py [--count 200000] [--naz-count 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

import naz
from smsc_process import PASSWORD, SYSTEM_ID, Server  # benchmarks/, the script's directory

from nazbench import msgid
from nazbench.nazapp.drive import drive
from nazbench.smsc import pdu


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cpus = sorted(os.sched_getaffinity(0))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200_000, help="raw-client submit_sm")
    parser.add_argument("--window", type=int, default=1000, help="raw-client PDUs in flight")
    parser.add_argument("--batch", type=int, default=250, help="raw-client PDUs per write")
    parser.add_argument("--naz-count", type=int, default=5000, help="messages sent with naz")
    parser.add_argument(
        "--naz-log-level",
        default="CRITICAL",
        help="naz's logger level; CRITICAL (the default) silences it, naz's best case. "
        "naz's own default, INFO, writes about 10 JSON lines per message to stderr",
    )
    parser.add_argument("--server-cpu", type=int, default=cpus[0], help="core for the SMSC")
    parser.add_argument(
        "--client-cpu", type=int, default=cpus[-1], help="core for the clients (this process)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after (s)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.naz_count < 1 or args.window < 1 or args.batch < 1:
        parser.error("counts, --window and --batch must be >= 1")
    if args.batch > args.window:
        parser.error("--batch must be <= --window")
    return args


async def raw_client(port: int, count: int, window: int, batch: int) -> tuple[float, int]:
    """Bind, pipeline ``count`` submit_sm with ``window`` in flight; (seconds, errors)."""
    run_id = "raw"
    # encode up front so the timed part measures the server, not our encoder (GSM-style
    # "[nb:" prefix as naz sends it by default)
    pdus = [
        pdu.encode_submit_sm(
            2 + i, b"\x1b<nb:" + f"{run_id}/{i}".encode() + b"\x1b> benchmark message"
        )
        for i in range(count)
    ]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(pdu.encode_bind(pdu.BIND_TRANSCEIVER, 1, SYSTEM_ID, PASSWORD))
    head = await reader.readexactly(16)
    length, command_id, status, _ = struct.unpack(">IIII", head)
    await reader.readexactly(length - 16)
    if command_id != pdu.BIND_TRANSCEIVER_RESP or status != 0:
        raise RuntimeError(f"bind failed: {pdu.status_name(status)}")

    received = 0
    errors = 0
    room = asyncio.Event()

    async def send() -> None:
        sent = 0
        while sent < count:
            while sent - received > window - batch:
                room.clear()
                await room.wait()
            n = min(batch, count - sent)
            writer.write(b"".join(pdus[sent : sent + n]))
            sent += n
            await writer.drain()

    async def receive() -> None:
        nonlocal received, errors
        buf = b""
        unpack = struct.Struct(">IIII").unpack_from
        while received < count:
            data = await reader.read(1 << 20)
            if not data:
                raise RuntimeError(f"SMSC closed the connection after {received} answers")
            buf = buf + data if buf else data
            pos, end = 0, len(buf)
            while end - pos >= 16:
                length, command_id, status, _ = unpack(buf, pos)
                if end - pos < length:
                    break
                if command_id != pdu.SUBMIT_SM_RESP or status:
                    errors += 1
                pos += length
                received += 1
            buf = buf[pos:]
            room.set()

    start = time.perf_counter()
    await asyncio.gather(send(), receive())
    elapsed = time.perf_counter() - start
    writer.write(pdu.encode_pdu(pdu.UNBIND, count + 2))
    await writer.drain()
    await reader.read()  # unbind_resp, then the server closes
    writer.close()
    return elapsed, errors


class _Counter(naz.hooks.BaseHook):
    def __init__(self, target: int) -> None:
        self.target = target
        self.first_sent: float | None = None
        self.last_resp = 0.0
        self.statuses: dict[str, int] = {}
        self.done = asyncio.Event()
        self.resps = 0

    async def to_smsc(self, smpp_command, log_id, hook_metadata, pdu) -> None:
        if smpp_command == "submit_sm" and self.first_sent is None:
            self.first_sent = time.perf_counter()

    async def from_smsc(self, smpp_command, log_id, hook_metadata, status, pdu) -> None:
        if smpp_command == "submit_sm_resp":
            self.resps += 1
            self.statuses[status.code] = self.statuses.get(status.code, 0) + 1
            self.last_resp = time.perf_counter()
            if self.resps >= self.target:
                self.done.set()


async def naz_client(port: int, count: int, log_level: str, timeout: float) -> _Counter:
    """naz 0.8.1 sending ``count`` pre-queued messages as fast as it can."""
    hook = _Counter(count)
    client = naz.Client(
        smsc_host="127.0.0.1",
        smsc_port=port,
        system_id=SYSTEM_ID,
        password=PASSWORD,
        broker=naz.broker.SimpleBroker(maxsize=count),
        hook=hook,
        logger=naz.log.SimpleLogger("naz.bench", level=log_level),
        drain_duration=0.1,
    )
    for i in range(count):
        await client.send_message(
            naz.protocol.SubmitSM(
                short_message=msgid.encode_body(msgid.make_id("naz", i), "benchmark message"),
                source_addr="255700111222",
                destination_addr="255799000888",
                log_id=f"naz-{i}",
            )
        )
    if not await drive(client, hook.done, timeout):
        raise TimeoutError(f"naz did not finish {count} messages within {timeout} s")
    return hook


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.sched_setaffinity(0, {args.client_cpu})
    print("nazbench mock SMSC capacity benchmark")
    print(f"  command : {' '.join([sys.executable, *sys.argv])}")
    print(
        f"  params  : count={args.count} window={args.window} batch={args.batch} "
        f"naz_count={args.naz_count} naz_log_level={args.naz_log_level} "
        f"server_cpu={args.server_cpu} client_cpu={args.client_cpu}"
    )
    print(f"  python  : {sys.version.split()[0]}  naz {naz.__version__.about['__version__']}")
    with (
        tempfile.TemporaryDirectory(prefix="smsc-bench-") as tmp,
        Server(Path(tmp), args.server_cpu) as server,
    ):
        print(
            f"  server  : pid {server.proc.pid if server.proc else '?'} on 127.0.0.1:{server.port}"
        )

        elapsed, errors = asyncio.run(
            asyncio.wait_for(
                raw_client(server.port, args.count, args.window, args.batch), args.timeout
            )
        )
        raw_rate = args.count / elapsed
        raw_lines = len(server.ledger_lines())
        print(
            f"\n[raw pipelining client] {args.count} submit_sm in {elapsed:.3f} s "
            f"= {raw_rate:,.0f} submit_sm/s  (errors: {errors}, ledger lines: {raw_lines})"
        )
        if errors or raw_lines != args.count:
            print("  FAILED: every submit_sm must be answered ESME_ROK and be in the ledger")
            return 1

        hook = asyncio.run(
            naz_client(server.port, args.naz_count, args.naz_log_level, args.timeout)
        )
        assert hook.first_sent is not None
        naz_elapsed = hook.last_resp - hook.first_sent
        naz_rate = hook.resps / naz_elapsed
        lines = server.ledger_lines()[raw_lines:]
        naz_ids = {x["msg_id"] for x in lines}
        print(
            f"[naz 0.8.1 client]      {hook.resps} submit_sm_resp in {naz_elapsed:.3f} s "
            f"= {naz_rate:,.0f} submit_sm/s  (statuses: {hook.statuses}, "
            f"ledger lines: {len(lines)}, distinct msg_ids: {len(naz_ids)})"
        )
        if hook.resps != args.naz_count or naz_ids != {f"naz/{i}" for i in range(args.naz_count)}:
            print("  FAILED: every naz message must be answered and be in the ledger")
            return 1
        ratio = raw_rate / naz_rate
        verdict = "OK" if ratio >= 100 else "BELOW GOAL"
        print(f"\nratio SMSC capacity / naz peak rate = {ratio:,.1f}x  (goal >= 100x: {verdict})")
    return 0 if ratio >= 100 else 2


if __name__ == "__main__":
    sys.exit(main())
