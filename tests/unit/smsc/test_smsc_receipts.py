"""Delivery receipts (``--receipts``), checked with smpplib as the ESME.

smpplib's ``read_once`` hands a deliver_sm to ``message_received_handler`` and answers it
with a deliver_sm_resp of the same sequence_number; ``read_pdu`` reads without answering
(an ESME that never acknowledges).
"""

from __future__ import annotations

import calendar
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest
import smpplib.client
import smpplib.command
import smpplib.consts
import smpplib.smpp

from nazbench.nazapp.reconcile import reconcile
from nazbench.smsc import pdu, receipts
from nazbench.smsc.cli import config_from_args, make_parser
from nazbench.smsc.server import SmscConfig

from .conftest import PASSWORD, SYSTEM_ID, read_ledger
from .test_smsc_smpplib import Served, bound_client, drop, new_client, serving

SUBMIT_KEYS = ["ts", "session", "sequence_number", "msg_id", "message_id", "command_status"]
RECEIPT_KEYS = ["ts", "record", "session", "sequence_number", "message_id", "msg_id", "stat", "try"]
ACK_KEYS = ["ts", "record", "session", "sequence_number", "message_id", "msg_id", "command_status"]
TEXT_RE = re.compile(
    r"id:(?P<id>\S+) sub:001 dlvrd:(?P<dlvrd>00[01]) submit date:(?P<submit>\d{10}) "
    r"done date:(?P<done>\d{10}) stat:(?P<stat>[A-Z]{7}) err:(?P<err>\d{3}) text:(?P<text>.*)"
)


def receipts_on(config: SmscConfig, **changes: Any) -> Any:
    settings = {
        "receipts": True,
        "receipt_delay": 0.0,
        "receipt_retry": 0.0,
        "unbind_timeout": 0.05,  # smpplib does not answer the SMSC's unbind at shutdown
    } | changes
    return serving(config, **settings)


class Esme:
    """An smpplib client that records the deliver_sm it gets (and acknowledges them)."""

    def __init__(self, client: smpplib.client.Client) -> None:
        self.client = client
        self.delivered: list[smpplib.command.Command] = []
        self.message_ids: list[str] = []
        # smpplib calls the handler with pdu=...: a bound method would not do
        client.set_message_received_handler(lambda pdu: self.delivered.append(pdu))  # noqa: PLW0108
        client.set_message_sent_handler(
            lambda pdu: self.message_ids.append(pdu.message_id.decode())
        )

    def submit(self, text: bytes, registered_delivery: int = 1) -> None:
        self.client.send_message(
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr="255700111222",
            dest_addr_ton=1,
            dest_addr_npi=2,
            destination_addr="255799000888",
            short_message=text,
            registered_delivery=registered_delivery,
        )

    def until(self, receipts: int, answers: int = 0, timeout: float = 1.5) -> None:
        """read_once until ``receipts`` deliver_sm and ``answers`` submit_sm_resp came."""
        deadline = time.monotonic() + timeout
        while len(self.delivered) < receipts or len(self.message_ids) < answers:
            assert time.monotonic() < deadline, "receipts not received in time"
            self.client.read_once(auto_send_enquire_link=False)

    def nothing_within(self, seconds: float) -> bool:
        """True when no PDU arrives within ``seconds``."""
        self.client._socket.settimeout(seconds)
        try:
            self.client.read_pdu()
        except TimeoutError:
            return True
        finally:
            self.client._socket.settimeout(2)
        return False


def stats_of(esme: Esme) -> list[str]:
    return [TEXT_RE.fullmatch(p.short_message.decode()).group("stat") for p in esme.delivered]


def wait_acked(served: Served, count: int) -> None:
    served.wait_for(
        lambda: (
            served.metric("nazbench_smsc_receipts_acked_total", command_status="ESME_ROK") == count
        )
    )


