"""The PDU codec: round trips, what it rejects, and naz 0.8.1's own bytes."""

from __future__ import annotations

import asyncio
import random
import struct

import naz
import pytest

from nazbench import msgid
from nazbench.smsc import pdu
from nazbench.smsc.server import extract_msg_id


def test_bind_round_trip() -> None:
    raw = pdu.encode_bind(
        pdu.BIND_TRANSMITTER, 7, "sys", "pw", system_type="VMS", addr_ton=1, address_range="25"
    )
    frame = pdu.decode_pdu(raw)
    assert (frame.command_id, frame.command_status, frame.sequence_number) == (
        pdu.BIND_TRANSMITTER,
        0,
        7,
    )
    assert pdu.parse_bind(frame.body) == pdu.BindRequest("sys", "pw", "VMS", 0x34, 1, 0, "25")


def test_submit_sm_round_trip() -> None:
    raw = pdu.encode_submit_sm(9, b"[nb:r/1] hi", source_addr="123", data_coding=1)
    frame = pdu.decode_pdu(raw)
    sm = pdu.parse_submit_sm(frame.body)
    assert frame.sequence_number == 9
    assert sm.source_addr == b"123"
    assert sm.destination_addr == b"255799000888"
    assert sm.service_type == b"CMT"
    assert sm.data_coding == 1
    assert sm.short_message == b"[nb:r/1] hi"
    assert sm.payload == b"[nb:r/1] hi"
    assert sm.tlvs == {}


def test_message_payload_tlv_is_the_payload_when_sm_length_is_zero() -> None:
    raw = pdu.encode_submit_sm(3, b"")
    tlv = struct.pack(">HH", pdu.TAG_MESSAGE_PAYLOAD, 9) + b"[nb:r/2] "
    sm = pdu.parse_submit_sm(pdu.decode_pdu(raw).body + tlv)
    assert sm.payload == b"[nb:r/2] "


def test_submit_sm_resp_round_trip_and_error_has_no_body() -> None:
    ok = pdu.decode_pdu(pdu.encode_submit_sm_resp(5, "abc-1"))
    assert ok.command_id == pdu.SUBMIT_SM_RESP
    assert pdu.parse_submit_sm_resp(ok.body) == "abc-1"
    err = pdu.decode_pdu(pdu.encode_submit_sm_resp(5, "abc-1", pdu.ESME_RTHROTTLED))
    assert err.command_status == pdu.ESME_RTHROTTLED
    assert err.body == b""


def test_split_pdus_keeps_a_partial_tail() -> None:
    stream = b"".join(pdu.encode_submit_sm(i, b"x" * i) for i in range(1, 6))
    cut = len(stream) - 3
    frames, used = pdu.split_pdus(stream[:cut])
    assert [f.sequence_number for f in frames] == [1, 2, 3, 4]
    assert stream[used:cut] == stream[used:][:-3]


@pytest.mark.parametrize(
    ("length", "match"),
    [(0, "< 16"), (15, "< 16"), (pdu.DEFAULT_MAX_PDU_LENGTH + 1, "> maximum"), (2**32 - 1, "max")],
)
def test_impossible_command_length_is_a_framing_error(length: int, match: str) -> None:
    data = struct.pack(">IIII", length, pdu.ENQUIRE_LINK, 0, 1)
    with pytest.raises(pdu.FramingError, match=match):
        pdu.split_pdus(data)


GOOD_SUBMIT = pdu.decode_pdu(pdu.encode_submit_sm(1, b"hello")).body
GOOD_BIND = pdu.decode_pdu(pdu.encode_bind(pdu.BIND_TRANSCEIVER, 1, "sys", "pw")).body


