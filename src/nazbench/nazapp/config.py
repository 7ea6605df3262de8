"""The naz-cli configuration file: one JSON object, validated field by field.

``naz-cli --client nazbench.nazapp.app.client`` reads the file named by the environment
variable ``NAZBENCH_NAZ_CONFIG``. Every error names the field to fix. Secrets are read
from files (``password_file``, ``redis_password_file``) or from the environment
(``NAZBENCH_SMSC_PASSWORD``, ``NAZBENCH_REDIS_PASSWORD``); they are never part of the
dataclass ``repr`` and never logged.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nazbench import msgid

CONFIG_ENV = "NAZBENCH_NAZ_CONFIG"
# Names of environment variables, not secrets.
SMSC_PASSWORD_ENV = "NAZBENCH_SMSC_PASSWORD"  # noqa: S105
REDIS_PASSWORD_ENV = "NAZBENCH_REDIS_PASSWORD"  # noqa: S105
DEFAULT_QUEUE = "naz_benchmarks_queue"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The metrics endpoint is scraped from the observability host, so it listens on all
# interfaces by default; the firewall (cloud or lab) decides who reaches it.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


class ConfigError(ValueError):
    """A configuration value is missing or wrong; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"naz-cli config field {field!r}: {problem}")
        self.field = field


@dataclasses.dataclass(frozen=True)
class NazAppConfig:
    """Everything app.py needs to build the naz client, its broker, hook and logger."""

    run_id: str
    smsc_host: str
    smsc_port: int
    system_id: str
    smsc_password: str = dataclasses.field(repr=False)
    redis_host: str
    log_file: str
    system_type: str = ""
    # The seed's app.py binds for "any msisdn beginning with 254" (SMPP appendix A regex).
    address_range: str = "^254"
    client_id: str = ""
    # The seed's naz.Client(socket_timeout=15.00, enquire_link_interval=80.00).
    socket_timeout: float = 15.0
    enquire_link_interval: float = 80.0
    drain_duration: float = 8.0
    redis_port: int = 6379
    redis_db: int = 0
    redis_password: str | None = dataclasses.field(default=None, repr=False)
    redis_queue: str = DEFAULT_QUEUE
    redis_brpop_timeout: float = 8.0
    redis_socket_timeout: float = 18.0
    redis_connect_timeout: float = 5.0
    redis_max_backoff: float = 5.0
    redis_health_check_interval: int = 30
    broker_wait_for_bind: bool = False
    log_level: str = "DEBUG"
    log_reopen_check_interval: float = 1.0
    metrics_port: int | None = 9240
    metrics_addr: str = ALL_INTERFACES

    @property
    def log_level_number(self) -> int:
        return logging.getLevelName(self.log_level)


# ---------------------------------------------------------------------------- checks


