from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
from pathlib import Path

import naz
import pytest

from nazbench.nazapp import app as appmod
from nazbench.nazapp import hook as hookmod
from nazbench.nazapp import producer
from nazbench.nazapp.broker import RedisBroker
from nazbench.nazapp.config import CONFIG_ENV, ConfigError, parse_config
from nazbench.nazapp.hook import PrometheusHook
from nazbench.nazapp.logger import JsonLinesLogger
from nazbench.nazapp.reconcile import reconcile

from .fake_smsc import FakeSmsc


def config_dict(tmp_path: Path, redis_port: int, smsc_port: int = 2775) -> dict:
    (tmp_path / "pw").write_text("pw123456")
    return {
        "run_id": "app-1",
        "smsc_host": "127.0.0.1",
        "smsc_port": smsc_port,
        "system_id": "smppclient1",
        "password_file": str(tmp_path / "pw"),
        "redis_host": "127.0.0.1",
        "redis_port": redis_port,
        "log_file": str(tmp_path / "naz.jsonl"),
        "metrics_port": 0,
        "metrics_addr": "127.0.0.1",
        "drain_duration": 0.2,
        "redis_brpop_timeout": 0.5,
    }


@pytest.fixture(autouse=True)
def _isolate():
    previous = signal.getsignal(signal.SIGUSR1)
    yield
    hookmod.shutdown_servers()
    signal.signal(signal.SIGUSR1, previous)


def test_module_attribute_client_is_built_from_the_env_config(tmp_path, monkeypatch):
    path = tmp_path / "naz.json"
    path.write_text(json.dumps(config_dict(tmp_path, 6390)))
    monkeypatch.setenv(CONFIG_ENV, str(path))
    monkeypatch.setattr(appmod, "_app", None)
    client = appmod.client  # what naz-cli's load_class does: getattr(module, "client")
    assert isinstance(client, naz.Client)
    assert isinstance(client.broker, RedisBroker)
    assert isinstance(client.hook, PrometheusHook)
    assert isinstance(client.logger, JsonLinesLogger)
    assert client.socket_timeout == 15.0
    assert client.enquire_link_interval == 80.0
    assert client.address_range == "^254"
    assert client.client_id == "nazbench-app-1"
    assert appmod.client is client  # built once
    assert signal.getsignal(signal.SIGUSR1) == client.logger.request_reopen
    assert appmod.get_app().metrics_port
    client.logger.flush()  # lines are written in blocks, flushed every 0.2 s
    lines = [json.loads(x) for x in (tmp_path / "naz.jsonl").read_text().splitlines()]
    assert {"sanity_check_logger", "nazbench.app.build"} <= {x["event"] for x in lines}
    assert "pw123456" not in (tmp_path / "naz.jsonl").read_text()
    with pytest.raises(AttributeError):
        _ = appmod.nothing_here


def test_bad_config_surfaces_as_an_error_naming_the_field(tmp_path, monkeypatch):
    bad = config_dict(tmp_path, 6390)
    bad["smsc_port"] = "2775"
    path = tmp_path / "naz.json"
    path.write_text(json.dumps(bad))
    monkeypatch.setenv(CONFIG_ENV, str(path))
    monkeypatch.setattr(appmod, "_app", None)
    with pytest.raises(ConfigError, match="'smsc_port'"):
        _ = appmod.client


def latency_count(app) -> float:
    labels = {"run_id": app.config.run_id}
    name = "nazbench_naz_submit_sm_latency_seconds_count"
    return app.hook.registry.get_sample_value(name, labels) or 0


def test_end_to_end_queue_to_fake_smsc(redis_server, redis_client, tmp_path):
    """producer -> Redis -> naz (our broker, hook, logger) -> SMSC; then reconcile."""
    count = 30
    params = producer.Params("app-1", count, 5)
    manifest_path = tmp_path / "manifest.json"
    producer.run(redis_client, params, manifest_path=manifest_path)

    async def go():
        smsc = FakeSmsc()
        port = await smsc.start()
        cfg = parse_config(config_dict(tmp_path, redis_server.port, port), env={})
        app = appmod.build(cfg, install_signal=False)
        client = app.client
        await client.connect()
        await client.tranceiver_bind()
        dequeue = asyncio.create_task(client.dequeue_messages())
        receive = asyncio.create_task(client.receive_data())
        try:
            async with asyncio.timeout(10):
                while latency_count(app) < count:
                    await asyncio.sleep(0.05)
            await client.shutdown()
            await asyncio.wait([dequeue], timeout=3)
        finally:
            for t in (dequeue, receive):
                t.cancel()
                with contextlib.suppress(BaseException):
                    await t
            await app.broker.close()
            await smsc.stop()
        return app, smsc, dequeue

    app, smsc, dequeue = asyncio.run(go())
    result = reconcile(producer.read_manifest(manifest_path), smsc.ledger)
    assert result.ok, result.counts()
    assert result.delivered_once == count
    get = app.hook.registry.get_sample_value
    labels = {"run_id": "app-1", "smpp_command": "submit_sm", "state": "request"}
    assert get("nazbench_naz_messages_total", {**labels, "response_code": ""}) == count
    resp = {"run_id": "app-1", "smpp_command": "submit_sm_resp", "state": "response"}
    assert get("nazbench_naz_messages_total", {**resp, "response_code": "ESME_ROK"}) == count
    assert get("nazbench_naz_broker_dequeued_total", {"run_id": "app-1"}) == count
    assert redis_client.llen(params.queue) == 0
    # After shutdown the broker stops popping (BrokerStopping), so naz's dequeue loop returns
    # by itself. (receive_data may instead die with naz 0.8.1's AttributeError on
    # writer=None when the SMSC closes the socket after unbind: that is naz-cli's rc 77.)
    assert not dequeue.cancelled() and dequeue.result() == {"shutdown": "shutdown"}
    app.logger.flush()
    records = [json.loads(x) for x in (tmp_path / "naz.jsonl").read_text().splitlines()]
    events = {r["event"] for r in records}
    assert {"naz.Client.send_data", "naz.Client.dequeue_messages", "naz.Client.shutdown"} <= events
    assert all(r["client_id"] == "nazbench-app-1" and r["run_id"] == "app-1" for r in records)
    assert any(re.fullmatch(r"0-[a-z]{7}", r["log_id"] or "") for r in records)
