"""Fill the Redis queue with a run's messages: ``python -m nazbench.nazapp.producer``.

Messages are shaped like the seed's ``message_producer.py``: a random 1-200 character
text, destination ``254`` + 9 digits, source ``NazBenchmarksInc``, log_id
``<index>-<7 lowercase letters>``. The text is preceded by the message id
(``msgid.encode_body``) and each message is stored as ``naz.protocol.SubmitSM(...).to_json()``
with LPUSH, so naz's BRPOP takes them oldest first. Everything random comes from
``random.Random(--seed)``: the same seed gives byte-identical payloads.

Idempotent per run_id: ``nazbench:run:<run_id>:enqueued`` in Redis records the parameters
and whether the enqueue finished; a second run with the same parameters does nothing
(exit 0, ``"changed": false``), with different parameters, or after an interrupted run, it
refuses (non-zero) unless ``--force``. An existing manifest with different parameters is
also refused. All input is checked and Redis is pinged before anything is pushed.

The short_message encoding defaults to naz's (and so the seed's) ``gsm0338`` (SMPP
data_coding 0): the id's ``[``/``]`` travel as the escape sequences ``1b 3c``/``1b 3e`` and
the SMSC GSM-decodes before reading the id. ``--encoding ascii`` (data_coding 1, IA5)
sends them as single bytes. Text is shortened when needed so the encoded short_message
fits SMPP's 254 octets (only happens for run_ids longer than about 40 characters).

Exit codes: 0 done or nothing to do, 2 bad input or parameter mismatch, 3 Redis
unreachable, 4 a previous enqueue of this run_id was interrupted, 5 enqueue failed midway.
"""

from __future__ import annotations

import argparse
import codecs
import dataclasses
import datetime
import hashlib
import json
import os
import random
import string
import sys
import time
from collections.abc import Callable, Iterator
from json.encoder import encode_basestring_ascii as _encode_json_str  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

import naz
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from nazbench import __version__, jsonfile, msgid
from nazbench.nazapp.config import DEFAULT_QUEUE, REDIS_PASSWORD_ENV

MANIFEST_SCHEMA = "nazbench-manifest/1"
SOURCE_ADDR = "NazBenchmarksInc"
DESTINATION_PREFIX = "254"
TEXT_CHARS = (1, 200)
MAX_SHORT_MESSAGE_OCTETS = 254
ENCODINGS = ("ascii", "gsm0338")
# Random bytes are mapped onto these alphabets with bytes.translate (64 and 26 symbols, all
# in the GSM 03.38 basic set): much faster than random.choices, just as deterministic.
_ALPHABET = (string.ascii_letters + string.digits + "-.").encode("ascii")
_TEXT_TABLE = bytes(_ALPHABET[b % len(_ALPHABET)] for b in range(256))
_LOWER_TABLE = bytes(ord("a") + b % 26 for b in range(256))
# Parameters that must match between a re-run and what was already enqueued.
IDENTITY = ("run_id", "count", "seed", "queue", "encoding")

EXIT_OK, EXIT_INPUT, EXIT_REDIS, EXIT_INTERRUPTED, EXIT_FAILED = 0, 2, 3, 4, 5