def _str(field: str, value: Any, *, allow_empty: bool = False, max_len: int = 0) -> str:
    if not isinstance(value, str):
        raise ConfigError(field, f"must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ConfigError(field, "must not be empty")
    if max_len and len(value) > max_len:
        raise ConfigError(field, f"must be at most {max_len} characters, got {len(value)}")
    return value


def _ascii(field: str, value: Any, *, allow_empty: bool = False, max_len: int = 0) -> str:
    value = _str(field, value, allow_empty=allow_empty, max_len=max_len)
    if not value.isascii():
        raise ConfigError(field, "must be ASCII (SMPP C-octet string)")
    return value


def _int(field: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, f"must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(field, f"must be between {lo} and {hi}, got {value}")
    return value


def _float(field: str, value: Any, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(field, f"must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(field, "must be a finite number")
    if positive and value <= 0:
        raise ConfigError(field, f"must be > 0, got {value}")
    if not positive and value < 0:
        raise ConfigError(field, f"must be >= 0, got {value}")
    return value


def _bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(field, f"must be true or false, got {value!r}")
    return value


def _port(field: str, value: Any) -> int:
    return _int(field, value, 1, 65535)


def _run_id(field: str, value: Any) -> str:
    try:
        return msgid.validate_run_id(value)
    except ValueError as exc:
        raise ConfigError(field, str(exc)) from None


def _log_level(field: str, value: Any) -> str:
    value = _str(field, value).upper()
    if value not in LOG_LEVELS:
        raise ConfigError(field, f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return value


def _metrics_port(field: str, value: Any) -> int | None:
    # null disables the endpoint; 0 asks the OS for a free port (tests).
    return None if value is None else _int(field, value, 0, 65535)


def _optional_path(field: str, value: Any) -> str | None:
    return None if value is None else _str(field, value)


# name -> (check, required). Optional fields default to the dataclass default.
_Check = Callable[[str, Any], Any]
_FIELDS: dict[str, tuple[_Check, bool]] = {
    "run_id": (_run_id, True),
    "smsc_host": (_str, True),
    "smsc_port": (_port, True),
    # SMPP 3.4 section 5.2.1: system_id is a C-octet string of at most 16 octets.
    "system_id": (lambda f, v: _ascii(f, v, max_len=15), True),
    "password_file": (_optional_path, False),
    "redis_host": (_str, True),
    "log_file": (_str, True),
    "system_type": (lambda f, v: _ascii(f, v, allow_empty=True, max_len=12), False),
    "address_range": (lambda f, v: _ascii(f, v, allow_empty=True, max_len=40), False),
    "client_id": (lambda f, v: _str(f, v, max_len=128), False),
    "socket_timeout": (_float, False),
    "enquire_link_interval": (_float, False),
    "drain_duration": (lambda f, v: _float(f, v, positive=False), False),
    "redis_port": (_port, False),
    "redis_db": (lambda f, v: _int(f, v, 0, 15), False),
    "redis_password_file": (_optional_path, False),
    "redis_queue": (lambda f, v: _str(f, v, max_len=256), False),
    "redis_brpop_timeout": (_float, False),
    "redis_socket_timeout": (lambda f, v: None if v is None else _float(f, v), False),
    "redis_connect_timeout": (_float, False),
    "redis_max_backoff": (_float, False),
    "redis_health_check_interval": (lambda f, v: _int(f, v, 0, 3600), False),
    "broker_wait_for_bind": (_bool, False),
    "log_level": (_log_level, False),
    "log_reopen_check_interval": (lambda f, v: _float(f, v, positive=False), False),
    "metrics_port": (_metrics_port, False),
    "metrics_addr": (_str, False),
}

# Margin between BRPOP's server-side timeout and the client socket timeout: the reply to
# an expired BRPOP must arrive before the socket gives up, even over a 154 ms WAN link.
SOCKET_TIMEOUT_MARGIN = 10.0


def _read_secret(field: str, path: str, base_dir: Path | None) -> str:
    p = Path(path)
    if base_dir is not None and not p.is_absolute():
        p = base_dir / p
    try:
        secret = p.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(field, f"cannot read {str(p)!r}: {exc.strerror or exc}") from None
    if not secret:
        raise ConfigError(field, f"{str(p)!r} is empty")
    return secret


def _resolve(path: str, base_dir: Path | None) -> str:
    p = Path(path)
    if base_dir is not None and not p.is_absolute():
        p = base_dir / p
    return str(p)


def _secrets(values: dict[str, Any], env: Mapping[str, str], base_dir: Path | None) -> None:
    password_file = values.pop("password_file", None)
    if password_file is not None:
        values["smsc_password"] = _read_secret("password_file", password_file, base_dir)
    elif env.get(SMSC_PASSWORD_ENV):
        values["smsc_password"] = env[SMSC_PASSWORD_ENV]
    else:
        raise ConfigError("password_file", f"is required unless {SMSC_PASSWORD_ENV} is set")
    if not values["smsc_password"].isascii() or len(values["smsc_password"]) > 8:
        # SMPP 3.4 section 5.2.2: password is a C-octet string of at most 9 octets.
        raise ConfigError("password_file", "the SMSC password must be at most 8 ASCII characters")

    redis_file = values.pop("redis_password_file", None)
    if redis_file is not None:
        values["redis_password"] = _read_secret("redis_password_file", redis_file, base_dir)
    elif env.get(REDIS_PASSWORD_ENV):
        values["redis_password"] = env[REDIS_PASSWORD_ENV]


def _redis_timeouts(values: dict[str, Any]) -> None:
    brpop = values.get("redis_brpop_timeout", NazAppConfig.redis_brpop_timeout)
    sock = values.get("redis_socket_timeout")
    if sock is None:
        values["redis_socket_timeout"] = brpop + SOCKET_TIMEOUT_MARGIN
    elif sock <= brpop + 1.0:
        raise ConfigError(
            "redis_socket_timeout",
            f"must exceed redis_brpop_timeout ({brpop}) by more than 1 s, got {sock}; "
            "otherwise an idle BRPOP times out on the client side",
        )


def parse_config(
    data: Any, *, env: Mapping[str, str] | None = None, base_dir: Path | None = None
) -> NazAppConfig:
    """Validate ``data`` (the decoded JSON object) and return the config.

    Relative paths are taken relative to ``base_dir`` (the config file's directory).
    Keys starting with ``_`` are comments (e.g. Ansible's "managed" note) and ignored.
    Raises ``ConfigError`` naming the first bad field.
    """
    env = os.environ if env is None else env
    if not isinstance(data, dict):
        raise ConfigError("<root>", f"must be a JSON object, got {type(data).__name__}")
    unknown = sorted(k for k in set(data) - set(_FIELDS) if not str(k).startswith("_"))
    if unknown:
        raise ConfigError(unknown[0], f"unknown field (known: {', '.join(sorted(_FIELDS))})")
    values: dict[str, Any] = {}
    for name, (check, required) in _FIELDS.items():
        if name in data:
            values[name] = check(name, data[name])
        elif required:
            raise ConfigError(name, "is required")
    _secrets(values, env, base_dir)
    _redis_timeouts(values)
    log_file = _resolve(values["log_file"], base_dir)
    if not Path(log_file).parent.is_dir():
        raise ConfigError("log_file", f"directory of {log_file!r} does not exist")
    values["log_file"] = log_file
    if not values.get("client_id"):
        values["client_id"] = f"nazbench-{values['run_id']}"
    return NazAppConfig(**values)


def load_config(
    path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> NazAppConfig:
    """Read and validate the JSON config file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("<file>", f"cannot read {str(p)!r}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError("<file>", f"{str(p)!r} is not valid JSON: {exc}") from None
    return parse_config(data, env=env, base_dir=p.resolve().parent)


def load_config_from_env(env: Mapping[str, str] | None = None) -> NazAppConfig:
    """Read the config file named by ``NAZBENCH_NAZ_CONFIG``."""
    env = os.environ if env is None else env
    path = env.get(CONFIG_ENV)
    if not path:
        raise ConfigError("<file>", f"set {CONFIG_ENV} to the path of the naz-cli JSON config")
    return load_config(path, env=env)
