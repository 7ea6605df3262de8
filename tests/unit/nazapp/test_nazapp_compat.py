"""nazbench.nazapp.compat: the naz-version adapter.

The first tests run with the installed naz (0.8.1). ``test_pipeline_under_naz_version``
runs the whole pipeline (producer -> Redis -> our broker/hook/logger in naz X -> mock
SMSC -> reconcile) in other naz releases' virtualenvs through
``benchmarks/naz_versions_e2e.py``; the venvs are listed in ``NAZBENCH_NAZ_VENVS``
(``:``-separated, default ``.venv-naz/0.6.1:.venv-naz/0.7.9``, which scripts/bootstrap.sh
makes); one that does not exist fails the test, so CI cannot skip them silently.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import naz
import pytest

from nazbench.nazapp import compat
from nazbench.nazapp.hook import PrometheusHook

ROOT = Path(__file__).resolve().parents[3]
VENVS = os.environ.get(
    "NAZBENCH_NAZ_VENVS", f"{ROOT}/.venv-naz/0.6.1:{ROOT}/.venv-naz/0.7.9"
).split(":")


def test_installed_naz_is_the_current_api():
    assert not compat.LEGACY
    assert not compat.CLIENT_CODEC
    assert compat.BaseBroker is naz.broker.BaseBroker
    assert compat.version_tuple("v0.7.9") == (0, 7, 9)


def test_decode_passes_naz_081_json_through():
    text = naz.protocol.SubmitSM(
        short_message="hi", source_addr="1", destination_addr="2", log_id="l1", hook_metadata="r/1"
    ).to_json()
    msg = compat.decode(text)
    assert isinstance(msg, naz.protocol.SubmitSM)
    assert compat.is_submit_sm(msg) and compat.log_id(msg) == "l1"
    assert json.loads(compat.encode(msg)) == json.loads(text)


def _bind(interface: bytes) -> bytes:
    body = b"smppclient1\x00pw\x00\x00" + interface + b"^254\x00"
    return struct.pack(">IIII", 16 + len(body), 9, 0, 7) + body


def test_fix_bind_pdu_packs_naz_061s_4_octet_fields_into_1_octet():
    broken = _bind(struct.pack(">III", 0x34, 0, 0))  # naz 0.6.1 client.py:823-825
    fixed = compat.fix_bind_pdu(broken)
    assert fixed == _bind(bytes((0x34, 0, 0)))
    assert struct.unpack(">I", fixed[:4])[0] == len(fixed)
    assert compat.fix_bind_pdu(fixed) == fixed  # well-formed: unchanged


def test_hook_times_submit_sm_by_log_id_when_naz_gives_no_pdu():
    now = [100.0]
    hook = PrometheusHook("r1", clock=lambda: now[0])

    async def go():
        await hook.request("submit_sm", "log-1", "r1/0")
        now[0] += 0.25
        ok = naz.SmppCommandStatus.ESME_ROK
        await hook.response("submit_sm_resp", "log-1", "r1/0", ok)

    asyncio.run(go())
    assert hook.registry.get_sample_value(
        "nazbench_naz_submit_sm_latency_seconds_sum", {"run_id": "r1"}
    ) == pytest.approx(0.25)
    assert (
        hook.registry.get_sample_value(
            "nazbench_naz_messages_total",
            {
                "run_id": "r1",
                "smpp_command": "submit_sm_resp",
                "state": "response",
                "response_code": "ESME_ROK",
            },
        )
        == 1
    )


@pytest.mark.parametrize("venv", VENVS)
def test_pipeline_under_naz_version(venv):
    assert Path(venv, "bin", "python").exists(), f"no naz virtualenv at {venv}: run make bootstrap"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "naz_versions_e2e.py"),
            "--venv",
            venv,
            "-n",
            "20",
            "--timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    out = proc.stdout[proc.stdout.index("{\n") :]
    result = json.loads(out)
    assert result["clean"], out + proc.stderr
    assert result["reconcile"]["delivered_once"] == 20
    assert result["reconcile"]["receipts_acked_once"] == 20
    assert result["metrics"]["latency_count"] == 20
    assert result["log"]["not_json"] == 0