class ProducerError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclasses.dataclass(frozen=True)
class Params:
    run_id: str
    count: int
    seed: int
    queue: str = DEFAULT_QUEUE
    encoding: str = "gsm0338"

    def __post_init__(self) -> None:
        msgid.validate_run_id(self.run_id)
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count <= 0:
            raise ValueError(f"count must be a positive integer, got {self.count!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not self.queue:
            raise ValueError("queue must not be empty")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")

    def identity(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in IDENTITY}


def marker_key(run_id: str) -> str:
    return f"nazbench:run:{run_id}:enqueued"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")


# ------------------------------------------------------------------------- messages


def fields(params: Params) -> Iterator[tuple[str, str, str, str]]:
    """(short_message, destination_addr, log_id, msg_id) of messages 0..count-1, in order.

    Everything random comes from ``random.Random(seed)``, drawn in a fixed order, so the
    same seed gives the same messages (and a run of N is a prefix of a run of N+k).
    """
    naz.codec.register_codecs()
    encode = codecs.getencoder(params.encoding)
    rng = random.Random(params.seed)
    randbytes, randrange = rng.randbytes, rng.randrange
    run_id = params.run_id
    lo, hi = TEXT_CHARS
    for index in range(params.count):
        msg_id = msgid.make_id(run_id, index)
        prefix = msgid.encode_body(msg_id, "")
        room = MAX_SHORT_MESSAGE_OCTETS - len(encode(prefix)[0])
        length = min(lo + randrange(hi - lo + 1), room)
        text = randbytes(length).translate(_TEXT_TABLE).decode("ascii")
        destination = f"{DESTINATION_PREFIX}{randrange(10**9):09d}"
        log_id = f"{index}-{randbytes(7).translate(_LOWER_TABLE).decode('ascii')}"
        yield prefix + text, destination, log_id, msg_id


def naz_payload(
    params: Params, short_message: str, destination: str, log_id: str, msg_id: str
) -> str:
    """The payload exactly as naz builds it: ``naz.protocol.SubmitSM(...).to_json()``."""
    return naz.protocol.SubmitSM(
        short_message=short_message,
        source_addr=SOURCE_ADDR,
        destination_addr=destination,
        log_id=log_id,
        hook_metadata=msg_id,
        encoding=params.encoding,
    ).to_json()


class _Serializer:
    """Fills the four varying fields into a JSON skeleton taken from naz's own ``to_json``.

    Building a ``SubmitSM`` and calling ``to_json`` costs ~20 µs; splicing four
    JSON-encoded strings into naz's output for a probe message costs ~2 µs. ``generate``
    checks the result against naz's serialisation for message 0 and every
    ``verify_every``-th message, so a naz whose format differs is caught before the
    first push.
    """

    _MARKS = ("\x01SM\x01", "\x01DA\x01", "\x01LI\x01", "\x01HM\x01")

    def __init__(self, params: Params) -> None:
        skeleton = naz_payload(params, *self._MARKS)
        parts: list[str] = []
        order: list[int] = []
        if any(skeleton.count(json.dumps(m)) != 1 for m in self._MARKS):
            raise ProducerError(
                "naz's SubmitSM.to_json() output differs from what the fast serialiser expects "
                f"(naz {naz.__version__.about['__version__']})",
                EXIT_FAILED,
            )
        positions = sorted((skeleton.index(json.dumps(m)), i) for i, m in enumerate(self._MARKS))
        cursor = 0
        for pos, i in positions:
            parts.append(skeleton[cursor:pos])
            order.append(i)
            cursor = pos + len(json.dumps(self._MARKS[i]))
        parts.append(skeleton[cursor:])
        self._parts, self._order = parts, order

    def __call__(self, values: tuple[str, str, str, str]) -> str:
        enc = _encode_json_str
        p, o = self._parts, self._order
        return (
            p[0]
            + enc(values[o[0]])
            + p[1]
            + enc(values[o[1]])
            + p[2]
            + enc(values[o[2]])
            + p[3]
            + enc(values[o[3]])
            + p[4]
        )


def generate(params: Params, *, verify_every: int = 1000) -> Iterator[str]:
    """The JSON payloads of messages 0..count-1, in order, deterministic from the seed."""
    serialize = _Serializer(params)
    for index, values in enumerate(fields(params)):
        payload = serialize(values)
        if index % verify_every == 0 and payload != naz_payload(params, *values):
            raise ProducerError(
                f"message {index}: fast serialisation differs from naz's SubmitSM.to_json(); "
                f"naz {naz.__version__.about['__version__']} is not supported",
                EXIT_FAILED,
            )
        yield payload


def push(
    client: redis.Redis,
    params: Params,
    *,
    chunk_size: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, str]:
    """LPUSH all messages, ``chunk_size`` per round trip; return (pushed, sha256 of payloads).

    One LPUSH with many values per chunk: the list ends up oldest-rightmost, which BRPOP
    takes first.
    """
    digest = hashlib.sha256()
    pushed = 0
    for chunk in _chunks(generate(params), chunk_size):
        client.lpush(params.queue, *chunk)
        for payload in chunk:
            digest.update(payload.encode("utf-8"))
            digest.update(b"\n")
        pushed += len(chunk)
        if progress:
            progress(pushed)
    return pushed, digest.hexdigest()


def _chunks(items: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ------------------------------------------------------------------------- manifest


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        raise ValueError(f"{os.fspath(path)!r} is not a {MANIFEST_SCHEMA} manifest")
    return manifest


def manifest_ids(manifest: dict[str, Any]) -> Iterator[str]:
    """All message ids a manifest covers, in order."""
    first = manifest["id_scheme"]["first_index"]
    for index in range(first, first + manifest["count"]):
        yield msgid.make_id(manifest["run_id"], index)


def _write_atomically(path: Path, text: str) -> None:
    jsonfile.write_text(path, text)


def build_manifest(
    params: Params, *, redis_where: dict[str, Any], marker: dict[str, Any], ids_file: str | None
) -> dict[str, Any]:
    return {
        "schema": MANIFEST_SCHEMA,
        **params.identity(),
        "redis": redis_where,
        "marker_key": marker_key(params.run_id),
        "source_addr": SOURCE_ADDR,
        "destination_prefix": DESTINATION_PREFIX,
        "text_chars": list(TEXT_CHARS),
        "id_scheme": {
            "format": "<run_id>/<index>",
            "first_index": 0,
            "last_index": params.count - 1,
            "short_message": "[nb:<msg_id>] <text>",
            "log_id": "<index>-<7 lowercase letters>",
            "hook_metadata": "<msg_id>",
        },
        "ids_file": ids_file,
        "payload_sha256": marker.get("payload_sha256"),
        "passes": marker.get("passes", 1),
        "started_at": marker.get("started_at"),
        "finished_at": marker.get("finished_at"),
        "seconds": marker.get("seconds"),
        "producer": f"nazbench {__version__}",
    }


def write_ids(path: Path, params: Params) -> None:
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        for index in range(params.count):
            fh.write(msgid.make_id(params.run_id, index) + "\n")
    os.replace(tmp, path)


# ------------------------------------------------------------------------- run


@dataclasses.dataclass
class Outcome:
    changed: bool
    enqueued: int
    seconds: float
    manifest: dict[str, Any]
    message: str

    def as_json(self) -> str:
        rate = self.enqueued / self.seconds if self.seconds > 0 else None
        return json.dumps(
            {
                "changed": self.changed,
                "run_id": self.manifest["run_id"],
                "enqueued": self.enqueued,
                "seconds": round(self.seconds, 3),
                "msgs_per_second": round(rate) if rate else None,
                "message": self.message,
            }
        )


def _check_paths(manifest_path: Path, ids_path: Path | None, chunk_size: int) -> None:
    if chunk_size <= 0:
        raise ProducerError(f"chunk size must be positive, got {chunk_size}")
    if not manifest_path.parent.is_dir():
        raise ProducerError(f"manifest directory {str(manifest_path.parent)!r} does not exist")
    if ids_path is not None and not ids_path.parent.is_dir():
        raise ProducerError(f"ids file directory {str(ids_path.parent)!r} does not exist")


def _check_existing_manifest(manifest_path: Path, params: Params) -> None:
    if not manifest_path.exists():
        return
    try:
        existing = read_manifest(manifest_path)
    except (OSError, ValueError) as exc:
        raise ProducerError(f"existing manifest unreadable ({exc}); use --force") from None
    old = {k: existing.get(k) for k in IDENTITY}
    if old != params.identity():
        raise ProducerError(
            f"manifest {str(manifest_path)!r} exists with different parameters "
            f"{old} (asked for {params.identity()}); use --force or another path"
        )


def _check_previous(previous: dict[str, Any], params: Params) -> None:
    """Raise unless ``previous`` (the Redis marker) is a finished enqueue of ``params``."""
    old = {k: previous.get(k) for k in IDENTITY}
    if old != params.identity():
        raise ProducerError(
            f"run_id {params.run_id!r} was already enqueued with different parameters {old}; "
            "use another run_id or --force"
        )
    if previous.get("state") != "done":
        raise ProducerError(
            f"a previous enqueue of run_id {params.run_id!r} started at "
            f"{previous.get('started_at')} did not finish; the queue may hold part of it. "
            "Inspect the queue, then re-run with --force",
            EXIT_INTERRUPTED,
        )


def _save(
    manifest: dict[str, Any],
    manifest_path: Path,
    ids_path: Path | None,
    params: Params,
    *,
    overwrite: bool,
) -> None:
    if overwrite or not manifest_path.exists():
        _write_atomically(manifest_path, json.dumps(manifest, indent=2) + "\n")
    if ids_path is not None and (overwrite or not ids_path.exists()):
        write_ids(ids_path, params)


def run(
    client: redis.Redis,
    params: Params,
    *,
    manifest_path: Path,
    ids_path: Path | None = None,
    force: bool = False,
    chunk_size: int = 5000,
    redis_where: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Outcome:
    """Enqueue ``params`` once (see module docstring) and write the manifest."""
    redis_where = redis_where or {}
    ids_file = str(ids_path) if ids_path is not None else None
    _check_paths(manifest_path, ids_path, chunk_size)
    if not force:
        _check_existing_manifest(manifest_path, params)
    try:
        client.ping()
    except redis.RedisError as exc:
        where = "{host}:{port}/{db}".format(**redis_where) if redis_where else "redis"
        raise ProducerError(f"cannot reach Redis at {where}: {exc}", EXIT_REDIS) from None

    key = marker_key(params.run_id)
    raw = client.get(key)
    previous = json.loads(raw) if raw else None
    if previous is not None and not force:
        _check_previous(previous, params)
        manifest = build_manifest(
            params, redis_where=redis_where, marker=previous, ids_file=ids_file
        )
        _save(manifest, manifest_path, ids_path, params, overwrite=False)
        return Outcome(False, 0, 0.0, manifest, "already enqueued; nothing to do")

    passes = (previous.get("passes", 1) + 1) if previous else 1
    marker = {**params.identity(), "state": "enqueuing", "started_at": _now(), "passes": passes}
    if not client.set(key, json.dumps(marker), nx=not force):
        raise ProducerError(
            f"another producer is enqueuing run_id {params.run_id!r}", EXIT_INTERRUPTED
        )
    t0 = time.perf_counter()
    try:
        pushed, digest = push(client, params, chunk_size=chunk_size, progress=progress)
    except redis.RedisError as exc:
        raise ProducerError(
            f"enqueue of run_id {params.run_id!r} failed midway: {exc}; marker {key!r} left in "
            "state 'enqueuing'",
            EXIT_FAILED,
        ) from None
    seconds = time.perf_counter() - t0
    marker.update(
        state="done", finished_at=_now(), seconds=round(seconds, 3), payload_sha256=digest
    )
    client.set(key, json.dumps(marker))
    manifest = build_manifest(params, redis_where=redis_where, marker=marker, ids_file=ids_file)
    _save(manifest, manifest_path, ids_path, params, overwrite=True)
    return Outcome(True, pushed, seconds, manifest, f"enqueued {pushed} messages")


# ------------------------------------------------------------------------- CLI


def _positive_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _run_id(text: str) -> str:
    try:
        return msgid.validate_run_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nazbench.nazapp.producer",
        description="Enqueue a run's benchmark messages into Redis for naz-cli (idempotent).",
    )
    p.add_argument("--run-id", required=True, type=_run_id, help="run identifier")
    p.add_argument("--count", "-n", required=True, type=_positive_int, help="messages to enqueue")
    p.add_argument("--seed", type=_int, default=1, help="random seed (default 1)")
    p.add_argument("--manifest", required=True, type=Path, help="manifest JSON to write")
    p.add_argument("--ids-file", type=Path, help="also write every msg_id, one per line")
    p.add_argument("--queue", default=DEFAULT_QUEUE, help=f"Redis list (default {DEFAULT_QUEUE})")
    p.add_argument(
        "--encoding",
        choices=ENCODINGS,
        default="gsm0338",
        help="short_message encoding (default gsm0338 like naz and the seed: data_coding 0)",
    )
    p.add_argument("--redis-host", default="127.0.0.1")
    p.add_argument("--redis-port", type=_positive_int, default=6379)
    p.add_argument("--redis-db", type=_int, default=0)
    p.add_argument(
        "--redis-password-file",
        type=Path,
        help=f"file holding the Redis password (else ${REDIS_PASSWORD_ENV})",
    )
    p.add_argument(
        "--chunk-size",
        type=_positive_int,
        default=5000,
        help="messages per pipelined round trip (default 5000)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="enqueue even if this run_id was enqueued before (messages are duplicated)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def _password(args: argparse.Namespace) -> str | None:
    if args.redis_password_file is not None:
        try:
            secret = args.redis_password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ProducerError(f"cannot read --redis-password-file: {exc.strerror}") from None
        return secret or None
    return os.environ.get(REDIS_PASSWORD_ENV) or None


def _progress_printer(total: int, quiet: bool) -> Callable[[int], None] | None:
    if quiet or total < 10_000:
        return None
    step = max(total // 10, 1)
    state = {"next": step, "t0": time.perf_counter()}

    def report(done: int) -> None:
        if done >= state["next"] or done == total:
            elapsed = time.perf_counter() - state["t0"]
            rate = done / elapsed if elapsed > 0 else 0.0
            sys.stderr.write(
                f"enqueued {done}/{total} ({100 * done // total}%) {rate:,.0f} msg/s\n"
            )
            state["next"] = done + step

    return report


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        if not 0 <= args.redis_db <= 15:
            raise ProducerError(f"--redis-db must be 0-15, got {args.redis_db}")
        try:
            params = Params(args.run_id, args.count, args.seed, args.queue, args.encoding)
        except ValueError as exc:
            raise ProducerError(str(exc)) from None
        client = redis.Redis(
            host=args.redis_host,
            port=args.redis_port,
            db=args.redis_db,
            password=_password(args),
            socket_connect_timeout=5,
            socket_timeout=60,
            retry=Retry(NoBackoff(), 0),  # fail fast: nothing is pushed before PING works
        )
        outcome = run(
            client,
            params,
            manifest_path=args.manifest,
            ids_path=args.ids_file,
            force=args.force,
            chunk_size=args.chunk_size,
            redis_where={"host": args.redis_host, "port": args.redis_port, "db": args.redis_db},
            progress=_progress_printer(args.count, args.quiet),
        )
    except ProducerError as exc:
        sys.stderr.write(f"producer: error: {exc}\n")
        return exc.exit_code
    sys.stdout.write(outcome.as_json() + "\n")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
