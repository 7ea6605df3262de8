"""The figures nazbench reports from samples, on one percentile definition (nearest rank).

The definition itself lives in nazbench.lab.rtt, which is copied to hosts as a standalone
script and so imports nothing of nazbench's.

The interval and test helpers below are pure Python and seeded: the same values, options
and seed always give the same answer.

- :func:`bootstrap_ci`: percentile-bootstrap interval of a statistic (the mean by default);
- :func:`diff_ci`: bootstrap interval of ``stat(a) - stat(b)``, each group resampled on its own;
- :func:`permutation_p`: two-sided permutation p-value of the difference of means (exact
  when every split can be enumerated within ``resamples``, else Monte Carlo);
- :func:`runs_needed`: runs for a mean's interval of ± a half-width (normal approximation).
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Callable, Sequence

from nazbench.lab.rtt import percentile

__all__ = [
    "bootstrap_ci",
    "diff_ci",
    "percentile",
    "permutation_p",
    "quantiles",
    "runs_needed",
]

Stat = Callable[[Sequence[float]], float]
# Permuted differences within this (relative) distance of the observed one count as "as
# extreme": the same split summed in another order must not drop out on rounding.
_TIE = 1e-9


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


def _check(level: float, resamples: int) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (exclusive), not {level!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, not {resamples!r}")


def _sample(values: Sequence[float], name: str) -> list[float]:
    xs = list(values)
    if not xs:
        raise ValueError(f"{name} is empty: no interval or test without values")
    return xs


def _interval(estimates: list[float], level: float) -> tuple[float, float]:
    """The (1 - level)/2 and (1 + level)/2 nearest-rank percentiles of ``estimates``."""
    tail = (1 - level) / 2 * 100
    return float(percentile(estimates, tail)), float(percentile(estimates, 100 - tail))


def bootstrap_ci(
    values: Sequence[float],
    stat: Stat = statistics.fmean,
    level: float = 0.95,
    resamples: int = 10000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``stat(values)`` at ``level``.

    ``resamples`` resamples with replacement of len(values) values each (random.Random
    seeded with ``seed``); the interval is their statistics' nearest-rank (1 - level)/2 and
    (1 + level)/2 percentiles. One value (or all values equal): (stat, stat), e.g. (v, v)
    for the mean. Empty: ValueError.
    """
    xs = _sample(values, "values")
    _check(level, resamples)
    if len(set(xs)) == 1:  # every resample is the sample itself
        v = float(stat(xs))
        return v, v
    rng = random.Random(seed)
    n = len(xs)
    return _interval([stat(rng.choices(xs, k=n)) for _ in range(resamples)], level)


def diff_ci(
    a: Sequence[float],
    b: Sequence[float],
    *,
    stat: Stat = statistics.fmean,
    level: float = 0.95,
    resamples: int = 10000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``stat(a) - stat(b)`` (the difference of means).

    Each resample draws len(a) values from ``a`` and, independently, len(b) from ``b`` (both
    with replacement, one random.Random seeded with ``seed``). The options after ``b`` are
    keyword-only. Either group empty: ValueError.
    """
    xa, xb = _sample(a, "a"), _sample(b, "b")
    _check(level, resamples)
    if len(set(xa)) == 1 and len(set(xb)) == 1:
        d = float(stat(xa) - stat(xb))
        return d, d
    rng = random.Random(seed)
    na, nb = len(xa), len(xb)
    diffs = [stat(rng.choices(xa, k=na)) - stat(rng.choices(xb, k=nb)) for _ in range(resamples)]
    return _interval(diffs, level)


def permutation_p(
    a: Sequence[float], b: Sequence[float], resamples: int = 10000, seed: int = 0
) -> float:
    """Two-sided permutation p-value of mean(a) - mean(b).

    The share of splits of the pooled values into groups of len(a) and len(b) whose
    difference of means is at least as far from 0 as the observed one. Exact (every split,
    the observed one included) when there are at most ``resamples`` splits; otherwise
    ``resamples`` random splits and (count + 1) / (resamples + 1). Either group empty:
    ValueError.
    """
    xa, xb = _sample(a, "a"), _sample(b, "b")
    _check(0.5, resamples)
    pooled = xa + xb
    na, nb = len(xa), len(xb)
    total = math.fsum(pooled)

    def spread(sum_a: float) -> float:
        return abs(sum_a / na - (total - sum_a) / nb)

    observed = spread(math.fsum(xa))
    bar = observed - _TIE * max(1.0, observed)
    splits = math.comb(na + nb, na)
    if splits <= resamples:
        hits = sum(
            1
            for idx in itertools.combinations(range(na + nb), na)
            if spread(math.fsum(pooled[i] for i in idx)) >= bar
        )
        return hits / splits
    rng = random.Random(seed)
    indices = range(na + nb)
    hits = sum(
        1
        for _ in range(resamples)
        if spread(math.fsum(pooled[i] for i in rng.sample(indices, na))) >= bar
    )
    return (hits + 1) / (resamples + 1)


def runs_needed(values: Sequence[float], half_width: float, level: float = 0.95) -> int | None:
    """Runs for the mean's ``level`` interval to be ± ``half_width``: ceil((z * sd / hw)^2).

    sd is the sample standard deviation of ``values`` and z the standard normal quantile
    of (1 + level)/2 (statistics.NormalDist). None with fewer than 2 values (no sd); 1 when
    sd is 0. ``half_width`` must be positive.
    """
    if not half_width > 0:
        raise ValueError(f"half_width must be positive, not {half_width!r}")
    _check(level, 1)
    xs = list(values)
    if len(xs) < 2:  # a standard deviation needs two
        return None
    sd = statistics.stdev(xs)
    if sd == 0:
        return 1
    z = statistics.NormalDist().inv_cdf((1 + level) / 2)
    return max(1, math.ceil((z * sd / half_width) ** 2))
