"""The figures nazbench reports from samples, on one percentile definition (nearest rank).

The definition itself lives in nazbench.lab.rtt, which is copied to hosts as a standalone
script and so imports nothing of nazbench's.
"""

from __future__ import annotations

from nazbench.lab.rtt import percentile

__all__ = ["percentile", "quantiles"]


def quantiles(values: list[float]) -> dict[str, float | int | None]:
    """n, p50, p99 and max of ``values`` (nearest rank); None for each figure when empty."""
    if not values:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values),
    }