def test_receipt_body_tlvs_and_ledger_lines(config: SmscConfig) -> None:
    with receipts_on(config, receipt_delay=0.05, receipt_states="DELIVRD=1") as served:
        esme = Esme(bound_client(served.port))
        before = time.time()
        esme.submit(b"[nb:rc/0] a message longer than twenty characters")
        esme.until(receipts=1, answers=1)
        wait_acked(served, 1)
        [dlr] = esme.delivered
        [message_id] = esme.message_ids
        assert dlr.esm_class == 0x04
        assert (dlr.source_addr_ton, dlr.source_addr_npi, dlr.source_addr) == (
            1,
            2,
            b"255799000888",
        )
        assert (dlr.dest_addr_ton, dlr.dest_addr_npi, dlr.destination_addr) == (
            1,
            1,
            b"255700111222",
        )
        assert (dlr.registered_delivery, dlr.data_coding, dlr.protocol_id) == (0, 0, 0)
        text = TEXT_RE.fullmatch(dlr.short_message.decode())
        assert text is not None, dlr.short_message
        assert text["id"] == message_id
        assert (text["dlvrd"], text["stat"], text["err"]) == ("001", "DELIVRD", "000")
        assert text["text"] == "[nb:rc/0] a message "  # the first 20 characters, as sent
        for field in ("submit", "done"):  # UTC, YYMMDDhhmm
            stamp = calendar.timegm(time.strptime(text[field], "%y%m%d%H%M"))
            assert before - 60 < stamp <= time.time()
        assert dlr.receipted_message_id.rstrip(b"\x00").decode() == message_id
        assert dlr.message_state == 2
        assert served.metric("nazbench_smsc_receipts_sent_total", stat="DELIVRD") == 1
        assert served.metric("nazbench_smsc_receipts_pending") == 0
    submit_line, receipt_line, ack_line = read_ledger(config.ledger_path)
    assert list(submit_line) == SUBMIT_KEYS
    assert (submit_line["msg_id"], submit_line["message_id"]) == ("rc/0", message_id)
    assert list(receipt_line) == RECEIPT_KEYS
    assert receipt_line["record"] == "receipt"
    assert receipt_line["sequence_number"] == dlr.sequence
    assert (receipt_line["message_id"], receipt_line["msg_id"]) == (message_id, "rc/0")
    assert (receipt_line["stat"], receipt_line["try"]) == ("DELIVRD", 1)
    assert list(ack_line) == ACK_KEYS
    assert ack_line["record"] == "receipt_ack"
    assert ack_line["session"] == receipt_line["session"] == submit_line["session"]
    assert ack_line["sequence_number"] == dlr.sequence
    assert (ack_line["message_id"], ack_line["msg_id"]) == (message_id, "rc/0")
    assert ack_line["command_status"] == 0


@pytest.mark.parametrize(
    ("stat", "state", "dlvrd"),
    [("UNDELIV", 5, "000"), ("EXPIRED", 3, "000"), ("REJECTD", 8, "000")],
)
def test_failure_states(config: SmscConfig, stat: str, state: int, dlvrd: str) -> None:
    with receipts_on(config, receipt_states=f"{stat}=1") as served:
        esme = Esme(bound_client(served.port))
        esme.submit(b"[nb:rc/1] x")
        esme.until(receipts=1, answers=1)
        [dlr] = esme.delivered
        text = TEXT_RE.fullmatch(dlr.short_message.decode())
        assert (text["stat"], text["dlvrd"]) == (stat, dlvrd)
        assert text["err"] != "000"
        assert dlr.message_state == state


def _mix(config: SmscConfig, seed: int) -> dict[str, str]:
    """msg_id -> stat of 30 receipts drawn with ``seed``."""
    config.ledger_path.unlink(missing_ok=True)
    with receipts_on(config, receipt_seed=seed, receipt_delay=0.05) as served:
        esme = Esme(bound_client(served.port))
        for i in range(30):
            esme.submit(f"[nb:mix/{i}] hi".encode())
        esme.until(receipts=30, answers=30)
        wait_acked(served, 30)
    return {
        line["msg_id"]: line["stat"]
        for line in read_ledger(config.ledger_path)
        if line.get("record") == "receipt"
    }


def test_state_mix_is_repeatable_with_a_seed(config: SmscConfig) -> None:
    config = SmscConfig(**{**config.__dict__, "receipt_states": "DELIVRD=0.5,UNDELIV=0.5"})
    first = _mix(config, seed=7)
    assert len(first) == 30
    assert set(first.values()) == {"DELIVRD", "UNDELIV"}
    assert _mix(config, seed=7) == first
    # and it is the seeded draw, one per submit in order (seed 8 gives another one)
    for seed, same in ((7, True), (8, False)):
        rng = random.Random(seed)
        draws = rng.choices(["DELIVRD", "UNDELIV"], cum_weights=[0.5, 1.0], k=30)
        assert ([first[f"mix/{i}"] for i in range(30)] == draws) is same


def test_no_receipt_without_registered_delivery(config: SmscConfig) -> None:
    with receipts_on(config, receipt_states="DELIVRD=1") as served:
        esme = Esme(bound_client(served.port))
        esme.submit(b"[nb:rc/2] none", registered_delivery=0)
        esme.submit(b"[nb:rc/3] failure only", registered_delivery=2)  # and it is delivered
        esme.until(receipts=0, answers=2)
        assert esme.nothing_within(0.3)
        assert served.metric("nazbench_smsc_receipts_pending") == 0
    assert all("record" not in line for line in read_ledger(config.ledger_path))


