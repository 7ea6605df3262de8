"""What one ESME session sees of the SMSC: bind, one submit_sm, and how it ends.

The chaos loop's SMSC kinds leave the port open and change what the SMSC says; a TCP
connect cannot tell them apart, this can. One probe binds as a transceiver, sends one
submit_sm (no receipt asked), waits for its answer and says what it saw:

- ``accepted`` (``accepted slowly`` when an answer took ``slow_s`` or more): normal, slow;
- ``throttled``: the submit_sm answered ESME_RTHROTTLED;
- ``no answer``: bound or not, nothing came back within ``wait_s`` (silent);
- ``closed after submit``: the session closed before the submit_sm_resp (drop_resp);
- ``unbound``: the SMSC sent an unbind (unbind);
- ``refused`` / ``timeout``: no TCP session at all; ``closed``; ``bind refused <status>``.

    python -m nazbench.lab.smppprobe --host 10.89.154.21 --port 2775 \\
        --system-id nazbench --password-file /etc/nazbench/naz-smsc.password

prints one JSON line: ``{"t0": ..., "t1": ..., "seen": ..., "bind_s": ..., "submit_s": ...}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
import time
from pathlib import Path

from nazbench.smsc import pdu

PROBE_TEXT = b"nazbench smpp probe"


class _Closed(Exception):
    pass


class _Session:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def next_pdu(self, deadline: float) -> pdu.Pdu | None:
        """The next PDU, None at the deadline; raises _Closed when the peer closed."""
        while True:
            if len(self.buf) >= pdu.HEADER_LENGTH:
                length = pdu.frame_length(self.buf, 0, pdu.DEFAULT_MAX_PDU_LENGTH)
                if len(self.buf) >= length:
                    got, self.buf = pdu.decode_pdu(self.buf[:length]), self.buf[length:]
                    return got
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            except OSError as exc:
                raise _Closed(str(exc)) from exc
            if not chunk:
                raise _Closed("closed")
            self.buf += chunk


def _answer_for(sess: _Session, seq: int, want: int, deadline: float):
    """The PDU answering ``seq`` (command ``want``), or "unbound" when the SMSC unbinds
    first (answered), None at the deadline."""
    while True:
        got = sess.next_pdu(deadline)
        if got is None:
            return None
        if got.command_id == pdu.UNBIND:
            sess.sock.sendall(pdu.encode_pdu(pdu.UNBIND_RESP, got.sequence_number))
            return "unbound"
        if got.command_id == pdu.ENQUIRE_LINK:
            sess.sock.sendall(pdu.encode_pdu(pdu.ENQUIRE_LINK_RESP, got.sequence_number))
        elif got.command_id == pdu.DELIVER_SM:
            sess.sock.sendall(pdu.encode_pdu(pdu.DELIVER_SM_RESP, got.sequence_number, b"\0"))
        elif got.sequence_number == seq and got.command_id in (want, pdu.GENERIC_NACK):
            return got


class _Seen(Exception):
    """What the probe saw; ends it."""


def _exchange(sess: _Session, system_id: str, password: str, wait_s: float, out: dict) -> str:
    """Bind, submit, read; the outcome (raised as _Seen where it ends early)."""
    sock = sess.sock
    start = time.monotonic()
    sock.sendall(pdu.encode_bind(pdu.BIND_TRANSCEIVER, 1, system_id, password))
    bind = _answer_for(sess, 1, pdu.BIND_TRANSCEIVER_RESP, start + wait_s)
    out["bind_s"] = round(time.monotonic() - start, 3)
    if bind is None or bind == "unbound":
        raise _Seen("no answer" if bind is None else "unbound")
    if bind.command_status != 0:
        raise _Seen(f"bind refused {pdu.status_name(bind.command_status)}")
    start = time.monotonic()
    sock.sendall(pdu.encode_submit_sm(2, PROBE_TEXT, registered_delivery=0, esm_class=0))
    try:
        resp = _answer_for(sess, 2, pdu.SUBMIT_SM_RESP, start + wait_s)
    except _Closed:
        raise _Seen("closed after submit") from None
    finally:
        out["submit_s"] = round(time.monotonic() - start, 3)
    if resp is None or resp == "unbound":
        raise _Seen("no answer" if resp is None else "unbound")
    if resp.command_status == pdu.ESME_RTHROTTLED:
        raise _Seen("throttled")
    if resp.command_status != 0:
        raise _Seen(f"submit refused {pdu.status_name(resp.command_status)}")
    with contextlib.suppress(OSError):
        sock.sendall(pdu.encode_pdu(pdu.UNBIND, 3))
    return "accepted"


def probe(
    host: str,
    port: int,
    system_id: str,
    password: str,
    *,
    wait_s: float = 6.0,
    slow_s: float = 2.0,
    connect_s: float = 3.0,
) -> dict:
    """One probe (see the module's doc); ``wait_s`` for each answer."""
    out: dict = {"t0": time.time(), "bind_s": None, "submit_s": None}
    try:
        sock = socket.create_connection((host, port), timeout=connect_s)
    except ConnectionRefusedError:
        seen = "refused"
    except OSError:
        seen = "timeout"
    else:
        with sock:
            try:
                seen = _exchange(_Session(sock), system_id, password, wait_s, out)
                if max(out["bind_s"], out["submit_s"]) >= slow_s:
                    seen = "accepted slowly"
            except _Seen as end:
                seen = str(end)
            except _Closed:
                seen = "closed"
    return {**out, "t1": time.time(), "seen": seen}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=2775)
    parser.add_argument("--system-id", required=True)
    parser.add_argument("--password-file", type=Path, required=True)
    parser.add_argument("--wait", type=float, default=6.0, help="seconds for each answer")
    parser.add_argument("--slow", type=float, default=2.0, help="an answer this late is slow")
    args = parser.parse_args(argv)
    password = args.password_file.read_text().strip()
    result = probe(
        args.host, args.port, args.system_id, password, wait_s=args.wait, slow_s=args.slow
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
