"""SMPP 3.4 conformance of the mock SMSC, checked with a second implementation: smpplib.

The SMSC runs in-process on its own event loop in a thread (127.0.0.1, port 0); smpplib's
blocking client is the peer. Raw-socket cases (garbage the client would never send) are
written with our codec but every answer is decoded by smpplib's parser.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import smpplib.client
import smpplib.command
import smpplib.consts
import smpplib.exceptions
import smpplib.gsm
import smpplib.smpp

from nazbench.smsc import pdu
from nazbench.smsc.server import Smsc, SmscConfig

from .conftest import PASSWORD, SYSTEM_ID, make_smsc, metric, read_ledger

TIMER = 0.2  # the session timers of the timer tests, seconds
# Upper bounds of those tests: generous, as CI runs them beside molecule and the e2e on two
# cores; "not the long wait" cases wait UNBIND_WAIT, well above it.
SLOW = 3.0
UNBIND_WAIT = 6.0


class Served:
    """An SMSC on its own event loop in a background thread."""

    def __init__(self, config: SmscConfig) -> None:
        self.smsc: Smsc = make_smsc(config)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 5.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop_in_background(self) -> Any:
        """Start the server's shutdown; returns its concurrent future."""
        return asyncio.run_coroutine_threadsafe(self.smsc.stop(), self.loop)

    def __enter__(self) -> Served:
        self._thread.start()
        self.call(self.smsc.start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.call(self.smsc.stop(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()

    @property
    def port(self) -> int:
        return self.smsc.port

    def metric(self, name: str, **labels: str) -> float:
        return metric(self.smsc, name, **labels)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 1.5) -> None:
        """Poll ``predicate`` (e.g. a metric reaching a value) until it holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "condition not reached in time"
            time.sleep(0.005)


@contextlib.contextmanager
def serving(config: SmscConfig, **changes: Any) -> Iterator[Served]:
    with Served(dataclasses.replace(config, **changes)) as served:
        yield served


def new_client(port: int) -> smpplib.client.Client:
    client = smpplib.client.Client("127.0.0.1", port, timeout=2, allow_unknown_opt_params=True)
    client.connect()
    return client


def bound_client(port: int) -> smpplib.client.Client:
    client = new_client(port)
    resp = client.bind_transceiver(system_id=SYSTEM_ID, password=PASSWORD)
    assert resp.command == "bind_transceiver_resp"
    assert resp.status == smpplib.consts.SMPP_ESME_ROK
    assert resp.system_id == b"nazbench-smsc"
    return client


def submit(client: smpplib.client.Client, **fields: Any) -> smpplib.command.Command:
    """Send one submit_sm with smpplib and return smpplib's parse of the answer."""
    sent = client.send_message(
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="255700111222",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="255799000888",
        **fields,
    )
    resp = client.read_pdu()
    assert resp.command == "submit_sm_resp"
    assert resp.sequence == sent.sequence
    return resp


def answer_unbind(client: smpplib.client.Client, unbind: smpplib.command.Command) -> None:
    resp = smpplib.smpp.make_pdu("unbind_resp", client=client)
    resp.sequence = unbind.sequence
    client.send_pdu(resp)


def closed_by_server(client: smpplib.client.Client) -> bool:
    """True when the next read finds the connection closed by the SMSC."""
    try:
        client.read_pdu()
    except smpplib.exceptions.ConnectionError:
        return True
    return False


def drop(client: smpplib.client.Client) -> None:
    if client._socket is not None:
        client._socket.close()
        client._socket = None
    client.state = smpplib.consts.SMPP_CLIENT_STATE_CLOSED


class Raw:
    """A blocking socket that sends our bytes and decodes answers with smpplib."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        self._parser = smpplib.client.Client("x", 1, allow_unknown_opt_params=True)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise EOFError(f"closed after {len(data)} of {size} bytes")
            data += chunk
        return data

    def read(self) -> smpplib.command.Command:
        head = self._exact(4)
        raw = head + self._exact(struct.unpack(">I", head)[0] - 4)
        return smpplib.smpp.parse_pdu(raw, client=self._parser, allow_unknown_opt_params=True)

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


def answer(resp: smpplib.command.Command) -> tuple[str, int, int]:
    return resp.command, resp.status, resp.sequence


# -- a well-behaved peer ---------------------------------------------------------------


def test_bind_plain_submit_and_unbind(config: SmscConfig) -> None:
    with serving(config) as served:
        client = bound_client(served.port)
        resp = submit(client, short_message=b"[nb:lib/0] hello", data_coding=0)
        assert resp.status == smpplib.consts.SMPP_ESME_ROK
        message_id = resp.message_id.decode()
        enquire = smpplib.smpp.make_pdu("enquire_link", client=client)
        client.send_pdu(enquire)
        assert client.read_pdu().command == "enquire_link_resp"
        unbound = client.unbind()
        assert (unbound.command, unbound.status) == ("unbind_resp", 0)
        assert closed_by_server(client)
        drop(client)
        served.wait_for(lambda: served.metric("nazbench_smsc_active_sessions") == 0)
        assert served.metric("nazbench_smsc_sessions_closed_total", reason="unbind") == 1
    [line] = read_ledger(config.ledger_path)
    assert (line["msg_id"], line["message_id"], line["command_status"]) == ("lib/0", message_id, 0)


@pytest.mark.parametrize(
    ("text", "coding", "parts"),
    [
        ("[nb:lib/1] " + "x" * 300, smpplib.consts.SMPP_ENCODING_DEFAULT, 3),  # GSM, [ = ESC <
        ("[nb:lib/2] \u2603 " + "y" * 100, smpplib.consts.SMPP_ENCODING_ISO10646, 2),  # UCS2
    ],
    ids=["gsm0338", "ucs2"],
)
def test_concatenated_parts_with_udh(
    config: SmscConfig, text: str, coding: int, parts: int
) -> None:
    encoded, encoding, esm_class = smpplib.gsm.make_parts(text)
    assert (len(encoded), encoding, esm_class) == (parts, coding, smpplib.consts.SMPP_GSMFEAT_UDHI)
    assert encoded[0][:3] == b"\x05\x00\x03"  # the UDH comes first, the id after it
    with serving(config) as served:
        client = bound_client(served.port)
        for part in encoded:
            resp = submit(client, short_message=part, data_coding=encoding, esm_class=esm_class)
            assert resp.status == 0
        client.unbind()
        drop(client)
    lines = read_ledger(config.ledger_path)
    # the id is in the first part only: the others have none (no duplicate for reconcile)
    assert [x["msg_id"] for x in lines] == [text[4:9]] + [None] * (parts - 1)
    assert all(x["command_status"] == 0 for x in lines)


def test_message_payload_with_and_without_udh(config: SmscConfig) -> None:
    with serving(config) as served:
        client = bound_client(served.port)
        plain = b"[nb:lib/3] " + b"p" * 200
        assert submit(client, message_payload=plain, data_coding=1).status == 0
        udh = b"\x05\x00\x03\x01\x02\x01[nb:lib/4] " + b"q" * 200
        resp = submit(client, message_payload=udh, data_coding=1, esm_class=0x40)
        assert resp.status == 0
        client.unbind()
        drop(client)
    assert [x["msg_id"] for x in read_ledger(config.ledger_path)] == ["lib/3", "lib/4"]


def test_submit_before_bind_is_refused_with_rinvbndsts(config: SmscConfig) -> None:
    with serving(config) as served:
        client = new_client(served.port)
        client.state = smpplib.consts.SMPP_CLIENT_STATE_BOUND_TRX  # make smpplib send it
        resp = submit(client, short_message=b"[nb:lib/5] x")
        assert resp.status == smpplib.consts.SMPP_ESME_RINVBNDSTS
        drop(client)


# -- garbage: items 1 and 2 of issue 12 -------------------------------------------------


@pytest.mark.parametrize("length", [0, 8, 15, 2**31, pdu.DEFAULT_MAX_PDU_LENGTH + 1])
def test_bad_command_length_gets_generic_nack_rinvcmdlen_then_close(
    config: SmscConfig, length: int
) -> None:
    with serving(config) as served:
        raw = Raw(served.port)
        raw.send(struct.pack(">IIII", length, pdu.SUBMIT_SM, 0, 4242) + b"rest of the stream")
        nack = raw.read()
        assert answer(nack) == ("generic_nack", smpplib.consts.SMPP_ESME_RINVCMDLEN, 4242)
        assert raw.closed_by_server()
        raw.close()
        served.wait_for(
            lambda: served.metric("nazbench_smsc_sessions_closed_total", reason="malformed") == 1
        )
        assert (
            served.metric("nazbench_smsc_generic_nacks_total", command_status="ESME_RINVCMDLEN")
            == 1
        )


def test_bad_command_length_without_a_full_header_is_nacked_with_sequence_0(
    config: SmscConfig,
) -> None:
    with serving(config) as served:
        raw = Raw(served.port)
        raw.send(struct.pack(">I", 8) + b"junk")
        assert answer(raw.read()) == ("generic_nack", smpplib.consts.SMPP_ESME_RINVCMDLEN, 0)
        assert raw.closed_by_server()
        raw.close()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"CMT", pdu.ESME_RINVCMDLEN),  # service_type without its NUL
        (b"CMT\x00\x01\x01", pdu.ESME_RINVCMDLEN),  # ends inside source_addr
        (b"CMT\x00\x01\x01" + b"1" * 30 + b"\x00", pdu.ESME_RINVSRCADR),  # source_addr > 20
        (  # sm_length 50 but 2 octets follow
            b"CMT\x00\x01\x01a\x00\x01\x01b\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x32ab",
            pdu.ESME_RINVMSGLEN,
        ),
    ],
    ids=["no-nul", "truncated", "long-source-addr", "sm-length"],
)
def test_malformed_submit_sm_gets_submit_sm_resp_with_the_error(
    config: SmscConfig, body: bytes, status: int
) -> None:
    with serving(config) as served:
        client = bound_client(served.port)
        client._socket.sendall(pdu.encode_pdu(pdu.SUBMIT_SM, 900, body))
        resp = client.read_pdu()
        assert answer(resp) == ("submit_sm_resp", status, 900)
        # the session lives on
        assert submit(client, short_message=b"[nb:lib/6] ok").status == 0
        client.unbind()
        drop(client)
        name = pdu.status_name(status)
        invalid = "nazbench_smsc_invalid_pdus_total"
        assert served.metric(invalid, command="submit_sm", command_status=name) == 1
        assert served.metric("nazbench_smsc_submit_sm_total", command_status=name) == 1
    # a body without a readable msg_id is not in the ledger (nothing to reconcile it with)
    assert [x["msg_id"] for x in read_ledger(config.ledger_path)] == ["lib/6"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"nazbench", pdu.ESME_RINVCMDLEN),  # system_id without its NUL
        (b"nazbench\x00s3cret\x00\x00", pdu.ESME_RINVCMDLEN),  # ends before interface_version
        (b"x" * 20 + b"\x00s3cret\x00\x00\x34\x00\x00\x00", pdu.ESME_RINVSYSID),
        (b"nazbench\x00" + b"p" * 12 + b"\x00\x00\x34\x00\x00\x00", pdu.ESME_RINVPASWD),
    ],
    ids=["no-nul", "truncated", "long-system-id", "long-password"],
)
def test_malformed_bind_gets_bind_resp_with_the_error(
    config: SmscConfig, body: bytes, status: int
) -> None:
    with serving(config) as served:
        raw = Raw(served.port)
        raw.send(pdu.encode_pdu(pdu.BIND_TRANSCEIVER, 31, body))
        resp = raw.read()
        assert answer(resp) == ("bind_transceiver_resp", status, 31)
        # still open, still unbound: a good bind works
        raw.send(pdu.encode_bind(pdu.BIND_TRANSCEIVER, 32, SYSTEM_ID, PASSWORD))
        assert answer(raw.read()) == ("bind_transceiver_resp", 0, 32)
        raw.close()
        result = "malformed"
        assert served.metric("nazbench_smsc_binds_total", mode="transceiver", result=result) == 1


@pytest.mark.parametrize("command_id", [0x00000099, pdu.QUERY_SM, pdu.DATA_SM, 0x7FFFFFFF])
def test_unknown_command_gets_generic_nack_rinvcmdid(config: SmscConfig, command_id: int) -> None:
    with serving(config) as served:
        client = bound_client(served.port)
        client._socket.sendall(pdu.encode_pdu(command_id, 77, b"\x00\x00"))
        assert answer(client.read_pdu()) == (
            "generic_nack",
            smpplib.consts.SMPP_ESME_RINVCMDID,
            77,
        )
        assert submit(client, short_message=b"[nb:lib/7] ok").status == 0
        client.unbind()
        drop(client)


# -- timers -------------------------------------------------------------------------------


def test_session_init_timeout_closes_an_unbound_session(config: SmscConfig) -> None:
    with serving(config, session_init_timeout=TIMER) as served:
        start = time.monotonic()
        idle = Raw(served.port)
        refused = Raw(served.port)  # a failed bind does not stop the timer
        refused.send(pdu.encode_bind(pdu.BIND_TRANSCEIVER, 2, SYSTEM_ID, "wrong"))
        assert answer(refused.read()) == ("bind_transceiver_resp", pdu.ESME_RINVPASWD, 2)
        client = bound_client(served.port)  # bound in time: kept
        assert idle.closed_by_server()
        assert refused.closed_by_server()
        assert TIMER * 0.9 <= time.monotonic() - start < SLOW
        served.wait_for(
            lambda: served.metric("nazbench_smsc_sessions_closed_total", reason="init_timeout") == 2
        )
        time.sleep(TIMER)
        assert submit(client, short_message=b"[nb:lib/8] x").status == 0
        client.unbind()
        drop(client)
        for raw in (idle, refused):
            raw.close()


def test_inactivity_timeout_sends_unbind_and_closes_on_unbind_resp(config: SmscConfig) -> None:
    with serving(config, inactivity_timeout=TIMER, unbind_timeout=UNBIND_WAIT) as served:
        client = bound_client(served.port)
        # PDUs keep it alive past the timer
        for _ in range(4):
            time.sleep(TIMER / 2)
            client.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=client))
            assert client.read_pdu().command == "enquire_link_resp"
        start = time.monotonic()
        unbind = client.read_pdu()  # smpplib receives the SMSC's unbind
        assert (unbind.command, unbind.status) == ("unbind", 0)
        assert TIMER * 0.8 <= time.monotonic() - start < TIMER + SLOW
        answer_unbind(client, unbind)
        assert closed_by_server(client)
        assert time.monotonic() - start < SLOW  # on the unbind_resp, not the UNBIND_WAIT
        drop(client)
        served.wait_for(
            lambda: served.metric("nazbench_smsc_sessions_closed_total", reason="inactivity") == 1
        )
        assert served.metric("nazbench_smsc_unbinds_sent_total", reason="inactivity") == 1
        assert served.metric("nazbench_smsc_bound_sessions") == 0


def test_inactivity_unbind_without_answer_closes_after_unbind_timeout(config: SmscConfig) -> None:
    with serving(config, inactivity_timeout=TIMER, unbind_timeout=TIMER) as served:
        client = bound_client(served.port)
        start = time.monotonic()
        assert client.read_pdu().command == "unbind"
        assert closed_by_server(client)  # no unbind_resp sent
        assert 2 * TIMER * 0.9 <= time.monotonic() - start < SLOW
        drop(client)


def test_timers_are_off_by_default(config: SmscConfig) -> None:
    assert (config.session_init_timeout, config.inactivity_timeout) == (0, 0)
    with serving(config) as served:
        idle = Raw(served.port)
        client = bound_client(served.port)
        client._socket.settimeout(TIMER * 2)
        with pytest.raises(TimeoutError):
            client.read_pdu()  # no unbind comes
        idle.sock.settimeout(0.05)
        assert not idle.closed_by_server()
        idle.close()
        drop(client)


# -- shutdown ---------------------------------------------------------------------------


def test_shutdown_unbinds_bound_sessions_after_answering_what_is_queued(
    config: SmscConfig,
) -> None:
    with serving(config, response_delay_ms=5000, unbind_timeout=UNBIND_WAIT) as served:
        client = bound_client(served.port)
        sent = client.send_message(
            source_addr="1", destination_addr="2", short_message=b"[nb:lib/9] x"
        )
        unbound = Raw(served.port)  # connected, never bound: just closed
        served.wait_for(lambda: served.metric("nazbench_smsc_ledger_lines_written_total") == 0)
        time.sleep(0.05)
        start = time.monotonic()
        stopping = served.stop_in_background()
        resp = client.read_pdu()  # the delayed answer first ...
        assert answer(resp) == ("submit_sm_resp", 0, sent.sequence)
        unbind = client.read_pdu()  # ... then the unbind
        assert unbind.command == "unbind"
        assert unbound.closed_by_server()
        answer_unbind(client, unbind)
        assert closed_by_server(client)
        stopping.result(3)
        assert time.monotonic() - start < SLOW  # closed on the unbind_resp
        drop(client)
        unbound.close()
        assert served.metric("nazbench_smsc_unbinds_sent_total", reason="shutdown") == 1
        assert served.metric("nazbench_smsc_sessions_closed_total", reason="shutdown") == 2
    assert [x["msg_id"] for x in read_ledger(config.ledger_path)] == ["lib/9"]


def test_shutdown_closes_a_silent_client_after_unbind_timeout(config: SmscConfig) -> None:
    with serving(config, unbind_timeout=TIMER) as served:
        client = bound_client(served.port)
        start = time.monotonic()
        stopping = served.stop_in_background()
        assert client.read_pdu().command == "unbind"
        assert closed_by_server(client)
        stopping.result(3)
        assert TIMER * 0.9 <= time.monotonic() - start < SLOW
        drop(client)


# -- logging of connections without a PDU (port probes) --------------------------------


def _session_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "nazbench.smsc" and r.msg.startswith("session")]


def test_connection_without_a_byte_is_logged_at_debug_and_counted(
    config: SmscConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="nazbench.smsc")
    with serving(config) as served:
        closed = "nazbench_smsc_sessions_closed_total"
        for _ in range(3):  # a port probe: connect, close
            socket.create_connection(("127.0.0.1", served.port), timeout=2).close()
        served.wait_for(lambda: served.metric(closed, reason="peer") == 3)
        # the counter moves just before the log line is written, in the server's thread
        served.wait_for(lambda: len(_session_records(caplog)) >= 6)
        probes = _session_records(caplog)
        assert len(probes) == 6  # opened + closed, each
        assert {r.levelno for r in probes} == {logging.DEBUG}
        assert served.metric("nazbench_smsc_sessions_without_pdu_total") == 3
        caplog.clear()

        raw = Raw(served.port)  # a session that sends a PDU keeps its INFO lines
        raw.send(pdu.encode_pdu(pdu.ENQUIRE_LINK, 5))
        assert answer(raw.read()) == ("enquire_link_resp", 0, 5)
        raw.close()
        served.wait_for(lambda: served.metric(closed, reason="peer") == 4)

        def info_lines() -> list[str]:
            return [r.getMessage() for r in _session_records(caplog) if r.levelno == logging.INFO]

        served.wait_for(lambda: len(info_lines()) >= 2)
        info = info_lines()
        assert len(info) == 2
        assert "opened from 127.0.0.1:" in info[0]
        assert "closed (peer)" in info[1]
        assert served.metric("nazbench_smsc_sessions_without_pdu_total") == 3


# -- the listen backlog -----------------------------------------------------------------


def test_backlog_is_passed_to_the_listening_socket(
    config: SmscConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    original = asyncio.base_events.BaseEventLoop.create_server

    async def spy(self: asyncio.AbstractEventLoop, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["backlog"])
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_server", spy)
    with serving(config):
        pass
    with serving(config, backlog=4096):
        pass
    assert seen == [1024, 4096]
    with pytest.raises(ValueError, match="backlog"):
        make_smsc(dataclasses.replace(config, backlog=0))