def test_failure_only_receipts(config: SmscConfig) -> None:
    states = "DELIVRD=0.5,UNDELIV=0.5"
    with receipts_on(config, receipt_states=states, receipt_seed=3) as served:
        esme = Esme(bound_client(served.port))
        for i in range(20):
            esme.submit(f"[nb:fo/{i}] x".encode(), registered_delivery=2)
        esme.until(receipts=0, answers=20)
        sent = len(esme.delivered)  # read (and acknowledged) while waiting for answers
        while not esme.nothing_within(0.2):
            sent += 1
        # the draw: the same seeded mix, one draw per submit asking for a receipt
        drawn = receipts.ReceiptEngine(served.smsc)
        expected = [
            drawn.rng.choices(drawn.names, cum_weights=drawn.cum_weights)[0] for _ in range(20)
        ]
        assert served.metric("nazbench_smsc_receipts_sent_total", stat="DELIVRD") == 0
        assert served.metric("nazbench_smsc_receipts_sent_total", stat="UNDELIV") == sent
        assert sent == expected.count("UNDELIV")
        assert 0 < sent < 20


def test_receipt_waits_for_the_next_bind(config: SmscConfig) -> None:
    with receipts_on(config, receipt_delay=0.05, receipt_states="DELIVRD=1") as served:
        sender = new_client(served.port)
        sender.bind_transmitter(system_id=SYSTEM_ID, password=PASSWORD)
        tx = Esme(sender)
        tx.submit(b"[nb:wait/0] later")
        tx.until(receipts=0, answers=1)
        # a transmitter cannot get a deliver_sm: the receipt waits
        assert tx.nothing_within(0.2)
        assert served.metric("nazbench_smsc_receipts_pending") == 1
        assert served.metric("nazbench_smsc_receipts_sent_total", stat="DELIVRD") == 0
        sender.unbind()
        drop(sender)
        served.wait_for(lambda: served.metric("nazbench_smsc_bound_sessions") == 0)
        receiver = new_client(served.port)
        receiver.bind_receiver(system_id=SYSTEM_ID, password=PASSWORD)
        rx = Esme(receiver)
        rx.until(receipts=1)
        wait_acked(served, 1)
        text = TEXT_RE.fullmatch(rx.delivered[0].short_message.decode())
        assert text["id"] == tx.message_ids[0]
        assert served.metric("nazbench_smsc_receipts_pending") == 0


def test_unacknowledged_receipt_is_resent_then_abandoned(config: SmscConfig) -> None:
    with receipts_on(config, receipt_retry=0.2, receipt_max_tries=3) as served:
        esme = Esme(bound_client(served.port))
        esme.submit(b"[nb:re/0] again", registered_delivery=1)
        esme.until(receipts=0, answers=1)
        client = esme.client
        started = time.monotonic()
        tries = [client.read_pdu() for _ in range(3)]  # read, never acknowledged
        elapsed = time.monotonic() - started
        assert [p.command for p in tries] == ["deliver_sm"] * 3
        assert len({p.short_message for p in tries}) == 1  # the same receipt
        assert len({p.sequence for p in tries}) == 3  # each try a new sequence_number
        assert 0.35 < elapsed < 3.0  # two retry intervals between the three tries
        assert esme.nothing_within(0.4)
        assert served.metric("nazbench_smsc_receipts_resent_total") == 2
        assert served.metric("nazbench_smsc_receipts_abandoned_total") == 1
        assert served.metric("nazbench_smsc_receipts_pending") == 0
        # a late deliver_sm_resp of the first try, on the same session, is still recorded
        late = smpplib.smpp.make_pdu("deliver_sm_resp", client=client)
        late.sequence = tries[0].sequence
        client.send_pdu(late)
        wait_acked(served, 1)
        assert served.metric("nazbench_smsc_receipts_unknown_resp_total") == 0
        assert served.metric("nazbench_smsc_receipts_abandoned_total") == 1
    lines = [line for line in read_ledger(config.ledger_path) if "record" in line]
    assert [(line["record"], line.get("try")) for line in lines] == [
        ("receipt", 1),
        ("receipt", 2),
        ("receipt", 3),
        ("receipt_ack", None),
    ]
    assert [line["sequence_number"] for line in lines] == [p.sequence for p in tries] + [
        tries[0].sequence
    ]


