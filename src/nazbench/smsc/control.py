"""The mock SMSC's local control channel: a Unix stream socket that gets and sets its mode.

Off unless ``--control-socket PATH``. A client connects, sends ONE line of JSON (UTF-8, at
most :data:`MAX_REQUEST` bytes before its ``\\n``) and gets ONE line of JSON back, then the
SMSC closes the connection:

- ``{"op": "get"}`` -> ``{"ok": true, "mode": {"name": "normal"}}``;
- ``{"op": "set", "mode": {"name": "throttle", "fraction": 0.5}}`` ->
  ``{"ok": true, "mode": <now in force>, "previous": <before>}``;
- anything else -> ``{"ok": false, "error": "<why>"}``, and the mode is unchanged.

A mode is parsed by :func:`nazbench.smsc.modes.parse_mode`, the one parser the chaos loop
uses too (re-exported here); its effect on the sessions is in :mod:`nazbench.smsc.server`.
The socket is made 0600, replaces a stale socket file at its path and is removed on stop.
Nothing is persisted: a fresh process starts in ``normal``.

:func:`request` is a small synchronous client for tests and tools::

    >>> request("/run/nazbench-smsc/control.sock", {"op": "get"})  # doctest: +SKIP
    {'ok': True, 'mode': {'name': 'normal'}}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from pathlib import Path
from typing import Any, Protocol

from nazbench.smsc.modes import MODES, NORMAL, Mode, parse_mode

__all__ = [
    "MAX_REQUEST",
    "MODES",
    "NORMAL",
    "ControlChannel",
    "Mode",
    "answer",
    "describe",
    "parse_mode",
    "request",
]

log = logging.getLogger("nazbench.smsc")

MAX_REQUEST = 4096  # bytes of a request line, without its newline
READ_TIMEOUT = 5.0  # seconds a client has to send its line
MAX_PATH = 107  # sun_path holds 108 octets with the NUL


class ModeHolder(Protocol):
    """What the channel drives (:class:`nazbench.smsc.server.Smsc`)."""

    mode: Mode
    stopping: bool  # shutting down: its mode is normal from now on, for good

    def set_mode(self, mode: Mode) -> Mode:
        """Put ``mode`` in force; return the mode it replaced."""
        ...


def describe(mode: Mode) -> str:
    """``throttle {"fraction": 0.5}``, or ``normal``: a mode for log lines."""
    params = mode.as_dict()
    del params["name"]
    return f"{mode.name} {json.dumps(params)}" if params else mode.name


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number the control channel accepts")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"key {key!r:.40} given twice")
        obj[key] = value
    return obj


def _decode(line: bytes) -> Any:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"request is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise ValueError(f"request is not JSON: {exc}") from None
    except RecursionError:
        raise ValueError("request is not JSON: nested too deeply") from None


def _handle(holder: ModeHolder, line: bytes) -> dict[str, Any]:
    obj = _decode(line)
    if not isinstance(obj, dict):
        raise ValueError(f"request must be a JSON object, got {type(obj).__name__}")
    op = obj.get("op")
    if op == "get":
        if len(obj) != 1:
            extra = sorted(k for k in obj if k != "op")
            raise ValueError(f"op get takes no other keys, got {', '.join(extra)[:120]}")
        return {"ok": True, "mode": holder.mode.as_dict()}
    if op == "set":
        extra = sorted(k for k in obj if k not in ("op", "mode"))
        if extra:
            raise ValueError(f"op set takes only 'mode', got {', '.join(extra)[:120]}")
        if "mode" not in obj:
            raise ValueError('op set needs "mode", e.g. {"name": "normal"}')
        mode = parse_mode(obj["mode"])
        if holder.stopping:  # a stop answers and unbinds as always: no mode after it
            raise ValueError("the SMSC is stopping; its mode stays normal")
        previous = holder.set_mode(mode)
        return {"ok": True, "mode": holder.mode.as_dict(), "previous": previous.as_dict()}
    raise ValueError(f"unknown op {op!r:.60} (known: get, set)")


def answer(holder: ModeHolder, line: bytes) -> dict[str, Any]:
    """The answer to one request ``line`` (without its newline); a refused request leaves
    the mode as it was."""
    if len(line) > MAX_REQUEST:
        return {"ok": False, "error": f"request longer than {MAX_REQUEST} bytes"}
    try:
        return _handle(holder, line)
    except ValueError as exc:
        return {"ok": False, "error": str(exc)}


class ControlChannel:
    """The listening socket at ``path``; :meth:`start` and :meth:`stop` it with the SMSC."""

    def __init__(self, path: Path, holder: ModeHolder) -> None:
        self.path = path
        self.holder = holder
        self._server: asyncio.base_events.Server | None = None
        self._inode: int | None = None

    async def start(self) -> None:
        """Listen at ``path`` (a stale socket there is replaced; any other file is not)."""
        path = self.path
        if len(os.fsencode(path)) > MAX_PATH:
            raise OSError(f"control socket path longer than {MAX_PATH} bytes: {path}")
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise FileExistsError(f"control socket path {path} exists and is not a socket")
            path.unlink()
            log.info("control: replaced the stale socket %s", path)
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(path), limit=MAX_REQUEST
        )
        try:
            path.chmod(0o600)
            self._inode = path.stat().st_ino
        except OSError:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop listening and remove the socket file (if it is still ours)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        with contextlib.suppress(OSError):
            if self._inode is None or self.path.stat().st_ino == self._inode:
                self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                line = await asyncio.wait_for(reader.readuntil(b"\n"), READ_TIMEOUT)
                reply = answer(self.holder, line[:-1])
            except asyncio.LimitOverrunError:
                reply = {"ok": False, "error": f"request longer than {MAX_REQUEST} bytes"}
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    return  # connected and left: nothing to answer
                reply = {"ok": False, "error": "request must end with a newline"}
            except TimeoutError:
                reply = {"ok": False, "error": f"no request line within {READ_TIMEOUT:g} s"}
            if not reply["ok"]:
                log.warning("control: request refused: %s", reply["error"])
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


def request(path: str | os.PathLike[str], obj: Any, timeout: float = 5.0) -> dict[str, Any]:
    """Send ``obj`` as one line of JSON to the control socket at ``path``; its answer.

    Raises OSError when the socket cannot be reached and ValueError when the answer is
    not one line of JSON.
    """
    line = json.dumps(obj).encode() + b"\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(os.fspath(path))
        sock.sendall(line)
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data.endswith(b"\n"):
        raise ValueError(f"control socket {path}: answer not a whole line: {data[:200]!r}")
    reply = json.loads(data)
    if not isinstance(reply, dict):
        raise ValueError(f"control socket {path}: answer is not an object: {data[:200]!r}")
    return reply