@pytest.mark.parametrize(
    ("parser", "data", "status"),
    [
        # a C-octet string that never ends
        (pdu.parse_submit_sm, b"CMT", pdu.ESME_RINVCMDLEN),
        (pdu.parse_bind, b"sys\x00pw", pdu.ESME_RINVCMDLEN),
        # body ends in the middle of the mandatory fields
        (pdu.parse_submit_sm, GOOD_SUBMIT[:20], pdu.ESME_RINVCMDLEN),
        (pdu.parse_bind, GOOD_BIND[:-4], pdu.ESME_RINVCMDLEN),
        # sm_length says more than the PDU holds
        (pdu.parse_submit_sm, GOOD_SUBMIT[:-6] + b"\x09" + b"hello", pdu.ESME_RINVMSGLEN),
        # sm_length over 254
        (pdu.parse_submit_sm, GOOD_SUBMIT[:-6] + b"\xff" + b"x" * 255, pdu.ESME_RINVMSGLEN),
        # sm_length says less: the leftover is not a valid optional parameter
        (pdu.parse_submit_sm, GOOD_SUBMIT[:-6] + b"\x02" + b"hello", pdu.ESME_RINVOPTPARSTREAM),
        # fields over their SMPP maximum
        (pdu.parse_submit_sm, b"SERVICE\x00" + GOOD_SUBMIT[4:], pdu.ESME_RINVSERTYP),
        (
            pdu.parse_submit_sm,
            pdu.decode_pdu(pdu.encode_submit_sm(1, b"x", source_addr="1" * 21)).body,
            pdu.ESME_RINVSRCADR,
        ),
        (
            pdu.parse_submit_sm,
            pdu.decode_pdu(pdu.encode_submit_sm(1, b"x", destination_addr="1" * 21)).body,
            pdu.ESME_RINVDSTADR,
        ),
        (pdu.parse_bind, b"s" * 16 + b"\x00pw\x00\x00\x34\x00\x00\x00", pdu.ESME_RINVSYSID),
        (pdu.parse_bind, b"sys\x00" + b"p" * 9 + b"\x00\x00\x34\x00\x00\x00", pdu.ESME_RINVPASWD),
        (pdu.parse_bind, b"sys\x00\xffp\x00\x00\x34\x00\x00\x00", pdu.ESME_RINVPASWD),
    ],
    ids=[
        "unterminated-service_type",
        "unterminated-password",
        "submit-truncated",
        "bind-truncated",
        "sm_length-too-big",
        "sm_length-over-254",
        "sm_length-too-small",
        "service_type-too-long",
        "source_addr-too-long",
        "destination_addr-too-long",
        "system_id-too-long",
        "password-too-long",
        "password-not-ascii",
    ],
)
def test_invalid_bodies_are_rejected_with_a_status(parser, data: bytes, status: int) -> None:
    with pytest.raises(pdu.PduError) as info:
        parser(data)
    assert info.value.status == status, info.value.reason


def test_schedule_delivery_time_must_be_empty_or_16_octets() -> None:
    body = GOOD_SUBMIT
    # schedule_delivery_time is the first NUL after esm_class/protocol_id/priority_flag
    marker = body.index(b"\x03\x00\x00\x00\x00")
    bad = body[: marker + 3] + b"0000\x00" + body[marker + 4 :]
    with pytest.raises(pdu.PduError) as info:
        pdu.parse_submit_sm(bad)
    assert info.value.status == pdu.ESME_RINVSCHED


def test_names() -> None:
    assert pdu.status_name(0x58) == "ESME_RTHROTTLED"
    assert pdu.status_name(0x1234) == "0x00001234"
    assert pdu.command_name(pdu.SUBMIT_SM) == "submit_sm"
    assert pdu.command_name(0x99) == "0x00000099"


def _naz_submit_sm_pdu(text: str, encoding: str) -> bytes:
    """The exact bytes naz 0.8.1 puts on the wire for a submit_sm."""

    async def build() -> bytes:
        client = naz.Client(
            smsc_host="127.0.0.1",
            smsc_port=2775,
            system_id="nazbench",
            password="pw",
            broker=naz.broker.SimpleBroker(),
            logger=naz.log.SimpleLogger("naz.test", level="CRITICAL"),
        )
        msg = naz.protocol.SubmitSM(
            short_message=text,
            source_addr="255700111222",
            destination_addr="255799000888",
            log_id="x",
            encoding=encoding,
        )
        return await client._build_submit_sm_pdu(msg)

    return asyncio.run(build())


@pytest.mark.parametrize("encoding", ["gsm0338", "ascii", "latin_1", "ucs2"])
def test_naz_submit_sm_parses_and_its_msg_id_is_read_back(encoding: str) -> None:
    text = msgid.encode_body(msgid.make_id("run_1.a-b", 41), "hello")
    frame = pdu.decode_pdu(_naz_submit_sm_pdu(text, encoding))
    assert frame.command_id == pdu.SUBMIT_SM
    sm = pdu.parse_submit_sm(frame.body)
    assert extract_msg_id(sm.payload, sm.data_coding) == "run_1.a-b/41"


def test_naz_default_gsm0338_escapes_the_brackets() -> None:
    # the reason the SMSC decodes GSM 03.38 before looking for the id
    text = msgid.encode_body("r_1/0", "x")
    sm = pdu.parse_submit_sm(pdu.decode_pdu(_naz_submit_sm_pdu(text, "gsm0338")).body)
    assert sm.data_coding == 0
    assert sm.short_message.startswith(b"\x1b<nb:r\x111/0\x1b> ")
    assert msgid.decode_body(sm.short_message) is None
    assert pdu.gsm_decode(sm.short_message) == text


@pytest.mark.parametrize(
    ("payload", "coding", "expected"),
    [
        (b"[nb:r/1] hi", 1, "r/1"),
        (b"[nb:r/1] hi", 0, "r/1"),
        (b"\x1b<nb:r/1\x1b> hi", 0, "r/1"),
        (b"\x1b<nb:r/1\x1b>hi", 0, None),
        (b"\x1b<nb:r/1 hi", 0, None),
        ("[nb:r/7] hi".encode("utf-16-be"), 8, "r/7"),
        (b"hello", 0, None),
        (b"", 0, None),
        (b"\x1b<nb:r/1\x1b> hi", 4, None),
    ],
)
def test_extract_msg_id(payload: bytes, coding: int, expected: str | None) -> None:
    assert extract_msg_id(payload, coding) == expected