def test_a_late_answer_to_an_earlier_try_acknowledges_and_a_second_answer_is_recorded(
    config: SmscConfig,
) -> None:
    # a 1 s retry: the two answers must reach the SMSC before a third try would go out,
    # even on a busy CI machine
    with receipts_on(config, receipt_retry=1.0, receipt_max_tries=3) as served:
        esme = Esme(bound_client(served.port))
        esme.submit(b"[nb:la/0] late", registered_delivery=1)
        esme.until(receipts=0, answers=1)
        client = esme.client
        first, second = client.read_pdu(), client.read_pdu()  # try 1, then try 2 after 1 s
        assert (first.command, second.command) == ("deliver_sm", "deliver_sm")
        for answered in (first, second):  # the ESME answers both, late
            resp = smpplib.smpp.make_pdu("deliver_sm_resp", client=client)
            resp.sequence = answered.sequence
            client.send_pdu(resp)
        wait_acked(served, 2)
        assert esme.nothing_within(1.5)  # acknowledged by try 1's answer: no try 3
        assert served.metric("nazbench_smsc_receipts_resent_total") == 1
        assert served.metric("nazbench_smsc_receipts_abandoned_total") == 0
        assert served.metric("nazbench_smsc_receipts_pending") == 0
    result = reconcile(
        {"run_id": "la", "count": 1, "id_scheme": {"first_index": 0}},
        read_ledger(config.ledger_path),
    )
    got = result.to_dict()["receipts"]
    assert (got["sent"], got["resent"], got["acked_more_than_once"], got["never_acked"]) == (
        1,
        1,
        1,
        0,
    )


def test_resend_after_a_nack_then_ack(config: SmscConfig) -> None:
    with receipts_on(config, receipt_retry=0.2) as served:
        esme = Esme(bound_client(served.port))
        esme.client.set_message_received_handler(
            lambda pdu: esme.delivered.append(pdu) or (8 if len(esme.delivered) == 1 else 0)
        )
        esme.submit(b"[nb:re/1] nack")
        esme.until(receipts=2, answers=1)
        wait_acked(served, 1)
        assert (
            served.metric("nazbench_smsc_receipts_acked_total", command_status="ESME_RSYSERR") == 1
        )
        assert served.metric("nazbench_smsc_receipts_resent_total") == 1
    acks = [line for line in read_ledger(config.ledger_path) if line.get("record") == "receipt_ack"]
    assert [a["command_status"] for a in acks] == [8, 0]


def test_unknown_deliver_sm_resp_is_counted_and_ignored(config: SmscConfig) -> None:
    with receipts_on(config) as served:
        client = bound_client(served.port)
        stray = smpplib.smpp.make_pdu("deliver_sm_resp", client=client)
        stray.sequence = 999
        client.send_pdu(stray)
        client.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=client))
        assert client.read_pdu().command == "enquire_link_resp"
        assert served.metric("nazbench_smsc_receipts_unknown_resp_total") == 1


