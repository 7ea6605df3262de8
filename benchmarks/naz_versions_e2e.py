"""Run the whole naz pipeline under another naz release, in that release's virtualenv.

    python benchmarks/naz_versions_e2e.py --venv /tmp/naz061 --venv /tmp/naz079 -n 50

For each ``--venv`` (a virtualenv with ``naz==X``, ``redis`` and ``prometheus-client``
installed; nazbench itself comes from this checkout via PYTHONPATH) it starts a
throwaway redis-server and the mock SMSC (``python -m nazbench.smsc``, with delivery
receipts so naz's enqueue path runs too), fills the queue with the producer, runs
``<venv>/bin/python -m nazbench.nazapp.cli --client nazbench.nazapp.app.client``
(``--runner naz-cli`` runs that venv's ``naz-cli`` instead), waits until the SMSC has
accepted every message and acknowledged receipt, scrapes the hook's /metrics, sends
SIGTERM, and reconciles the SMSC ledger with the producer manifest. The SMSC, producer
and reconcile run with this interpreter (the naz 0.8.1 side: the queue's wire format).

Prints one JSON object per venv and exits 1 if any run was not clean.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        m = re.match(r"^(\w+)(\{[^}]*\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        lab = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(lab.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def run_one(venv: Path, count: int, runner: str, timeout: float, keep: bool) -> dict:
    work = Path(tempfile.mkdtemp(prefix="naz-e2e-"))
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    py = sys.executable
    procs: list[subprocess.Popen] = []
    run_id = f"e2e-{venv.name}"
    out: dict = {"venv": str(venv), "runner": runner, "work": str(work)}
    try:
        version = subprocess.run(
            [
                str(venv / "bin/python"),
                "-c",
                "import naz; print(naz.__version__.about['__version__'])",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        out["naz"] = version
        redis_port, smsc_port, metrics_port = free_port(), free_port(), free_port()
        procs.append(
            subprocess.Popen(
                [
                    REDIS_SERVER,
                    "--port",
                    str(redis_port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(work),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        (work / "pw").write_text("pw123456\n")
        ledger = work / "ledger.jsonl"
        procs.append(
            subprocess.Popen(
                [
                    py,
                    "-m",
                    "nazbench.smsc",
                    "--port",
                    str(smsc_port),
                    "--system-id",
                    "smppclient1",
                    "--password-file",
                    str(work / "pw"),
                    "--ledger",
                    str(ledger),
                    "--receipts",
                    "--receipt-delay",
                    "0.2",
                    "--log-level",
                    "WARNING",
                ],
                env=env,
                stdout=open(work / "smsc.out", "w"),  # noqa: SIM115 - lives as long as the process
                stderr=subprocess.STDOUT,
            )
        )
        wait_port(redis_port)
        wait_port(smsc_port)
        manifest = work / "manifest.json"
        subprocess.run(
            [
                py,
                "-m",
                "nazbench.nazapp.producer",
                "--run-id",
                run_id,
                "-n",
                str(count),
                "--manifest",
                str(manifest),
                "--redis-port",
                str(redis_port),
                "--quiet",
            ],
            env=env,
            check=True,
        )
        config = {
            "run_id": run_id,
            "smsc_host": "127.0.0.1",
            "smsc_port": smsc_port,
            "system_id": "smppclient1",
            "password_file": str(work / "pw"),
            "redis_host": "127.0.0.1",
            "redis_port": redis_port,
            "log_file": str(work / "naz.jsonl"),
            "metrics_port": metrics_port,
            "metrics_addr": "127.0.0.1",
            "drain_duration": 1.0,
            "redis_brpop_timeout": 0.5,
            "client_id": f"nazbench-{venv.name}",
        }
        (work / "naz.json").write_text(json.dumps(config))
        cmd = (
            [str(venv / "bin/naz-cli"), "--client", "nazbench.nazapp.app.client"]
            if runner == "naz-cli"
            else [
                str(venv / "bin/python"),
                "-m",
                "nazbench.nazapp.cli",
                "--client",
                "nazbench.nazapp.app.client",
            ]
        )
        out["command"] = " ".join(cmd)
        nazp = subprocess.Popen(
            cmd,
            env={**env, "NAZBENCH_NAZ_CONFIG": str(work / "naz.json")},
            stdout=open(work / "naz-cli.out", "w"),  # noqa: SIM115 - lives as long as the process
            stderr=subprocess.STDOUT,
        )
        procs.append(nazp)
        # done when every message was accepted and every receipt acknowledged
        deadline = time.monotonic() + timeout
        scrape = ""
        while time.monotonic() < deadline and nazp.poll() is None:
            time.sleep(0.5)
            lines = ledger.read_text().splitlines() if ledger.exists() else []
            accepted = sum(1 for ln in lines if '"kind"' not in ln and '"command_status": 0' in ln)
            try:
                scrape = (
                    urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2)
                    .read()
                    .decode()
                )
            except OSError:
                continue
            acks = metric(
                scrape,
                "nazbench_naz_messages_total",
                smpp_command="deliver_sm_resp",
                state="request",
            )
            if accepted >= count and acks >= count:
                break
        out["exited_early"] = nazp.poll()
        if nazp.poll() is None:
            nazp.send_signal(signal.SIGTERM)
            try:
                out["exit_status"] = nazp.wait(30)
            except subprocess.TimeoutExpired:
                nazp.kill()
                out["exit_status"] = "killed after 30s"
        else:
            out["exit_status"] = nazp.returncode
        out["metrics"] = {
            "submit_sm_requests": metric(
                scrape, "nazbench_naz_messages_total", smpp_command="submit_sm", state="request"
            ),
            "submit_sm_resp_ok": metric(
                scrape,
                "nazbench_naz_messages_total",
                smpp_command="submit_sm_resp",
                response_code="ESME_ROK",
            ),
            "deliver_sm": metric(
                scrape, "nazbench_naz_messages_total", smpp_command="deliver_sm", state="response"
            ),
            "deliver_sm_resp_sent": metric(
                scrape,
                "nazbench_naz_messages_total",
                smpp_command="deliver_sm_resp",
                state="request",
            ),
            "latency_count": metric(scrape, "nazbench_naz_submit_sm_latency_seconds_count"),
            "broker_dequeued": metric(scrape, "nazbench_naz_broker_dequeued_total"),
            "broker_enqueued": metric(scrape, "nazbench_naz_broker_enqueued_total"),
            "broker_undecodable": metric(scrape, "nazbench_naz_broker_undecodable_total"),
            "info_naz_version": re.findall(r'naz_version="([^"]*)"', scrape)[:1],
        }
        log_lines = (
            (work / "naz.jsonl").read_text().splitlines() if (work / "naz.jsonl").exists() else []
        )
        records, bad = [], 0
        for ln in log_lines:
            try:
                records.append(json.loads(ln))
            except ValueError:
                bad += 1
        out["log"] = {
            "lines": len(log_lines),
            "not_json": bad,
            "errors": sum(1 for r in records if r.get("level") == "ERROR"),
            "with_client_id": sum(1 for r in records if r.get("client_id") == config["client_id"]),
            "submit_sm_sent": sum(
                1
                for r in records
                if r.get("event") == "naz.Client.send_data"
                and r.get("stage") == "end"
                and r.get("metadata", {}).get("smpp_command") == "submit_sm"
            ),
            "first_error": next(
                (r.get("error") for r in records if r.get("level") == "ERROR"), None
            ),
        }
        rec = subprocess.run(
            [
                py,
                "-m",
                "nazbench.nazapp.reconcile",
                "--manifest",
                str(manifest),
                "--ledger",
                str(ledger),
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(rec.stdout)
        out["reconcile"] = {
            "ok": result["ok"],
            **{
                k: result["counts"][k] for k in ("expected", "delivered_once", "lost", "duplicated")
            },
            "receipts_acked_once": result["receipts"]["acked_once"],
            "receipts_sent": result["receipts"]["sent"],
        }
        out["naz_cli_tail"] = (work / "naz-cli.out").read_text()[-600:]
        out["clean"] = bool(
            result["ok"]
            and out["exit_status"] == 0
            and not bad
            and out["metrics"]["latency_count"] == count
        )
    except Exception as exc:  # report, do not hide
        out["clean"] = False
        out["failure"] = repr(exc)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        if not keep and out.get("clean"):
            shutil.rmtree(work, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--venv", type=Path, action="append", required=True)
    p.add_argument("-n", "--count", type=int, default=50)
    p.add_argument("--runner", choices=("nazbench", "naz-cli"), default="nazbench")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args(argv)
    ok = True
    for venv in args.venv:
        result = run_one(venv, args.count, args.runner, args.timeout, args.keep)
        ok &= result["clean"]
        sys.stdout.write(json.dumps(result, indent=1) + "\n")
        sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
