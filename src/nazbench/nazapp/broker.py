"""A naz broker on a Redis list (LPUSH to enqueue, BRPOP to dequeue) that rides out outages.

Why ``dequeue`` never raises on Redis errors: naz 0.8.1's ``Client.dequeue_messages``
treats any exception from ``broker.dequeue()`` by sleeping ``Client._retry_after(n)``
seconds, where ``n`` counts consecutive failures: 120 s after the first, then 240 s,
480 s, ... capped at 960 s. A 1-3 minute Redis outage would therefore stall sending for
2-8 minutes after Redis is back. Instead this broker retries inside ``dequeue`` with a
bounded exponential backoff (``min_backoff`` doubling to ``max_backoff``), logging each
failure, and returns as soon as a message is available again.

The only exception ``dequeue`` raises is ``BrokerStopping``: when the client is shutting
down (``stopping()`` returns true) the broker stops popping, so naz's loop sees
``SHOULD_SHUT_DOWN`` and returns instead of taking messages it would drop. A message
popped while shutdown began is pushed back to the end BRPOP reads from.

BRPOP removes the item, so a popped payload is never discarded silently: one that does
not decode to a ``naz.protocol.Message`` is counted, logged at ERROR and parked on
``<queue>:undecodable``.

``enqueue`` is what naz uses for ``enquire_link_resp``/``deliver_sm_resp``. With
``priority_responses`` (default) those are RPUSHed, i.e. put where BRPOP takes the next
item, so they are not stuck behind 100,000 queued submit_sm; other messages are LPUSHed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import naz
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from nazbench.nazapp import compat

UNDECODABLE_SUFFIX = ":undecodable"
_RAW_LOG_LIMIT = 512


class BrokerStopping(Exception):
    """Raised by ``dequeue`` instead of popping once the client is shutting down."""


@dataclasses.dataclass
class BrokerStats:
    """Monotonic counters; hook.BrokerCollector exports them to Prometheus."""

    dequeued: int = 0
    enqueued: int = 0
    enqueue_errors: int = 0
    empty_polls: int = 0
    redis_errors: int = 0
    recoveries: int = 0
    undecodable: int = 0
    requeued_on_stop: int = 0
    outage_seconds: float = 0.0


def _describe(exc: BaseException) -> str:
    # redis-py 8 exceptions repr() as e.g. "network:ConnectionError", without the message.
    return f"{type(exc).__name__}({exc})"


def _never() -> bool:
    return False


def _always() -> bool:
    return True


class RedisBroker(compat.BaseBroker):
    """``naz.broker.BaseBroker`` on a Redis list; see the module docstring.

    With naz 0.6.x it is a ``naz.q.BaseOutboundQueue`` whose items are dicts; the stored
    JSON is the same (``compat.encode``/``compat.decode``).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 6379,
        db: int = 0,
        password: str | None = None,
        queue: str = "naz_benchmarks_queue",
        brpop_timeout: float = 8.0,
        socket_timeout: float | None = None,
        connect_timeout: float = 5.0,
        health_check_interval: int = 30,
        min_backoff: float = 0.1,
        max_backoff: float = 5.0,
        enqueue_timeout: float = 5.0,
        priority_responses: bool = True,
        logger: logging.Logger | None = None,
        stopping: Callable[[], bool] | None = None,
        ready: Callable[[], bool] | None = None,
        ready_poll_interval: float = 0.25,
        redis_client: aioredis.Redis | None = None,
        encoding: str = compat.DEFAULT_ENCODING,
    ) -> None:
        if brpop_timeout <= 0:
            # 0 would block forever and the shutdown check would never run
            raise ValueError("brpop_timeout must be > 0")
        if socket_timeout is None:
            socket_timeout = brpop_timeout + 10.0
        if socket_timeout <= brpop_timeout:
            raise ValueError("socket_timeout must exceed brpop_timeout")
        if not 0 < min_backoff <= max_backoff:
            raise ValueError("need 0 < min_backoff <= max_backoff")
        self.queue = queue
        self.encoding = encoding
        self.undecodable_queue = queue + UNDECODABLE_SUFFIX
        self.brpop_timeout = brpop_timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.enqueue_timeout = enqueue_timeout
        self.priority_responses = priority_responses
        self.logger = logger
        self.stopping = stopping or _never
        self.ready = ready or _always
        self.ready_poll_interval = ready_poll_interval
        self.stats = BrokerStats()
        self._down_since: float | None = None
        self._where = f"{host}:{port}/{db}"
        self._redis = redis_client or aioredis.Redis(
            host=host,
            port=port,
            db=db,
            password=password,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            socket_keepalive=True,
            health_check_interval=health_check_interval,
            # One quick retry for a blip on an established connection (e.g. a stale pooled
            # connection after Redis restarted); longer outages are handled by dequeue's
            # own backoff, which also checks for shutdown between attempts.
            # (Retry covers ConnectionError and TimeoutError.)
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=1),
        )

    # ------------------------------------------------------------------ helpers

    def _log(self, level: int, stage: str, **fields: Any) -> None:
        if self.logger is None:
            return
        record = {"event": "nazbench.RedisBroker", "stage": stage, "queue": self.queue, **fields}
        with contextlib.suppress(Exception):  # a broken logger must not stop the broker
            # The error's repr says it all; a traceback per retry would only add noise.
            self.logger.log(level, record, exc_info=False)

    def _went_down(self, exc: BaseException, backoff: float) -> None:
        self.stats.redis_errors += 1
        if self._down_since is None:
            self._down_since = time.monotonic()
        self._log(
            logging.ERROR,
            "end",
            state=f"redis at {self._where} unavailable; retrying in {backoff:.2f}s",
            error=_describe(exc),
            down_for=round(time.monotonic() - self._down_since, 3),
        )

    def _came_back(self) -> None:
        if self._down_since is None:
            return
        down_for = time.monotonic() - self._down_since
        self._down_since = None
        self.stats.recoveries += 1
        self.stats.outage_seconds += down_for
        self._log(
            logging.INFO,
            "end",
            state=f"redis at {self._where} reachable again",
            down_for=round(down_for, 3),
        )

    async def close(self) -> None:
        await self._redis.aclose()

    # ------------------------------------------------------------------ BaseBroker

    async def enqueue(self, message: naz.protocol.Message) -> None:
        """LPUSH ``message.to_json()``; responses naz generates go to the front (RPUSH).

        Raises on failure (after ``enqueue_timeout``): naz catches and logs it.
        """
        payload = compat.encode(message)
        is_response = not compat.is_submit_sm(message)
        try:
            if is_response and self.priority_responses:
                coro = self._redis.rpush(self.queue, payload)
            else:
                coro = self._redis.lpush(self.queue, payload)
            await asyncio.wait_for(coro, timeout=self.enqueue_timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            self.stats.enqueue_errors += 1
            self._log(
                logging.ERROR,
                "end",
                state="enqueue failed",
                error=_describe(exc),
                log_id=compat.log_id(message),
            )
            raise
        self.stats.enqueued += 1

    async def dequeue(self) -> naz.protocol.Message:
        """BRPOP the next message, waiting out empty queues and Redis outages."""
        backoff = self.min_backoff
        while True:
            if self.stopping():
                raise BrokerStopping("client is shutting down; not popping from the queue")
            if not self.ready():
                await asyncio.sleep(self.ready_poll_interval)
                continue
            try:
                item = await self._redis.brpop([self.queue], timeout=self.brpop_timeout)
            except (RedisError, OSError, TimeoutError) as exc:
                # ConnectionError (refused, reset, closed by server), BusyLoadingError while
                # Redis loads its dataset after a restart, AuthenticationError, timeouts.
                self._went_down(exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            self._came_back()
            backoff = self.min_backoff
            if item is None:
                # BRPOP's own timeout: the queue stayed empty. BRPOP already waited, so
                # looping again does not spin.
                self.stats.empty_polls += 1
                continue
            raw = item[1]
            if self.stopping():
                await self._push_back(raw)
                raise BrokerStopping("client is shutting down; message returned to the queue")
            message = await self._decode(raw)
            if message is None:
                continue
            self.stats.dequeued += 1
            return message

    async def _decode(self, raw: bytes) -> naz.protocol.Message | None:
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            return compat.decode(text, self.encoding)
        except Exception as exc:  # json, unicode, naz validation, unknown command
            self.stats.undecodable += 1
            self._log(
                logging.ERROR,
                "end",
                state=f"undecodable message parked on {self.undecodable_queue}",
                error=_describe(exc),
                raw=raw[:_RAW_LOG_LIMIT],
            )
            try:
                await self._redis.lpush(self.undecodable_queue, raw)
            except (RedisError, OSError, TimeoutError) as park_exc:
                self._log(
                    logging.ERROR,
                    "end",
                    state="could not park undecodable message",
                    error=_describe(park_exc),
                )
            return None

    async def _push_back(self, raw: bytes) -> None:
        try:
            await self._redis.rpush(self.queue, raw)
            self.stats.requeued_on_stop += 1
        except (RedisError, OSError, TimeoutError) as exc:
            # Last resort: the full payload is in the log so it can be re-queued by hand.
            self._log(
                logging.ERROR,
                "end",
                state="popped message could not be returned",
                error=_describe(exc),
                raw=raw,
            )
