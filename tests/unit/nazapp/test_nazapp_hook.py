from __future__ import annotations

import asyncio
import struct
import urllib.request

import naz
import pytest
from prometheus_client import CollectorRegistry

from nazbench.nazapp import hook as hookmod
from nazbench.nazapp.broker import BrokerStats
from nazbench.nazapp.hook import BrokerCollector, PrometheusHook

OK = naz.SmppCommandStatus.ESME_ROK
THROTTLED = naz.SmppCommandStatus.ESME_RTHROTTLED


def pdu(command_id: int, seq: int, status: int = 0) -> bytes:
    return struct.pack(">IIII", 16, command_id, status, seq)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def value(h: PrometheusHook, name: str, **labels: str) -> float | None:
    return h.registry.get_sample_value(name, {"run_id": "r1", **labels})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def h(clock: Clock) -> PrometheusHook:
    return PrometheusHook("r1", clock=clock, pending_ttl=60, max_pending=3)


def test_counters_follow_to_smsc_and_from_smsc(h, clock):
    req = {"smpp_command": "submit_sm", "state": "request", "response_code": ""}
    resp = {"smpp_command": "submit_sm_resp", "state": "response", "response_code": "ESME_ROK"}
    assert value(h, "nazbench_naz_messages_total", **req) is None

    async def go():
        await h.to_smsc("submit_sm", "1-abcdefg", "r1/1", pdu(0x4, 7))
        await h.to_smsc("submit_sm", "2-abcdefg", "r1/2", pdu(0x4, 8))
        clock.now += 0.25
        await h.from_smsc("submit_sm_resp", "1-abcdefg", "r1/1", OK, pdu(0x80000004, 7))
        await h.from_smsc(
            "submit_sm_resp", "2-abcdefg", "r1/2", THROTTLED, pdu(0x80000004, 8, 0x58)
        )
        await h.to_smsc("enquire_link", "x", "", pdu(0x15, 9))

    asyncio.run(go())
    assert value(h, "nazbench_naz_messages_total", **req) == 2
    assert value(h, "nazbench_naz_messages_total", **resp) == 1
    assert (
        value(
            h,
            "nazbench_naz_messages_total",
            smpp_command="submit_sm_resp",
            state="response",
            response_code="ESME_RTHROTTLED",
        )
        == 1
    )
    assert (
        value(
            h,
            "nazbench_naz_messages_total",
            smpp_command="enquire_link",
            state="request",
            response_code="",
        )
        == 1
    )
    assert value(h, "nazbench_naz_submit_sm_latency_seconds_count") == 2
    assert value(h, "nazbench_naz_submit_sm_latency_seconds_sum") == pytest.approx(0.5)
    assert value(h, "nazbench_naz_submit_sm_latency_seconds_bucket", le="0.3") == 2
    assert value(h, "nazbench_naz_submit_sm_pending") == 0


def test_unanswered_requests_expire_by_age_and_by_count(h, clock):
    async def go():
        await h.to_smsc("submit_sm", "a", "", pdu(0x4, 1))
        clock.now += 61
        await h.to_smsc("submit_sm", "b", "", pdu(0x4, 2))  # expires seq 1 (too old)
        await h.to_smsc("submit_sm", "c", "", pdu(0x4, 3))
        await h.to_smsc("submit_sm", "d", "", pdu(0x4, 4))
        await h.to_smsc("submit_sm", "e", "", pdu(0x4, 5))  # max_pending=3: drops seq 2
        await h.from_smsc("submit_sm_resp", "a", "", OK, pdu(0x80000004, 1))  # too late

    asyncio.run(go())
    assert value(h, "nazbench_naz_submit_sm_unanswered_total") == 2
    assert value(h, "nazbench_naz_submit_sm_pending") == 3
    assert value(h, "nazbench_naz_submit_sm_latency_seconds_count") == 0


def test_short_pdus_are_counted_without_latency(h):
    async def go():
        await h.to_smsc("submit_sm", "a", "", b"\x00")
        await h.from_smsc("submit_sm_resp", "a", "", OK, b"")

    asyncio.run(go())
    assert (
        value(
            h,
            "nazbench_naz_messages_total",
            smpp_command="submit_sm",
            state="request",
            response_code="",
        )
        == 1
    )


def test_process_rss_and_info_are_exported(h):
    rss = h.registry.get_sample_value("process_resident_memory_bytes")
    assert rss is not None and rss > 1_000_000
    assert hookmod.default_collectors_present()
    h.describe_client("cid")
    assert (
        h.registry.get_sample_value(
            "nazbench_naz_info",
            {
                "run_id": "r1",
                "client_id": "cid",
                "naz_version": naz.__version__.about["__version__"],
            },
        )
        == 1
    )


def test_broker_collector_exports_stats():
    class FakeBroker:
        stats = BrokerStats(dequeued=5, redis_errors=2, outage_seconds=1.5)
        _down_since = 123.0

    class FakeLogger:
        write_errors = 3

    registry = CollectorRegistry()
    registry.register(BrokerCollector("r1", FakeBroker(), FakeLogger()))
    get = registry.get_sample_value
    assert get("nazbench_naz_broker_dequeued_total", {"run_id": "r1"}) == 5
    assert get("nazbench_naz_broker_redis_errors_total", {"run_id": "r1"}) == 2
    assert get("nazbench_naz_broker_outage_seconds_total", {"run_id": "r1"}) == 1.5
    assert get("nazbench_naz_broker_redis_down", {"run_id": "r1"}) == 1
    assert get("nazbench_naz_log_write_errors_total", {"run_id": "r1"}) == 3


def test_http_endpoint_serves_metrics_once_per_port(h):
    try:
        port = h.serve(0, "127.0.0.1")
        assert hookmod.serve(h.registry, port, "127.0.0.1") == port  # no second server
        asyncio.run(h.to_smsc("submit_sm", "a", "", pdu(0x4, 1)))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
        assert 'nazbench_naz_messages_total{response_code="",run_id="r1"' in body
        assert "process_resident_memory_bytes" in body
    finally:
        hookmod.shutdown_servers()
