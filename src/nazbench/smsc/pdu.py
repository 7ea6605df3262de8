"""SMPP 3.4 PDU codec: constants, framing, and the few PDUs the mock SMSC speaks.

Everything here is pure (bytes in, values out) so it is cheap to test and to reuse from
clients (tests, the capacity benchmark). Decoders raise :class:`PduError` carrying the
SMPP ``command_status`` the SMSC should answer with; framing problems that make the rest
of the byte stream meaningless raise :class:`FramingError` instead.

Field limits are the SMPP 3.4 maxima *including* the terminating NUL (section 4).
"""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

HEADER = struct.Struct(">IIII")
HEADER_LENGTH = 16
DEFAULT_MAX_PDU_LENGTH = 64 * 1024

# --- command ids (section 5.1.2.1) ---------------------------------------------------
GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_RECEIVER_RESP = 0x80000001
BIND_TRANSMITTER = 0x00000002
BIND_TRANSMITTER_RESP = 0x80000002
QUERY_SM = 0x00000003
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
REPLACE_SM = 0x00000007
CANCEL_SM = 0x00000008
BIND_TRANSCEIVER = 0x00000009
BIND_TRANSCEIVER_RESP = 0x80000009
OUTBIND = 0x0000000B
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015
SUBMIT_MULTI = 0x00000021
ALERT_NOTIFICATION = 0x00000102
DATA_SM = 0x00000103

RESPONSE_BIT = 0x80000000

COMMAND_NAMES: dict[int, str] = {
    GENERIC_NACK: "generic_nack",
    BIND_RECEIVER: "bind_receiver",
    BIND_RECEIVER_RESP: "bind_receiver_resp",
    BIND_TRANSMITTER: "bind_transmitter",
    BIND_TRANSMITTER_RESP: "bind_transmitter_resp",
    QUERY_SM: "query_sm",
    SUBMIT_SM: "submit_sm",
    SUBMIT_SM_RESP: "submit_sm_resp",
    DELIVER_SM: "deliver_sm",
    DELIVER_SM_RESP: "deliver_sm_resp",
    UNBIND: "unbind",
    UNBIND_RESP: "unbind_resp",
    REPLACE_SM: "replace_sm",
    CANCEL_SM: "cancel_sm",
    BIND_TRANSCEIVER: "bind_transceiver",
    BIND_TRANSCEIVER_RESP: "bind_transceiver_resp",
    OUTBIND: "outbind",
    ENQUIRE_LINK: "enquire_link",
    ENQUIRE_LINK_RESP: "enquire_link_resp",
    SUBMIT_MULTI: "submit_multi",
    ALERT_NOTIFICATION: "alert_notification",
    DATA_SM: "data_sm",
}

BIND_COMMANDS: dict[int, str] = {
    BIND_TRANSCEIVER: "transceiver",
    BIND_TRANSMITTER: "transmitter",
    BIND_RECEIVER: "receiver",
}

# --- command_status values (section 5.1.3) -------------------------------------------
ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RALYBND = 0x05
ESME_RSYSERR = 0x08
ESME_RINVSRCADR = 0x0A
ESME_RINVDSTADR = 0x0B
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RMSGQFUL = 0x14
ESME_RINVSERTYP = 0x15
ESME_RINVSYSTYP = 0x53
ESME_RTHROTTLED = 0x58
ESME_RINVSCHED = 0x61
ESME_RINVEXPIRY = 0x62
ESME_RINVOPTPARSTREAM = 0xC0
ESME_RINVPARLEN = 0xC2
ESME_RUNKNOWNERR = 0xFF

