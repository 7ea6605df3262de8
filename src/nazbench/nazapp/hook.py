"""A naz hook that keeps Prometheus metrics in-process and serves them over HTTP.

The seed's hook pushed to a Pushgateway from a thread pool on every PDU; this one only
increments counters (a dict lookup and an add) and lets Prometheus scrape
``http://<naz host>:<metrics_port>/metrics``.

naz 0.8.1 calls ``to_smsc(smpp_command, log_id, hook_metadata, pdu)`` just before writing
a PDU and ``from_smsc(smpp_command, log_id, hook_metadata, status, pdu)`` after parsing
one (``status`` is a ``naz.state.CommandStatus`` with ``code``/``value``/``description``).
Both ``pdu`` arguments are the full PDU, so the submit_sm → submit_sm_resp latency is
measured by the SMPP sequence number in bytes 12-16 of the header, which the response
echoes; unanswered requests are forgotten after ``pending_ttl`` seconds or beyond
``max_pending`` entries, and counted.

Metrics (all carry ``run_id``):

- ``nazbench_naz_messages_total{smpp_command,state,response_code}`` — ``state`` is
  ``request`` (to_smsc) or ``response`` (from_smsc); ``response_code`` is the SMPP
  ``command_status`` name (e.g. ``ESME_ROK``), empty for requests. Same labels as the
  seed's ``naz_benchmarks_number_of_messages_total``.
- ``nazbench_naz_submit_sm_latency_seconds`` histogram.
- ``nazbench_naz_submit_sm_unanswered_total`` — requests whose response never came.
- ``nazbench_naz_broker_*`` — from ``BrokerCollector`` (dequeued, redis errors, ...).
- ``nazbench_naz_log_write_errors_total``, ``nazbench_naz_info{client_id,naz_version}``.
- The standard ``process_*`` (``process_resident_memory_bytes``), ``python_gc_*`` and
  ``python_info`` collectors are registered on the same registry.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import naz
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from nazbench.nazapp import compat

PREFIX = "nazbench_naz"
# 154 ms RTT: most answers land between 0.15 s and 1 s; outages push some far out.
LATENCY_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
_SEQ = struct.Struct(">I")

_servers: dict[tuple[str, int], Any] = {}
_servers_lock = threading.Lock()


def new_registry() -> CollectorRegistry:
    """A registry with the process (RSS), GC and platform collectors, like the default one."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def default_collectors_present() -> bool:
    """True when prometheus_client's global default collectors exist (sanity check)."""
    return all(c is not None for c in (PROCESS_COLLECTOR, GC_COLLECTOR, PLATFORM_COLLECTOR))


def serve(registry: CollectorRegistry, port: int, addr: str) -> int:
    """Start the /metrics HTTP server once per (addr, port); return the bound port."""
    with _servers_lock:
        if port and (addr, port) in _servers:
            return port
        server, _thread = start_http_server(port, addr=addr, registry=registry)
        bound = server.server_address[1]
        _servers[(addr, bound)] = server
        return bound


def shutdown_servers() -> None:
    """Stop every /metrics server this process started (tests)."""
    with _servers_lock:
        for server in _servers.values():
            server.shutdown()
            server.server_close()
        _servers.clear()


def _sequence(pdu: bytes) -> int | None:
    if len(pdu) < 16:
        return None
    return _SEQ.unpack_from(pdu, 12)[0]


