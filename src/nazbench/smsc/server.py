"""The mock SMSC: an asyncio SMPP 3.4 server that answers fast and records what it answered.

Each TCP connection is a :class:`Session` (an ``asyncio.Protocol``). A read is parsed as
far as complete PDUs go; the answers to all of them are written to the ledger (for
submit_sm) and then to the socket with one ``write`` each. Bytes of an incomplete PDU wait
in the session's buffer for the next read.

With a response delay, a read's answers are queued and released ``delay`` after they
arrived, in order, by one timer per session; other sessions are not held up.

SMPP 3.4 conformance of the error paths (section 4.3.1 and 5.1.3):

- an impossible ``command_length`` (< 16 or > ``max_pdu_length``) gets a generic_nack
  ESME_RINVCMDLEN (with the PDU's sequence_number when its 16-octet header has arrived,
  else 0), then the session is closed: the rest of the stream cannot be framed;
- an unknown ``command_id`` gets a generic_nack ESME_RINVCMDID; the session lives on;
- a submit_sm or bind_* whose body cannot be decoded gets that command's own response
  (``command_id | 0x80000000``) with the decoder's status: ESME_RINVCMDLEN when the
  body ends inside a field or a C-string has no NUL, ESME_RINVMSGLEN for a bad
  sm_length, the field's own status for an over-long field (ESME_RINVSYSID,
  ESME_RINVPASWD, ESME_RINVSRCADR, ...), ESME_RINVOPTPARSTREAM / ESME_RINVPARLEN for
  broken optional parameters. Such a submit_sm gets no ledger line (there is no
  msg_id to read); it is counted in ``nazbench_smsc_invalid_pdus_total``.

Timers (0 = off): a session that is not bound ``session_init_timeout`` seconds after it
connected is closed; a bound session that sends no PDU for ``inactivity_timeout``
seconds is sent an ``unbind``. An unbind the SMSC sends (also to every bound session on
shutdown) is followed by closing the session on its unbind_resp, or after
``unbind_timeout`` seconds without one.

Behaviour modes (:mod:`nazbench.smsc.modes`, set through the control channel of
:mod:`nazbench.smsc.control`; :meth:`Smsc.set_mode`) act on every session at once, from
its next read: ``throttle`` answers a fraction of submit_sm ESME_RTHROTTLED (as
``error_fraction`` does); ``slow`` delays every answer by ``delay_s`` through the response
delay queue (nothing overtakes what it holds, also after the mode ends); ``silent``
reads PDUs and answers none (a submit_sm read then is not accepted: no ledger line) and
holds delivery receipts until it ends; ``drop_resp`` accepts and records a drawn
submit_sm, sends the answers to the PDUs before it in the read, and closes the session
instead of sending its submit_sm_resp; ``unbind`` sends an unbind to every bound session
and to every session right after its bind_resp. The mode is back to ``normal`` at
shutdown, so a stop answers and unbinds as it always does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import random
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry

from nazbench.msgid import decode_body
from nazbench.smsc import pdu
from nazbench.smsc.control import MAX_PATH, ControlChannel, describe
from nazbench.smsc.ledger import Ledger, choose_boot_id
from nazbench.smsc.metrics import SmscMetrics
from nazbench.smsc.modes import MODES, NORMAL, Mode
from nazbench.smsc.receipts import DEFAULT_STATES, RECEIVING_MODES, ReceiptEngine, parse_states

log = logging.getLogger("nazbench.smsc")

_LENGTH = struct.Struct(">I")
_HEADER = pdu.HEADER
_SUBMIT_SM = pdu.SUBMIT_SM
_SUBMIT_SM_RESP = pdu.SUBMIT_SM_RESP
_TX_MODES = ("transceiver", "transmitter")
_UDHI = pdu.ESM_CLASS_UDHI
# With a response delay, a session may hold at most this many answers before the SMSC
# stops reading from it (TCP backpressure instead of unbounded memory).
MAX_DELAYED_ANSWERS = 100_000
_ESC_OPEN = b"\x1b<nb:"  # "[nb:" in naz's default gsm0338 encoding
_ESC_CLOSE = b"\x1b>"  # "]"
_UCS2_OPEN = "[nb:".encode("utf-16-be")


def extract_msg_id(payload: bytes, data_coding: int, esm_class: int = 0) -> str | None:
    """The benchmark msg_id at the start of a submit_sm's user data, if there is one.

    Handles naz 0.8.1's default encoding (GSM 03.38, data_coding 0), where ``[`` and ``]``
    are escape sequences, as well as ASCII/Latin-1 and UCS2. With UDHI in ``esm_class``
    the User Data Header is skipped first, so the part of a concatenated message that
    starts with the id carries it (the other parts carry none: their ledger lines have
    a null msg_id). The id itself is read by :func:`nazbench.msgid.decode_body`.
    """
    if esm_class & _UDHI:
        payload = pdu.skip_udh(payload, esm_class)
    if payload[:4] == b"[nb:":
        return decode_body(payload)
    if data_coding == 0 and payload[:5] == _ESC_OPEN:
        close = payload.find(_ESC_CLOSE, 5, 100)
        if close < 0 or payload[close + 2 : close + 3] != b" ":
            return None
        return decode_body(b"[" + pdu.gsm_ascii_head(payload, 2, close) + b"] ")
    if data_coding == 8 and payload[:8] == _UCS2_OPEN:
        text = pdu.short_message_text(payload[:256], 8)
        return decode_body(text) if isinstance(text, str) else None
    return None


@dataclass
class SmscConfig:
    """Settings of one SMSC instance."""

    ledger_path: Path
    password: str = field(repr=False)
    system_id: str = "nazbench"
    host: str = "127.0.0.1"
    port: int = 2775
    response_delay_ms: float = 0.0
    error_fraction: float = 0.0
    error_status: int = pdu.ESME_RTHROTTLED
    seed: int | None = None
    max_pdu_length: int = pdu.DEFAULT_MAX_PDU_LENGTH
    smsc_system_id: str = "nazbench-smsc"
    shutdown_grace: float = 5.0
    backlog: int = 1024
    session_init_timeout: float = 0.0
    inactivity_timeout: float = 0.0
    unbind_timeout: float = 1.0
    # delivery receipts (see nazbench.smsc.receipts); off by default
    receipts: bool = False
    receipt_delay: float = 1.0
    receipt_states: str = DEFAULT_STATES
    receipt_seed: int = 0
    receipt_retry: float = 30.0
    receipt_max_tries: int = 3
    # Unix socket of the control channel (nazbench.smsc.control); None = no channel
    control_socket: Path | None = None

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        checks = [
            (0 <= self.port <= 65535, f"port must be 0-65535, got {self.port}"),
            (self.response_delay_ms >= 0, "response_delay_ms must be >= 0"),
            (0.0 <= self.error_fraction <= 1.0, "error_fraction must be within [0, 1]"),
            (0 < self.error_status <= 0xFFFFFFFF, "error_status must be a non-zero status"),
            (self.max_pdu_length >= 64, "max_pdu_length must be >= 64"),
            (1 <= self.backlog <= 65535, f"backlog must be 1-65535, got {self.backlog}"),
            (0 <= self.session_init_timeout < 86400, "session_init_timeout must be 0-86400 s"),
            (0 <= self.inactivity_timeout < 86400, "inactivity_timeout must be 0-86400 s"),
            (0 < self.unbind_timeout <= 60, "unbind_timeout must be within (0, 60] s"),
            (_is_cstring(self.system_id, pdu.MAX_SYSTEM_ID), "system_id must be 1-15 ASCII"),
            (_is_cstring(self.password, pdu.MAX_PASSWORD, 0), "password must be 0-8 ASCII"),
            (_is_cstring(self.smsc_system_id, pdu.MAX_SYSTEM_ID), "smsc_system_id: 1-15 ASCII"),
        ]
        control = self.control_socket
        checks += [
            (0 <= self.receipt_delay < 86400, "receipt_delay must be 0-86400 s"),
            (0 <= self.receipt_retry < 86400, "receipt_retry must be 0-86400 s"),
            (1 <= self.receipt_max_tries <= 100, "receipt_max_tries must be 1-100"),
            (
                control is None or 0 < len(os.fsencode(control)) <= MAX_PATH,
                f"control_socket must be a path of 1-{MAX_PATH} bytes",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        parse_states(self.receipt_states)


def _is_cstring(value: str, limit: int, minimum: int = 1) -> bool:
    return value.isascii() and "\x00" not in value and minimum <= len(value) < limit


@dataclass
class _Pending:
    """Answers of one read waiting for the response delay."""

    due: float
    responses: list[bytes]
    records: list[tuple[int, str | None, str | None, int]]
    close_reason: str | None
    # (submit_sm fields, message_id, msg_id) of accepted submits; only with receipts on
    receipts: list[tuple[pdu.SubmitSmFields, str, str | None]] | None = None


class Smsc:
    """The server: owns the listening socket, the ledger, the RNG and the id counter."""

    def __init__(self, config: SmscConfig, metrics: SmscMetrics | None = None) -> None:
        config.validate()
        self.config = config
        self.metrics = metrics if metrics is not None else SmscMetrics(_private_registry())
        self.ledger = Ledger(config.ledger_path)
        self.rng = random.Random(config.seed)  # a seeded fault injector, not crypto
        self.sessions: set[Session] = set()
        self.stopping = False
        self.boot_id = 0
        self.boot_hex = ""
        self.next_message_id = 0
        self._session_counter = 0
        self._server: asyncio.base_events.Server | None = None
        self._port: int | None = None
        self._session_gone: dict[Session, asyncio.Future[None]] = {}
        self.receipts = ReceiptEngine(self) if config.receipts else None
        # The behaviour mode (see set_mode) and what it means for the sessions, read by
        # each session once per read.
        self.mode: Mode = NORMAL
        self.error_fraction = config.error_fraction
        self.error_status = config.error_status
        self.drop_fraction = 0.0  # drop_resp
        self.slow_delay = 0.0  # slow: every answer delayed by this many seconds
        self.silent = False
        self.unbinding = False  # unbind: every session that binds is sent an unbind
        path = config.control_socket
        self.control = ControlChannel(Path(path), self) if path is not None else None

    @property
    def port(self) -> int:
        """The TCP port actually listened on (useful with port 0)."""
        assert self._port is not None, "server not started"
        return self._port

    async def start(self) -> None:
        """Open the ledger and start listening."""
        self.boot_id = choose_boot_id(self.config.ledger_path)
        self.boot_hex = format(self.boot_id, "x")
        self.ledger.open()
        self.ledger.start()
        loop = asyncio.get_running_loop()
        try:
            if self.control is not None:
                await self.control.start()
            self._server = await loop.create_server(
                self._new_session,
                self.config.host,
                self.config.port,
                reuse_address=True,
                backlog=self.config.backlog,
            )
        except BaseException:
            if self.control is not None:
                await self.control.stop()
            await self.ledger.aclose()
            raise
        self._port = self._server.sockets[0].getsockname()[1]
        log.info(
            "listening on %s:%d (system_id=%s boot_id=%s delay_ms=%s error_fraction=%s "
            "error_status=%s seed=%s backlog=%d session_init_timeout=%s inactivity_timeout=%s "
            "ledger=%s)",
            self.config.host,
            self.port,
            self.config.system_id,
            self.boot_hex,
            self.config.response_delay_ms,
            self.config.error_fraction,
            pdu.status_name(self.config.error_status),
            self.config.seed,
            self.config.backlog,
            self.config.session_init_timeout,
            self.config.inactivity_timeout,
            self.config.ledger_path,
        )
        if self.receipts is not None:
            config = self.config
            log.info(
                "delivery receipts on (delay=%s s states=%s seed=%s retry=%s s max_tries=%d)",
                config.receipt_delay,
                config.receipt_states,
                config.receipt_seed,
                config.receipt_retry,
                config.receipt_max_tries,
            )
        if self.control is not None:
            log.info("control channel on %s (mode %s)", self.control.path, describe(self.mode))

    def _new_session(self) -> Session:
        self._session_counter += 1
        session = Session(self, f"{self.boot_hex}.{self._session_counter}")
        self.sessions.add(session)
        self._session_gone[session] = asyncio.get_running_loop().create_future()
        return session

    def _session_ended(self, session: Session) -> None:
        self.sessions.discard(session)
        gone = self._session_gone.pop(session, None)
        if gone is not None and not gone.done():
            gone.set_result(None)
        if self.receipts is not None:
            self.receipts.session_ended(session)

    async def stop(self) -> None:
        """Stop accepting, answer what is queued, unbind bound sessions and close them (on
        their unbind_resp or after ``unbind_timeout``), fsync and close the ledger."""
        if self.stopping:
            return
        self.stopping = True
        if self._server is not None:
            self._server.close()
        if self.control is not None:
            await self.control.stop()
        if self.mode != NORMAL:  # the shutdown answers and unbinds as it always does
            log.info("control: mode normal at shutdown (was %s)", describe(self.mode))
            self._apply_mode(NORMAL)
        if self.receipts is not None:
            self.receipts.stop()
        waiting = list(self._session_gone.values())
        for session in list(self.sessions):
            session.shutdown()
        if waiting:
            _done, not_done = await asyncio.wait(waiting, timeout=self.config.shutdown_grace)
            if not_done:
                for session in list(self.sessions):
                    session.abort()
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), self.config.shutdown_grace)
        await self.ledger.aclose()
        log.info("stopped: %d ledger lines written by this process", self.ledger.lines_written)

    # -- behaviour modes (the control channel) -------------------------------------------

    def set_mode(self, mode: Mode) -> Mode:
        """Put ``mode`` in force for every session at once; return the mode it replaced."""
        previous = self.mode
        log.info("control: mode %s (was %s)", describe(mode), describe(previous))
        self._apply_mode(mode)
        if mode.name == "unbind":
            for session in list(self.sessions):
                session.unbind("unbind_mode")
        if previous.name == "silent" and mode.name != "silent" and self.receipts is not None:
            # the receipts that waited while no session could receive them
            for session in list(self.sessions):
                if session.can_receive:
                    self.receipts.bound(session)
        return previous

    def _apply_mode(self, mode: Mode) -> None:
        config, name = self.config, mode.name
        self.mode = mode
        throttle = name == "throttle"
        self.error_fraction = mode.get("fraction") if throttle else config.error_fraction
        self.error_status = pdu.ESME_RTHROTTLED if throttle else config.error_status
        self.drop_fraction = mode.get("fraction") if name == "drop_resp" else 0.0
        self.slow_delay = mode.get("delay_s") if name == "slow" else 0.0
        self.silent = name == "silent"
        self.unbinding = name == "unbind"
        gauge = self.metrics.mode
        for label in MODES:
            gauge.labels(label).set(1 if label == name else 0)

    async def __aenter__(self) -> Smsc:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _private_registry() -> CollectorRegistry:
    return CollectorRegistry()


class Session(asyncio.Protocol):
    """One ESME connection."""

    def __init__(self, server: Smsc, session_id: str) -> None:
        self.server = server
        self.session_id = session_id
        self.bound_mode: str | None = None
        self.system_id: str | None = None  # set on a successful bind
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self._buf = bytearray()
        self._closing = False
        self._close_reason = "peer"
        self._nacks_sent = 0
        self._pending: deque[_Pending] = deque()
        self._pending_records = 0
        self._paused_by: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._delay = server.config.response_delay_ms / 1000.0
        self._max_len = server.config.max_pdu_length
        self._session_json = f'"{session_id}"'
        # False until the first byte arrives: a connection that never sends one (a port
        # probe) is logged at DEBUG only.
        self._active = False
        self._opened_at = 0.0
        self._idle_after = server.config.inactivity_timeout
        self._last_pdu = 0.0  # loop time of the last read with a PDU (inactivity timer)
        self._init_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._unbind_timer: asyncio.TimerHandle | None = None
        self._unbind_reason: str | None = None  # set once the SMSC has sent an unbind
        self._out_seq = 0  # sequence_number of PDUs the SMSC originates

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        metrics = self.server.metrics
        metrics.sessions_opened.inc()
        metrics.active_sessions.inc()
        loop = asyncio.get_running_loop()
        self._opened_at = loop.time()
        log.debug("session %s opened from %s", self.session_id, self.peer)
        if self.server.stopping:
            self._close("shutdown")
            return
        init_timeout = self.server.config.session_init_timeout
        if init_timeout:
            self._init_timer = loop.call_later(init_timeout, self._init_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._timer, self._init_timer, self._idle_timer, self._unbind_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._init_timer = self._idle_timer = self._unbind_timer = None
        if self._buf and not self._closing:
            self._malformed("truncated", f"connection ended inside a PDU ({len(self._buf)} bytes)")
            self._closing = True
            self._close_reason = "malformed"
        metrics = self.server.metrics
        metrics.active_sessions.dec()
        if self.bound_mode is not None:
            metrics.bound_sessions.dec()
        reason = self._close_reason if self._closing else ("error" if exc else "peer")
        metrics.sessions_closed.labels(reason).inc()
        dropped = sum(len(p.records) for p in self._pending)
        self._pending.clear()
        if not self._active:
            # connected and left without a byte (a port probe): DEBUG, and counted
            metrics.sessions_without_pdu.inc()
        log.log(
            logging.INFO if self._active else logging.DEBUG,
            "session %s from %s closed (%s%s%s)",
            self.session_id,
            self.peer,
            reason,
            f": {exc}" if exc else "",
            f"; {dropped} delayed submit_sm answers not sent" if dropped else "",
        )
        self.server._session_ended(self)

    def eof_received(self) -> bool:
        if self._pending and not self._closing:
            # half-closed (naz writes EOF after its unbind): send what is queued first
            self._closing = True
            self._close_reason = "peer"
            self._pending[-1].close_reason = "peer"
            return True
        return False

    def pause_writing(self) -> None:
        # the peer is not reading its answers: stop reading its requests
        self._set_paused("writer", True)

    def resume_writing(self) -> None:
        self._set_paused("writer", False)

    def _set_paused(self, why: str, paused: bool) -> None:
        """Read from the peer only while neither the socket nor the delay queue is full."""
        if paused:
            self._paused_by.add(why)
        else:
            self._paused_by.discard(why)
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._paused_by:
            if transport.is_reading():
                transport.pause_reading()
        elif not transport.is_reading():
            transport.resume_reading()

    # -- the hot path --------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:  # noqa: PLR0912, PLR0915
        if self._closing:
            return
        if not self._active:
            self._first_data()
        if self._buf:
            self._buf += data
            buf = bytes(self._buf)  # one copy per read; every slice below is then bytes
            self._buf.clear()
        else:
            buf = data
        server = self.server
        if server.silent:
            self._unanswered(buf)
            return
        end = len(buf)
        pos = 0
        max_len = self._max_len
        responses: list[bytes] = []
        records: list[tuple[int, str | None, str | None, int]] = []
        receipts: list[tuple[pdu.SubmitSmFields, str, str | None]] | None = (
            None if server.receipts is None else []
        )
        pdu_counts: dict[str, int] = {}
        submit_counts: dict[str, int] = {}
        nack_counts: dict[str, int] = {}
        n_submit = 0
        n_ok = 0
        close_reason: str | None = None
        unpack_length = _LENGTH.unpack_from
        unpack_header = _HEADER.unpack_from
        pack_header = _HEADER.pack
        append = responses.append
        record = records.append
        tx_bound = self.bound_mode in _TX_MODES
        error_fraction = server.error_fraction
        error_status = server.error_status
        drop_fraction = server.drop_fraction
        random_ = server.rng.random
        prefix = server.boot_hex + "-"
        next_id = server.next_message_id
        fields_of = pdu.submit_sm_fields
        acks: list[tuple[int, int]] = []

        while end - pos >= 4:
            length = unpack_length(buf, pos)[0]
            if length < 16 or length > max_len:
                # SMPP 3.4 4.3.1: generic_nack ESME_RINVCMDLEN, then the stream is lost
                close_reason = "malformed"
                self._malformed("bad_length", f"command_length {length} at offset {pos}")
                seq = unpack_header(buf, pos)[3] if end - pos >= 16 else 0
                exc = pdu.PduError(pdu.ESME_RINVCMDLEN, f"command_length {length}")
                append(self._nack(seq, exc, "bad command_length", nack_counts))
                break
            if end - pos < length:
                break
            _, command_id, _, seq = unpack_header(buf, pos)
            body = buf[pos + 16 : pos + length]
            pos += length

            if command_id == _SUBMIT_SM:
                n_submit += 1
                try:
                    fields = fields_of(body)
                except pdu.PduError as exc:
                    append(self._invalid(_SUBMIT_SM, seq, exc))
                    name = pdu.status_name(exc.status)
                    submit_counts[name] = submit_counts.get(name, 0) + 1
                    continue
                msg_id = extract_msg_id(fields[3], fields[2], fields[0])
                if tx_bound and not (error_fraction and random_() < error_fraction):
                    message_id = prefix + format(next_id, "x")
                    next_id += 1
                    n_ok += 1
                    record((seq, msg_id, message_id, 0))
                    if receipts is not None:
                        receipts.append((fields, message_id, msg_id))
                    if drop_fraction and random_() < drop_fraction:
                        # drop_resp: accepted and recorded, then closed before its resp
                        close_reason = "drop_resp"
                        break
                    mid = message_id.encode() + b"\x00"
                    append(pack_header(16 + len(mid), _SUBMIT_SM_RESP, 0, seq) + mid)
                else:
                    status = error_status if tx_bound else pdu.ESME_RINVBNDSTS
                    append(pack_header(16, _SUBMIT_SM_RESP, status, seq))
                    name = pdu.status_name(status)
                    submit_counts[name] = submit_counts.get(name, 0) + 1
                    record((seq, msg_id, None, status))
            elif command_id == pdu.ENQUIRE_LINK:
                pdu_counts["enquire_link"] = pdu_counts.get("enquire_link", 0) + 1
                if body:
                    exc = pdu.PduError(pdu.ESME_RINVCMDLEN, "enquire_link has a body")
                    append(self._nack(seq, exc, "enquire_link", nack_counts))
                else:
                    append(pack_header(16, pdu.ENQUIRE_LINK_RESP, 0, seq))
            elif command_id in pdu.BIND_COMMANDS:
                name = pdu.COMMAND_NAMES[command_id]
                pdu_counts[name] = pdu_counts.get(name, 0) + 1
                append(self._bind(command_id, seq, body))
                tx_bound = self.bound_mode in _TX_MODES
            elif command_id == pdu.UNBIND:
                pdu_counts["unbind"] = pdu_counts.get("unbind", 0) + 1
                status = 0 if self.bound_mode else pdu.ESME_RINVBNDSTS
                append(pack_header(16, pdu.UNBIND_RESP, status, seq))
                log.info("session %s unbind (%s)", self.session_id, pdu.status_name(status))
                close_reason = "unbind"
                break
            elif command_id & pdu.RESPONSE_BIT and command_id in pdu.COMMAND_NAMES:
                # deliver_sm_resp, enquire_link_resp, generic_nack, ...: nothing to answer
                name = pdu.COMMAND_NAMES[command_id]
                pdu_counts[name] = pdu_counts.get(name, 0) + 1
                if command_id == pdu.DELIVER_SM_RESP and receipts is not None:
                    acks.append((seq, unpack_header(buf, pos - length)[2]))
                elif command_id == pdu.UNBIND_RESP and self._unbind_reason is not None:
                    log.info("session %s unbind_resp received", self.session_id)
                    close_reason = self._unbind_reason
                    break
            else:
                name = pdu.COMMAND_NAMES.get(command_id, "unknown")
                pdu_counts[name] = pdu_counts.get(name, 0) + 1
                exc = pdu.PduError(pdu.ESME_RINVCMDID, f"unsupported command_id 0x{command_id:08X}")
                append(self._nack(seq, exc, name, nack_counts))

        server.next_message_id = next_id
        if acks:
            server.receipts.acks(self, acks)  # type: ignore[union-attr]
        if self._idle_after and pos:
            self._last_pdu = asyncio.get_running_loop().time()
        if close_reason is not None:
            self._closing = True
            self._close_reason = close_reason
            if close_reason == "drop_resp":
                server.metrics.responses_dropped.inc()
                log.info(
                    "session %s: drop_resp: submit_sm seq=%d accepted as %s, closing without "
                    "its submit_sm_resp",
                    self.session_id,
                    seq,
                    message_id,
                )
        elif pos < end:
            self._buf += memoryview(buf)[pos:]
        if n_submit:
            pdu_counts["submit_sm"] = n_submit
        if n_ok:
            submit_counts["ESME_ROK"] = n_ok
        server.metrics.add_counts(pdu_counts, submit_counts, nack_counts)
        if responses or close_reason:
            due = 0.0
            delay = server.slow_delay or (self._delay if records else 0.0)
            if delay:
                due = asyncio.get_running_loop().time() + delay
            self._enqueue(_Pending(due, responses, records, close_reason, receipts or None))

    # -- helpers -------------------------------------------------------------------------

    def _unanswered(self, buf: bytes) -> None:
        """Mode silent: read the complete PDUs of ``buf`` and answer none of them.

        A submit_sm read now is not accepted (no ledger line). The ESME's own answers
        count as always: a deliver_sm_resp acknowledges its receipt, an unbind_resp to the
        SMSC's unbind closes the session.
        """
        server = self.server
        end, pos = len(buf), 0
        received: dict[str, int] = {}
        unanswered: dict[str, int] = {}
        acks: list[tuple[int, int]] = []
        close_reason: str | None = None
        while end - pos >= 4:
            length = _LENGTH.unpack_from(buf, pos)[0]
            if length < 16 or length > self._max_len:  # no generic_nack: not a word
                self._malformed("bad_length", f"command_length {length} at offset {pos}")
                close_reason = "malformed"
                break
            if end - pos < length:
                break
            _, command_id, status, seq = _HEADER.unpack_from(buf, pos)
            pos += length
            name = pdu.COMMAND_NAMES.get(command_id, "unknown")
            received[name] = received.get(name, 0) + 1
            if not command_id & pdu.RESPONSE_BIT:
                unanswered[name] = unanswered.get(name, 0) + 1
            elif command_id == pdu.DELIVER_SM_RESP and server.receipts is not None:
                acks.append((seq, status))
            elif command_id == pdu.UNBIND_RESP and self._unbind_reason is not None:
                close_reason = self._unbind_reason
                break
        if acks:
            server.receipts.acks(self, acks)  # type: ignore[union-attr]
        if self._idle_after and pos:
            self._last_pdu = asyncio.get_running_loop().time()
        server.metrics.add_counts(received, {})
        for name, count in unanswered.items():
            server.metrics.unanswered.labels(name).inc(count)
        if close_reason is not None:  # after any answers still queued (mode slow before)
            self._closing = True
            self._close_reason = close_reason
            self._enqueue(_Pending(0.0, [], [], close_reason))
        elif pos < end:
            self._buf += memoryview(buf)[pos:]

    def _nack(self, seq: int, exc: pdu.PduError, command: str, counts: dict[str, int]) -> bytes:
        name = pdu.status_name(exc.status)
        counts[name] = counts.get(name, 0) + 1
        self._nacks_sent += 1
        if self._nacks_sent <= 10 or self._nacks_sent % 1000 == 0:  # a flood must not flood logs
            log.warning(
                "session %s: generic_nack #%d %s to %s seq=%d: %s",
                self.session_id,
                self._nacks_sent,
                name,
                command,
                seq,
                exc.reason,
            )
        return pdu.encode_pdu(pdu.GENERIC_NACK, seq, b"", exc.status)

    def _invalid(self, command_id: int, seq: int, exc: pdu.PduError) -> bytes:
        """The response to a ``command_id`` PDU whose body cannot be decoded: the command's
        own ``*_resp`` with the decoder's status and no body (SMPP 3.4 3.3)."""
        name = pdu.COMMAND_NAMES[command_id]
        status = pdu.status_name(exc.status)
        self.server.metrics.invalid_pdus.labels(name, status).inc()
        self._nacks_sent += 1
        if self._nacks_sent <= 10 or self._nacks_sent % 1000 == 0:  # a flood must not flood logs
            log.warning(
                "session %s: invalid %s seq=%d answered with %s: %s",
                self.session_id,
                name,
                seq,
                status,
                exc.reason,
            )
        return pdu.encode_pdu(command_id | pdu.RESPONSE_BIT, seq, b"", exc.status)

    def _bind(self, command_id: int, seq: int, body: bytes) -> bytes:
        mode = pdu.BIND_COMMANDS[command_id]
        config = self.server.config
        try:
            request = pdu.parse_bind(body)
        except pdu.PduError as exc:
            self.server.metrics.binds.labels(mode, "malformed").inc()
            return self._invalid(command_id, seq, exc)
        if self.bound_mode is not None:
            status = pdu.ESME_RALYBND
        elif not hmac.compare_digest(request.system_id.encode(), config.system_id.encode()):
            status = pdu.ESME_RINVSYSID
        elif not hmac.compare_digest(request.password.encode(), config.password.encode()):
            status = pdu.ESME_RINVPASWD
        elif self.server.stopping:
            status = pdu.ESME_RBINDFAIL
        else:
            status = pdu.ESME_ROK
        result = pdu.status_name(status)
        self.server.metrics.binds.labels(mode, result).inc()
        if status == pdu.ESME_ROK:
            self.bound_mode = mode
            self.system_id = request.system_id
            self.server.metrics.bound_sessions.inc()
            self._bound()
            loop = asyncio.get_running_loop()
            if self.server.unbinding:  # mode unbind: after this read's answers (the bind_resp)
                loop.call_soon(self.unbind, "unbind_mode")
            receipts = self.server.receipts
            if receipts is not None and mode in RECEIVING_MODES:
                # after this read's answers (the bind_resp) have gone out
                loop.call_soon(receipts.bound, self)
            log.info(
                "session %s bound as %s (system_id=%s system_type=%r interface_version=0x%02x)",
                self.session_id,
                mode,
                request.system_id,
                request.system_type,
                request.interface_version,
            )
            body_out = config.smsc_system_id.encode() + b"\x00"
        else:
            log.warning(
                "session %s bind_%s refused: %s (system_id=%s)",
                self.session_id,
                mode,
                result,
                request.system_id,
            )
            body_out = b""
        return pdu.encode_pdu(command_id | pdu.RESPONSE_BIT, seq, body_out, status)

    def _first_data(self) -> None:
        """The first bytes of the session: from now on it is logged at INFO."""
        self._active = True
        log.info(
            "session %s opened from %s (first PDU after %.3f s)",
            self.session_id,
            self.peer,
            asyncio.get_running_loop().time() - self._opened_at,
        )

    # -- timers and SMSC-originated unbind -------------------------------------------

    def _init_expired(self) -> None:
        """session_init_timeout: the session did not bind in time."""
        self._init_timer = None
        if self.bound_mode is not None or self._closing:
            return
        log.log(
            logging.INFO if self._active else logging.DEBUG,
            "session %s from %s: not bound within %s s, closing it",
            self.session_id,
            self.peer,
            self.server.config.session_init_timeout,
        )
        self._close("init_timeout")

    def _bound(self) -> None:
        if self._init_timer is not None:
            self._init_timer.cancel()
            self._init_timer = None
        if self._idle_after:
            loop = asyncio.get_running_loop()
            self._last_pdu = loop.time()
            self._idle_timer = loop.call_at(self._last_pdu + self._idle_after, self._idle_check)

    def _idle_check(self) -> None:
        """inactivity_timeout: unbind a bound session that sent no PDU for that long."""
        self._idle_timer = None
        if self._closing or self._unbind_reason is not None or self.bound_mode is None:
            return
        due = self._last_pdu + self._idle_after
        loop = asyncio.get_running_loop()
        if self.server.silent:  # mode silent sends nothing: look again a timeout later
            due = max(due, loop.time() + self._idle_after)
        if loop.time() < due:  # a PDU came meanwhile: look again when it would expire
            self._idle_timer = loop.call_at(due, self._idle_check)
            return
        log.info("session %s: no PDU for %s s, sending unbind", self.session_id, self._idle_after)
        self._send_unbind("inactivity")

    def unbind(self, reason: str) -> None:
        """Send a bound session an unbind (mode unbind); nothing if it is not bound, or
        already unbinding or closing."""
        transport = self.transport
        if self.bound_mode is None or transport is None or transport.is_closing():
            return
        if self._unbind_reason is None and not self._closing:
            log.info("session %s: sending unbind (%s)", self.session_id, reason)
            self._send_unbind(reason)

    def _send_unbind(self, reason: str) -> None:
        """Send an unbind (after any queued answers); close on its unbind_resp or after
        ``unbind_timeout``, with ``reason``."""
        if self._unbind_reason is not None or self._closing:
            return
        self._unbind_reason = reason
        self.server.metrics.unbinds_sent.labels(reason).inc()
        self._enqueue(_Pending(0.0, [pdu.encode_pdu(pdu.UNBIND, self.next_out_seq())], [], None))
        self._unbind_timer = asyncio.get_running_loop().call_later(
            self.server.config.unbind_timeout, self._unbind_expired
        )

    def _unbind_expired(self) -> None:
        self._unbind_timer = None
        if self._closing:
            return
        log.info(
            "session %s: no unbind_resp within %s s, closing it",
            self.session_id,
            self.server.config.unbind_timeout,
        )
        self._close(self._unbind_reason or "shutdown")

    def _malformed(self, kind: str, detail: str) -> None:
        self.server.metrics.malformed.labels(kind).inc()
        log.warning(
            "session %s from %s: malformed input (%s), closing it: %s",
            self.session_id,
            self.peer,
            kind,
            detail,
        )

    def _enqueue(self, item: _Pending) -> None:
        if not self._pending and item.due == 0.0:
            self._send([item])
            return
        if item.due == 0.0:
            # nothing may overtake an earlier delayed answer
            item.due = self._pending[-1].due if self._pending else 0.0
        self._pending.append(item)
        self._pending_records += len(item.records)
        if self._pending_records > MAX_DELAYED_ANSWERS:
            self._set_paused("delay", True)
        if self._timer is None:
            self._arm_timer()

    def _arm_timer(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(self._pending[0].due, self._release_due)

    def _release_due(self) -> None:
        self._timer = None
        now = asyncio.get_running_loop().time()
        ready: list[_Pending] = []
        while self._pending and self._pending[0].due <= now:
            ready.append(self._pending.popleft())
            self._pending_records -= len(ready[-1].records)
        if ready:
            self._send(ready)
        if self._pending_records <= MAX_DELAYED_ANSWERS // 2 and "delay" in self._paused_by:
            self._set_paused("delay", False)
        if self._pending and self.transport is not None and not self.transport.is_closing():
            self._arm_timer()

    def _send(self, items: list[_Pending]) -> None:
        """Ledger first, then the socket; close if an item asks for it."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        records = [r for item in items for r in item.records]
        if records:
            ts = repr(time.time())
            session = self._session_json
            q = '"'
            # msg_id and message_id come from restricted alphabets: nothing to escape
            lines = [
                f'{{"ts":{ts},"session":{session},"sequence_number":{seq},'
                f'"msg_id":{"null" if msg_id is None else q + msg_id + q},'
                f'"message_id":{"null" if mid is None else q + mid + q},'
                f'"command_status":{status}}}\n'
                for seq, msg_id, mid, status in records
            ]
            try:
                self.server.ledger.write("".join(lines).encode(), len(lines))
            except OSError as exc:
                # no answer may go out that the ledger does not hold
                log.error("session %s: ledger write failed, closing: %s", self.session_id, exc)
                self._close("error")
                return
            self.server.metrics.ledger_lines.inc(len(lines))
        chunks = [chunk for item in items for chunk in item.responses]
        if chunks:
            transport.write(b"".join(chunks))
        for item in items:
            if item.receipts:
                self.server.receipts.accepted(self, item.receipts)  # type: ignore[union-attr]
            if item.close_reason is not None:
                self._close(item.close_reason)
                break

    # -- SMSC-originated PDUs (delivery receipts) -------------------------------------------

    @property
    def can_receive(self) -> bool:
        """Bound as transceiver/receiver, not unbinding, not closing, the SMSC not silent:
        may get a deliver_sm."""
        transport = self.transport
        return (
            self.bound_mode in RECEIVING_MODES
            and not self._closing
            and self._unbind_reason is None
            and not self.server.silent
            and transport is not None
            and not transport.is_closing()
        )

    @property
    def session_json(self) -> str:
        """The session id as a JSON string (ledger lines)."""
        return self._session_json

    def next_out_seq(self) -> int:
        """The sequence_number of the next PDU the SMSC originates on this session."""
        self._out_seq += 1
        return self._out_seq

    def send_originated(self, data: bytes) -> None:
        """Send a PDU the SMSC originates, after any answers still queued."""
        self._enqueue(_Pending(0.0, [data], [], None))

    def fail(self, reason: str) -> None:
        """Close the session at once (e.g. a ledger write failed)."""
        self._close(reason)

    def _close(self, reason: str) -> None:
        self._closing = True
        self._close_reason = reason
        if self.transport is not None:
            self.transport.close()

    def shutdown(self) -> None:
        """Server shutdown: send every queued answer now; then unbind a bound session
        (closed on its unbind_resp or after ``unbind_timeout``) and close any other."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for timer in (self._init_timer, self._idle_timer):
            if timer is not None:
                timer.cancel()
        self._init_timer = self._idle_timer = None
        self._delay = 0.0  # what still arrives is answered at once
        pending = list(self._pending)
        self._pending.clear()
        self._pending_records = 0
        if "delay" in self._paused_by:
            self._set_paused("delay", False)  # the unbind_resp must be read
        if pending:
            self._send(pending)
        if self._closing:
            self._close(self._close_reason)
        elif self._unbind_reason is not None:
            self._unbind_reason = "shutdown"  # already unbinding (inactivity): let it finish
        elif self.bound_mode is not None and self.transport and not self.transport.is_closing():
            log.info("session %s: shutting down, sending unbind", self.session_id)
            self._send_unbind("shutdown")
        else:
            self._close("shutdown")

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
