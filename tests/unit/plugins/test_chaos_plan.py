"""Duration parsing, unit names and the seeded plan."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from ansible.module_utils.chaos_plan import (
    MAX_LISTED_OUTAGES,
    DurationError,
    ServiceSpec,
    build_plan,
    derive_seed,
    format_ms,
    iter_outages,
    normalize_unit,
    parse_duration_ms,
    validate_params,
)
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        (90, 90_000),
        (0.5, 500),
        ("90", 90_000),
        ("0.25", 250),
        ("90s", 90_000),
        ("13m", 780_000),
        ("1h", 3_600_000),
        ("1m30s", 90_000),
        ("1h2m3s", 3_723_000),
        ("0.5s", 500),
        ("1.5m", 90_000),
        (" 2M ", 120_000),
        ("0.0004s", 0),
    ],
)
def test_parse_duration_accepts(value, ms):
    assert parse_duration_ms(value) == ms


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("13x", "unknown unit 'x'"),
        ("5 min", "not a duration"),
        ("30s1m", "in that order"),
        ("1m1m", "in that order"),
        ("1m30", "bare number"),
        ("", "empty"),
        ("-5s", "negative"),
        (-3, "negative"),
        ("abc", "not a duration"),
        ("1.s", "not a duration"),
        (True, "boolean"),
        ([1], "not a duration"),
        (float("nan"), "finite"),
        ("\u0661\u0662s", "not a duration"),  # Arabic-Indic digits,
    ],
)
def test_parse_duration_rejects(value, fragment):
    with pytest.raises(DurationError, match=fragment):
        parse_duration_ms(value)


@pytest.mark.parametrize(
    ("ms", "text"), [(780_000, "13m"), (90_000, "1m30s"), (500, "0.5s"), (0, "0s")]
)
def test_format_ms(ms, text):
    assert format_ms(ms) == text


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("redis-server", "redis-server.service"),
        ("redis-server.service", "redis-server.service"),
        ("naz-cli.v1", "naz-cli.v1.service"),
        ("getty@tty1.service", "getty@tty1.service"),
        ("nazbench.target", "nazbench.target"),
        ("smsc@ams1", "smsc@ams1.service"),
    ],
)
def test_normalize_unit(name, unit):
    assert normalize_unit(name) == unit


@pytest.mark.parametrize(
    "name",
    ["", "-redis", "my unit", "a/b", "redis*", "getty@.service", ".service", "a" * 300, "x\n", 5],
)
def test_normalize_unit_rejects(name):
    with pytest.raises(ValueError, match=r"unit name|template"):
        normalize_unit(name)


def _config(tmp_path, **over):
    params = {
        "run_id": "plan-test",
        "seed": 42,
        "services": [
            {"unit": "smsc.service", "run_min": "13m", "run_max": "16m"},
            {"unit": "redis.service", "stop_min": "1m", "stop_max": "3m"},
        ],
        "duration": "4h",
        "timeline_path": str(tmp_path / "t.jsonl"),
        "lock_path": str(tmp_path / "l.lock"),
        "heal_reserve": "60s",
        "stop_when_interval": "30s",
        "stop_grace": "0s",
    }
    params.update(over)
    config, errors = validate_params(params)
    assert not errors, errors
    return config


def test_same_seed_same_plan(tmp_path):
    assert build_plan(_config(tmp_path)) == build_plan(_config(tmp_path))


def test_different_seed_different_plan(tmp_path):
    assert build_plan(_config(tmp_path)) != build_plan(_config(tmp_path, seed=43))


def test_seed_defaults_to_run_id_digest(tmp_path):
    config = _config(tmp_path, seed=None)
    assert config.seed == derive_seed("plan-test")
    assert config.seed_derived
    assert build_plan(config) == build_plan(_config(tmp_path, seed=derive_seed("plan-test")))


def test_adding_a_service_keeps_the_other_plans(tmp_path):
    base = build_plan(_config(tmp_path))
    more = build_plan(
        _config(
            tmp_path,
            services=[
                {"unit": "prometheus"},
                {"unit": "smsc.service", "run_min": "13m", "run_max": "16m"},
                {"unit": "redis.service", "stop_min": "1m", "stop_max": "3m"},
            ],
        )
    )
    assert more["smsc.service"] == base["smsc.service"]
    assert more["redis.service"] == base["redis.service"]
    assert set(more) == {"prometheus.service", "smsc.service", "redis.service"}


def test_plan_windows_alternate_and_cover_the_duration(tmp_path):
    plan = build_plan(_config(tmp_path))
    for windows in plan.values():
        assert windows[0]["start_s"] == 0
        assert windows[-1]["end_s"] == 4 * 3600
        assert windows[-1]["final"] is True
        states = [w["state"] for w in windows]
        assert states == ["run", "stop"] * (len(windows) // 2) + ["run"]
        for before, after in itertools.pairwise(windows):
            assert before["end_s"] == after["start_s"]
        # 4 h of 14-19 minute cycles: 12 to 17 outages
        assert 12 <= states.count("stop") <= 17


def test_open_ended_plan_is_listed_for_a_day_and_capped(tmp_path):
    config = _config(
        tmp_path,
        duration=None,
        stop_when="true",
        services=[{"unit": "a", "run_min": "1s", "run_max": "2s", "stop_min": 1, "stop_max": 1}],
    )
    assert config.end_ms is None
    windows = build_plan(config)["a.service"]
    assert windows[-1]["state"] == "unlisted"
    assert windows[-1]["end_s"] == 24 * 3600
    assert sum(w["state"] == "stop" for w in windows) == MAX_LISTED_OUTAGES


def test_budget_bounds_the_plan(tmp_path):
    config = _config(tmp_path, duration=None, stop_when="true", async_budget="2h")
    assert config.end_ms == 2 * 3600_000 - 60_000
    assert config.end_kind == "budget"
    for windows in build_plan(config).values():
        assert windows[-1]["end_s"] == 7140


durations = st.integers(min_value=100, max_value=3_600_000)


@st.composite
def specs(draw):
    run_min = draw(durations)
    run_max = draw(st.integers(min_value=run_min, max_value=run_min + 3_600_000))
    stop_min = draw(durations)
    stop_max = draw(st.integers(min_value=stop_min, max_value=stop_min + 600_000))
    unit = draw(st.from_regex(r"[a-z][a-z0-9-]{0,20}\.service", fullmatch=True))
    return ServiceSpec(unit, run_min, run_max, stop_min, stop_max)


@settings(max_examples=200, deadline=None)
@given(
    spec=specs(),
    seed=st.integers(min_value=-(2**63), max_value=2**63),
    end_ms=st.integers(min_value=200, max_value=48 * 3_600_000),
)
def test_windows_always_inside_bounds(spec, seed, end_ms):
    t = 0
    count = 0
    for outage in iter_outages(seed, spec, end_ms):
        run = outage.stop_ms - t
        stop = outage.start_ms - outage.stop_ms
        assert spec.run_min_ms <= run <= spec.run_max_ms
        assert spec.stop_min_ms <= stop <= spec.stop_max_ms
        assert outage.start_ms <= end_ms
        assert outage.index == count
        t = outage.start_ms
        count += 1
    # the final run window never hides a whole cycle that would have fitted
    assert end_ms - t < spec.run_max_ms + spec.stop_max_ms
    assert count <= end_ms // (spec.run_min_ms + spec.stop_min_ms)


@settings(max_examples=50, deadline=None)
@given(spec=specs(), seed=st.integers())
def test_plan_is_a_pure_function_of_seed_and_spec(spec, seed):
    first = list(iter_outages(seed, spec, 600_000))
    again = list(iter_outages(seed, dataclasses.replace(spec), 600_000))
    assert first == again