STATUS_NAMES: dict[int, str] = {
    ESME_ROK: "ESME_ROK",
    ESME_RINVMSGLEN: "ESME_RINVMSGLEN",
    ESME_RINVCMDLEN: "ESME_RINVCMDLEN",
    ESME_RINVCMDID: "ESME_RINVCMDID",
    ESME_RINVBNDSTS: "ESME_RINVBNDSTS",
    ESME_RALYBND: "ESME_RALYBND",
    ESME_RSYSERR: "ESME_RSYSERR",
    ESME_RINVSRCADR: "ESME_RINVSRCADR",
    ESME_RINVDSTADR: "ESME_RINVDSTADR",
    ESME_RBINDFAIL: "ESME_RBINDFAIL",
    ESME_RINVPASWD: "ESME_RINVPASWD",
    ESME_RINVSYSID: "ESME_RINVSYSID",
    ESME_RMSGQFUL: "ESME_RMSGQFUL",
    ESME_RINVSERTYP: "ESME_RINVSERTYP",
    ESME_RINVSYSTYP: "ESME_RINVSYSTYP",
    ESME_RTHROTTLED: "ESME_RTHROTTLED",
    ESME_RINVSCHED: "ESME_RINVSCHED",
    ESME_RINVEXPIRY: "ESME_RINVEXPIRY",
    ESME_RINVOPTPARSTREAM: "ESME_RINVOPTPARSTREAM",
    ESME_RINVPARLEN: "ESME_RINVPARLEN",
    ESME_RUNKNOWNERR: "ESME_RUNKNOWNERR",
}


def status_name(status: int) -> str:
    """A readable name for ``status`` (``0x...`` for values without one)."""
    return STATUS_NAMES.get(status) or f"0x{status:08X}"


def command_name(command_id: int) -> str:
    """A readable name for ``command_id`` (``0x...`` for unknown ids)."""
    return COMMAND_NAMES.get(command_id) or f"0x{command_id:08X}"


# --- field limits (octets including the NUL) -------------------------------------------
MAX_SYSTEM_ID = 16
MAX_PASSWORD = 9
MAX_SYSTEM_TYPE = 13
MAX_ADDRESS_RANGE = 41
MAX_SERVICE_TYPE = 6
MAX_ADDR = 21
MAX_MESSAGE_ID = 65
MAX_SM_LENGTH = 254
TAG_MESSAGE_PAYLOAD = 0x0424
# esm_class bit 6 (GSM feature UDHI): the user data starts with a User Data Header.
ESM_CLASS_UDHI = 0x40


class FramingError(Exception):
    """The byte stream cannot be framed into PDUs any more (impossible command_length)."""


