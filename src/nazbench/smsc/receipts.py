"""Delivery receipts of the mock SMSC, as SMPPSim sends them (off unless ``--receipts``).

For every accepted submit_sm (command_status 0) whose ``registered_delivery`` asks for one
(bits 1..0: ``01`` or ``11`` = on the final outcome, ``10`` = on failure only), a final
state is drawn from a seeded mix (``--receipt-states``, ``--receipt-seed``) when its
submit_sm_resp is sent, and ``--receipt-delay`` seconds later a ``deliver_sm`` receipt
(esm_class 0x04, the SMPP 3.4 Appendix B text, TLVs ``receipted_message_id`` and
``message_state``) goes to a bound transceiver/receiver session of the same system_id:
the one that submitted if it still can receive, else any other. With none bound, the
receipt waits (in memory) for the next bind_transceiver/bind_receiver. One that gets no
deliver_sm_resp (with status 0) within ``--receipt-retry`` seconds is sent again, at
most ``--receipt-max-tries`` times in all, then abandoned. Receipts still pending when
the SMSC stops are lost (as the ones of a crashed SMSC would be).

The ledger gets two more record kinds, written before the deliver_sm goes out::

    {"ts": ..., "record": "receipt", "session": "...", "sequence_number": 3,
     "message_id": "18c1f0a2b3d-2a", "msg_id": "run-1/41", "stat": "DELIVRD", "try": 1}
    {"ts": ..., "record": "receipt_ack", "session": "...", "sequence_number": 3,
     "message_id": "18c1f0a2b3d-2a", "msg_id": "run-1/41", "command_status": 0}

submit_sm lines are unchanged (they have no ``record`` key).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nazbench.smsc import pdu

if TYPE_CHECKING:
    from nazbench.smsc.server import Session, Smsc

log = logging.getLogger("nazbench.smsc")

# stat -> (message_state TLV value, err field of the text)
STATES: dict[str, tuple[int, str]] = {
    "DELIVRD": (2, "000"),  # DELIVERED
    "EXPIRED": (3, "001"),  # EXPIRED
    "UNDELIV": (5, "002"),  # UNDELIVERABLE
    "REJECTD": (8, "003"),  # REJECTED
}
DEFAULT_STATES = "DELIVRD=0.9,UNDELIV=0.05,EXPIRED=0.03,REJECTD=0.02"
RECEIVING_MODES = ("transceiver", "receiver")
TEXT_CHARS = 20  # "text:" carries the first 20 characters of the message


def parse_states(text: str) -> dict[str, float]:
    """``DELIVRD=0.9,UNDELIV=0.1`` -> ``{"DELIVRD": 0.9, "UNDELIV": 0.1}``.

    Raises ValueError for an unknown or repeated state, a weight that is not a finite
    number >= 0, or weights that sum to 0.
    """
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"receipt state {part.strip()!r} is not STATE=WEIGHT")
        if name not in STATES:
            raise ValueError(f"unknown receipt state {name!r} (known: {', '.join(STATES)})")
        if name in weights:
            raise ValueError(f"receipt state {name} given twice")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"weight of {name} is not a number: {value.strip()!r}") from None
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"weight of {name} must be a finite number >= 0, got {weight}")
        weights[name] = weight
    if not sum(weights.values()) > 0:
        raise ValueError("receipt state weights must sum to more than 0")
    return weights


def _date(ts: float) -> str:
    return time.strftime("%y%m%d%H%M", time.gmtime(ts))


def receipt_text(message_id: str, stat: str, submitted: float, done: float, text: bytes) -> bytes:
    """The SMPP 3.4 Appendix B short_message of a receipt (dates UTC, YYMMDDhhmm)."""
    err = STATES[stat][1]
    dlvrd = "001" if stat == "DELIVRD" else "000"
    head = (
        f"id:{message_id} sub:001 dlvrd:{dlvrd} submit date:{_date(submitted)} "
        f"done date:{_date(done)} stat:{stat} err:{err} text:"
    )
    return head.encode("ascii") + text


def first_chars(sm: pdu.SubmitSm) -> bytes:
    """The first 20 characters of the message (after any UDH), for ``text:``.

    The receipt is data_coding 0 (SMSC default alphabet), so a data_coding 0 message's
    octets are copied as they are (a GSM escape pair counts as one character and is not
    cut); any other coding is decoded and its non-ASCII characters become ``?``.
    """
    data = sm.text
    if sm.data_coding == 0:
        pos = chars = 0
        while pos < len(data) and chars < TEXT_CHARS:
            pos += 2 if data[pos] == 0x1B else 1
            chars += 1
        return data[:pos]
    decoded = pdu.short_message_text(data[: 2 * TEXT_CHARS], sm.data_coding)
    if isinstance(decoded, bytes):
        decoded = decoded.decode("latin-1")
    return "".join(c if " " <= c <= "~" else "?" for c in decoded[:TEXT_CHARS]).encode("ascii")


def deliver_sm_body(sm: pdu.SubmitSm, message_id: str, stat: str, short_message: bytes) -> bytes:
    """The receipt's deliver_sm body: addresses swapped, esm_class 0x04, both TLVs."""
    tlvs = pdu.encode_tlv(
        pdu.TAG_RECEIPTED_MESSAGE_ID, message_id.encode("ascii") + b"\x00"
    ) + pdu.encode_tlv(pdu.TAG_MESSAGE_STATE, bytes((STATES[stat][0],)))
    return pdu.deliver_sm_body(
        short_message,
        source_addr_ton=sm.dest_addr_ton,
        source_addr_npi=sm.dest_addr_npi,
        source_addr=sm.destination_addr,
        dest_addr_ton=sm.source_addr_ton,
        dest_addr_npi=sm.source_addr_npi,
        destination_addr=sm.source_addr,
        esm_class=pdu.ESM_CLASS_DELIVERY_RECEIPT,
        tlvs=tlvs,
    )


