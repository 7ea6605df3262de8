"""How fast does the producer fill the queue? (goal: >= 50,000 msg/s for the seed's 100k)

Starts a throwaway redis-server on 127.0.0.1 (ephemeral port, temporary directory, no
persistence), enqueues ``--count`` messages with the producer code (the same ``run()``
that ``python -m nazbench.nazapp.producer`` calls: generation, naz serialisation check,
pipelined LPUSH, marker, manifest) ``--repeat`` times, and prints msg/s.

    .venv/bin/python benchmarks/enqueue_rate.py [--count 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import naz
import redis

from nazbench.nazapp import producer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--daemonize",
        "no",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return proc
        except redis.RedisError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("redis-server did not start") from None
            time.sleep(0.05)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chunk-size", type=int, default=5000)
    ap.add_argument("--encoding", choices=producer.ENCODINGS, default="gsm0338")
    ap.add_argument("--run-id", default="bench-enqueue")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="nazbench-enqueue-") as tmp:
        port = free_port()
        proc = start_redis(Path(tmp), port)
        try:
            client = redis.Redis(port=port, socket_timeout=60)
            server = client.info("server")
            print("parameters:")
            print(
                f"  count={args.count} repeat={args.repeat} seed={args.seed} "
                f"chunk_size={args.chunk_size} encoding={args.encoding} run_id={args.run_id}"
            )
            print(
                f"  python={platform.python_version()} naz={naz.__version__.about['__version__']} "
                f"redis-py={redis.__version__} redis-server={server['redis_version']} "
                f"(127.0.0.1:{port}, no persistence)"
            )
            print(
                f"  cpus={os.cpu_count()} machine={platform.machine()} "
                f"load_avg={'/'.join(f'{x:.2f}' for x in os.getloadavg())}"
            )
            params = producer.Params(args.run_id, args.count, args.seed, encoding=args.encoding)
            rates, walls = [], []
            for i in range(args.repeat):
                client.flushall()
                t0 = time.perf_counter()
                out = producer.run(
                    client,
                    params,
                    manifest_path=Path(tmp) / "manifest.json",
                    chunk_size=args.chunk_size,
                    force=True,
                )
                wall = time.perf_counter() - t0
                queued = client.llen(params.queue)
                assert queued == args.count, f"queue holds {queued}, expected {args.count}"
                rates.append(out.enqueued / out.seconds)
                walls.append(args.count / wall)
                print(
                    f"  run {i + 1}: {out.enqueued} msgs in {out.seconds:.3f} s push "
                    f"= {rates[-1]:,.0f} msg/s ({walls[-1]:,.0f} msg/s incl. marker+manifest)"
                )
            print(
                f"result: median {statistics.median(rates):,.0f} msg/s, best {max(rates):,.0f} "
                f"msg/s (goal >= 50,000)"
            )
        finally:
            proc.terminate()
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
