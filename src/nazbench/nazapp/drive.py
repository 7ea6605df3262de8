"""Run a naz 0.8.1 client in-process, the way that sends from the first second.

naz-cli starts connect, bind and its loops together; then naz opens two connections and
sends nothing until ``socket_timeout`` has passed (and loses the answers to what it had
sent on the first connection). Connecting and binding first, one after the other, then
starting the loops, avoids both. The benchmarks and tests that drive naz directly use it.
"""

from __future__ import annotations

import asyncio
import contextlib

import naz


async def drive(
    client: naz.Client, done: asyncio.Event, timeout: float, linger: float = 0.0
) -> bool:
    """Connect, bind, run naz's loops until ``done`` is set (or ``timeout``), shut down.

    ``linger`` keeps the loops running that much longer after ``done`` (e.g. to let an
    enquire_link through). Returns whether ``done`` was set in time. Always stops the
    loops and waits for them, so nothing is left running.
    """
    await client.connect()
    await client.tranceiver_bind()
    tasks = [
        asyncio.create_task(coro)
        for coro in (client.dequeue_messages(), client.receive_data(), client.enquire_link())
    ]
    finished = False
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout)
            finished = True
        if linger:
            await asyncio.sleep(linger)
        await client.shutdown()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return finished