class PrometheusHook(compat.BaseHook):
    """``naz.hooks.BaseHook`` that counts PDUs and times submit_sm round trips.

    naz 0.6.x calls ``request``/``response`` instead, without the PDU: there the
    submit_sm → submit_sm_resp latency is matched by ``log_id`` (naz's correlater gives the
    response the request's log_id).
    """

    def __init__(
        self,
        run_id: str,
        *,
        registry: CollectorRegistry | None = None,
        pending_ttl: float = 300.0,
        max_pending: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run_id = run_id
        self.registry = registry if registry is not None else new_registry()
        self.pending_ttl = pending_ttl
        self.max_pending = max_pending
        self._clock = clock
        # sequence_number -> send time; insertion order == send order, so the oldest
        # entry is always first and expiry is O(1) per call.
        self._pending: dict[int | str, float] = {}
        self.messages = Counter(
            f"{PREFIX}_messages",
            "PDUs sent to (state=request) and received from (state=response) the SMSC.",
            ["run_id", "smpp_command", "state", "response_code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            f"{PREFIX}_submit_sm_latency_seconds",
            "Time from writing a submit_sm to receiving its submit_sm_resp.",
            ["run_id"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(run_id)
        self.unanswered = Counter(
            f"{PREFIX}_submit_sm_unanswered",
            "submit_sm requests whose response did not arrive within the pending TTL.",
            ["run_id"],
            registry=self.registry,
        ).labels(run_id)
        self.pending_gauge = Gauge(
            f"{PREFIX}_submit_sm_pending",
            "submit_sm requests awaiting a response.",
            ["run_id"],
            registry=self.registry,
        ).labels(run_id)
        self.pending_gauge.set_function(lambda: len(self._pending))
        self.info = Gauge(
            f"{PREFIX}_info",
            "Constant 1; identifies the naz client of this run.",
            ["run_id", "client_id", "naz_version"],
            registry=self.registry,
        )
        self.port: int | None = None

    def describe_client(self, client_id: str) -> None:
        self.info.labels(self.run_id, client_id, compat.VERSION).set(1)

    def serve(self, port: int, addr: str) -> int:
        self.port = serve(self.registry, port, addr)
        return self.port

    # ------------------------------------------------------------------ BaseHook

    async def to_smsc(self, smpp_command: str, log_id: str, hook_metadata: str, pdu: bytes) -> None:
        self.messages.labels(self.run_id, smpp_command, "request", "").inc()
        if smpp_command == compat.SUBMIT_SM:
            seq = _sequence(pdu) if pdu else log_id
            if seq is not None:
                self._expire(self._clock())
                self._pending[seq] = self._clock()

    async def from_smsc(
        self,
        smpp_command: str,
        log_id: str,
        hook_metadata: str,
        status: naz.state.CommandStatus,
        pdu: bytes,
    ) -> None:
        code = getattr(status, "code", None) or str(status)
        self.messages.labels(self.run_id, smpp_command, "response", code).inc()
        if smpp_command == compat.SUBMIT_SM_RESP:
            seq = _sequence(pdu) if pdu else log_id
            sent = self._pending.pop(seq, None) if seq is not None else None
            if sent is not None:
                self.latency.observe(max(0.0, self._clock() - sent))

    # naz 0.6.x's BaseHook
    async def request(self, smpp_command: str, log_id: str, hook_metadata: str) -> None:
        await self.to_smsc(smpp_command, log_id, hook_metadata, b"")

    async def response(
        self, smpp_command: str, log_id: str, hook_metadata: str, smsc_response: Any
    ) -> None:
        await self.from_smsc(smpp_command, log_id, hook_metadata, smsc_response, b"")

    def _expire(self, now: float) -> None:
        pending = self._pending
        while pending:
            seq, sent = next(iter(pending.items()))
            if now - sent <= self.pending_ttl and len(pending) < self.max_pending:
                return
            del pending[seq]
            self.unanswered.inc()


class BrokerCollector(Collector):
    """Exports a ``RedisBroker``'s ``stats`` and the logger's write errors at scrape time."""

    def __init__(self, run_id: str, broker: Any, logger: Any = None) -> None:
        self.run_id = run_id
        self.broker = broker
        self.logger = logger

    def collect(self) -> Iterator[Any]:
        stats = self.broker.stats
        counters = {
            "dequeued": "Messages popped from Redis and handed to naz.",
            "enqueued": "Messages naz pushed (enquire_link_resp/deliver_sm_resp).",
            "enqueue_errors": "Failed pushes.",
            "empty_polls": "BRPOP calls that timed out on an empty queue.",
            "redis_errors": "Failed Redis calls while dequeuing (each retried).",
            "recoveries": "Times Redis became reachable again after failures.",
            "undecodable": "Popped payloads that were not naz messages (parked).",
            "requeued_on_stop": "Messages returned to the queue at shutdown.",
            "outage_seconds": "Seconds spent unable to reach Redis while dequeuing.",
        }
        for name, doc in counters.items():
            family = CounterMetricFamily(f"{PREFIX}_broker_{name}", doc, labels=["run_id"])
            family.add_metric([self.run_id], float(getattr(stats, name)))
            yield family
        down = GaugeMetricFamily(
            f"{PREFIX}_broker_redis_down", "1 while Redis is unreachable.", labels=["run_id"]
        )
        down.add_metric([self.run_id], 1.0 if self.broker._down_since is not None else 0.0)
        yield down
        if self.logger is not None:
            family = CounterMetricFamily(
                f"{PREFIX}_log_write_errors",
                "Log lines that could not be written.",
                labels=["run_id"],
            )
            family.add_metric([self.run_id], float(getattr(self.logger, "write_errors", 0)))
            yield family
