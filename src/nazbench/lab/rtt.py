"""Application-level round trip between two hosts: a TCP echo server and a probe.

``ping`` under-reports a user-space delay (ICMP and the first packets behave unlike a
long-lived stream), so the lab is measured the way naz feels it: one small request on an
established TCP connection, wait for the echo, repeat.

    python3 rtt.py serve --port 7154 [--once-for 120]
    python3 rtt.py probe --host ams1 --port 7154 --samples 60   # prints JSON
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import socketserver
import statistics
import sys
import time


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := self.request.recv(4096):
            self.request.sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(host: str, port: int, lifetime: float) -> None:
    """Echo on ``host:port``; stop after ``lifetime`` seconds (0 = until killed)."""
    with _Server((host, port), _Echo) as server:
        server.timeout = 0.5
        deadline = time.monotonic() + lifetime if lifetime else float("inf")
        while time.monotonic() < deadline:
            server.handle_request()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def summarise(samples_ms: list[float]) -> dict:
    return {
        "samples": len(samples_ms),
        "median_ms": round(statistics.median(samples_ms), 2),
        "p90_ms": round(percentile(samples_ms, 90), 2),
        "min_ms": round(min(samples_ms), 2),
        "max_ms": round(max(samples_ms), 2),
    }


def probe(host: str, port: int, samples: int, payload: int = 64, timeout: float = 10.0) -> dict:
    """Round-trip ``samples`` messages of ``payload`` bytes; return the summary."""
    if samples < 1:
        raise ValueError("samples must be >= 1")
    message = b"x" * payload
    times = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = socket.create_connection((host, port), timeout=timeout)
            break
        except OSError:  # the server may still be starting
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(samples + 1):  # the first exchange warms the path and is dropped
            start = time.perf_counter()
            conn.sendall(message)
            got = 0
            while got < payload:
                chunk = conn.recv(payload - got)
                if not chunk:
                    raise ConnectionError("echo server closed the connection")
                got += len(chunk)
            times.append((time.perf_counter() - start) * 1e3)
    return summarise(times[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="TCP round-trip probe")
    sub = parser.add_subparsers(dest="cmd", required=True)
    srv = sub.add_parser("serve")
    srv.add_argument("--bind", default="0.0.0.0")  # noqa: S104 - the peer region must reach it
    srv.add_argument("--port", type=int, default=7154)
    srv.add_argument("--once-for", type=float, default=0, help="exit after N seconds")
    prb = sub.add_parser("probe")
    prb.add_argument("--host", required=True)
    prb.add_argument("--port", type=int, default=7154)
    prb.add_argument("--samples", type=int, default=60)
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        serve(args.bind, args.port, args.once_for)
        return 0
    if args.samples < 1:
        parser.error("--samples must be >= 1")
    json.dump(probe(args.host, args.port, args.samples), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