def test_gsm_decode_extension_and_invalid_octets() -> None:
    assert pdu.gsm_decode(b"\x00\x1b(\x1b)\x1be\x11") == "@{}€_"
    assert pdu.gsm_decode(b"a\x80") == "a\ufffd"
    assert pdu.gsm_decode(b"a\x1b\x01") == "a\ufffd"


def test_fast_submit_sm_path_agrees_with_the_full_parser() -> None:
    """submit_sm_fields (the SMSC's hot path) accepts, reads and rejects exactly like
    parse_submit_sm, on valid bodies and on thousands of random corruptions of them."""
    rng = random.Random(20240601)
    bases = [
        pdu.decode_pdu(pdu.encode_submit_sm(1, b"[nb:r/1] hello")).body,
        pdu.decode_pdu(pdu.encode_submit_sm(1, b"[nb:r/2] hi", registered_delivery=1)).body,
        pdu.decode_pdu(pdu.encode_submit_sm(1, b"", source_addr="")).body
        + struct.pack(">HH", pdu.TAG_MESSAGE_PAYLOAD, 3)
        + b"abc",
        pdu.decode_pdu(pdu.encode_submit_sm(1, b"y" * 254, data_coding=8)).body,
        pdu.decode_pdu(
            pdu.encode_submit_sm(1, b"\x05\x00\x03\x07\x02\x01[nb:r/1] a", esm_class=0x43)
        ).body,
    ]
    checked = 0
    for base in bases:
        for _ in range(3000):
            data = bytearray(base)
            for _ in range(rng.randint(1, 3)):
                op = rng.random()
                if op < 0.4 and data:
                    data[rng.randrange(len(data))] = rng.choice(
                        (0, 1, 0x41, 0xFF, rng.randrange(256))
                    )
                elif op < 0.7 and data:
                    del data[rng.randrange(len(data))]
                elif op < 0.85:
                    data.insert(rng.randrange(len(data) + 1), rng.choice((0, 0x41)))
                else:
                    data = data[: rng.randrange(len(data) + 1)]
            body = bytes(data)
            try:
                sm = pdu.parse_submit_sm(body)
                expected: object = (
                    sm.esm_class,
                    sm.registered_delivery,
                    sm.data_coding,
                    sm.payload,
                    bytes((sm.source_addr_ton, sm.source_addr_npi)) + sm.source_addr + b"\0",
                    bytes((sm.dest_addr_ton, sm.dest_addr_npi)) + sm.destination_addr + b"\0",
                )
            except pdu.PduError as exc:
                expected = exc.status
            try:
                got: object = tuple(pdu.submit_sm_fields(body))
            except pdu.PduError as exc:
                got = exc.status
            assert got == expected, body
            checked += 1
    assert checked == 15000


@pytest.mark.parametrize(
    ("payload", "coding", "esm_class", "expected"),
    [
        (b"\x05\x00\x03\x07\x02\x01[nb:r/1] hi", 1, 0x40, "r/1"),
        (b"\x05\x00\x03\x07\x02\x01\x1b<nb:r/1\x1b> hi", 0, 0x43, "r/1"),
        (b"\x05\x00\x03\x07\x02\x01" + "[nb:r/2] hi".encode("utf-16-be"), 8, 0x40, "r/2"),
        (b"\x06\x08\x04\x00\x07\x02\x01[nb:r/3] hi", 1, 0x40, "r/3"),  # 16-bit reference
        (b"\x05\x00\x03\x07\x02\x02more text", 1, 0x40, None),  # a later part: no id
        (b"\x05\x00\x03\x07\x02\x01[nb:r/1] hi", 1, 0x03, None),  # no UDHI: not skipped
        (b"[nb:r/1] hi", 1, 0x03, "r/1"),
        (b"\x40", 1, 0x40, None),  # UDHL beyond the data
        (b"", 1, 0x40, None),
    ],
)
def test_extract_msg_id_skips_the_udh_when_udhi_is_set(
    payload: bytes, coding: int, esm_class: int, expected: str | None
) -> None:
    assert extract_msg_id(payload, coding, esm_class) == expected


def test_submit_sm_text_property_skips_the_udh() -> None:
    frame = pdu.encode_submit_sm(1, b"\x05\x00\x03\x07\x02\x01[nb:r/1] a", esm_class=0x40)
    sm = pdu.parse_submit_sm(pdu.decode_pdu(frame).body)
    assert sm.text == b"[nb:r/1] a"
    assert pdu.skip_udh(b"\x05\x00\x03\x07\x02\x01[nb", 0x00) == b"\x05\x00\x03\x07\x02\x01[nb"
