"""Interoperability with the real naz 0.8.1 client."""

from __future__ import annotations

import asyncio

import naz

from nazbench import msgid
from nazbench.nazapp.drive import drive
from nazbench.smsc import pdu
from nazbench.smsc.server import SmscConfig

from .conftest import PASSWORD, make_smsc, metric, read_ledger, run


class RecordingHook(naz.hooks.BaseHook):
    """Counts submit_sm_resp PDUs naz receives; sets ``done`` at ``target``."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.statuses: list[str] = []
        self.commands: list[str] = []
        self.done = asyncio.Event()

    async def to_smsc(self, smpp_command, log_id, hook_metadata, pdu) -> None:
        self.commands.append(smpp_command)

    async def from_smsc(self, smpp_command, log_id, hook_metadata, status, pdu) -> None:
        if smpp_command == "submit_sm_resp":
            self.statuses.append(status.code)
            if len(self.statuses) >= self.target:
                self.done.set()


async def _drive_naz(port: int, password: str, count: int, run_id: str) -> RecordingHook:
    """Start naz the way its docs do, send ``count`` messages, shut it down cleanly."""
    hook = RecordingHook(count)
    client = naz.Client(
        smsc_host="127.0.0.1",
        smsc_port=port,
        system_id="nazbench",
        password=password,
        broker=naz.broker.SimpleBroker(maxsize=count + 10),
        hook=hook,
        logger=naz.log.SimpleLogger("naz.test", level="CRITICAL"),
        socket_timeout=2.0,
        drain_duration=0.1,
        enquire_link_interval=0.2,
    )
    for i in range(count):
        await client.send_message(
            naz.protocol.SubmitSM(
                short_message=msgid.encode_body(msgid.make_id(run_id, i), "hello from naz"),
                source_addr="255700111222",
                destination_addr="255799000888",
                log_id=f"log-{i}",
            )
        )
    await drive(client, hook.done, 5.0, linger=0.5)  # linger: let enquire_links through
    return hook


def test_naz_sends_50_messages_and_the_ledger_has_every_msg_id(config: SmscConfig) -> None:
    async def scenario() -> RecordingHook:
        async with make_smsc(config) as smsc:
            hook = await _drive_naz(smsc.port, PASSWORD, 50, "naz_run-1")
            assert metric(smsc, "nazbench_smsc_binds_total", mode="transceiver", result="ESME_ROK")
            assert metric(smsc, "nazbench_smsc_pdus_received_total", command="enquire_link") >= 1
            assert metric(smsc, "nazbench_smsc_pdus_received_total", command="unbind") == 1
            return hook

    hook = run(scenario())
    assert hook.statuses == ["ESME_ROK"] * 50
    lines = read_ledger(config.ledger_path)
    assert sorted(x["msg_id"] for x in lines) == sorted(f"naz_run-1/{i}" for i in range(50))
    assert {x["command_status"] for x in lines} == {0}
    assert len({x["message_id"] for x in lines}) == 50


def test_naz_ignores_a_refused_bind_and_its_messages_are_refused(config: SmscConfig) -> None:
    """naz 0.8.1 marks itself bound once the bind PDU is written, whatever the answer."""

    async def scenario() -> RecordingHook:
        async with make_smsc(config) as smsc:
            hook = await _drive_naz(smsc.port, "wrong", 10, "naz-refused")
            assert (
                metric(
                    smsc, "nazbench_smsc_binds_total", mode="transceiver", result="ESME_RINVPASWD"
                )
                == 1
            )
            return hook

    hook = run(scenario())
    assert hook.statuses == ["ESME_RINVBNDSTS"] * 10
    lines = read_ledger(config.ledger_path)
    assert len(lines) == 10
    assert {x["command_status"] for x in lines} == {pdu.ESME_RINVBNDSTS}
