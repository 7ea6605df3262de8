"""``python -m nazbench.smsc``: argument errors and a real process with SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from nazbench.smsc import pdu
from nazbench.smsc.cli import config_from_args, main, make_parser, read_password

from .conftest import PASSWORD

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--port", "70000"], "--port: must be within 0-65535"),
        (["--port", "-1"], "--port: must be within 0-65535"),
        (["--port", "http"], "--port: not an integer"),
        (["--metrics-port", "65536"], "--metrics-port: must be within 0-65535"),
        (["--error-fraction", "1.5"], "--error-fraction: must be within [0, 1]"),
        (["--error-fraction", "-0.1"], "--error-fraction: must be within [0, 1]"),
        (["--error-fraction", "nan"], "--error-fraction: must be within [0, 1]"),
        (["--response-delay-ms", "-5"], "--response-delay-ms: must be >= 0"),
        (["--error-status", "0"], "--error-status: must be a non-zero"),
        (["--error-status", "zz"], "--error-status: not an integer"),
        (["--system-id", "x" * 16], "--system-id: system_id must be 1-15 ASCII"),
        (["--backlog", "0"], "--backlog: must be within 1-65535"),
        (["--backlog", "many"], "--backlog: not an integer"),
        (["--session-init-timeout", "-1"], "--session-init-timeout: must be >= 0"),
        (["--inactivity-timeout", "nan"], "--inactivity-timeout: must be >= 0"),
        (["--unbind-timeout", "0"], "--unbind-timeout: must be within (0, 60]"),
    ],
)
def test_bad_values_are_reported_by_flag(
    capsys, tmp_path: Path, password_file: Path, extra: list[str], message: str
) -> None:
    argv = ["--password-file", str(password_file), "--ledger", str(tmp_path / "l"), *extra]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_password_file(capsys, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--password-file", str(tmp_path / "nope"), "--ledger", str(tmp_path / "l")])
    assert info.value.code == 2
    assert "--password-file" in capsys.readouterr().err


def test_password_too_long_in_file(capsys, tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("123456789\n")
    with pytest.raises(SystemExit):
        main(["--password-file", str(path), "--ledger", str(tmp_path / "l")])
    err = capsys.readouterr().err
    assert "--password-file" in err
    assert "123456789" not in err


def test_timer_and_backlog_flags_reach_the_config(tmp_path: Path, password_file: Path) -> None:
    parser = make_parser()
    base = ["--password-file", str(password_file), "--ledger", str(tmp_path / "l")]
    default = config_from_args(parser, parser.parse_args(base))
    assert (default.backlog, default.session_init_timeout, default.inactivity_timeout) == (
        1024,
        0.0,
        0.0,
    )
    assert default.unbind_timeout == 1.0
    args = parser.parse_args(
        [
            *base,
            "--backlog=4096",
            "--session-init-timeout=5",
            "--inactivity-timeout=30.5",
            "--unbind-timeout=2",
        ]
    )
    config = config_from_args(parser, args)
    assert (config.backlog, config.session_init_timeout, config.inactivity_timeout) == (
        4096,
        5.0,
        30.5,
    )
    assert config.unbind_timeout == 2.0


def test_there_is_no_password_flag() -> None:
    flags = {a for action in make_parser()._actions for a in action.option_strings}
    assert not any(flag in flags for flag in ("--password", "--pass", "-p"))


def test_read_password_takes_the_first_line(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("abc\r\nignored\n")
    assert read_password(path) == "abc"
    path.write_text("")
    assert read_password(path) == ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_process_serves_exports_metrics_and_stops_cleanly_on_sigterm(
    tmp_path: Path, password_file: Path
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    metrics_port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nazbench.smsc",
            "--port=0",
            f"--password-file={password_file}",
            f"--ledger={ledger}",
            f"--metrics-port={metrics_port}",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    watchdog = threading.Timer(9.0, proc.kill)  # bounds every blocking read below
    watchdog.start()
    try:
        assert proc.stderr is not None
        line = ""
        match = None
        for _ in range(20):  # the first few log lines; readline blocks until one comes
            line += proc.stderr.readline()
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if match or proc.poll() is not None:
                break
        assert match, line
        port = int(match.group(1))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                pdu.encode_bind(pdu.BIND_TRANSCEIVER, 1, "nazbench", PASSWORD)
                + pdu.encode_submit_sm(2, b"[nb:cli/1] hello")
            )
            data = b""
            while len(data) < 2 * 16 + 14 + 2:
                chunk = sock.recv(4096)
                assert chunk
                data += chunk
            frames, _ = pdu.split_pdus(data)
            assert [(f.command_id, f.command_status) for f in frames] == [
                (pdu.BIND_TRANSCEIVER_RESP, 0),
                (pdu.SUBMIT_SM_RESP, 0),
            ]
            url = f"http://127.0.0.1:{metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as resp:
                text = resp.read().decode()
            assert 'nazbench_smsc_submit_sm_total{command_status="ESME_ROK"} 1.0' in text
            assert "nazbench_smsc_active_sessions 1.0" in text
            assert "process_resident_memory_bytes" in text
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - start < 5
        err = line + proc.stderr.read()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    assert PASSWORD not in err
    assert "bound as transceiver" in err
    assert "shutting down" in err
    lines = [json.loads(x) for x in ledger.read_text().splitlines()]
    assert [x["msg_id"] for x in lines] == ["cli/1"]


def test_port_in_use_exits_1(tmp_path: Path, password_file: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ledger = tmp_path / "ledger.jsonl"
        argv = ["--port", str(port), "--password-file", str(password_file), "--ledger", str(ledger)]
        assert main(argv) == 1