class PduError(Exception):
    """A framed PDU whose body is invalid; ``status`` is the command_status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Pdu(NamedTuple):
    """One framed PDU: the header fields and the raw body."""

    command_id: int
    command_status: int
    sequence_number: int
    body: bytes


class BindRequest(NamedTuple):
    system_id: str
    password: str
    system_type: str
    interface_version: int
    addr_ton: int
    addr_npi: int
    address_range: str


class SubmitSm(NamedTuple):
    service_type: bytes
    source_addr_ton: int
    source_addr_npi: int
    source_addr: bytes
    dest_addr_ton: int
    dest_addr_npi: int
    destination_addr: bytes
    esm_class: int
    protocol_id: int
    priority_flag: int
    schedule_delivery_time: bytes
    validity_period: bytes
    registered_delivery: int
    replace_if_present_flag: int
    data_coding: int
    sm_default_msg_id: int
    short_message: bytes
    tlvs: dict[int, bytes]

    @property
    def payload(self) -> bytes:
        """The user data: ``short_message``, or the ``message_payload`` TLV when it is empty."""
        if self.short_message:
            return self.short_message
        return self.tlvs.get(TAG_MESSAGE_PAYLOAD, b"")

    @property
    def text(self) -> bytes:
        """:attr:`payload` without its User Data Header (see :func:`skip_udh`)."""
        return skip_udh(self.payload, self.esm_class)


def skip_udh(user_data: bytes, esm_class: int) -> bytes:
    """``user_data`` after its User Data Header when ``esm_class`` has UDHI (0x40).

    The header's first octet is its length (UDHL) without itself, so UDHL + 1 octets are
    skipped; e.g. the 6-octet ``05 00 03 ref total part`` of a concatenated part. A
    header longer than the data leaves nothing (b"").
    """
    if esm_class & ESM_CLASS_UDHI and user_data:
        return user_data[user_data[0] + 1 :]
    return user_data


# --- framing ---------------------------------------------------------------------------


def frame_length(buf: bytes | bytearray, pos: int, max_length: int) -> int:
    """command_length of the PDU starting at ``pos`` (needs 4 bytes available).

    Raises FramingError when it is below the header size or above ``max_length``.
    """
    (length,) = struct.unpack_from(">I", buf, pos)
    if length < HEADER_LENGTH:
        raise FramingError(f"command_length {length} < {HEADER_LENGTH}")
    if length > max_length:
        raise FramingError(f"command_length {length} > maximum {max_length}")
    return length


def split_pdus(
    buf: bytes | bytearray, max_length: int = DEFAULT_MAX_PDU_LENGTH
) -> tuple[list[Pdu], int]:
    """Every complete PDU at the start of ``buf`` and how many bytes they take.

    Raises FramingError on an impossible command_length.
    """
    pdus: list[Pdu] = []
    pos = 0
    end = len(buf)
    while end - pos >= 4:
        length = frame_length(buf, pos, max_length)
        if end - pos < length:
            break
        _, command_id, status, seq = HEADER.unpack_from(buf, pos)
        pdus.append(Pdu(command_id, status, seq, bytes(buf[pos + HEADER_LENGTH : pos + length])))
        pos += length
    return pdus, pos


def encode_pdu(command_id: int, sequence_number: int, body: bytes = b"", status: int = 0) -> bytes:
    """A complete PDU: header plus ``body``."""
    return HEADER.pack(HEADER_LENGTH + len(body), command_id, status, sequence_number) + body


def decode_pdu(data: bytes, max_length: int = DEFAULT_MAX_PDU_LENGTH) -> Pdu:
    """Exactly one PDU from ``data``; FramingError if the length does not match."""
    if len(data) < HEADER_LENGTH:
        raise FramingError(f"{len(data)} bytes is shorter than a PDU header")
    length = frame_length(data, 0, max_length)
    if length != len(data):
        raise FramingError(f"command_length {length} but {len(data)} bytes given")
    _, command_id, status, seq = HEADER.unpack_from(data, 0)
    return Pdu(command_id, status, seq, bytes(data[HEADER_LENGTH:]))


# --- field helpers ---------------------------------------------------------------------


def _cstring(body: bytes, pos: int, limit: int, name: str, status: int) -> tuple[bytes, int]:
    """The C-octet string at ``pos`` (without NUL) and the position after its NUL."""
    end = body.find(b"\x00", pos, pos + limit)
    if end < 0:
        if body.find(b"\x00", pos) < 0:
            raise PduError(ESME_RINVCMDLEN, f"{name}: no NUL terminator before end of PDU")
        raise PduError(status, f"{name}: longer than {limit - 1} octets")
    return body[pos:end], end + 1


def _ascii(value: bytes, name: str, status: int) -> str:
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise PduError(status, f"{name}: not ASCII") from None


def _octets(body: bytes, pos: int, count: int, name: str) -> int:
    if pos + count > len(body):
        raise PduError(ESME_RINVCMDLEN, f"PDU ends inside {name}")
    return pos + count


def _cstr(value: str | bytes) -> bytes:
    raw = value.encode("ascii") if isinstance(value, str) else value
    if b"\x00" in raw:
        raise ValueError("C-octet strings cannot contain NUL")
    return raw + b"\x00"


def parse_tlvs(body: bytes, pos: int) -> dict[int, bytes]:
    """Optional parameters from ``pos`` to the end of ``body``."""
    tlvs: dict[int, bytes] = {}
    end = len(body)
    while pos < end:
        if end - pos < 4:
            raise PduError(ESME_RINVOPTPARSTREAM, "truncated optional parameter header")
        tag, length = struct.unpack_from(">HH", body, pos)
        pos += 4
        if pos + length > end:
            raise PduError(ESME_RINVPARLEN, f"optional parameter 0x{tag:04X} overruns the PDU")
        tlvs[tag] = body[pos : pos + length]
        pos += length
    return tlvs


# --- bind ------------------------------------------------------------------------------


def parse_bind(body: bytes) -> BindRequest:
    """The mandatory fields of bind_transceiver / bind_transmitter / bind_receiver."""
    system_id, pos = _cstring(body, 0, MAX_SYSTEM_ID, "system_id", ESME_RINVSYSID)
    password, pos = _cstring(body, pos, MAX_PASSWORD, "password", ESME_RINVPASWD)
    system_type, pos = _cstring(body, pos, MAX_SYSTEM_TYPE, "system_type", ESME_RINVSYSTYP)
    _octets(body, pos, 3, "interface_version/addr_ton/addr_npi")
    interface_version, addr_ton, addr_npi = body[pos], body[pos + 1], body[pos + 2]
    address_range, pos = _cstring(
        body, pos + 3, MAX_ADDRESS_RANGE, "address_range", ESME_RINVCMDLEN
    )
    # SMPP 3.4 binds carry no optional parameters, but 5.0 clients may add some; accept
    # them only if they are well formed.
    parse_tlvs(body, pos)
    return BindRequest(
        _ascii(system_id, "system_id", ESME_RINVSYSID),
        _ascii(password, "password", ESME_RINVPASWD),
        _ascii(system_type, "system_type", ESME_RINVSYSTYP),
        interface_version,
        addr_ton,
        addr_npi,
        _ascii(address_range, "address_range", ESME_RINVCMDLEN),
    )


def encode_bind(
    command_id: int,
    sequence_number: int,
    system_id: str,
    password: str,
    *,
    system_type: str = "",
    interface_version: int = 0x34,
    addr_ton: int = 0,
    addr_npi: int = 0,
    address_range: str = "",
) -> bytes:
    """A bind_* PDU, laid out exactly as naz 0.8.1 lays out its bind_transceiver."""
    body = (
        _cstr(system_id)
        + _cstr(password)
        + _cstr(system_type)
        + bytes((interface_version, addr_ton, addr_npi))
        + _cstr(address_range)
    )
    return encode_pdu(command_id, sequence_number, body)


# --- submit_sm -------------------------------------------------------------------------


def parse_submit_sm(body: bytes) -> SubmitSm:
    """The mandatory fields (and any optional parameters) of a submit_sm body."""
    service_type, pos = _cstring(body, 0, MAX_SERVICE_TYPE, "service_type", ESME_RINVSERTYP)
    _octets(body, pos, 2, "source_addr_ton/npi")
    src_ton, src_npi = body[pos], body[pos + 1]
    source_addr, pos = _cstring(body, pos + 2, MAX_ADDR, "source_addr", ESME_RINVSRCADR)
    _octets(body, pos, 2, "dest_addr_ton/npi")
    dst_ton, dst_npi = body[pos], body[pos + 1]
    destination_addr, pos = _cstring(body, pos + 2, MAX_ADDR, "destination_addr", ESME_RINVDSTADR)
    _octets(body, pos, 3, "esm_class/protocol_id/priority_flag")
    esm_class, protocol_id, priority_flag = body[pos], body[pos + 1], body[pos + 2]
    schedule, pos = _cstring(body, pos + 3, 17, "schedule_delivery_time", ESME_RINVSCHED)
    if len(schedule) not in (0, 16):
        raise PduError(ESME_RINVSCHED, "schedule_delivery_time must be empty or 16 octets")
    validity, pos = _cstring(body, pos, 17, "validity_period", ESME_RINVEXPIRY)
    if len(validity) not in (0, 16):
        raise PduError(ESME_RINVEXPIRY, "validity_period must be empty or 16 octets")
    _octets(body, pos, 5, "registered_delivery..sm_length")
    registered, replace, data_coding, default_id, sm_length = body[pos : pos + 5]
    short_message, tlvs = _user_data(body, pos + 5, sm_length)
    return SubmitSm(
        service_type,
        src_ton,
        src_npi,
        source_addr,
        dst_ton,
        dst_npi,
        destination_addr,
        esm_class,
        protocol_id,
        priority_flag,
        schedule,
        validity,
        registered,
        replace,
        data_coding,
        default_id,
        short_message,
        tlvs,
    )


def _user_data(body: bytes, pos: int, sm_length: int) -> tuple[bytes, dict[int, bytes]]:
    """short_message (``sm_length`` octets at ``pos``) and the optional parameters after it."""
    if sm_length > MAX_SM_LENGTH:
        raise PduError(ESME_RINVMSGLEN, f"sm_length {sm_length} > {MAX_SM_LENGTH}")
    end = pos + sm_length
    size = len(body)
    if end > size:
        raise PduError(ESME_RINVMSGLEN, f"sm_length {sm_length} but only {size - pos} octets left")
    return body[pos:end], (parse_tlvs(body, end) if end < size else {})


# The mandatory part of a valid submit_sm body, for the hot path: one C-level match
# instead of a dozen Python-level checks. Groups 1 and 2 are the source and destination
# address (ton, npi, address, NUL), group 3 esm_class; the match ends after sm_length.
_SUBMIT_SM_RE = re.compile(
    rb"[^\x00]{0,5}\x00"  # service_type
    rb"(..[^\x00]{0,20}\x00)"  # source_addr_ton, source_addr_npi, source_addr
    rb"(..[^\x00]{0,20}\x00)"  # dest_addr_ton, dest_addr_npi, destination_addr
    rb"(.).."  # esm_class (group 3), protocol_id, priority_flag
    rb"(?:[^\x00]{16})?\x00(?:[^\x00]{16})?\x00"  # schedule_delivery_time, validity_period
    rb".....",  # registered_delivery, replace_if_present, data_coding, default_msg_id, sm_length
    re.DOTALL,
)


class SubmitSmFields(NamedTuple):
    """What the SMSC uses of a submit_sm, read by :func:`submit_sm_fields`."""

    esm_class: int
    registered_delivery: int
    data_coding: int
    user_data: bytes  # short_message, or message_payload when it is empty; UDH included
    source: bytes  # source_addr_ton, source_addr_npi, source_addr and its NUL, as sent
    destination: bytes  # dest_addr_ton, dest_addr_npi, destination_addr and its NUL


def address(ton: int, npi: int, addr: bytes) -> bytes:
    """An address as a PDU carries it: ton, npi, the C-octet string (see SubmitSmFields)."""
    return bytes((ton, npi)) + _cstr(addr)


def submit_sm_fields(body: bytes) -> SubmitSmFields:
    """The fields the SMSC needs of a submit_sm body, validated like parse_submit_sm.

    This is the SMSC's per-message path (answer, ledger, receipt): one regular
    expression match. Anything the match rejects goes through :func:`parse_submit_sm`,
    which raises the precise error (or, for a body the pattern cannot express, reads it).
    """
    match = _SUBMIT_SM_RE.match(body)
    if match is None:
        sm = parse_submit_sm(body)  # raises for every body the pattern rejects
        return SubmitSmFields(
            sm.esm_class,
            sm.registered_delivery,
            sm.data_coding,
            sm.payload,
            address(sm.source_addr_ton, sm.source_addr_npi, sm.source_addr),
            address(sm.dest_addr_ton, sm.dest_addr_npi, sm.destination_addr),
        )
    pos = match.end()
    end = pos + body[pos - 1]
    if end == len(body) and end - pos <= MAX_SM_LENGTH:  # the common case: no TLVs
        user_data = body[pos:end]
    else:
        short_message, tlvs = _user_data(body, pos, body[pos - 1])
        if short_message or not tlvs:
            user_data = short_message
        else:
            user_data = tlvs.get(TAG_MESSAGE_PAYLOAD, b"")
    source, destination, esm_class = match.group(1, 2, 3)
    return SubmitSmFields(
        esm_class[0], body[pos - 5], body[pos - 3], user_data, source, destination
    )


def encode_submit_sm(
    sequence_number: int,
    short_message: bytes,
    *,
    source_addr: str = "255700111222",
    destination_addr: str = "255799000888",
    data_coding: int = 0,
    service_type: str = "CMT",
    esm_class: int = 0b00000011,
    registered_delivery: int = 0b00000001,
    ton_npi: int = 1,
) -> bytes:
    """A submit_sm PDU with naz 0.8.1's default field values."""
    if len(short_message) > MAX_SM_LENGTH:
        raise ValueError(f"short_message is {len(short_message)} octets; max {MAX_SM_LENGTH}")
    body = (
        _cstr(service_type)
        + bytes((ton_npi, ton_npi))
        + _cstr(source_addr)
        + bytes((ton_npi, ton_npi))
        + _cstr(destination_addr)
        + bytes((esm_class, 0, 0))
        + b"\x00\x00"  # schedule_delivery_time, validity_period: NULL
        + bytes((registered_delivery, 0, data_coding, 0, len(short_message)))
        + short_message
    )
    return encode_pdu(SUBMIT_SM, sequence_number, body)


