"""Command line of the mock SMSC: ``python -m nazbench.smsc --help``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from nazbench.smsc import pdu
from nazbench.smsc.metrics import SmscMetrics, serve_metrics
from nazbench.smsc.receipts import DEFAULT_STATES, parse_states
from nazbench.smsc.server import Smsc, SmscConfig

log = logging.getLogger("nazbench.smsc")


def _int_within(lo: int, hi: int):
    """An argparse type: a whole number within [lo, hi]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be within {lo}-{hi}, got {value}")
        return value

    return parse


_port = _int_within(0, 65535)
_backlog = _int_within(1, 65535)
_tries = _int_within(1, 100)


def _states(text: str) -> str:
    try:
        parse_states(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def _delay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 3_600_000:
        raise argparse.ArgumentTypeError(f"must be >= 0 (and under an hour), got {text}")
    return value


def _status(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer (e.g. 0x58): {text!r}") from None
    if not 0 < value <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError(f"must be a non-zero 32-bit status, got {text}")
    return value


def _max_pdu(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 64 <= value <= 16 * 1024 * 1024:
        raise argparse.ArgumentTypeError(f"must be within 64-16777216, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 86400:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be >= 0 (and under a day), got {text}")
    return value


def _unbind_seconds(text: str) -> float:
    value = _seconds(text)
    if not 0.0 < value <= 60:
        raise argparse.ArgumentTypeError(f"must be within (0, 60], got {text}")
    return value


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nazbench.smsc",
        description="Mock SMPP 3.4 SMSC for the nazbench benchmark: answers binds, "
        "submit_sm and enquire_link, and records every submit_sm it answers in a ledger.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default %(default)s)")
    parser.add_argument(
        "--port", type=_port, default=2775, help="listen port, 0 = any (default %(default)s)"
    )
    parser.add_argument(
        "--system-id",
        default="nazbench",
        help="system_id ESMEs must bind with (default %(default)s)",
    )
    parser.add_argument(
        "--password-file",
        type=Path,
        required=True,
        help="file holding the bind password (first line; at most 8 ASCII characters)",
    )
    parser.add_argument(
        "--ledger", type=Path, required=True, help="JSON-lines ledger file (appended to)"
    )
    parser.add_argument(
        "--response-delay-ms",
        type=_delay,
        default=0.0,
        help="answer each submit_sm this many ms after it arrived (default %(default)s)",
    )
    parser.add_argument(
        "--error-fraction",
        type=_fraction,
        default=0.0,
        help="fraction of submit_sm answered with --error-status (default %(default)s)",
    )
    parser.add_argument(
        "--error-status",
        type=_status,
        default=pdu.ESME_RTHROTTLED,
        help="command_status of injected errors, e.g. 0x58 ESME_RTHROTTLED (the default)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the error injector (default: random)"
    )
    parser.add_argument(
        "--metrics-port",
        type=_port,
        default=0,
        help="Prometheus metrics port, 0 = off (default %(default)s)",
    )
    parser.add_argument(
        "--metrics-host", default=None, help="metrics listen address (default: --host)"
    )
    parser.add_argument(
        "--max-pdu-length",
        type=_max_pdu,
        default=pdu.DEFAULT_MAX_PDU_LENGTH,
        help="largest command_length accepted (default %(default)s)",
    )
    parser.add_argument(
        "--backlog",
        type=_backlog,
        default=1024,
        help="listen backlog (capped by net.core.somaxconn; default %(default)s)",
    )
    parser.add_argument(
        "--session-init-timeout",
        type=_seconds,
        default=0.0,
        help="close a session not bound this many seconds after it connected, 0 = off "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--inactivity-timeout",
        type=_seconds,
        default=0.0,
        help="send unbind to a bound session that sent no PDU for this many seconds, 0 = off "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--unbind-timeout",
        type=_unbind_seconds,
        default=1.0,
        help="after sending unbind (inactivity, shutdown) close the session this many "
        "seconds later if no unbind_resp came (default %(default)s)",
    )
    parser.add_argument(
        "--control-socket",
        type=Path,
        default=None,
        metavar="PATH",
        help="listen for mode changes (normal, throttle, slow, silent, drop_resp, unbind) "
        "on a Unix socket at PATH, made 0600; one JSON line in, one out "
        "(nazbench.smsc.control; default: no control channel)",
    )
    receipts = parser.add_argument_group(
        "delivery receipts",
        "deliver_sm receipts (esm_class 0x04) for accepted submit_sm with registered_delivery",
    )
    receipts.add_argument(
        "--receipts",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="send delivery receipts, like SMPPSim (default: off)",
    )
    receipts.add_argument(
        "--receipt-delay",
        type=_seconds,
        default=1.0,
        help="seconds from the submit_sm_resp to its receipt (default %(default)s)",
    )
    receipts.add_argument(
        "--receipt-states",
        type=_states,
        default=DEFAULT_STATES,
        help="weights of the final states DELIVRD, UNDELIV, EXPIRED, REJECTD (default %(default)s)",
    )
    receipts.add_argument(
        "--receipt-seed",
        type=int,
        default=0,
        help="seed of the final-state draw (default %(default)s)",
    )
    receipts.add_argument(
        "--receipt-retry",
        type=_seconds,
        default=30.0,
        help="resend a receipt without deliver_sm_resp after this many seconds, 0 = never "
        "(default %(default)s)",
    )
    receipts.add_argument(
        "--receipt-max-tries",
        type=_tries,
        default=3,
        help="send a receipt at most this many times in all (default %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level on stderr (default %(default)s)",
    )
    return parser


def read_password(path: Path) -> str:
    """The password in ``path``: its first line without the line ending."""
    text = path.read_text(encoding="ascii")
    lines = text.splitlines()
    return lines[0] if lines else ""


def config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> SmscConfig:
    """Build and validate the config; report problems through ``parser.error``."""
    try:
        password = read_password(args.password_file)
    except FileNotFoundError:
        parser.error(f"--password-file: {args.password_file} does not exist")
    except UnicodeDecodeError:
        parser.error(f"--password-file: {args.password_file} is not ASCII")
    except OSError as exc:
        parser.error(f"--password-file: cannot read {args.password_file}: {exc.strerror}")
    config = SmscConfig(
        ledger_path=args.ledger,
        password=password,
        system_id=args.system_id,
        host=args.host,
        port=args.port,
        response_delay_ms=args.response_delay_ms,
        error_fraction=args.error_fraction,
        error_status=args.error_status,
        seed=args.seed,
        max_pdu_length=args.max_pdu_length,
        backlog=args.backlog,
        session_init_timeout=args.session_init_timeout,
        inactivity_timeout=args.inactivity_timeout,
        unbind_timeout=args.unbind_timeout,
        receipts=args.receipts,
        receipt_delay=args.receipt_delay,
        receipt_states=args.receipt_states,
        receipt_seed=args.receipt_seed,
        receipt_retry=args.receipt_retry,
        receipt_max_tries=args.receipt_max_tries,
        control_socket=args.control_socket,
    )
    try:
        config.validate()
    except ValueError as exc:
        where = "--password-file" if "password" in str(exc) else "--system-id"
        where = "--control-socket" if "control_socket" in str(exc) else where
        parser.error(f"{where}: {exc}")
    if args.ledger.is_dir():
        parser.error(f"--ledger: {args.ledger} is a directory")
    return config


async def serve(config: SmscConfig, metrics_port: int = 0, metrics_host: str | None = None) -> None:
    """Run until SIGTERM or SIGINT, then shut down cleanly."""
    metrics = SmscMetrics()
    http = None
    if metrics_port:
        http = serve_metrics(metrics, metrics_port, metrics_host or config.host)
        log.info("metrics on http://%s:%d/metrics", metrics_host or config.host, metrics_port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    smsc = Smsc(config, metrics)
    await smsc.start()
    try:
        await stop.wait()
        log.info("signal received; shutting down")
    finally:
        await smsc.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        if http is not None:
            http.shutdown()  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = make_parser()
    args = parser.parse_args(argv)
    config = config_from_args(parser, args)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(serve(config, args.metrics_port, args.metrics_host))
    except OSError as exc:
        log.error("cannot serve: %s", exc)
        return 1
    return 0
