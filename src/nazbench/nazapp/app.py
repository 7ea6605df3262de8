"""The module naz-cli loads: ``naz-cli --client nazbench.nazapp.app.client``.

naz-cli 0.8.1 imports ``nazbench.nazapp.app`` and reads its ``client`` attribute
(``cli/utils/load.py``); if that raises it logs the error and exits with status 77. The
client is built on first access (PEP 562 module ``__getattr__``) from the JSON file named
by ``NAZBENCH_NAZ_CONFIG``, so a bad config surfaces in naz-cli's log as one line naming
the field, and tests can import this module without a config.

What is wired together: ``RedisBroker`` (BRPOP with bounded retry, stops popping once the
client shuts down), ``PrometheusHook`` (metrics server started once on ``metrics_port``),
``JsonLinesLogger`` (JSON lines to ``log_file``; SIGUSR1 reopens it), and ``naz.Client``
with the seed's ``socket_timeout=15``, ``enquire_link_interval=80`` and
``address_range="^254"``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import threading
from typing import Any

import naz

from nazbench.nazapp import compat
from nazbench.nazapp.broker import RedisBroker
from nazbench.nazapp.config import NazAppConfig, load_config_from_env
from nazbench.nazapp.hook import BrokerCollector, PrometheusHook
from nazbench.nazapp.logger import JsonLinesLogger


@dataclasses.dataclass
class NazApp:
    config: NazAppConfig
    client: naz.Client
    broker: RedisBroker
    hook: PrometheusHook
    logger: JsonLinesLogger
    metrics_port: int | None


def build(cfg: NazAppConfig, *, start_metrics: bool = True, install_signal: bool = True) -> NazApp:
    """Build the naz client and its broker, hook and logger from ``cfg``."""
    logger = JsonLinesLogger(
        cfg.log_file,
        level=cfg.log_level,
        client_id=cfg.client_id,
        run_id=cfg.run_id,
        log_metadata={
            "smsc_host": cfg.smsc_host,
            "system_id": cfg.system_id,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
        },
        secrets=(cfg.smsc_password, cfg.redis_password),
        reopen_check_interval=cfg.log_reopen_check_interval,
    )
    holder: dict[str, naz.Client] = {}

    def stopping() -> bool:
        client = holder.get("client")
        return client is not None and client.SHOULD_SHUT_DOWN

    def bound() -> bool:
        client = holder.get("client")
        return client is not None and client.current_session_state == naz.SmppSessionState.BOUND_TRX

    broker = RedisBroker(
        host=cfg.redis_host,
        port=cfg.redis_port,
        db=cfg.redis_db,
        password=cfg.redis_password,
        queue=cfg.redis_queue,
        brpop_timeout=cfg.redis_brpop_timeout,
        socket_timeout=cfg.redis_socket_timeout,
        connect_timeout=cfg.redis_connect_timeout,
        health_check_interval=cfg.redis_health_check_interval,
        max_backoff=cfg.redis_max_backoff,
        logger=logger,
        stopping=stopping,
        ready=bound if cfg.broker_wait_for_bind else None,
    )
    hook = PrometheusHook(cfg.run_id)
    hook.describe_client(cfg.client_id)
    hook.registry.register(BrokerCollector(cfg.run_id, broker, logger))
    client = compat.make_client(
        log_level=cfg.log_level,
        smsc_host=cfg.smsc_host,
        smsc_port=cfg.smsc_port,
        system_id=cfg.system_id,
        password=cfg.smsc_password,
        broker=broker,
        system_type=cfg.system_type,
        address_range=cfg.address_range,
        client_id=cfg.client_id,
        enquire_link_interval=cfg.enquire_link_interval,
        logger=logger,
        hook=hook,
        socket_timeout=cfg.socket_timeout,
        drain_duration=cfg.drain_duration,
    )
    holder["client"] = client

    metrics_port = None
    if start_metrics and cfg.metrics_port is not None:
        metrics_port = hook.serve(cfg.metrics_port, cfg.metrics_addr)
    if install_signal and threading.current_thread() is threading.main_thread():
        # naz-cli handles SIGHUP/SIGQUIT/SIGTERM as "shut down"; SIGUSR1 is free.
        signal.signal(signal.SIGUSR1, logger.request_reopen)

    logger.log(
        logging.INFO,
        {
            "event": "nazbench.app.build",
            "stage": "end",
            "naz_version": compat.VERSION,
            "redis": f"{cfg.redis_host}:{cfg.redis_port}/{cfg.redis_db}",
            "queue": cfg.redis_queue,
            "metrics_port": metrics_port,
            "socket_timeout": cfg.socket_timeout,
            "enquire_link_interval": cfg.enquire_link_interval,
            "redis_brpop_timeout": cfg.redis_brpop_timeout,
            "redis_socket_timeout": cfg.redis_socket_timeout,
            "broker_wait_for_bind": cfg.broker_wait_for_bind,
        },
    )
    return NazApp(cfg, client, broker, hook, logger, metrics_port)


_app: NazApp | None = None
_app_lock = threading.Lock()


def get_app() -> NazApp:
    """The process-wide app, built from ``NAZBENCH_NAZ_CONFIG`` on first use."""
    global _app  # noqa: PLW0603 - one client per naz-cli process
    with _app_lock:
        if _app is None:
            _app = build(load_config_from_env())
        return _app


def __getattr__(name: str) -> Any:
    if name == "client":
        return get_app().client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
