"""Hold packets from the other region for a fixed one-way delay: a user-space netem.

The lab kernel has no ``netem``, so the lab puts packets that arrive from the peer region
on an NFQUEUE (receiver's INPUT chain; see ``roles/lab_wan``) and this daemon, running in
the receiving container's network namespace, issues each packet's ACCEPT verdict once it
has waited ``delay`` (+/- ``jitter``) seconds. Release times never go backwards, so
jitter does not reorder a TCP stream. Verdicts are batched (``NFQNL_MSG_VERDICT_BATCH``
accepts every packet id up to the one given), one netlink message per release instant.

The netlink protocol is spoken directly with ``socket``/``struct`` (stdlib only) so the
daemon needs nothing installed on the host but python3.
"""

from __future__ import annotations

import argparse
import collections
import logging
import random
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator

LOG = logging.getLogger("nazbench.wan_delay")

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3
NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5
NFQA_CFG_F_FAIL_OPEN = 1
NFQNL_COPY_META = 1
NF_ACCEPT = 1
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 2
NLMSG_DONE = 3
_NLMSGHDR = struct.Struct("=IHHII")
_NFGENMSG = struct.Struct("=BBH")  # family, version, res_id (big-endian on the wire)
_NLATTR = struct.Struct("=HH")


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = _NLATTR.size + len(payload)
    return _NLATTR.pack(length, kind) + payload + b"\0" * (_align(length) - length)


def message(
    msg_type: int, queue: int, attrs: bytes, seq: int = 0, flags: int = NLM_F_REQUEST
) -> bytes:
    """A nfnetlink_queue message for ``queue`` carrying ``attrs``."""
    body = _NFGENMSG.pack(socket.AF_UNSPEC, 0, socket.htons(queue)) + attrs
    kind = (NFNL_SUBSYS_QUEUE << 8) | msg_type
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


def bind_messages(queue: int, maxlen: int) -> list[bytes]:
    """Config messages that bind ``queue``, copy metadata only and fail open when full."""
    fail_open = struct.pack("!I", NFQA_CFG_F_FAIL_OPEN)
    configs = [
        attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0)),
        attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)),
        attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen)),
        attr(NFQA_CFG_FLAGS, fail_open) + attr(NFQA_CFG_MASK, fail_open),
    ]
    flags = NLM_F_REQUEST | NLM_F_ACK
    return [message(NFQNL_MSG_CONFIG, queue, c, seq, flags) for seq, c in enumerate(configs, 1)]


def verdict_batch(queue: int, packet_id: int) -> bytes:
    """ACCEPT every queued packet whose id is <= ``packet_id``."""
    return message(
        NFQNL_MSG_VERDICT_BATCH,
        queue,
        attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id)),
    )


def parse(buf: bytes) -> Iterator[tuple[str, int]]:
    """Yield ``("packet", id)`` and ``("error", errno)`` from a netlink datagram."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(buf):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(buf, offset)
        if length < _NLMSGHDR.size or offset + length > len(buf):
            return
        body = buf[offset + _NLMSGHDR.size : offset + length]
        if kind == NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", body)
            yield ("error", -err)
        elif kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            pos = _NFGENMSG.size
            while pos + _NLATTR.size <= len(body):
                alen, atype = _NLATTR.unpack_from(body, pos)
                if alen < _NLATTR.size:
                    break
                if atype & 0x3FFF == NFQA_PACKET_HDR:
                    (packet_id,) = struct.unpack_from("!I", body, pos + _NLATTR.size)
                    yield ("packet", packet_id)
                    break
                pos += _align(alen)
        offset += _align(length)


class Scheduler:
    """Release instants for queued packets: arrival + delay +/- jitter, never decreasing."""

    def __init__(self, delay: float, jitter: float = 0.0, rng: random.Random | None = None) -> None:
        if delay < 0 or jitter < 0:
            raise ValueError("delay and jitter must be >= 0")
        if jitter > delay:
            raise ValueError("jitter must not exceed delay")
        self.delay = delay
        self.jitter = jitter
        self.rng = rng or random.Random(0)
        self.pending: collections.deque[tuple[float, int]] = collections.deque()
        self._last = float("-inf")

    def add(self, packet_id: int, now: float) -> None:
        offset = self.delay
        if self.jitter:
            offset += self.rng.uniform(-self.jitter, self.jitter)
        self._last = max(self._last, now + offset)
        self.pending.append((self._last, packet_id))

    def due(self, now: float) -> int | None:
        """Pop every packet due by ``now``; return the highest id among them."""
        highest = None
        while self.pending and self.pending[0][0] <= now:
            highest = self.pending.popleft()[1]
        return highest

    def timeout(self, now: float) -> float | None:
        """Seconds until the next release, None when nothing is queued."""
        return max(0.0, self.pending[0][0] - now) if self.pending else None


def run(
    queue: int,
    scheduler: Scheduler,
    maxlen: int = 16384,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Serve ``queue`` until SIGTERM/SIGINT."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE: we are root
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    sock.bind((0, 0))
    for msg in bind_messages(queue, maxlen):
        sock.send(msg)
        for kind, value in parse(sock.recv(65536)):
            if kind == "error" and value:
                raise OSError(value, f"binding NFQUEUE {queue} failed (is another daemon bound?)")
    sock.setblocking(False)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    LOG.info(
        "delaying queue %d by %.1f ms (jitter %.1f ms)",
        queue,
        scheduler.delay * 1e3,
        scheduler.jitter * 1e3,
    )
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while not stopping:
        wait = scheduler.timeout(clock())
        poller.poll(1000 if wait is None else wait * 1000)
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as exc:  # ENOBUFS: the kernel dropped notifications; keep going
                LOG.warning("netlink receive failed: %s", exc)
                break
            now = clock()
            for kind, value in parse(data):
                if kind == "packet":
                    scheduler.add(value, now)
        highest = scheduler.due(clock())
        if highest is not None:
            sock.send(verdict_batch(queue, highest))
    # Let everything still held through at once, then hand the queue back to the kernel
    # (with the rule's ``bypass`` flag, packets then pass undelayed).
    if scheduler.pending:
        sock.send(verdict_batch(queue, scheduler.pending[-1][1]))
    sock.setblocking(True)
    sock.send(
        message(
            NFQNL_MSG_CONFIG,
            queue,
            attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_UNBIND, 0)),
        )
    )
    sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, required=True, help="NFQUEUE number (0-65535)")
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay added")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="uniform +/- jitter")
    parser.add_argument("--seed", type=int, default=0, help="seed of the jitter")
    args = parser.parse_args(argv)
    if not 0 <= args.queue <= 65535:
        parser.error("--queue must be within 0-65535")
    try:
        scheduler = Scheduler(args.delay_ms / 1e3, args.jitter_ms / 1e3, random.Random(args.seed))
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    run(args.queue, scheduler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