def test_receipts_off_by_default(config: SmscConfig) -> None:
    assert config.receipts is False
    with serving(config, receipt_delay=0.0, unbind_timeout=0.05) as served:
        assert served.smsc.receipts is None
        esme = Esme(bound_client(served.port))
        esme.submit(b"[nb:off/0] x", registered_delivery=1)
        esme.until(receipts=0, answers=1)
        assert esme.nothing_within(0.3)
        assert served.metric("nazbench_smsc_receipts_sent_total", stat="DELIVRD") == 0
    [line] = read_ledger(config.ledger_path)
    assert list(line) == SUBMIT_KEYS


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("DELIVRD=1,FOO=1", "unknown receipt state 'FOO'"),
        ("DELIVRD=-1", "finite number >= 0"),
        ("DELIVRD=nan", "finite number >= 0"),
        ("DELIVRD=x", "not a number"),
        ("DELIVRD", "is not STATE=WEIGHT"),
        ("DELIVRD=0,UNDELIV=0", "sum to more than 0"),
        ("DELIVRD=1,DELIVRD=2", "given twice"),
    ],
)
def test_bad_receipt_states(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        receipts.parse_states(text)


@pytest.mark.parametrize(
    ("user_data", "data_coding", "esm_class", "text"),
    [
        (b"short", 0, 0, b"short"),
        # naz's gsm0338: "[" is ESC "<"; an escape pair is one character and is not cut
        (b"\x1b<nb:r/1\x1b> 0123456789abc", 0, 0, b"\x1b<nb:r/1\x1b> 0123456789a"),
        (b"0123456789012345678\x1b<", 0, 0, b"0123456789012345678\x1b<"),
        ("[nb:r/2] été 0123456789".encode("utf-16-be"), 8, 0, b"[nb:r/2] ?t? 0123456"),
        (b"\x05\x00\x03\x01\x02\x01[nb:r/3] part", 0, 0x40, b"[nb:r/3] part"),  # UDH skipped
    ],
)
def test_text_field(user_data: bytes, data_coding: int, esm_class: int, text: bytes) -> None:
    sm = pdu.submit_sm_fields(
        pdu.encode_submit_sm(1, user_data, data_coding=data_coding, esm_class=esm_class)[16:]
    )
    assert receipts.first_chars(sm.user_data, sm.data_coding, sm.esm_class) == text


def test_default_states() -> None:
    assert receipts.parse_states(receipts.DEFAULT_STATES) == {
        "DELIVRD": 0.9,
        "UNDELIV": 0.05,
        "EXPIRED": 0.03,
        "REJECTD": 0.02,
    }


def test_cli_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    password = tmp_path / "password"
    password.write_text(PASSWORD)
    base = ["--password-file", str(password), "--ledger", str(tmp_path / "l.jsonl")]
    parser = make_parser()
    off = config_from_args(parser, parser.parse_args(base))
    assert (off.receipts, off.receipt_delay, off.receipt_states) == (
        False,
        1.0,
        receipts.DEFAULT_STATES,
    )
    assert (off.receipt_seed, off.receipt_retry, off.receipt_max_tries) == (0, 30.0, 3)
    on = config_from_args(
        parser,
        parser.parse_args(
            [
                *base,
                "--receipts",
                "--receipt-delay=0.5",
                "--receipt-states=DELIVRD=1",
                "--receipt-seed=4",
                "--receipt-retry=0",
                "--receipt-max-tries=1",
            ]
        ),
    )
    assert (on.receipts, on.receipt_delay, on.receipt_states) == (True, 0.5, "DELIVRD=1")
    assert (on.receipt_seed, on.receipt_retry, on.receipt_max_tries) == (4, 0.0, 1)
    for bad in (
        "--receipt-states=NOPE=1",
        "--receipt-delay=-1",
        "--receipt-max-tries=0",
        "--receipt-retry=x",
    ):
        with pytest.raises(SystemExit):
            parser.parse_args([*base, bad])
    assert "--receipt" in capsys.readouterr().err


def test_config_validation(config: SmscConfig) -> None:
    for field, value in (
        ("receipt_states", "X=1"),
        ("receipt_delay", -1.0),
        ("receipt_retry", -0.5),
        ("receipt_max_tries", 0),
    ):
        with pytest.raises(ValueError):
            SmscConfig(**{**config.__dict__, field: value}).validate()


def test_reconcile_tallies_the_receipts_of_the_smscs_own_ledger(config: SmscConfig) -> None:
    """The SMSC's receipt records, read back by reconcile: sent, resent, acked, never."""
    with receipts_on(config, receipt_retry=0.2, receipt_max_tries=2) as served:
        esme = Esme(bound_client(served.port))
        # the first receipt is answered ESME_RSYSERR, then accepted on its retry
        esme.client.set_message_received_handler(
            lambda pdu: esme.delivered.append(pdu) or (8 if len(esme.delivered) == 1 else 0)
        )
        for i in range(3):
            esme.submit(f"[nb:rc/{i}] acked".encode())
        esme.until(receipts=4, answers=3)
        wait_acked(served, 3)
        # the fourth message's receipt is read twice and never answered
        esme.submit(b"[nb:rc/3] never")
        unanswered = [esme.client.read_pdu() for _ in range(3)]
        assert [p.command for p in unanswered] == ["submit_sm_resp", "deliver_sm", "deliver_sm"]
        served.wait_for(lambda: served.metric("nazbench_smsc_receipts_abandoned_total") == 1)
    lines = read_ledger(config.ledger_path)
    result = reconcile({"run_id": "rc", "count": 4, "id_scheme": {"first_index": 0}}, lines)
    assert result.ok and result.delivered_once == 4
    got = result.to_dict()["receipts"]
    assert {k: got[k] for k in ("sent", "resent", "acked_once", "never_acked", "error_acks")} == {
        "sent": 4,
        "resent": 2,
        "acked_once": 3,
        "never_acked": 1,
        "error_acks": 1,
    }
    latency = got["ack_latency_s"]
    assert latency["n"] == 3
    assert 0.15 < latency["max"] < 2.0  # the nacked one waited one retry interval
    assert latency["p50"] < 0.15
