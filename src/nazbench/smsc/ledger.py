"""The SMSC's durable record of every submit_sm it answered.

One JSON object per line::

    {"ts": 1700000000.123456, "session": "18c1f0a2b3d.4", "sequence_number": 7,
     "msg_id": "run-1/41", "message_id": "18c1f0a2b3d-2a", "command_status": 0}

``msg_id`` is the benchmark id carried in short_message (null when there is none),
``message_id`` the id the SMSC returned (null when ``command_status`` is not 0, because an
error submit_sm_resp carries no body).

With delivery receipts on (``--receipts``, see :mod:`nazbench.smsc.receipts`) the ledger
also holds lines with a ``record`` key (``"receipt"``: a deliver_sm sent, written before
it is sent; ``"receipt_ack"``: its deliver_sm_resp). submit_sm lines have no ``record`` key.

The server hands each batch of lines to :meth:`Ledger.write` *before* it sends the
matching submit_sm_resp PDUs, and ``write`` returns only after the kernel has the bytes,
so a response the client saw is in the file even if the process is SIGKILLed right after.
``fsync`` runs at most once per second in the background and once on close; only a
machine crash can lose the last second. The file is opened in append mode and never
truncated; a line torn by a crash is fenced off with a newline on the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

_TAIL_SCAN_BYTES = 1 << 20


def last_boot_id(path: Path) -> int | None:
    """The largest boot id among message_ids in the last MiB of the ledger, if any."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - _TAIL_SCAN_BYTES))
            tail = fh.read()
    except FileNotFoundError:
        return None
    best: int | None = None
    for raw in tail.splitlines():
        try:
            message_id = json.loads(raw).get("message_id")
            boot = int(str(message_id).split("-", 1)[0], 16)
        except (ValueError, AttributeError, TypeError):
            continue  # torn first/last line, error lines (message_id null), foreign lines
        if best is None or boot > best:
            best = boot
    return best


def choose_boot_id(path: Path, now_ms: int | None = None) -> int:
    """A boot id greater than every boot id already in the ledger.

    It is the start time in milliseconds, bumped past the ledger's last boot id so that a
    clock that went backwards cannot make message_ids repeat.
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    previous = last_boot_id(path)
    return now if previous is None or now > previous else previous + 1


class Ledger:
    """Append-only JSON-lines file with a background fsync."""

    def __init__(self, path: str | os.PathLike[str], fsync_interval: float = 1.0) -> None:
        self.path = Path(path)
        self.fsync_interval = fsync_interval
        self.lines_written = 0
        self._fd: int | None = None
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self._fsync_future: asyncio.Future[None] | None = None

    def open(self) -> None:
        """Open (creating if needed) in append mode and fence off a torn last line."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._fd = fd
        size = os.fstat(fd).st_size
        if size:
            with self.path.open("rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    log.warning("ledger %s ends with a torn line; fencing it off", self.path)
                    self._write_all(b"\n")
                    os.fsync(fd)

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None, "ledger is not open"
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def write(self, data: bytes, lines: int) -> None:
        """Hand ``lines`` complete lines (``data``) to the kernel before returning."""
        self._write_all(data)
        self.lines_written += lines
        self._dirty = True

    def start(self) -> None:
        """Start the background fsync loop on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._fsync_loop())

    async def _fsync_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.fsync_interval)
            if self._dirty and self._fd is not None:
                self._dirty = False
                future = loop.run_in_executor(None, os.fsync, self._fd)
                self._fsync_future = future
                try:
                    # shield: cancelling this loop must not orphan a running fsync
                    await asyncio.shield(future)
                except OSError as exc:
                    log.error("ledger fsync failed: %s", exc)
                self._fsync_future = None

    def sync(self) -> None:
        """fsync now (blocking)."""
        if self._fd is not None:
            os.fsync(self._fd)
            self._dirty = False

    async def aclose(self) -> None:
        """Stop the fsync loop, fsync and close."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._fsync_future is not None:
            # an fsync running in a worker thread must finish before the fd is closed
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await asyncio.shield(self._fsync_future)
        self.close()

    def close(self) -> None:
        """fsync and close (blocking); idempotent."""
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None