def encode_submit_sm_resp(sequence_number: int, message_id: str, status: int = 0) -> bytes:
    """submit_sm_resp; per SMPP 3.4 4.4.2 the body is omitted when status is non-zero."""
    body = _cstr(message_id) if status == ESME_ROK else b""
    return encode_pdu(SUBMIT_SM_RESP, sequence_number, body, status)


def parse_submit_sm_resp(body: bytes) -> str:
    """The message_id of a submit_sm_resp body ("" when the body is absent)."""
    if not body:
        return ""
    message_id, _ = _cstring(body, 0, MAX_MESSAGE_ID, "message_id", ESME_RINVCMDLEN)
    return message_id.decode("ascii")


# --- short_message text ------------------------------------------------------------------

# GSM 03.38 default alphabet, unpacked (one septet per octet), as naz 0.8.1's "gsm0338"
# codec produces it. naz's default encoding is gsm0338 with data_coding 0, so "[" arrives
# as ESC "<" and "_" as 0x11: the bytes must be decoded before looking for a msg_id.
_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;"
    "<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäö"
    "ñüà"
)
_GSM_EXTENSION = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
_GSM_TABLE = {i: c for i, c in enumerate(_GSM_BASIC)} | {i: "\ufffd" for i in range(128, 256)}


# Octet -> ASCII octet for the GSM characters that are ASCII; "?" for the rest. Enough to
# read a msg_id prefix at C speed without decoding the whole message.
_GSM_TO_ASCII = bytes(
    ord(c) if i < 128 and " " <= c <= "~" else ord("?")
    for i, c in enumerate(_GSM_BASIC + "?" * (256 - len(_GSM_BASIC)))
)


