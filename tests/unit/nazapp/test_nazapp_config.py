from __future__ import annotations

import json
from pathlib import Path

import pytest

from nazbench.nazapp import config as cfgmod
from nazbench.nazapp.config import ConfigError, load_config, load_config_from_env, parse_config


@pytest.fixture
def base(tmp_path: Path) -> dict:
    (tmp_path / "smsc.pw").write_text("s3cretpw\n")
    (tmp_path / "redis.pw").write_text("redis-secret\n")
    (tmp_path / "logs").mkdir()
    return {
        "run_id": "run-1",
        "smsc_host": "ams1",
        "smsc_port": 2775,
        "system_id": "smppclient1",
        "password_file": str(tmp_path / "smsc.pw"),
        "redis_host": "ams1",
        "redis_password_file": str(tmp_path / "redis.pw"),
        "log_file": str(tmp_path / "logs" / "naz.jsonl"),
    }


def test_minimal_config_gets_the_seeds_defaults(base):
    cfg = parse_config(base, env={})
    assert cfg.socket_timeout == 15.0
    assert cfg.enquire_link_interval == 80.0
    assert cfg.address_range == "^254"
    assert cfg.redis_brpop_timeout == 8.0
    assert cfg.redis_socket_timeout == 18.0  # comfortably above BRPOP's timeout
    assert cfg.redis_queue == "naz_benchmarks_queue"
    assert cfg.smsc_password == "s3cretpw"
    assert cfg.redis_password == "redis-secret"
    assert cfg.client_id == "nazbench-run-1"
    assert cfg.log_level == "DEBUG"
    assert cfg.log_level_number == 10


def test_secrets_are_not_in_repr(base):
    text = repr(parse_config(base, env={}))
    assert "s3cretpw" not in text
    assert "redis-secret" not in text


def test_passwords_from_environment(base):
    del base["password_file"], base["redis_password_file"]
    env = {cfgmod.SMSC_PASSWORD_ENV: "envpw", cfgmod.REDIS_PASSWORD_ENV: "renv"}
    cfg = parse_config(base, env=env)
    assert (cfg.smsc_password, cfg.redis_password) == ("envpw", "renv")
    cfg = parse_config(base, env={cfgmod.SMSC_PASSWORD_ENV: "envpw"})
    assert cfg.redis_password is None


def test_relative_paths_are_relative_to_the_config_file(base, tmp_path):
    base["password_file"] = "smsc.pw"
    base["log_file"] = "logs/naz.jsonl"
    path = tmp_path / "naz.json"
    path.write_text(json.dumps(base))
    cfg = load_config(path, env={})
    assert cfg.smsc_password == "s3cretpw"
    assert cfg.log_file == str(tmp_path / "logs" / "naz.jsonl")


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("run_id", "bad run", "run_id"),
        ("run_id", 7, "run_id"),
        ("smsc_host", "", "must not be empty"),
        ("smsc_host", 5, "must be a string"),
        ("smsc_port", 0, "between 1 and 65535"),
        ("smsc_port", 70000, "between 1 and 65535"),
        ("smsc_port", "2775", "must be an integer"),
        ("smsc_port", True, "must be an integer"),
        ("system_id", "x" * 16, "at most 15"),
        ("system_id", "sÿstem", "ASCII"),
        ("password_file", "/nonexistent/pw", "cannot read"),
        ("redis_host", None, "must be a string"),
        ("redis_port", -1, "between 1 and 65535"),
        ("redis_db", 16, "between 0 and 15"),
        ("redis_password_file", "/nonexistent/pw", "cannot read"),
        ("redis_queue", "", "must not be empty"),
        ("redis_brpop_timeout", 0, "must be > 0"),
        ("redis_brpop_timeout", "8", "must be a number"),
        ("redis_socket_timeout", 5, "must exceed redis_brpop_timeout"),
        ("redis_connect_timeout", -1, "must be > 0"),
        ("redis_max_backoff", float("nan"), "finite"),
        ("redis_health_check_interval", 1.5, "must be an integer"),
        ("broker_wait_for_bind", "yes", "true or false"),
        ("socket_timeout", 0, "must be > 0"),
        ("enquire_link_interval", "80", "must be a number"),
        ("drain_duration", -1, "must be >= 0"),
        ("address_range", "x" * 41, "at most 40"),
        ("system_type", 3, "must be a string"),
        ("client_id", "", "must not be empty"),
        ("log_file", "/nonexistent-dir/naz.jsonl", "does not exist"),
        ("log_level", "LOUD", "must be one of"),
        ("log_reopen_check_interval", -1, "must be >= 0"),
        ("metrics_port", 70000, "between 0 and 65535"),
        ("metrics_port", "9240", "must be an integer"),
        ("metrics_addr", "", "must not be empty"),
        ("smsc_pasword", "typo", "unknown field"),
    ],
)
def test_each_bad_field_is_named(base, field, value, match):
    base[field] = value
    with pytest.raises(ConfigError, match=match) as info:
        parse_config(base, env={})
    assert info.value.field == field
    assert repr(field) in str(info.value)


@pytest.mark.parametrize(
    "field", ["run_id", "smsc_host", "smsc_port", "system_id", "redis_host", "log_file"]
)
def test_each_required_field_is_named_when_missing(base, field):
    del base[field]
    with pytest.raises(ConfigError, match="is required") as info:
        parse_config(base, env={})
    assert info.value.field == field


def test_missing_password_names_password_file(base):
    del base["password_file"]
    with pytest.raises(ConfigError, match=cfgmod.SMSC_PASSWORD_ENV) as info:
        parse_config(base, env={})
    assert info.value.field == "password_file"


def test_empty_or_too_long_smsc_password(base, tmp_path):
    (tmp_path / "smsc.pw").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        parse_config(base, env={})
    (tmp_path / "smsc.pw").write_text("123456789")
    with pytest.raises(ConfigError, match="at most 8"):
        parse_config(base, env={})


def test_metrics_port_null_disables(base):
    base["metrics_port"] = None
    assert parse_config(base, env={}).metrics_port is None


def test_not_an_object_and_not_json(tmp_path):
    with pytest.raises(ConfigError, match="JSON object"):
        parse_config([1, 2], env={})
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad, env={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json", env={})


def test_env_variable_is_required():
    with pytest.raises(ConfigError, match=cfgmod.CONFIG_ENV):
        load_config_from_env({})


def test_underscore_keys_are_comments_but_typos_are_not(base):
    cfg = parse_config({**base, "_comment": "Ansible managed"}, env={})
    assert cfg.run_id == "run-1"
    with pytest.raises(ConfigError, match="comment"):
        parse_config({**base, "comment": "not a field"}, env={})
