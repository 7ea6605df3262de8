"""What our naz hook and logger cost: naz's throughput with them vs with no-ops.

Starts one mock SMSC (``python -m nazbench.smsc``) in a subprocess pinned to one core on
loopback, then, in this process pinned to another core, sends ``--count`` pre-queued
submit_sm with naz 0.8.1 in three configurations:

1. ``baseline``  - a no-op hook and a silent logger (drops every record);
2. ``nazbench``  - our ``PrometheusHook`` (metrics server on an ephemeral loopback port)
   and our ``JsonLinesLogger`` at ``--log-level`` (INFO) writing to a temp file;
3. ``seed_hook`` - the seed's hook (``komuw/naz`` ``benchmarks/my_hook.py``): on every
   to_smsc/from_smsc it increments a counter and awaits ``push_to_gateway`` run through
   ``loop.run_in_executor`` in a new ``ThreadPoolExecutor`` (as the seed did), here
   against a dummy Pushgateway (``http.server`` in a thread of this process), with the
   silent logger.

Every configuration is a fresh ``naz.Client`` with a ``SimpleBroker`` pre-filled with the
same messages (shaped like the seed's: 1-200 random characters, see
``nazbench.nazapp.producer``). Trials are interleaved (``--rounds`` rounds, the order
rotated each round); the rate is submit_sm_resp per second from the first submit_sm to the
last submit_sm_resp. Every trial is cross-checked against the SMSC's ledger.

    .venv/bin/python benchmarks/naz_overhead.py [--count 2500] [--rounds 5] [--log-level INFO]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import gc
import http.server
import importlib.metadata
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import naz
import prometheus_client
from smsc_process import PASSWORD, SYSTEM_ID, Server  # benchmarks/, the script's directory

from nazbench.nazapp import hook as nazhook
from nazbench.nazapp.drive import drive
from nazbench.nazapp.logger import JsonLinesLogger, level_number
from nazbench.nazapp.producer import SOURCE_ADDR, Params, fields

RUN_ID = "ovh"
CONFIGS = ("baseline", "nazbench", "seed_hook")
GOAL = 0.85


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cpus = sorted(os.sched_getaffinity(0))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2500, help="messages per trial")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the 3 configurations")
    parser.add_argument(
        "--log-level", default="INFO", help="JsonLinesLogger level of the nazbench config"
    )
    parser.add_argument(
        "--warmup", type=int, default=300, help="messages per config in an unreported warm-up"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the message texts")
    parser.add_argument("--server-cpu", type=int, default=cpus[0], help="core for the SMSC")
    parser.add_argument(
        "--client-cpu", type=int, default=cpus[-1], help="core for naz (this process)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="per-trial limit (s)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--count and --rounds must be >= 1, --warmup >= 0")
    try:
        level_number(args.log_level)
    except ValueError as exc:
        parser.error(str(exc))
    return args


# ----------------------------------------------------------------------------- SMSC


# ----------------------------------------------------------------------------- hooks


class _Tally:
    """The only measurement done in the hot path, identical in all three hooks.

    Per PDU: ``to_smsc`` does one ``is None`` test once ``first_sent`` is set;
    ``from_smsc`` does one string compare, one int increment and one int compare.
    """

    def __init__(self, target: int) -> None:
        self.target = target
        self.resps = 0
        self.first_sent: float | None = None
        self.last_resp = 0.0
        self.done = asyncio.Event()

    def sent(self, smpp_command: str) -> None:
        if self.first_sent is None and smpp_command == "submit_sm":
            self.first_sent = time.perf_counter()

    def got(self, smpp_command: str) -> None:
        if smpp_command == "submit_sm_resp":
            self.resps += 1
            if self.resps >= self.target:
                self.last_resp = time.perf_counter()
                self.done.set()


class NoopHook(naz.hooks.BaseHook):
    """Does nothing but the tally."""

    def __init__(self, tally: _Tally) -> None:
        self.tally = tally

    async def to_smsc(self, smpp_command, log_id, hook_metadata, pdu) -> None:
        self.tally.sent(smpp_command)

    async def from_smsc(self, smpp_command, log_id, hook_metadata, status, pdu) -> None:
        self.tally.got(smpp_command)


class TalliedPrometheusHook(nazhook.PrometheusHook):
    """Our hook, plus the tally."""

    def __init__(self, tally: _Tally, run_id: str) -> None:
        super().__init__(run_id)
        self.tally = tally

    async def to_smsc(self, smpp_command, log_id, hook_metadata, pdu) -> None:
        self.tally.sent(smpp_command)
        await super().to_smsc(smpp_command, log_id, hook_metadata, pdu)

    async def from_smsc(self, smpp_command, log_id, hook_metadata, status, pdu) -> None:
        await super().from_smsc(smpp_command, log_id, hook_metadata, status, pdu)
        self.tally.got(smpp_command)


class SeedHook(naz.hooks.BaseHook):
    """The seed's ``BenchmarksHook`` (komuw/naz benchmarks/my_hook.py), plus the tally."""

    def __init__(self, tally: _Tally, gateway: str) -> None:
        self.tally = tally
        self.gateway = gateway
        self.registry = prometheus_client.CollectorRegistry()
        self.counter = prometheus_client.Counter(
            name="number_of_messages",
            documentation="number of messages processed by naz.",
            labelnames=["project", "smpp_command", "state", "response_code"],
            registry=self.registry,
        )
        self.loop = asyncio.get_running_loop()
        self.thread_name_prefix = "naz_benchmarks_hook_pool"

    async def to_smsc(self, smpp_command, log_id, hook_metadata, pdu) -> None:
        self.tally.sent(smpp_command)
        self.counter.labels(
            project="naz_benchmarks", smpp_command=smpp_command, state="request", response_code=""
        ).inc()
        with concurrent.futures.ThreadPoolExecutor(
            thread_name_prefix=self.thread_name_prefix
        ) as executor:
            await self.loop.run_in_executor(executor, functools.partial(self._publish))

    async def from_smsc(self, smpp_command, log_id, hook_metadata, status, pdu) -> None:
        self.counter.labels(
            project="naz_benchmarks",
            smpp_command=smpp_command,
            state="response",
            response_code=status.code,
        ).inc()
        with concurrent.futures.ThreadPoolExecutor(
            thread_name_prefix=self.thread_name_prefix
        ) as executor:
            await self.loop.run_in_executor(executor, functools.partial(self._publish))
        self.tally.got(smpp_command)

    def _publish(self) -> None:
        prometheus_client.push_to_gateway(
            self.gateway, job="BenchmarksHook", registry=self.registry
        )


