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
most ``--receipt-max-tries`` times in all, then abandoned. An answer to any try, however
late, counts while its session lasts: it is recorded and acknowledges the receipt (if
it was still pending; a second one is recorded too). Receipts still pending when
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
import bisect
import functools
import logging
import math
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
    return _minute(int(ts // 60))


@functools.lru_cache(maxsize=8)
def _minute(minute: int) -> str:
    """YYMMDDhhmm (UTC) of a minute since the epoch: receipts of one minute share it."""
    return time.strftime("%y%m%d%H%M", time.gmtime(minute * 60))


def _json_id(value: str | None) -> str:
    """A msg_id as JSON: its alphabet needs no escaping (nazbench.msgid), or null."""
    return "null" if value is None else f'"{value}"'


def receipt_text(message_id: str, stat: str, submitted: float, done: float, text: bytes) -> bytes:
    """The SMPP 3.4 Appendix B short_message of a receipt (dates UTC, YYMMDDhhmm)."""
    err = STATES[stat][1]
    dlvrd = "001" if stat == "DELIVRD" else "000"
    head = (
        f"id:{message_id} sub:001 dlvrd:{dlvrd} submit date:{_date(submitted)} "
        f"done date:{_date(done)} stat:{stat} err:{err} text:"
    )
    return head.encode("ascii") + text


_GSM_CHARS = re.compile(rb"(?:\x1b.|.){0,%d}" % TEXT_CHARS, re.DOTALL)
# the message_state TLV of each final state, built once
_STATE_TLVS = {
    stat: pdu.encode_tlv(pdu.TAG_MESSAGE_STATE, bytes((state,)))
    for stat, (state, _) in STATES.items()
}


def first_chars(user_data: bytes, data_coding: int, esm_class: int) -> bytes:
    """The first 20 characters of a message's user data (after any UDH), for ``text:``.

    The receipt is data_coding 0 (SMSC default alphabet), so a data_coding 0 message's
    octets are copied as they are (a GSM escape pair counts as one character and is not
    cut); any other coding is decoded and its non-ASCII characters become ``?``.
    """
    data = pdu.skip_udh(user_data, esm_class)
    if data_coding == 0:
        head = data[:TEXT_CHARS]
        if b"\x1b" not in head:
            return head
        # an escape and the octet after it are one character; a dangling escape is one
        return _GSM_CHARS.match(data).group()
    decoded = pdu.short_message_text(data[: 2 * TEXT_CHARS], data_coding)
    if isinstance(decoded, bytes):
        decoded = decoded.decode("latin-1")
    return "".join(c if " " <= c <= "~" else "?" for c in decoded[:TEXT_CHARS]).encode("ascii")


def deliver_sm_body(
    sm: pdu.SubmitSmFields, message_id: str, stat: str, short_message: bytes
) -> bytes:
    """The receipt's deliver_sm body: addresses swapped, esm_class 0x04, both TLVs."""
    tlvs = (
        pdu.encode_tlv(pdu.TAG_RECEIPTED_MESSAGE_ID, message_id.encode("ascii") + b"\x00")
        + _STATE_TLVS[stat]
    )
    return pdu.deliver_sm_body(
        short_message,
        source=sm.destination,
        destination=sm.source,
        esm_class=pdu.ESM_CLASS_DELIVERY_RECEIPT,
        tlvs=tlvs,
    )


@dataclass(eq=False, slots=True)
class Receipt:
    """One receipt from its draw until it is acknowledged or abandoned."""

    message_id: str
    msg_id: str | None
    system_id: str
    origin: Session | None
    stat: str
    submitted: float  # epoch seconds the submit_sm_resp went out
    sm: pdu.SubmitSmFields | None  # until the body is built
    body: bytes = b""
    tries: int = 0
    session: Session | None = None  # where the current try went
    seq: int = 0
    # Bumped whenever the receipt's pending deadline (due or retry) is set or dropped: a
    # deadline queued with an older token is stale and skipped.
    token: int = 0


class _Deadlines:
    """Receipts waiting for a deadline ``delay`` seconds after they were added.

    The delay is one constant, so deadlines come in the order they are added: a FIFO and
    one loop timer for all of them, instead of a timer per receipt (at thousands of
    receipts a second the timers were most of the SMSC's work). ``fire`` gets every
    receipt whose deadline has come, in order, in one call.
    """

    def __init__(self, delay: float, fire: Callable[[list[Receipt]], None]) -> None:
        self.delay = delay
        self.fire = fire
        self.items: deque[tuple[float, Receipt, int]] = deque()
        self.handle: asyncio.TimerHandle | None = None

    def add(self, receipts: Iterable[Receipt]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.delay
        append = self.items.append
        for receipt in receipts:
            receipt.token += 1
            append((deadline, receipt, receipt.token))
        if self.handle is None and self.items:
            self.handle = loop.call_at(self.items[0][0], self._run)

    def _run(self) -> None:
        self.handle = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        items, due = self.items, []
        while items and items[0][0] <= now:
            _, receipt, token = items.popleft()
            if receipt.token == token:
                due.append(receipt)
        if items:
            self.handle = loop.call_at(items[0][0], self._run)
        if due:
            self.fire(due)

    def clear(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.items.clear()


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
        self.due = _Deadlines(self.delay, self._due)
        self.retries = _Deadlines(self.retry, self._retry)
        # What one pass of the event loop sends and records, written together by _flush:
        # ledger lines first (one write), then each session's deliver_sm (one write each).
        self.lines: list[str] = []
        self.sends: dict[Session, list[Receipt]] = {}
        self.flush_handle: asyncio.Handle | None = None
        # the metrics' children by label, looked up once
        self.acked: dict[int, Any] = {}
        self.sent = {name: server.metrics.receipts_sent.labels(name) for name in STATES}

    # -- from the session --------------------------------------------------------------

    def accepted(
        self, session: Session, submits: list[tuple[pdu.SubmitSmFields, str, str | None]]
    ) -> None:
        """The submit_sm_resp of ``submits`` (fields, message_id, msg_id) were just sent."""
        if self.stopped:
            return
        now = time.time()
        names, cum, total, draw = (
            self.names,
            self.cum_weights,
            self.cum_weights[-1],
            self.rng.random,
        )
        hi = len(cum) - 1
        system_id = session.system_id or ""
        drawn: list[Receipt] = []
        for sm, message_id, msg_id in submits:
            wanted = sm.registered_delivery & 0x03
            if not wanted:
                continue
            # random.choices(names, cum_weights=cum)[0], without its per-call setup
            stat = names[bisect.bisect(cum, draw() * total, 0, hi)]
            if wanted == 0x02 and stat == "DELIVRD":  # receipts on failure only
                continue
            drawn.append(Receipt(message_id, msg_id, system_id, session, stat, now, sm))
        self.live.update(drawn)
        self.due.add(drawn)
        self._gauge()

    def acks(self, session: Session, answers: list[tuple[int, int]]) -> None:
        """deliver_sm_resp ``answers`` (sequence_number, command_status) arrived on
        ``session``, in this order."""
        metrics = self.server.metrics
        inflight_pop, live, retry = self.inflight.pop, self.live, self.retry
        prefix = f'"record":"receipt_ack","session":{session.session_json},"sequence_number":'
        lines: list[str] = []
        counts: dict[int, int] = {}
        for seq, status in answers:
            receipt = inflight_pop((session, seq), None)
            if receipt is None:
                metrics.receipts_unknown_resp.inc()
                log.debug(
                    "session %s: deliver_sm_resp seq=%d matches no receipt",
                    session.session_id,
                    seq,
                )
                continue
            lines.append(
                f'{prefix}{seq},"message_id":"{receipt.message_id}",'
                f'"msg_id":{_json_id(receipt.msg_id)},"command_status":{status}}}\n'
            )
            counts[status] = counts.get(status, 0) + 1
            if receipt not in live:
                continue  # a late answer to a receipt already acknowledged or abandoned
            if receipt.session is session and receipt.seq == seq:
                receipt.session = None
            if status == 0 or not retry:
                self._finish(receipt)  # an earlier try's answer counts as well as the last
            # else: not accepted by the ESME; its retry timer sends it again (or abandons it)
        if lines:
            self._record(lines)
        for status, n in counts.items():
            child = self.acked.get(status)
            if child is None:
                child = self.acked[status] = metrics.receipts_acked.labels(pdu.status_name(status))
            child.inc(n)

    def bound(self, session: Session) -> None:
        """``session`` bound as transceiver/receiver: send what waits for its system_id."""
        if self.stopped or not session.can_receive:
            return
        queue = self.waiting.pop(session.system_id or "", None)
        lines: list[str] = []
        while queue:
            self._send(queue.popleft(), session, lines)
            if not session.can_receive and queue:
                self.waiting.setdefault(session.system_id or "", deque()).extend(queue)
                break
        if lines:
            self._record(lines)

    def session_ended(self, session: Session) -> None:
        """Tries sent on ``session`` can no longer be acknowledged."""
        gone = [key for key in self.inflight if key[0] is session]
        for key in gone:
            receipt = self.inflight.pop(key)
            if receipt.session is not session or receipt not in self.live:
                continue  # an earlier try, or a receipt that is over
            receipt.session = None
            if not self.retry:  # never resent: this receipt is over
                self._abandon(receipt)
            # else its retry timer resends it on another session, or when one binds
        if gone:
            self._gauge()

    def stop(self) -> None:
        """Server shutdown: cancel every timer; pending receipts are lost."""
        self.stopped = True
        self._flush()  # what was sent before the stop is in the ledger
        self.due.clear()
        self.retries.clear()
        if self.live:
            log.info("%d delivery receipts not acknowledged at shutdown", len(self.live))
        self.live.clear()
        self.waiting.clear()
        self.inflight.clear()
        self._gauge()

    # -- internals ---------------------------------------------------------------------

    def _due(self, receipts: list[Receipt]) -> None:
        now = time.time()
        lines: list[str] = []
        for receipt in receipts:
            sm = receipt.sm
            if sm is not None:  # the final state is reached now: build the text once
                chars = first_chars(sm.user_data, sm.data_coding, sm.esm_class)
                text = receipt_text(receipt.message_id, receipt.stat, receipt.submitted, now, chars)
                receipt.body = deliver_sm_body(sm, receipt.message_id, receipt.stat, text)
                receipt.sm = None
            self._route(receipt, lines)
        if lines:
            self._record(lines)

    def _route(self, receipt: Receipt, lines: list[str]) -> None:
        session = self._pick(receipt)
        if session is None:
            self.waiting.setdefault(receipt.system_id, deque()).append(receipt)
        else:
            self._send(receipt, session, lines)

    def _pick(self, receipt: Receipt) -> Session | None:
        origin = receipt.origin
        if origin is not None and origin.can_receive and origin.system_id == receipt.system_id:
            return origin
        receipt.origin = None  # do not keep a closed session alive
        for session in self.server.sessions:
            if session.can_receive and session.system_id == receipt.system_id:
                return session
        return None

    def _send(self, receipt: Receipt, session: Session, lines: list[str]) -> None:
        """Record (into ``lines``, for :meth:`_record`) and send a try of ``receipt`` on
        ``session`` (at the next _flush)."""
        seq = session.next_out_seq()
        receipt.tries += 1
        receipt.session, receipt.seq = session, seq
        self.inflight[(session, seq)] = receipt
        lines.append(
            f'"record":"receipt","session":{session.session_json},'
            f'"sequence_number":{seq},"message_id":"{receipt.message_id}",'
            f'"msg_id":{_json_id(receipt.msg_id)},"stat":"{receipt.stat}",'
            f'"try":{receipt.tries}}}\n'
        )
        self.sends.setdefault(session, []).append(receipt)

    def _record(self, lines: list[str]) -> None:
        """Queue ledger lines for the next _flush; each is its fields without ts and the
        opening brace, closing brace and newline included. They share one ts: now."""
        head = f'{{"ts":{time.time()!r},'
        self.lines.extend([head + line for line in lines])
        if self.flush_handle is None:
            self.flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Ledger lines first (one write), then the deliver_sm of each session.

        No receipt may go out that the ledger does not hold: when the write fails, the
        tries it would have recorded are undone, their sessions closed and the receipts
        wait for the next bind.
        """
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        lines, sends = self.lines, self.sends
        if not lines:
            return
        self.lines, self.sends = [], {}
        metrics = self.server.metrics
        try:
            self.server.ledger.write("".join(lines).encode(), len(lines))
        except OSError as exc:
            log.error("ledger write of %d receipt records failed: %s", len(lines), exc)
            for session, receipts in sends.items():
                for receipt in receipts:
                    receipt.tries -= 1
                    self.inflight.pop((session, receipt.seq), None)
                    receipt.session = None
                    self.waiting.setdefault(receipt.system_id, deque()).append(receipt)
                session.fail("error")
            return
        metrics.ledger_lines.inc(len(lines))
        self._gauge()
        sent: dict[str, int] = {}
        resent = 0
        encode, deliver_sm = pdu.encode_pdu, pdu.DELIVER_SM
        for session, receipts in sends.items():
            chunks = []
            for receipt in receipts:
                if receipt.tries == 1:
                    sent[receipt.stat] = sent.get(receipt.stat, 0) + 1
                else:
                    resent += 1
                chunks.append(encode(deliver_sm, receipt.seq, receipt.body))
            session.send_originated(b"".join(chunks))
        for stat, n in sent.items():
            self.sent[stat].inc(n)
        if resent:
            metrics.receipts_resent.inc(resent)
        if self.retry:  # each try just sent: resent unless acknowledged within retry
            live = self.live
            self.retries.add([r for receipts in sends.values() for r in receipts if r in live])

    def _retry(self, receipts: list[Receipt]) -> None:
        """No (successful) deliver_sm_resp within ``retry`` seconds."""
        lines: list[str] = []
        for receipt in receipts:
            # the try stays answerable (inflight) until its session ends: an ESME that
            # answers late still acknowledges the receipt
            receipt.session = None
            if receipt.tries >= self.max_tries:
                log.warning(
                    "receipt for %s not acknowledged after %d tries, abandoned",
                    receipt.message_id,
                    receipt.tries,
                )
                self._abandon(receipt)
                continue
            self._route(receipt, lines)
        if lines:
            self._record(lines)
        self._gauge()

    def _finish(self, receipt: Receipt) -> None:
        receipt.token += 1  # drop its retry deadline
        self.live.discard(receipt)  # the pending gauge follows at the next _flush

    def _abandon(self, receipt: Receipt) -> None:
        receipt.token += 1
        if receipt in self.live:
            self.live.discard(receipt)
            self.server.metrics.receipts_abandoned.inc()

    def _gauge(self) -> None:
        self.server.metrics.receipts_pending.set(len(self.live))
