from __future__ import annotations

import asyncio
import json
import logging
import time

import naz
import pytest

from nazbench.nazapp.broker import BrokerStopping, RedisBroker
from nazbench.nazapp.logger import JsonLinesLogger

QUEUE = "q"


def submit(i: int) -> naz.protocol.SubmitSM:
    return naz.protocol.SubmitSM(
        short_message=f"[nb:r1/{i}] hello",
        source_addr="NazBenchmarksInc",
        destination_addr="254700000000",
        log_id=f"{i}-abcdefg",
        hook_metadata=f"r1/{i}",
    )


def make(redis_server, **kw) -> RedisBroker:
    kw.setdefault("brpop_timeout", 0.5)
    kw.setdefault("min_backoff", 0.05)
    kw.setdefault("max_backoff", 0.3)
    kw.setdefault("connect_timeout", 0.5)
    return RedisBroker(port=redis_server.port, queue=QUEUE, **kw)


def run(coro, timeout: float = 10.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_enqueue_dequeue_round_trip_in_fifo_order(redis_server, redis_client):
    async def go():
        broker = make(redis_server)
        for i in range(3):
            await broker.enqueue(submit(i))
        got = [await broker.dequeue() for _ in range(3)]
        await broker.close()
        return broker, got

    broker, got = run(go())
    assert [m.log_id for m in got] == ["0-abcdefg", "1-abcdefg", "2-abcdefg"]
    assert all(isinstance(m, naz.protocol.SubmitSM) for m in got)
    assert got[0].to_json() == submit(0).to_json()
    assert broker.stats.enqueued == 3 and broker.stats.dequeued == 3
    assert redis_client.llen(QUEUE) == 0


def test_responses_naz_enqueues_jump_the_queue(redis_server):
    async def go():
        broker = make(redis_server)
        await broker.enqueue(submit(0))
        await broker.enqueue(submit(1))
        await broker.enqueue(naz.protocol.EnquireLinkResp(log_id="el", sequence_number=9))
        first = await broker.dequeue()
        await broker.close()
        return first

    first = run(go())
    assert isinstance(first, naz.protocol.EnquireLinkResp)
    assert first.sequence_number == 9


def test_empty_queue_blocks_in_brpop_without_spinning(redis_server, redis_client):
    async def go():
        broker = make(redis_server, brpop_timeout=0.2, socket_timeout=1.5)
        task = asyncio.create_task(broker.dequeue())
        await asyncio.sleep(1.1)
        assert not task.done()
        polls = broker.stats.empty_polls
        redis_client.lpush(QUEUE, submit(5).to_json())
        msg = await asyncio.wait_for(task, 3)
        await broker.close()
        return broker, polls, msg

    broker, polls, msg = run(go())
    assert msg.log_id == "5-abcdefg"
    assert 3 <= polls <= 6  # ~1.1 s / 0.2 s: each empty poll really waited
    assert broker.stats.redis_errors == 0  # socket timeout above the BRPOP timeout


def test_socket_timeout_must_exceed_brpop_timeout():
    with pytest.raises(ValueError, match="socket_timeout"):
        RedisBroker(brpop_timeout=8, socket_timeout=5)
    with pytest.raises(ValueError, match="brpop_timeout"):
        RedisBroker(brpop_timeout=0)


def test_redis_stopped_mid_dequeue_then_restarted_delivers_next_message(redis_server, tmp_path):
    log_path = tmp_path / "broker.jsonl"
    logger = JsonLinesLogger(log_path, level=logging.DEBUG)

    async def go():
        broker = make(redis_server, logger=logger)
        task = asyncio.create_task(broker.dequeue())
        await asyncio.sleep(0.3)  # inside BRPOP
        redis_server.stop()
        t_down = time.monotonic()
        await asyncio.sleep(1.5)
        assert not task.done(), "dequeue must not give up (naz would sleep 2+ minutes)"
        errors_while_down = broker.stats.redis_errors
        redis_server.start()
        client = redis_server.client()
        client.lpush(QUEUE, submit(42).to_json())
        client.close()
        msg = await asyncio.wait_for(task, 5)
        recovered_after = time.monotonic() - t_down
        await broker.close()
        return broker, errors_while_down, msg, recovered_after

    broker, errors_while_down, msg, recovered_after = run(go())
    assert msg.log_id == "42-abcdefg"
    # bounded backoff (0.05 s doubling to 0.3 s): a handful of attempts, not a busy loop
    assert 2 <= errors_while_down <= 15
    assert broker.stats.recoveries == 1
    assert broker.stats.outage_seconds > 1.0
    assert recovered_after < 4.0
    logger.flush()
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    states = [r["metadata"].get("state", "") for r in records]
    assert any("unavailable" in s for s in states)
    assert any("reachable again" in s for s in states)


def test_undecodable_payload_is_counted_parked_and_skipped(redis_server, redis_client):
    redis_client.lpush(QUEUE, b"\xffnot json", json.dumps({"smpp_command": "bogus"}))
    redis_client.lpush(QUEUE, submit(1).to_json())

    async def go():
        broker = make(redis_server)
        msg = await broker.dequeue()
        await broker.close()
        return broker, msg

    broker, msg = run(go())
    assert msg.log_id == "1-abcdefg"
    assert broker.stats.undecodable == 2
    assert redis_client.lrange(QUEUE + ":undecodable", 0, -1)[-1] == b"\xffnot json"
    assert redis_client.llen(QUEUE) == 0


def test_stopping_client_gets_broker_stopping_and_nothing_is_popped(redis_server, redis_client):
    redis_client.lpush(QUEUE, submit(1).to_json())

    async def go():
        broker = make(redis_server, stopping=lambda: True)
        with pytest.raises(BrokerStopping):
            await broker.dequeue()
        await broker.close()

    run(go())
    assert redis_client.llen(QUEUE) == 1


def test_message_popped_as_shutdown_starts_is_pushed_back_to_the_front(redis_server, redis_client):
    redis_client.lpush(QUEUE, submit(1).to_json(), submit(2).to_json())
    calls = iter([False, True])

    async def go():
        broker = make(redis_server, stopping=lambda: next(calls, True))
        with pytest.raises(BrokerStopping):
            await broker.dequeue()
        await broker.close()
        return broker

    broker = run(go())
    assert broker.stats.requeued_on_stop == 1
    assert redis_client.llen(QUEUE) == 2
    assert json.loads(redis_client.rpop(QUEUE))["log_id"] == "1-abcdefg"  # still next


def test_ready_gate_delays_popping(redis_server, redis_client):
    redis_client.lpush(QUEUE, submit(1).to_json())
    state = {"ready": False}

    async def go():
        broker = make(redis_server, ready=lambda: state["ready"], ready_poll_interval=0.05)
        task = asyncio.create_task(broker.dequeue())
        await asyncio.sleep(0.3)
        assert not task.done()
        assert redis_client.llen(QUEUE) == 1
        state["ready"] = True
        msg = await asyncio.wait_for(task, 3)
        await broker.close()
        return msg

    assert run(go()).log_id == "1-abcdefg"


def test_enqueue_raises_when_redis_is_down(redis_server):
    redis_server.stop()

    async def go():
        broker = make(redis_server, enqueue_timeout=2)
        with pytest.raises(Exception):  # noqa: B017 - any redis/OS error; naz catches it
            await broker.enqueue(naz.protocol.EnquireLinkResp(log_id="x", sequence_number=1))
        await broker.close()
        return broker

    assert run(go()).stats.enqueue_errors == 1
