"""nazbench.smsc.modes: the one parser of the mock SMSC's modes (the SMSC's control
channel and the chaos loop's SMSC kinds both use it)."""

from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import pytest

from nazbench.smsc.modes import FAULT_MODES, MODES, NORMAL, parse_mode

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "src" / "nazbench" / "smsc" / "modes.py"


def test_the_module_util_is_this_file() -> None:
    shipped = ROOT / "plugins" / "module_utils" / "smsc_modes.py"
    assert shipped.is_symlink() and shipped.resolve() == SOURCE.resolve()


def test_stdlib_only() -> None:
    """The chaos loop ships it to hosts as a module_util: nothing but the standard library."""
    tree = ast.parse(SOURCE.read_text())
    names = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert names <= set(sys.stdlib_module_names) | {"__future__"}, names


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"name": "normal"}, {"name": "normal"}),
        ({"name": "throttle"}, {"name": "throttle", "fraction": 1.0}),
        ({"name": "throttle", "fraction": 0.25}, {"name": "throttle", "fraction": 0.25}),
        ({"name": "slow"}, {"name": "slow", "delay_s": 5.0}),
        ({"name": "slow", "delay_s": 60}, {"name": "slow", "delay_s": 60.0}),
        ({"name": "silent"}, {"name": "silent"}),
        ({"name": "drop_resp", "fraction": 1e-3}, {"name": "drop_resp", "fraction": 0.001}),
        ({"name": "unbind"}, {"name": "unbind"}),
    ],
)
def test_modes_get_their_defaults(given: dict, expected: dict) -> None:
    assert parse_mode(given).as_dict() == expected


@pytest.mark.parametrize(
    ("given", "says"),
    [
        (None, "object"),
        ([], "object"),
        ({}, "unknown mode"),
        ({"name": "Throttle"}, "unknown mode"),
        ({"name": 1}, "unknown mode"),
        ({"name": "silent", "fraction": 1}, "unknown parameter"),
        ({"name": "slow", "delay": 1}, "unknown parameter"),
        ({"name": "throttle", "fraction": 0}, "fraction must be > 0"),
        ({"name": "throttle", "fraction": 1.0000001}, "<= 1"),
        ({"name": "drop_resp", "fraction": -1}, "fraction"),
        ({"name": "drop_resp", "fraction": "1"}, "must be a number"),
        ({"name": "drop_resp", "fraction": False}, "must be a number"),
        ({"name": "slow", "delay_s": math.nan}, "finite"),
        ({"name": "slow", "delay_s": math.inf}, "finite"),
        ({"name": "slow", "delay_s": 0}, "delay_s must be > 0"),
        ({"name": "slow", "delay_s": 60.5}, "<= 60"),
        ({"name": "slow", "delay_s": None}, "must be a number"),
        ({"name": "slow", "delay_s": 10**400}, "finite"),
    ],
)
def test_bad_modes_are_refused_naming_why(given: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_mode(given)


def test_the_names() -> None:
    assert MODES[0] == "normal" == NORMAL.name
    assert FAULT_MODES == ("throttle", "slow", "silent", "drop_resp", "unbind")
