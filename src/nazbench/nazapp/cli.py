"""``python -m nazbench.nazapp.cli --client nazbench.nazapp.app.client``: naz-cli for any naz.

naz 0.6.x's own naz-cli cannot run on Python >= 3.10: its ``async_main`` calls
``asyncio.gather(..., loop=loop)`` (naz 0.6.1 ``cli/cli.py:111-117``), and the ``loop``
argument was removed from ``asyncio.gather`` in Python 3.10, so it exits 77 with
``gather() got an unexpected keyword argument 'loop'`` right after binding. This runner
does what that naz-cli does, with any naz: load the client from a dotted path, connect,
bind, then run ``dequeue_messages``, ``receive_data`` and ``enquire_link`` until SIGTERM,
SIGHUP or SIGQUIT, on which it calls ``client.shutdown()`` (naz drains for
``drain_duration``) and exits 0. Load errors and crashes exit 77, like naz-cli.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import signal
import sys
from typing import Any

from nazbench.nazapp import compat
from nazbench.nazapp.drive import drive

EXIT_ERROR = 77


def load(dotted_path: str) -> Any:
    module_name, _, attr = dotted_path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def _say(**fields: Any) -> None:
    sys.stderr.write(json.dumps({"event": "nazbench.nazapp.cli", **fields}, default=str) + "\n")


async def run(client: Any) -> None:
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    await drive(client, done, timeout=None)  # type: ignore[arg-type]


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nazbench.nazapp.cli", description=__doc__)
    p.add_argument("--client", required=True, help="dotted path to a naz.Client instance")
    p.add_argument("--dry-run", action="store_true", help="load the client and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    _say(stage="start", naz_version=compat.VERSION, client=args.client)
    try:
        client = load(args.client)
        if not isinstance(client, compat.naz.Client):
            raise TypeError(f"{args.client} is a {type(client)}, not a naz.Client")
        if args.dry_run:
            return 0
        asyncio.run(run(client))
    except Exception as exc:
        _say(stage="end", error=repr(exc))
        return EXIT_ERROR
    _say(stage="end", state="client has shut down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