def gsm_ascii_head(data: bytes, start: int, end: int) -> bytes:
    """``data[start:end]`` with GSM octets mapped to ASCII ('?' where not ASCII)."""
    return data[start:end].translate(_GSM_TO_ASCII)


def gsm_decode(data: bytes) -> str:
    """Decode unpacked GSM 03.38 septets (invalid octets become U+FFFD)."""
    if 0x1B not in data:
        return data.decode("latin-1").translate(_GSM_TABLE)
    out: list[str] = []
    escaped = False
    for octet in data:
        if escaped:
            out.append(_GSM_EXTENSION.get(octet, "\ufffd"))
            escaped = False
        elif octet == 0x1B:
            escaped = True
        else:
            out.append(_GSM_BASIC[octet] if octet < 128 else "\ufffd")
    return "".join(out)


def short_message_text(data: bytes, data_coding: int) -> str | bytes:
    """``data`` decoded per ``data_coding`` where the coding is a text one, else ``data``."""
    if data_coding == 0:
        return gsm_decode(data)
    if data_coding == 8:
        return data[: len(data) & ~1].decode("utf-16-be", "replace")
    if data_coding in (1, 3):
        return data.decode("latin-1")
    return data


# --- deliver_sm (delivery receipts) ----------------------------------------------------

TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_MESSAGE_STATE = 0x0427
# esm_class bits 5..2 = 0001: the short_message is an SMSC delivery receipt.
ESM_CLASS_DELIVERY_RECEIPT = 0x04


def encode_tlv(tag: int, value: bytes) -> bytes:
    """One optional parameter: tag, length, value."""
    return struct.pack(">HH", tag, len(value)) + value


def deliver_sm_body(
    short_message: bytes,
    *,
    source: bytes = b"\x00\x00\x00",
    destination: bytes = b"\x00\x00\x00",
    esm_class: int = 0,
    data_coding: int = 0,
    tlvs: bytes = b"",
) -> bytes:
    """A deliver_sm body (SMPP 3.4 4.6.1): service_type, schedule/validity empty,
    protocol_id, priority_flag, registered_delivery, replace_if_present and
    sm_default_msg_id 0; ``source`` and ``destination`` already encoded (see
    :func:`address`; a submit_sm's own, from :func:`submit_sm_fields`, as they are) and
    ``tlvs`` too (see :func:`encode_tlv`)."""
    if len(short_message) > MAX_SM_LENGTH:
        raise ValueError(f"short_message is {len(short_message)} octets; max {MAX_SM_LENGTH}")
    return b"".join(
        (
            b"\x00",  # service_type
            source,
            destination,
            bytes((esm_class, 0, 0)),  # esm_class, protocol_id, priority_flag
            b"\x00\x00",  # schedule_delivery_time, validity_period
            bytes((0, 0, data_coding, 0, len(short_message))),
            short_message,
            tlvs,
        )
    )