@dataclass(eq=False)
class Receipt:
    """One receipt from its draw until it is acknowledged or abandoned."""

    message_id: str
    msg_id: str | None
    system_id: str
    origin: Session | None
    stat: str
    submitted: float  # epoch seconds the submit_sm_resp went out
    sm: pdu.SubmitSm | None  # until the body is built
    body: bytes = b""
    tries: int = 0
    session: Session | None = None  # where the current try went
    seq: int = 0
    timer: asyncio.TimerHandle | None = None


class ReceiptEngine:
    """Draws, schedules, routes, resends and records the receipts of one :class:`Smsc`."""

    def __init__(self, server: Smsc) -> None:
        config = server.config
        self.server = server
        weights = parse_states(config.receipt_states)
        self.names = list(weights)
        self.cum_weights: list[float] = []
        total = 0.0
        for name in self.names:
            total += weights[name]
            self.cum_weights.append(total)
        self.rng = random.Random(config.receipt_seed)  # repeatable mix, not crypto
        self.delay = config.receipt_delay
        self.retry = config.receipt_retry
        self.max_tries = config.receipt_max_tries
        self.live: set[Receipt] = set()
        self.waiting: dict[str, deque[Receipt]] = {}
        self.inflight: dict[tuple[Session, int], Receipt] = {}
        self.stopped = False

    # -- from the session --------------------------------------------------------------

    def accepted(self, session: Session, submits: list[tuple[bytes, str, str | None]]) -> None:
        """The submit_sm_resp of ``submits`` (body, message_id, msg_id) were just sent."""
        if self.stopped:
            return
        loop = asyncio.get_running_loop()
        now = time.time()
        choices = self.rng.choices
        for body, message_id, msg_id in submits:
            try:
                sm = pdu.parse_submit_sm(body)
            except pdu.PduError:  # the fast path accepted it, so this should not happen
                log.warning(
                    "session %s: cannot re-read submit_sm %s", session.session_id, message_id
                )
                continue
            wanted = sm.registered_delivery & 0x03
            if not wanted:
                continue
            stat = choices(self.names, cum_weights=self.cum_weights)[0]
            if wanted == 0x02 and stat == "DELIVRD":  # receipts on failure only
                continue
            receipt = Receipt(message_id, msg_id, session.system_id or "", session, stat, now, sm)
            self.live.add(receipt)
            receipt.timer = loop.call_later(self.delay, self._due, receipt)
        self._gauge()

    def ack(self, session: Session, seq: int, status: int) -> None:
        """A deliver_sm_resp arrived on ``session``."""
        metrics = self.server.metrics
        receipt = self.inflight.pop((session, seq), None)
        if receipt is None:
            metrics.receipts_unknown_resp.inc()
            log.debug(
                "session %s: deliver_sm_resp seq=%d matches no receipt", session.session_id, seq
            )
            return
        record = {
            "ts": time.time(),
            "record": "receipt_ack",
            "session": session.session_id,
            "sequence_number": seq,
            "message_id": receipt.message_id,
            "msg_id": receipt.msg_id,
            "command_status": status,
        }
        self._write(session, record)
        metrics.receipts_acked.labels(pdu.status_name(status)).inc()
        receipt.session = None
        if status == 0 or not self.retry:
            self._finish(receipt)
        # else: not accepted by the ESME; its retry timer sends it again (or abandons it)

    def bound(self, session: Session) -> None:
        """``session`` bound as transceiver/receiver: send what waits for its system_id."""
        if self.stopped or not session.can_receive:
            return
        queue = self.waiting.pop(session.system_id or "", None)
        while queue:
            self._send(queue.popleft(), session)
            if not session.can_receive and queue:
                self.waiting.setdefault(session.system_id or "", deque()).extend(queue)
                break

    def session_ended(self, session: Session) -> None:
        """Tries in flight on ``session`` can no longer be acknowledged."""
        gone = [key for key in self.inflight if key[0] is session]
        for key in gone:
            receipt = self.inflight.pop(key)
            receipt.session = None
            if not self.retry:  # never resent: this receipt is over
                self._abandon(receipt)
            # else its retry timer resends it on another session, or when one binds
        if gone:
            self._gauge()

    def stop(self) -> None:
        """Server shutdown: cancel every timer; pending receipts are lost."""
        self.stopped = True
        for receipt in self.live:
            if receipt.timer is not None:
                receipt.timer.cancel()
        if self.live:
            log.info("%d delivery receipts not acknowledged at shutdown", len(self.live))
        self.live.clear()
        self.waiting.clear()
        self.inflight.clear()
        self._gauge()

    # -- internals ---------------------------------------------------------------------

    def _due(self, receipt: Receipt) -> None:
        receipt.timer = None
        sm = receipt.sm
        if sm is not None:  # the final state is reached now: build the text once
            text = receipt_text(
                receipt.message_id, receipt.stat, receipt.submitted, time.time(), first_chars(sm)
            )
            receipt.body = deliver_sm_body(sm, receipt.message_id, receipt.stat, text)
            receipt.sm = None
        self._route(receipt)

    def _route(self, receipt: Receipt) -> None:
        session = self._pick(receipt)
        if session is None:
            self.waiting.setdefault(receipt.system_id, deque()).append(receipt)
        else:
            self._send(receipt, session)

    def _pick(self, receipt: Receipt) -> Session | None:
        origin = receipt.origin
        if origin is not None and origin.can_receive and origin.system_id == receipt.system_id:
            return origin
        receipt.origin = None  # do not keep a closed session alive
        for session in self.server.sessions:
            if session.can_receive and session.system_id == receipt.system_id:
                return session
        return None

    def _send(self, receipt: Receipt, session: Session) -> None:
        seq = session.next_out_seq()
        receipt.tries += 1
        record = {
            "ts": time.time(),
            "record": "receipt",
            "session": session.session_id,
            "sequence_number": seq,
            "message_id": receipt.message_id,
            "msg_id": receipt.msg_id,
            "stat": receipt.stat,
            "try": receipt.tries,
        }
        if not self._write(session, record):
            receipt.tries -= 1
            session.fail("error")  # no receipt may go out that the ledger does not hold
            self.waiting.setdefault(receipt.system_id, deque()).append(receipt)
            return
        metrics = self.server.metrics
        if receipt.tries == 1:
            metrics.receipts_sent.labels(receipt.stat).inc()
        else:
            metrics.receipts_resent.inc()
        receipt.session, receipt.seq = session, seq
        self.inflight[(session, seq)] = receipt
        session.send_originated(pdu.encode_pdu(pdu.DELIVER_SM, seq, receipt.body))
        if self.retry:
            loop = asyncio.get_running_loop()
            receipt.timer = loop.call_later(self.retry, self._retry, receipt)

    def _retry(self, receipt: Receipt) -> None:
        """No (successful) deliver_sm_resp within ``retry`` seconds."""
        receipt.timer = None
        if receipt.session is not None:
            self.inflight.pop((receipt.session, receipt.seq), None)
            receipt.session = None
        if receipt.tries >= self.max_tries:
            log.warning(
                "receipt for %s not acknowledged after %d tries, abandoned",
                receipt.message_id,
                receipt.tries,
            )
            self._abandon(receipt)
            self._gauge()
            return
        self._route(receipt)

    def _write(self, session: Session, record: dict) -> bool:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        try:
            self.server.ledger.write(line.encode(), 1)
        except OSError as exc:
            log.error("session %s: ledger write failed: %s", session.session_id, exc)
            return False
        self.server.metrics.ledger_lines.inc()
        return True

    def _finish(self, receipt: Receipt) -> None:
        if receipt.timer is not None:
            receipt.timer.cancel()
            receipt.timer = None
        self.live.discard(receipt)
        self._gauge()

    def _abandon(self, receipt: Receipt) -> None:
        if receipt.timer is not None:
            receipt.timer.cancel()
            receipt.timer = None
        if receipt in self.live:
            self.live.discard(receipt)
            self.server.metrics.receipts_abandoned.inc()

    def _gauge(self) -> None:
        self.server.metrics.receipts_pending.set(len(self.live))
