"""nazbench.stats: bootstrap intervals, the permutation test and runs needed, on small
samples whose answers are checked by hand."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from nazbench.stats import (
    bootstrap_ci,
    diff_ci,
    percentile,
    permutation_p,
    quantiles,
    runs_needed,
)

# --------------------------------------------------------------------------- unchanged


def test_percentile_and_quantiles_are_nearest_rank() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2
    assert quantiles([5.0, 1.0, 3.0]) == {"n": 3, "p50": 3.0, "p99": 5.0, "max": 5.0}
    assert quantiles([]) == {"n": 0, "p50": None, "p99": None, "max": None}


# --------------------------------------------------------------------------- bootstrap_ci


def test_bootstrap_of_a_constant_list_is_the_constant() -> None:
    assert bootstrap_ci([2.5] * 7) == (2.5, 2.5)


def test_bootstrap_of_one_value() -> None:
    assert bootstrap_ci([4.0]) == (4.0, 4.0)
    assert bootstrap_ci([4.0], stat=statistics.median) == (4.0, 4.0)


def test_bootstrap_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci([])


def test_bootstrap_of_zeros_and_ones() -> None:
    # 20 values, mean 0.5, sd of the mean 0.5/sqrt(20) = 0.112: about 0.5 ± 0.219
    lo, hi = bootstrap_ci([0, 1] * 10)
    assert 0 <= lo < 0.5 < hi <= 1
    assert lo == pytest.approx(0.5 - 1.96 * 0.5 / math.sqrt(20), abs=0.05)
    assert hi == pytest.approx(0.5 + 1.96 * 0.5 / math.sqrt(20), abs=0.05)
    # each bootstrap mean is k/20
    assert (lo * 20) == pytest.approx(round(lo * 20))
    assert (hi * 20) == pytest.approx(round(hi * 20))


def test_bootstrap_is_seeded() -> None:
    values = [3.1, 4.7, 1.2, 9.9, 5.5, 2.0]
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    # few resamples: the seed shows (with 10,000 both land on the same resample means)
    assert bootstrap_ci(values, resamples=40, seed=7) != bootstrap_ci(values, resamples=40, seed=8)


def test_bootstrap_level_widens_and_stat_is_used() -> None:
    values = [3.1, 4.7, 1.2, 9.9, 5.5, 2.0, 6.6, 0.4]
    lo90, hi90 = bootstrap_ci(values, level=0.90)
    lo99, hi99 = bootstrap_ci(values, level=0.99)
    assert lo99 <= lo90 < hi90 <= hi99
    lo, hi = bootstrap_ci(values, stat=statistics.median)
    assert min(values) <= lo <= statistics.median(values) <= hi <= max(values)
    lo, hi = bootstrap_ci(values, stat=max)
    assert hi == 9.9  # the max of a resample is at most the max, and most resamples hold it


def test_bootstrap_interval_is_percentiles_of_seeded_resamples() -> None:
    # the same computation by hand: random.Random(seed), choices, nearest-rank 2.5/97.5
    values = [1.0, 2.0, 4.0, 8.0]
    rng = random.Random(3)
    means = [statistics.fmean(rng.choices(values, k=4)) for _ in range(500)]
    expected = (percentile(means, 2.5), percentile(means, 97.5))
    assert bootstrap_ci(values, resamples=500, seed=3) == expected


@pytest.mark.parametrize("kwargs", [{"level": 0}, {"level": 1.0}, {"resamples": 0}])
def test_bootstrap_rejects_bad_options(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=r"level|resamples"):
        bootstrap_ci([1.0, 2.0], **kwargs)


# --------------------------------------------------------------------------- diff_ci


def test_diff_ci_is_of_a_minus_b() -> None:
    lo, hi = diff_ci([1, 2, 3], [4, 5, 6])
    # resampled means lie in [1, 3] and [4, 6]: a - b within [-5, -1], about -3
    assert -5 <= lo < -3 < hi <= -1
    lo, hi = diff_ci([4, 5, 6], [1, 2, 3])
    assert 1 <= lo < 3 < hi <= 5


def test_diff_ci_of_constant_groups_is_exact() -> None:
    assert diff_ci([2.0, 2.0], [0.5]) == (1.5, 1.5)


def test_diff_ci_resamples_each_group_on_its_own() -> None:
    # a constant: the interval is 7 minus b's bootstrap interval of the mean, reversed
    b = [1.0, 2.0, 6.0, 3.0]
    rng = random.Random(0)
    diffs = [
        statistics.fmean(rng.choices([7.0] * 3, k=3)) - statistics.fmean(rng.choices(b, k=4))
        for _ in range(1000)
    ]
    assert diff_ci([7.0] * 3, b, resamples=1000) == (
        percentile(diffs, 2.5),
        percentile(diffs, 97.5),
    )


def test_diff_ci_is_seeded_and_rejects_empty_groups() -> None:
    a, b = [1.0, 5.0, 2.0], [3.0, 3.5, 9.0]
    assert diff_ci(a, b, seed=1) == diff_ci(a, b, seed=1)
    with pytest.raises(ValueError, match="b is empty"):
        diff_ci(a, [])
    with pytest.raises(ValueError, match="a is empty"):
        diff_ci([], b)


# --------------------------------------------------------------------------- permutation_p


def test_permutation_exact_separated_groups() -> None:
    # 20 splits of 1..6 into 3 + 3; only {1,2,3} and {4,5,6} are 3 apart: 2/20
    assert permutation_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert permutation_p([4, 5, 6], [1, 2, 3]) == pytest.approx(0.1)


def test_permutation_exact_unequal_sizes() -> None:
    # 10 splits of 1..5 into 2 + 3; |diff| >= 2.5 only for {1,2} (-2.5) and {4,5} (+2.5)
    assert permutation_p([1, 2], [3, 4, 5]) == pytest.approx(0.2)


def test_permutation_identical_groups() -> None:
    assert permutation_p([1, 2, 3], [1, 2, 3]) == 1.0
    assert permutation_p([5.0], [5.0]) == 1.0


def test_permutation_exact_matches_brute_force() -> None:
    rng = random.Random(11)
    a = [rng.gauss(0, 1) for _ in range(5)]
    b = [rng.gauss(0.8, 1) for _ in range(4)]
    pooled = a + b
    obs = abs(statistics.fmean(a) - statistics.fmean(b))
    hits = total = 0
    for idx in itertools.combinations(range(9), 5):
        ga = [pooled[i] for i in idx]
        gb = [pooled[i] for i in range(9) if i not in idx]
        total += 1
        hits += abs(statistics.fmean(ga) - statistics.fmean(gb)) >= obs - 1e-12
    assert total == math.comb(9, 5) == 126
    assert permutation_p(a, b) == pytest.approx(hits / total)


def test_permutation_monte_carlo_correction() -> None:
    # 20 splits > 10 resamples: Monte Carlo, (count + 1) / (resamples + 1)
    assert permutation_p([1, 2, 3], [1, 2, 3], resamples=10) == 1.0  # 11/11
    p = permutation_p([1, 2, 3], [4, 5, 6], resamples=10, seed=5)
    assert p * 11 == pytest.approx(round(p * 11))
    assert 1 / 11 <= p < 1


def test_permutation_monte_carlo_close_to_exact_and_seeded() -> None:
    rng = random.Random(2)
    a = [rng.gauss(0, 1) for _ in range(6)]
    b = [rng.gauss(1, 1) for _ in range(6)]
    exact = permutation_p(a, b)  # 924 splits
    mc = permutation_p(a, b, resamples=900, seed=4)
    assert mc != exact  # it did take the Monte Carlo branch
    assert mc == pytest.approx(exact, abs=0.05)
    assert mc == permutation_p(a, b, resamples=900, seed=4)


def test_permutation_far_apart_large_groups() -> None:
    p = permutation_p(list(range(10)), list(range(100, 110)))  # 184,756 splits
    assert p * 10001 == pytest.approx(round(p * 10001))
    assert 1 / 10001 <= p < 0.001


def test_permutation_rejects_empty_groups() -> None:
    with pytest.raises(ValueError, match="empty"):
        permutation_p([], [1.0])


# --------------------------------------------------------------------------- runs_needed


def test_runs_needed_known_sd() -> None:
    # sd of [0, 2, 4] is 2; z(0.975) = 1.95996: (1.95996 * 2 / 1)^2 = 15.37 -> 16
    assert runs_needed([0, 2, 4], 1) == 16
    # half the width: four times the runs, (1.95996 * 2 / 0.5)^2 = 61.46 -> 62
    assert runs_needed([0, 2, 4], 0.5) == 62
    # 99 %: z = 2.5758, (2.5758 * 2)^2 = 26.54 -> 27
    assert runs_needed([0, 2, 4], 1, level=0.99) == 27


def test_runs_needed_formula() -> None:
    values = [10.0, 12.5, 9.0, 14.0, 11.0]
    z = statistics.NormalDist().inv_cdf(0.975)
    expected = math.ceil((z * statistics.stdev(values) / 0.8) ** 2)
    assert runs_needed(values, 0.8) == expected


def test_runs_needed_edges() -> None:
    assert runs_needed([], 1) is None
    assert runs_needed([3.0], 1) is None
    assert runs_needed([3.0, 3.0, 3.0], 0.1) == 1
    assert runs_needed([0.0, 100.0], 1000) == 1  # never fewer than one run
    with pytest.raises(ValueError, match="half_width"):
        runs_needed([1.0, 2.0], 0)
