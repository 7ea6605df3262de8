# Copyright: nazbench contributors
# MIT License
"""The mock SMSC's behaviour modes: their names, parameters and the one parser of them
(and of the parameters of the chaos loop's other faults).

Pure standard library and no nazbench imports: the chaos loop's module_utils use this
file as it is (``plugins/module_utils/smsc_modes.py`` is a symlink to it), so a mode the
chaos loop accepts is exactly a mode the SMSC's control channel accepts.

A mode is a JSON object ``{"name": <mode>, <parameter>: <value>, ...}``:

- ``normal``: what the SMSC's configuration says (no parameters);
- ``throttle``: ``fraction`` (0 < f <= 1, default 1) of submit_sm answered ESME_RTHROTTLED;
- ``slow``: every answer delayed by ``delay_s`` (0 < d <= 60 s, default 5);
- ``silent``: PDUs read, nothing answered;
- ``drop_resp``: ``fraction`` (0 < f <= 1, default 1) of submit_sm accepted and recorded,
  then the session closed before its submit_sm_resp is sent;
- ``unbind``: every bound session, and every session that binds, is sent an unbind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# name -> {parameter: (default, low (exclusive), high (inclusive))}
MODE_PARAMETERS: dict[str, dict[str, tuple[float, float, float]]] = {
    "normal": {},
    "throttle": {"fraction": (1.0, 0.0, 1.0)},
    "slow": {"delay_s": (5.0, 0.0, 60.0)},
    "silent": {},
    "drop_resp": {"fraction": (1.0, 0.0, 1.0)},
    "unbind": {},
}
MODES = tuple(MODE_PARAMETERS)
# The modes a fault puts in place (every mode but normal, the heal).
FAULT_MODES = MODES[1:]


@dataclass(frozen=True)
class Mode:
    """One mode with every parameter filled in (defaults included)."""

    name: str = "normal"
    params: dict[str, float] = field(default_factory=dict)

    def get(self, parameter: str) -> float:
        return self.params[parameter]

    def as_dict(self) -> dict:
        return {"name": self.name, **self.params}


NORMAL = Mode()


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where} must be a number, got {type(value).__name__} {value!r}"[:200])
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        raise ValueError(f"{where} must be a finite number, got {value!r:.40}") from None
    if not math.isfinite(number):
        raise ValueError(f"{where} must be a finite number, got {value!r}")
    return number


def parse_parameters(
    where: str, given: dict, spec: dict[str, tuple[float, float, float]]
) -> dict[str, float]:
    """``given`` (parameter -> number; other keys than the spec's refused, ``name``
    ignored) checked against ``spec`` (parameter -> (default, low exclusive, high
    inclusive)), defaults filled in; ValueError starting with ``where``. The grammar of
    every fault's parameters: the SMSC's modes here, the chaos loop's network kinds."""
    unknown = sorted(str(k) for k in given if k != "name" and k not in spec)
    if unknown:
        allowed = ", ".join(spec) or "none"
        raise ValueError(f"{where}: unknown parameter(s) {', '.join(unknown)[:120]} "
                         f"(allowed: {allowed})")  # fmt: skip
    params = {}
    for parameter, (default, low, high) in spec.items():
        value = _number(given.get(parameter, default), f"{where}: {parameter}")
        if not low < value <= high:
            raise ValueError(f"{where}: {parameter} must be > {low:g} and <= {high:g}, "
                             f"got {value!r}")  # fmt: skip
        params[parameter] = value
    return params


def parse_mode(obj) -> Mode:
    """``obj`` (a dict as above) as a :class:`Mode`; ValueError naming what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"a mode is an object with 'name', got {type(obj).__name__}")
    name = obj.get("name")
    if not isinstance(name, str) or name not in MODE_PARAMETERS:
        raise ValueError(f"unknown mode {name!r:.60} (known: {', '.join(MODES)})")
    return Mode(name, parse_parameters(f"mode {name}", obj, MODE_PARAMETERS[name]))
