"""The mock SMSC as a subprocess for the benchmarks (shared by the scripts here)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "bench"  # throwaway credential of a throwaway server on loopback
SYSTEM_ID = "nazbench"


class Server:
    """The mock SMSC as a subprocess on loopback, pinned to one core.

    ``extra_args`` are appended to its command line (e.g. ``--receipts``).
    """

    def __init__(self, workdir: Path, cpu: int, extra_args: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.cpu = cpu
        self.extra_args = list(extra_args)
        self.ledger = workdir / "ledger.jsonl"
        self.log = workdir / "smsc.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._ledger_offset = 0

    def __enter__(self) -> Server:
        password_file = self.workdir / "password"
        password_file.write_text(PASSWORD + "\n")
        password_file.chmod(0o600)
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "nazbench.smsc",
                    "--port=0",
                    f"--system-id={SYSTEM_ID}",
                    f"--password-file={password_file}",
                    f"--ledger={self.ledger}",
                    *self.extra_args,
                ],
                stderr=log,
                env=env,
            )
        try:
            os.sched_setaffinity(self.proc.pid, {self.cpu})
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                match = re.search(r"listening on [\d.]+:(\d+)", self.log.read_text())
                if match:
                    self.port = int(match.group(1))
                    return self
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        except BaseException:
            self.__exit__()
            raise
        self.__exit__()
        raise RuntimeError(f"SMSC did not start:\n{self.log.read_text()}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def ledger_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.ledger.read_text().splitlines()]

    def new_ledger_ids(self, expected: int) -> list[str]:
        """msg_ids the SMSC answered since the last call (waits up to 5 s for ``expected``)."""
        deadline = time.monotonic() + 5
        while True:
            with self.ledger.open("rb") as f:
                f.seek(self._ledger_offset)
                data = f.read()
            end = data.rfind(b"\n") + 1
            lines = data[:end].splitlines()
            if len(lines) >= expected or time.monotonic() > deadline:
                self._ledger_offset += end
                return [json.loads(line)["msg_id"] for line in lines]
            time.sleep(0.05)
