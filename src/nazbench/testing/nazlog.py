"""naz-like JSON log lines, in the exact shape ``nazapp.logger.JsonLinesLogger`` writes.

For the shipper's tests and benchmark: deterministic (timestamps advance by a fixed step
from a fixed start), about 330 bytes a line, the events naz logs around one submit_sm,
and optionally a plain multi-line Python traceback after some ERROR lines (what naz's
own logging can leave in the file).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator

START = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)
_EVENTS = (
    ("naz.Client.dequeue_messages", "start", "DEBUG", None),
    ("naz.Client.send_data", "start", "DEBUG", None),
    ("naz.SimpleHook.to_smsc", "start", "INFO", None),
    ("naz.Client.send_data", "end", "DEBUG", None),
    ("naz.Client.command_handler", "start", "DEBUG", None),
    ("naz.SimpleHook.from_smsc", "start", "INFO", None),
    ("naz.Client.send_data", "end", "ERROR", "ConnectionResetError(104, 'Connection reset')"),
)
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/opt/naz/lib/python3.11/site-packages/naz/client.py", line 1205, in send_data\n'
    "    self.writer.write(msg)\n"
    "ConnectionResetError: [Errno 104] Connection reset by peer\n"
)


def naz_record(i: int, *, run_id: str = "bench", step_us: int = 1000) -> dict[str, object]:
    """The ``i``-th record (as a dict, in the logger's key order)."""
    event, stage, level, error = _EVENTS[i % len(_EVENTS)]
    ts = START + datetime.timedelta(microseconds=i * step_us)
    return {
        "timestamp": ts.isoformat(timespec="microseconds"),
        "level": level,
        "event": event,
        "stage": stage,
        "client_id": "nazbench-" + run_id,
        "log_id": f"{i // 7}-msg",
        "error": error,
        "run_id": run_id,
        "traceback": None,
        "metadata": {
            "smpp_command": "submit_sm",
            "sequence_number": i // 7 + 1,
            "msg_id": f"{run_id}-{i // 7:08d}",
            "state": "bound_trx",
        },
    }


def naz_lines(
    count: int, *, start: int = 0, run_id: str = "bench", traceback_every: int = 0
) -> Iterator[bytes]:
    """``count`` records as lines (bytes, newline-terminated). With ``traceback_every=n``
    every n-th record is followed by the 4 lines of ``TRACEBACK`` (not JSON)."""
    for i in range(start, start + count):
        line = json.dumps(naz_record(i, run_id=run_id), ensure_ascii=False) + "\n"
        if traceback_every and i % traceback_every == traceback_every - 1:
            line += TRACEBACK
        yield line.encode()
