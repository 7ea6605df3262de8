"""Following one log path across rotations and shipping it in batches.

File identity. A file is known by ``source_file = "<st_dev>:<st_ino>:<fingerprint>"``,
the fingerprint being the first 16 hex digits of the SHA-256 of its first line(s) (see
``fingerprint()``: at least 64 bytes ending with a newline, at most 256; a file is not
read until that much exists, which is its first line for naz's logs). The inode alone
is not enough: a deleted file's inode is soon reused by the next one logrotate creates.
Neither is the path: it names a different file after every rotation.

Rotation (logrotate's default ``create`` mode: rename, then a new file at the path).
Each poll stats the path; when its inode differs from the open file's, the open file
becomes a *draining* file: its descriptor stays open and it is read to EOF before the
new file is read at all. It is closed once it is at EOF and either the new file has
bytes (naz's logger closes the old file before it opens the new one, so the old one is
complete) or nothing was added to it for ``rotate_grace`` seconds. Its last partial line,
if any, is then shipped too (there is no one left to finish it). The log files are only
ever opened read-only.

Startup. The positions of this ``source_host`` are read from ``shipper_positions``; the
file at the path resumes at its position (offset 0 if it has none). A rotated file the
shipper had not finished before it stopped (a sibling named ``<path><anything>``, e.g.
``naz.jsonl.1``, not compressed, whose identity has a position smaller than its size)
is finished first. A file rotated twice while the shipper was down, and so never read,
has no position and is not looked for.

Batches. Finalized rows accumulate until ``batch_rows`` rows or ``batch_seconds``
seconds, then go to a writer thread, which commits them in order, each in one
transaction together with the positions they cover (see ``db.py``), while the main
thread parses the next batch (Python parsing and PostgreSQL inserting overlap). While
the database is unavailable the writer keeps its batch and retries with exponential
backoff; the main thread stops reading once one batch is queued behind it and its own is
full, so memory stays bounded (three batches, one read buffer per file) and the file is
the buffer. A SIGKILL at any point loses only uncommitted work, which the next start
reads again from the committed positions: no gaps, no duplicates.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from nazbench.shipper.db import DbUnavailable, Writer
from nazbench.shipper.metrics import ShipperMetrics
from nazbench.shipper.records import Assembler

log = logging.getLogger("nazbench.shipper")

FINGERPRINT_BYTES = 256
MIN_FINGERPRINT_BYTES = 64
READ_CHUNK = 1 << 20
# A "line" longer than this without a newline is cut (and shipped in pieces as raw rows).
MAX_LINE_BYTES = 8 << 20
COMPRESSED_SUFFIXES = (".gz", ".xz", ".bz2", ".zst", ".lz4", ".z", ".zip")


@dataclass
class Config:
    """How to ship one path (the CLI's options)."""

    path: str
    source_host: str
    batch_rows: int = 5000
    batch_seconds: float = 0.5
    poll_interval: float = 0.2
    idle_finalize: float = 1.0
    rotate_grace: float = 5.0
    once: bool = False
    retry_initial: float = 0.1
    retry_max: float = 5.0
    stop_timeout: float = 10.0


def fingerprint(fd: int) -> str | None:
    """Hash of the file's first whole lines, None until there are enough of them.

    The bytes hashed are the shortest prefix that ends with a newline and is at least
    ``MIN_FINGERPRINT_BYTES`` long, or the first ``FINGERPRINT_BYTES`` if no newline
    ends such a prefix within them. In an append-only file those bytes never change, so
    neither does the fingerprint; for naz's JSON lines it is the first line, whose
    microsecond timestamp makes it unique.
    """
    head = os.pread(fd, FINGERPRINT_BYTES, 0)
    newline = head.find(b"\n", MIN_FINGERPRINT_BYTES - 1)
    if newline >= 0:
        head = head[: newline + 1]
    elif len(head) < FINGERPRINT_BYTES:
        return None
    return hashlib.sha256(head).hexdigest()[:16]


def source_key(fd: int) -> str | None:
    """``dev:ino:fingerprint`` of an open file, or None while it is too short to tell."""
    fp = fingerprint(fd)
    if fp is None:
        return None
    st = os.fstat(fd)
    return f"{st.st_dev}:{st.st_ino}:{fp}"


class TrackedFile:
    """One open log file: read buffer, read position and its Assembler."""

    def __init__(self, path: str, fd: int, offset: int = 0, key: str | None = None) -> None:
        st = os.fstat(fd)
        self.path = path
        self.fd = fd
        self.dev_ino = (st.st_dev, st.st_ino)
        self.key = key
        self.buf = b""
        self.pos = 0  # index in buf of the first byte not yet fed
        self.buf_offset = offset  # file offset of buf[0]
        self.read_offset = offset  # file offset of the next byte to read
        self.start_offset = offset
        self.assembler: Assembler | None = Assembler(key, offset) if key else None
        self.last_data = time.monotonic()
        self.at_eof = False
        self.rotated = False
        self.finished = False  # idle-finalized with nothing new since

    @property
    def consumed(self) -> int:
        """File offset of the first byte not yet fed to the assembler."""
        return self.buf_offset + self.pos

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def read(self) -> int:
        """Read up to READ_CHUNK more bytes into the buffer; return how many."""
        data = os.pread(self.fd, READ_CHUNK, self.read_offset)
        if not data:
            self.at_eof = True
            return 0
        self.at_eof = len(data) < READ_CHUNK
        if self.pos:
            self.buf = self.buf[self.pos :] + data
            self.buf_offset += self.pos
            self.pos = 0
        else:
            self.buf += data
        self.read_offset += len(data)
        self.last_data = time.monotonic()
        self.finished = False
        return len(data)

    def feed(self, out: list[tuple[Any, ...]], limit: int) -> int:
        """Feed complete lines to the assembler until ``out`` holds ``limit`` rows."""
        assert self.assembler is not None
        feed = self.assembler.feed
        buf, pos, base = self.buf, self.pos, self.buf_offset
        lines = 0
        while len(out) < limit:
            newline = buf.find(b"\n", pos)
            if newline < 0:
                if len(buf) - pos >= MAX_LINE_BYTES:
                    newline = pos + MAX_LINE_BYTES - 1
                else:
                    break
            feed(base + pos, buf[pos : newline + 1], out)
            pos = newline + 1
            lines += 1
        self.pos = pos
        if pos == len(buf):
            self.buf, self.pos, self.buf_offset = b"", 0, base + pos
        return lines

    def has_complete_line(self) -> bool:
        return self.buf.find(b"\n", self.pos) >= 0 or len(self.buf) - self.pos >= MAX_LINE_BYTES


class Shipper:
    """Follows ``config.path`` and writes its records through ``writer``."""

    def __init__(
        self,
        config: Config,
        writer: Writer,
        metrics: ShipperMetrics | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.writer = writer
        self.metrics = metrics or ShipperMetrics(registry=_private_registry())
        self.stop = stop or threading.Event()
        self.positions: dict[str, tuple[str, int]] = {}
        self.committed: dict[str, int] = {}
        self.draining: list[TrackedFile] = []
        self.current: TrackedFile | None = None
        self.batch: list[tuple[Any, ...]] = []
        self.batch_positions: dict[str, tuple[str, int]] = {}
        self.batch_started: float | None = None
        self.newest_committed_ts: float | None = None
        self.unsent_rows = 0  # handed to the writer thread, not yet committed
        self._path_missing_logged = False
        self._lock = threading.Lock()  # committed/positions: written by the writer thread
        self._queue: queue.Queue[tuple[list[Any], dict[str, tuple[str, int]]] | None] = queue.Queue(
            maxsize=1
        )
        self._abort = threading.Event()
        self._writer_thread = threading.Thread(
            target=self._write_loop, name="nazbench-shipper-writer", daemon=True
        )
        self._last_gauges = 0.0

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> int:
        """Ship until stopped (or, with ``once``, until everything there is shipped)."""
        if not self._startup():
            return 0
        self._writer_thread.start()
        while not self.stop.is_set():
            progressed = self.step()
            if self.config.once and not progressed and self._all_read():
                self._finish_all()
                break
            self._maybe_submit()
            self._update_gauges()
            if not progressed:
                self.stop.wait(self._idle_wait())
        # SIGTERM: commit what is final (records still open are read again next time);
        # --once: commit everything, however long the database takes, unless stopped.
        deadline = None if not self.stop.is_set() else time.monotonic() + self.config.stop_timeout
        self._finish_writing(deadline)
        self._update_gauges(force=True)
        for tracked in [*self.draining, *([self.current] if self.current else [])]:
            tracked.close()
        if not self._writer_thread.is_alive():
            self.writer.close()
        return 0

    def _startup(self) -> bool:
        """Load positions (retrying until the database answers) and open the files."""
        backoff = self.config.retry_initial
        while not self.stop.is_set():
            try:
                self.positions = self.writer.load_positions()
                self.metrics.db_connected.set(1)
                break
            except DbUnavailable as exc:
                self._db_failed(exc, "loading positions", backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, self.config.retry_max)
        else:
            return False
        self.committed = {key: off for key, (_, off) in self.positions.items()}
        self._open_current()
        self._find_unfinished_rotated()
        return True

    # ------------------------------------------------------------------ files

    def _open(self, path: str, *, rotated: bool = False) -> TrackedFile | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot open %s: %s", path, exc)
            return None
        tracked = TrackedFile(path, fd)
        tracked.rotated = rotated
        self._identify(tracked)
        return tracked

    def _identify(self, tracked: TrackedFile, *, force: bool = False) -> None:
        """Work out the file's key (once it has a first line) and where to resume.

        ``force``: a rotated file that never got a whole first line is keyed on what it
        has, so that those bytes are shipped too (an empty one stays keyless).
        """
        if tracked.key is not None:
            return
        key = source_key(tracked.fd)
        if key is None and force:
            head = os.pread(tracked.fd, FINGERPRINT_BYTES, 0)
            if head:
                st = os.fstat(tracked.fd)
                key = f"{st.st_dev}:{st.st_ino}:{hashlib.sha256(head).hexdigest()[:16]}"
        if key is None:
            return
        offset = self.positions.get(key, (tracked.path, 0))[1]
        size = tracked.size()
        if offset > size:
            log.warning(
                "%s is shorter (%d) than its committed position (%d): truncated in place? "
                "(copytruncate is not supported) reading it from the start",
                tracked.path,
                size,
                offset,
            )
            offset = 0
        tracked.key = key
        tracked.buf, tracked.pos = b"", 0
        tracked.buf_offset = tracked.read_offset = tracked.start_offset = offset
        tracked.assembler = Assembler(key, offset)
        if offset:
            log.info("resuming %s (%s) at offset %d", tracked.path, key, offset)

    def _open_current(self) -> None:
        self.current = self._open(self.config.path)
        if self.current is not None:
            log.info("following %s", self.config.path)
            self._path_missing_logged = False
        elif not self._path_missing_logged:
            log.info("waiting for %s to exist", self.config.path)
            self._path_missing_logged = True

    def _find_unfinished_rotated(self) -> None:
        """Rotated siblings of the path with a position short of their size (see module doc)."""
        directory, base = os.path.split(os.path.abspath(self.config.path))
        try:
            names = sorted(os.listdir(directory or "."))
        except OSError:
            return
        current_key = self.current.key if self.current else None
        found: list[tuple[float, TrackedFile]] = []
        for name in names:
            if not name.startswith(base) or name == base or name.endswith(COMPRESSED_SUFFIXES):
                continue
            candidate = self._open(os.path.join(directory, name), rotated=True)
            if candidate is None:
                continue
            known = candidate.key in self.positions and candidate.key != current_key
            if known and candidate.start_offset < candidate.size():
                log.info("finishing rotated %s from offset %d", name, candidate.start_offset)
                found.append((os.fstat(candidate.fd).st_mtime, candidate))
            else:
                candidate.close()
        self.draining.extend(t for _, t in sorted(found, key=lambda item: item[0]))

    def _check_rotation(self) -> None:
        try:
            st = os.stat(self.config.path)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            log.warning("stat %s: %s", self.config.path, exc)
            return
        current = self.current
        if current is not None and st is not None and (st.st_dev, st.st_ino) == current.dev_ino:
            return
        if current is not None:
            log.info("%s was rotated; finishing the old file first", self.config.path)
            current.rotated = True
            current.last_data = time.monotonic()
            self.draining.append(current)
            self.current = None
        if st is not None:
            self._open_current()

    def _all_read(self) -> bool:
        files = [*self.draining, *([self.current] if self.current else [])]
        # A file without a key has no complete first line yet: nothing to ship from it.
        return all(f.key is None or (f.at_eof and not f.has_complete_line()) for f in files)

    # ------------------------------------------------------------------ the loop

    def step(self) -> bool:  # noqa: PLR0912 - the rotation rules, in one place
        """One poll: notice rotation, read and assemble. True if any line was consumed."""
        self._check_rotation()
        if len(self.batch) >= self.config.batch_rows:
            return False  # back-pressure: the batch must go out first
        now = time.monotonic()
        current = self.current
        if current is not None and current.key is None:
            self._identify(current)
        writer_moved = current is not None and current.size() > 0
        progressed = False
        for tracked in list(self.draining):
            if tracked.key is None:
                self._identify(tracked)
            if tracked.key is not None:
                progressed |= self._read_file(tracked)
                if len(self.batch) >= self.config.batch_rows:
                    return progressed
                if not tracked.at_eof or tracked.has_complete_line():
                    return progressed  # the old file first, to its end
            grace_over = now - tracked.last_data >= self.config.rotate_grace
            if not (writer_moved or self.config.once or grace_over):
                return progressed
            if self.config.once and not (writer_moved or grace_over):
                # --once: its partial last line (or first line) may still be completed
                if tracked.assembler is not None and not tracked.finished:
                    self._finish_idle(tracked)
                if tracked.key is None or tracked.buf[tracked.pos :]:
                    continue
            if tracked.key is None:
                self._identify(tracked, force=True)
            self._close_rotated(tracked)
            progressed = True
        if current is not None and current.key is not None:
            progressed |= self._read_file(current)
            if (
                current.at_eof
                and not current.has_complete_line()
                and not current.finished
                and now - current.last_data >= self.config.idle_finalize
            ):
                self._finish_idle(current)
        return progressed

    def _read_file(self, tracked: TrackedFile) -> bool:
        if tracked.key is None:
            self._identify(tracked)
            if tracked.key is None:
                return False
        progressed = False
        while len(self.batch) < self.config.batch_rows:
            if not tracked.has_complete_line() and tracked.read() == 0:
                break
            before = len(self.batch)
            lines = tracked.feed(self.batch, self.config.batch_rows)
            if lines:
                progressed = True
                self.metrics.lines_read.inc(lines)
            if len(self.batch) > before:
                self._note_rows(tracked)
            if tracked.at_eof and not tracked.has_complete_line():
                break
        return progressed

    def _note_rows(self, tracked: TrackedFile) -> None:
        assert tracked.key is not None and tracked.assembler is not None
        self.batch_positions[tracked.key] = (tracked.path, tracked.assembler.safe_offset)
        if self.batch_started is None:
            self.batch_started = time.monotonic()

    def _finish_idle(self, tracked: TrackedFile) -> None:
        """No new bytes for a while: the last record is final (its traceback is complete)."""
        assert tracked.assembler is not None and tracked.key is not None
        before = len(self.batch)
        tracked.assembler.finish(tracked.consumed, self.batch)
        tracked.finished = True
        if len(self.batch) > before:
            self._note_rows(tracked)

    def _close_rotated(self, tracked: TrackedFile) -> None:
        """A rotated file is complete: ship its partial last line too, and close it."""
        assembler = tracked.assembler
        if assembler is not None and tracked.key is not None:
            while tracked.read():
                pass
            lines = tracked.feed(self.batch, sys.maxsize)
            self.metrics.lines_read.inc(lines)
            rest = tracked.buf[tracked.pos :]
            if rest:
                assembler.feed(tracked.consumed, rest, self.batch)
                self.metrics.lines_read.inc()
            assembler.finish(tracked.consumed + len(rest), self.batch)
            self.batch_positions[tracked.key] = (tracked.path, assembler.safe_offset)
            if self.batch_started is None:
                self.batch_started = time.monotonic()
        log.info("finished rotated file %s", tracked.path)
        tracked.close()
        self.draining.remove(tracked)

    def _finish_all(self) -> None:
        """``--once`` at the end: every open record is final."""
        for tracked in [*self.draining, *([self.current] if self.current else [])]:
            if tracked.assembler is not None and not tracked.finished:
                self._finish_idle(tracked)

    # ------------------------------------------------------------------ writing

    def _due(self) -> bool:
        if not self.batch and not self.batch_positions:
            return False
        if len(self.batch) >= self.config.batch_rows:
            return True
        started = self.batch_started or 0.0
        return time.monotonic() - started >= self.config.batch_seconds

    def _maybe_submit(self) -> None:
        """Hand a due batch to the writer thread: waiting for it if the batch is full
        (back-pressure), else only if it is free (the batch keeps growing meanwhile)."""
        if self._due():
            self._submit(block=len(self.batch) >= self.config.batch_rows, deadline=None)

    def _submit(self, *, block: bool, deadline: float | None) -> bool:
        if not self.batch and not self.batch_positions:
            return True
        item = (self.batch, self.batch_positions)
        while True:
            try:
                self._queue.put(item, timeout=0.1 if block else None, block=block)
                break
            except queue.Full:
                if (
                    not block
                    or (deadline is not None and time.monotonic() > deadline)
                    or (deadline is None and self.stop.is_set())  # run() takes over
                ):
                    return False
        with self._lock:  # (the writer may already have committed it: briefly < 0)
            self.unsent_rows += len(self.batch)
        self.batch = []
        self.batch_positions = {}
        self.batch_started = None
        return True

    def _finish_writing(self, deadline: float | None) -> None:
        """Submit the last batch, let the writer thread commit everything, stop it.

        ``deadline`` None (``--once``) waits as long as the database needs, unless a
        signal comes, which turns it into ``stop_timeout`` from then.
        """

        def expired() -> bool:
            nonlocal deadline
            if deadline is None and self.stop.is_set():
                deadline = time.monotonic() + self.config.stop_timeout
            return deadline is not None and time.monotonic() > deadline

        items: list[Any] = [None]  # the end marker, after the last batch
        if self.batch or self.batch_positions:
            items.insert(0, (self.batch, self.batch_positions))
        for item in items:
            while not self._put(item) and not expired():
                pass
        while self._writer_thread.is_alive() and not expired():
            self._writer_thread.join(0.1)
        if self._writer_thread.is_alive():
            self._abort.set()
            log.warning("stopping with rows not committed; the next start reads them again")
            self._writer_thread.join(1.0)
        else:
            self.batch, self.batch_positions = [], {}

    def _put(self, item: Any) -> bool:
        try:
            self._queue.put(item, timeout=0.1)
        except queue.Full:
            return False
        return True

    def _write_loop(self) -> None:
        """The writer thread: commit batches in order, each retried until it succeeds."""
        backoff = self.config.retry_initial
        while True:
            item = self._queue.get()
            if item is None:
                return
            rows, positions = item
            while True:
                if self._abort.is_set():
                    return
                try:
                    inserted = self.writer.write(rows, positions)
                    break
                except DbUnavailable as exc:
                    self._db_failed(exc, "writing a batch", backoff)
                except Exception:  # a bug must not silently stop the shipping
                    log.exception("unexpected error writing a batch")
                    self.metrics.db_errors.inc()
                    self.writer.close()
                self._abort.wait(backoff)
                backoff = min(backoff * 2, self.config.retry_max)
            backoff = self.config.retry_initial
            self._committed(rows, positions, inserted)
            self.unsent_rows = 0  # handed to the writer thread, not yet committed
        self._path_missing_logged = False

    def _committed(
        self, rows: list[tuple[Any, ...]], positions: dict[str, tuple[str, int]], inserted: int
    ) -> None:
        self.metrics.db_connected.set(1)
        self.metrics.batches.inc()
        self.metrics.rows_written.inc(inserted)
        self.metrics.rows_duplicate.inc(len(rows) - inserted)
        with self._lock:
            if rows:
                newest = max(row[0] for row in rows).timestamp()
                if self.newest_committed_ts is None or newest > self.newest_committed_ts:
                    self.newest_committed_ts = newest
            self.unsent_rows -= len(rows)
            for key, (_, offset) in positions.items():
                self.committed[key] = offset
            self.positions.update(positions)

    def _db_failed(self, exc: DbUnavailable, what: str, backoff: float) -> None:
        self.metrics.db_errors.inc()
        self.metrics.db_connected.set(0)
        log.warning("database unavailable while %s (retry in %.1fs): %s", what, backoff, exc)

    def _idle_wait(self) -> float:
        wait = self.config.poll_interval
        if self.batch_started is not None:
            wait = min(wait, self.batch_started + self.config.batch_seconds - time.monotonic())
        return max(wait, 0.005)

    def _update_gauges(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_gauges < 0.5:
            return
        self._last_gauges = now
        lag = 0
        files = [*self.draining, *([self.current] if self.current else [])]
        for tracked in files:
            try:
                size = tracked.size()
            except OSError:
                continue
            committed = self.committed.get(tracked.key, 0) if tracked.key else 0
            lag += max(size - committed, 0)
        self.metrics.lag_bytes.set(lag)
        self.metrics.files_open.set(len(files))
        self.metrics.backlog_rows.set(len(self.batch) + max(self.unsent_rows, 0))
        if self.newest_committed_ts is not None:
            self.metrics.last_shipped_timestamp.set(self.newest_committed_ts)
            self.metrics.lag_seconds.set(max(time.time() - self.newest_committed_ts, 0.0))
        else:
            self.metrics.lag_seconds.set(math.nan)


def _private_registry() -> Any:
    from prometheus_client import CollectorRegistry  # noqa: PLC0415

    return CollectorRegistry()