class SilentLogger(logging.Logger):
    """naz 0.8.1 has no BaseLogger; this ``logging.Logger`` drops every record."""

    def __init__(self) -> None:
        super().__init__("nazbench.silent", logging.CRITICAL + 10)
        self.propagate = False

    def log(self, level: Any, msg: Any, *args: Any, **kwargs: Any) -> None:
        return None

    def isEnabledFor(self, level: int) -> bool:
        return False


# ----------------------------------------------------------------------------- gateway


class DummyPushgateway:
    """A loopback HTTP server that answers every PUT/POST with 200 (a stand-in Pushgateway)."""

    def __init__(self) -> None:
        self.pushes = 0
        lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _accept(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with lock:
                    outer.pushes += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = _accept
            do_POST = _accept

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> DummyPushgateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


# ----------------------------------------------------------------------------- trials

Message = tuple[str, str, str, str]  # short_message, destination, log_id, msg_id


async def run_naz(
    port: int,
    messages: list[Message],
    make_hook: Callable[[_Tally], naz.hooks.BaseHook],
    logger: logging.Logger,
    client_id: str,
    timeout: float,
) -> _Tally:
    """naz 0.8.1 sending the pre-queued ``messages`` as fast as it can."""
    tally = _Tally(len(messages))
    hook = make_hook(tally)
    client = naz.Client(
        smsc_host="127.0.0.1",
        smsc_port=port,
        system_id=SYSTEM_ID,
        password=PASSWORD,
        broker=naz.broker.SimpleBroker(maxsize=len(messages)),
        client_id=client_id,
        hook=hook,
        logger=logger,
        socket_timeout=15.0,
        enquire_link_interval=80.0,
        drain_duration=0.1,
    )
    for short_message, destination, log_id, msg_id in messages:
        await client.send_message(
            naz.protocol.SubmitSM(
                short_message=short_message,
                source_addr=SOURCE_ADDR,
                destination_addr=destination,
                log_id=log_id,
                hook_metadata=msg_id,
            )
        )
    gc.collect()
    if not await drive(client, tally.done, timeout):
        raise TimeoutError(f"naz did not finish {len(messages)} messages within {timeout} s")
    return tally


def trial(
    config: str,
    label: str,
    server: Server,
    messages: list[Message],
    args: argparse.Namespace,
    workdir: Path,
    gateway: DummyPushgateway,
) -> tuple[float, str]:
    """Run one configuration; (rate, note). Raises on any lost or wrong answer."""
    note = ""
    logger: logging.Logger
    hooks: list[Any] = []
    log_path = workdir / f"naz-{label}.jsonl"
    if config == "nazbench":
        logger = JsonLinesLogger(
            log_path,
            level=args.log_level,
            client_id=label,
            run_id=RUN_ID,
            log_metadata={"smsc_host": "127.0.0.1", "system_id": SYSTEM_ID, "pid": os.getpid()},
            secrets=(PASSWORD,),
        )

        def make_hook(tally: _Tally) -> naz.hooks.BaseHook:
            h = TalliedPrometheusHook(tally, RUN_ID)
            h.describe_client(label)
            h.serve(0, "127.0.0.1")
            hooks.append(h)
            return h

    elif config == "seed_hook":
        logger = SilentLogger()

        def make_hook(tally: _Tally) -> naz.hooks.BaseHook:
            return SeedHook(tally, gateway.address)

    else:
        logger = SilentLogger()
        make_hook = NoopHook

    pushes_before = gateway.pushes
    try:
        tally = asyncio.run(run_naz(server.port, messages, make_hook, logger, label, args.timeout))
    finally:
        if isinstance(logger, JsonLinesLogger):
            logger.close()
        nazhook.shutdown_servers()
    assert tally.first_sent is not None
    elapsed = tally.last_resp - tally.first_sent
    ids = server.new_ledger_ids(len(messages))
    expected = [m[3] for m in messages]
    if tally.resps != len(messages) or sorted(ids) != sorted(expected):
        raise RuntimeError(
            f"{label}: {tally.resps} responses, {len(ids)} ledger lines "
            f"({len(set(ids) & set(expected))} expected ids) for {len(messages)} messages"
        )
    if config == "nazbench":
        h = hooks[0]
        ok = h.registry.get_sample_value(
            f"{nazhook.PREFIX}_messages_total",
            {
                "run_id": RUN_ID,
                "smpp_command": "submit_sm_resp",
                "state": "response",
                "response_code": "ESME_ROK",
            },
        )
        lines = log_path.read_bytes().count(b"\n")
        size = log_path.stat().st_size
        note = (
            f"hook counted {ok:.0f} ESME_ROK, metrics port {h.port}; log {lines} lines "
            f"({lines / len(messages):.1f}/msg, {size / 1e6:.1f} MB)"
        )
        log_path.unlink()
    elif config == "seed_hook":
        note = f"{gateway.pushes - pushes_before} pushes to the dummy gateway"
    return len(messages) / elapsed, note


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.sched_setaffinity(0, {args.client_cpu})
    naz_version = naz.__version__.about["__version__"]
    print("naz hook/logger overhead benchmark")
    print(f"  command : {' '.join([sys.executable, *sys.argv])}")
    print(
        f"  params  : count={args.count} rounds={args.rounds} log_level={args.log_level} "
        f"warmup={args.warmup} seed={args.seed} timeout={args.timeout}s"
    )
    print(
        f"  cpus    : SMSC pinned to cpu {args.server_cpu}, naz (+ dummy gateway thread) to "
        f"cpu {args.client_cpu}; {os.cpu_count()} cpus, loadavg {os.getloadavg()[0]:.2f}"
    )
    print(
        f"  versions: python {sys.version.split()[0]}, naz {naz_version}, "
        f"prometheus_client {importlib.metadata.version('prometheus_client')}"
    )
    print(
        "  rate    : submit_sm_resp/s from the first submit_sm to the last submit_sm_resp;\n"
        "            counted in every config by the same tally in the hook (per PDU: a string\n"
        "            compare, an int increment and compare); baseline's hook does nothing else"
    )
    params = Params(RUN_ID, args.count, args.seed)
    messages: list[Message] = list(fields(params))
    rates: dict[str, list[float]] = {c: [] for c in CONFIGS}
    paired: dict[str, list[float]] = {c: [] for c in CONFIGS[1:]}
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="naz-overhead-") as tmp,
        Server(Path(tmp), args.server_cpu) as server,
        DummyPushgateway() as gateway,
    ):
        workdir = Path(tmp)
        print(
            f"  servers : SMSC pid {server.proc.pid if server.proc else '?'} on "
            f"127.0.0.1:{server.port}; dummy pushgateway on {gateway.address}"
        )
        if args.warmup:
            warm = messages[: args.warmup]
            for config in CONFIGS:
                trial(config, f"warmup-{config}", server, warm, args, workdir, gateway)
            print(f"  warm-up : {len(warm)} messages per config, done (not reported)")
        print()
        for rnd in range(args.rounds):
            order = CONFIGS[rnd % len(CONFIGS) :] + CONFIGS[: rnd % len(CONFIGS)]
            this_round: dict[str, float] = {}
            for config in order:
                rate, note = trial(
                    config, f"r{rnd + 1}-{config}", server, messages, args, workdir, gateway
                )
                this_round[config] = rate
                rates[config].append(rate)
                print(
                    f"  round {rnd + 1} {config:<9} {rate:8,.0f} msg/s"
                    + (f"   ({note})" if note else "")
                )
            for config, values in paired.items():
                values.append(this_round[config] / this_round["baseline"])
        elapsed = time.monotonic() - started

    print(f"\nsummary ({args.rounds} rounds x {args.count} messages, {elapsed:.0f} s in all):")
    print(f"  {'config':<10} {'median':>8} {'min':>8} {'max':>8}  msg/s   median/baseline")
    base = statistics.median(rates["baseline"])
    for config in CONFIGS:
        med = statistics.median(rates[config])
        print(
            f"  {config:<10} {med:8,.0f} {min(rates[config]):8,.0f} {max(rates[config]):8,.0f}"
            f"          {med / base:.3f}"
        )
    for config, values in paired.items():
        print(
            f"  per-round {config}/baseline: "
            + " ".join(f"{v:.3f}" for v in values)
            + f"  (median {statistics.median(values):.3f})"
        )
    ratio = statistics.median(rates["nazbench"]) / base
    seed_ratio = statistics.median(rates["seed_hook"]) / base
    print(f"RESULT seed_hook/baseline = {seed_ratio:.3f}")
    verdict = "OK" if ratio >= GOAL else "BELOW GOAL"
    print(f"RESULT nazbench/baseline = {ratio:.3f} (goal >= {GOAL}: {verdict})")
    return 0 if ratio >= GOAL else 2


if __name__ == "__main__":
    sys.exit(main())
