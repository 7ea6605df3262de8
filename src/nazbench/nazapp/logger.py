"""A naz logger that appends one JSON object per line to a file.

naz 0.8.1 has no ``BaseLogger``: ``naz.Client`` accepts any ``logging.Logger`` and calls
``logger.log(level, {"event": ..., "stage": ..., "log_id": ..., "error": ...})`` (a dict,
sometimes a plain string from naz-cli). naz's own ``SimpleLogger`` adds ``exc_info=True``
at ERROR and above, which makes the stdlib append a multi-line traceback (or the text
``NoneType: None`` outside an ``except`` block) after the JSON, so records stop being one
line each. This logger instead puts the formatted traceback of the exception being
handled into the ``traceback`` field, and only when there is one.

Line format (keys always present, ``null`` when naz did not supply them)::

    {"timestamp": "2024-05-01T12:00:00.123456+00:00", "level": "ERROR",
     "event": "naz.Client.send_data", "stage": "end", "client_id": "nazbench-r1",
     "log_id": "405-jctnhvo", "error": "ConnectionResetError(104, ...)",
     "run_id": "r1", "traceback": null, "metadata": {"smpp_command": "submit_sm", ...}}

``timestamp, event, stage, client_id, log_id, error, metadata`` are the seed's TimescaleDB
columns. Files are opened for append and written in blocks, flushed at least every
``flush_interval`` seconds by a small background thread (0 = a write per line: measured,
one write per line costs naz ~25% of its peak rate at INFO, ~9 lines per message); a
SIGKILL can lose at most that interval's lines, which then never reach the file (and so
never reach the shipper either: the file stays the truth). Rotation by rename
(logrotate's default ``create`` mode) is noticed by comparing the path's inode with the
open file's at most once per ``reopen_check_interval`` seconds; ``reopen()`` forces it
(app.py wires it to SIGUSR1 — naz-cli itself shuts down on SIGHUP, so SIGHUP must not be
used to ask for a reopen).
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from typing import Any, TextIO

_TOP_LEVEL = ("event", "stage", "client_id", "log_id", "error")
_MIN_SECRET_LEN = 4
_REDACTED = "{REDACTED}"


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, BaseException):
        return repr(value)
    return str(value)


def level_number(level: int | str) -> int:
    """``logging.DEBUG`` or ``"debug"`` -> 10; raises ValueError for unknown names."""
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    if isinstance(level, str):
        number = logging.getLevelName(level.upper())
        if isinstance(number, int):
            return number
    raise ValueError(f"unknown log level {level!r}")


class JsonLinesLogger(logging.Logger):
    """``logging.Logger`` that writes naz's structured records as JSON lines to a file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        level: int | str = logging.DEBUG,
        client_id: str | None = None,
        run_id: str | None = None,
        log_metadata: dict[str, Any] | None = None,
        secrets: Iterable[str | None] = (),
        reopen_check_interval: float = 1.0,
        flush_interval: float = 0.2,
        name: str = "nazbench.naz",
    ) -> None:
        super().__init__(name, level_number(level))
        self.propagate = False
        self.path = os.fspath(path)
        self.client_id = client_id
        self.run_id = run_id
        self.log_metadata = dict(log_metadata or {})
        # Backstop only: naz already redacts the SMSC password from PDUs it logs.
        self._secrets = sorted(
            {s for s in secrets if s and len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True
        )
        self.reopen_check_interval = reopen_check_interval
        self._lock = threading.Lock()
        self._stream: TextIO | None = None
        self._inode: tuple[int, int] | None = None
        self._next_check = 0.0
        self._reopen_requested = False
        self.write_errors = 0
        self.flush_interval = flush_interval
        self._open()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if flush_interval > 0:
            self._flusher = threading.Thread(
                target=self._flush_loop, name="nazbench-log-flush", daemon=True
            )
            self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()

    def flush(self) -> None:
        """Push buffered lines to the file now."""
        with self._lock:
            if self._stream is not None:
                try:
                    self._stream.flush()
                except (OSError, ValueError):
                    self.write_errors += 1

    # -------------------------------------------------------------- file handling

    def _open(self) -> None:
        buffering = 1 if self.flush_interval <= 0 else 1 << 16
        stream = open(self.path, "a", buffering=buffering, encoding="utf-8")  # noqa: SIM115
        st = os.fstat(stream.fileno())
        self._stream, self._inode = stream, (st.st_dev, st.st_ino)
        self._next_check = time.monotonic() + self.reopen_check_interval

    def _close(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(OSError):
                self._stream.close()
            self._stream = None

    def request_reopen(self, *_: Any) -> None:
        """Signal-handler safe: reopen the file before the next record is written."""
        self._reopen_requested = True

    def reopen(self) -> None:
        """Close and reopen the log file (after it was renamed by logrotate)."""
        with self._lock:
            self._close()
            self._open()
            self._reopen_requested = False

    def _rotated(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != self._inode

    def _maybe_reopen(self) -> None:
        now = time.monotonic()
        if self._reopen_requested or (now >= self._next_check and self._rotated()):
            self._close()
            self._open()
            self._reopen_requested = False
        elif now >= self._next_check:
            self._next_check = now + self.reopen_check_interval

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._close()

    # -------------------------------------------------------------- records

    def format_record(self, level: int, msg: Any, exc_info: Any = None) -> str:
        """The JSON line (without newline) for one ``log(level, msg)`` call."""
        now = datetime.datetime.now(datetime.UTC)
        record: dict[str, Any] = {
            "timestamp": now.isoformat(timespec="microseconds"),
            "level": logging.getLevelName(level),
            "event": None,
            "stage": None,
            "client_id": self.client_id,
            "log_id": None,
            "error": None,
            "run_id": self.run_id,
            "traceback": None,
        }
        metadata = dict(self.log_metadata)
        if isinstance(msg, dict):
            for key, value in msg.items():
                if key in _TOP_LEVEL:
                    record[key] = value if value is None or isinstance(value, str) else str(value)
                else:
                    metadata[str(key)] = value
        else:
            metadata["message"] = msg if isinstance(msg, str) else repr(msg)
        if record["error"] == "":
            record["error"] = None
        record["traceback"] = self._traceback(level, exc_info)
        record["metadata"] = metadata
        try:
            line = json.dumps(record, default=_json_default, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            # e.g. circular structures: keep the record, lose the unserialisable part
            record["metadata"] = {"unserialisable": repr(metadata)[:2000], "why": repr(exc)}
            line = json.dumps(record, default=_json_default, ensure_ascii=False)
        for secret in self._secrets:
            if secret in line:
                line = line.replace(secret, _REDACTED)
        return line

    @staticmethod
    def _traceback(level: int, exc_info: Any) -> str | None:
        if exc_info is None and level >= logging.ERROR:
            exc_info = True  # what naz's SimpleLogger does at ERROR and above
        if not exc_info:
            return None
        if isinstance(exc_info, BaseException):
            exc = exc_info
        elif isinstance(exc_info, tuple):
            exc = exc_info[1]
        else:
            exc = sys.exc_info()[1]
        if exc is None:
            return None
        return "".join(traceback.format_exception(exc))

    def _write(self, line: str) -> None:
        with self._lock:
            try:
                self._maybe_reopen()
                assert self._stream is not None
                self._stream.write(line + "\n")
            except (OSError, ValueError):
                # A full disk must not take naz down; count it (exported as a metric).
                self.write_errors += 1
                self._close()
                self._next_check = 0.0
                self._reopen_requested = True

    # -------------------------------------------------------------- logging.Logger API

    def log(self, level: int | str, msg: Any, *args: Any, **kwargs: Any) -> None:
        level = level_number(level)
        if not self.isEnabledFor(level):
            return
        if args and isinstance(msg, str):
            try:
                msg = msg % args
            except (TypeError, ValueError):
                msg = f"{msg} {args!r}"
        self._write(self.format_record(level, msg, kwargs.get("exc_info")))

    def _log(  # type: ignore[override]
        self, level: int, msg: Any, args: Any, exc_info: Any = None, **_: Any
    ) -> None:
        # logging.Logger.debug/info/... end up here.
        self.log(level, msg, *(args or ()), exc_info=exc_info)

    def bind(self, level: int | str, log_metadata: dict[str, Any] | None) -> None:
        """naz 0.6.x's ``BaseLogger.bind``: the Client passes its loglevel and metadata
        (smsc_host, system_id, client_id, pid); client_id is a top-level field here."""
        self.setLevel(level)
        for key, value in (log_metadata or {}).items():
            if key == "client_id":
                self.client_id = self.client_id or value
            else:
                self.log_metadata.setdefault(str(key), value)

    def isEnabledFor(self, level: int) -> bool:
        return level >= self.level

    def setLevel(self, level: int | str) -> None:
        self.level = level_number(level)
