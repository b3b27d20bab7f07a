"""The report's statistics against values worked out by hand from the textbook formulas.

Every expected number below is derived in the comment above it (z = 1.959964, the 97.5%
normal quantile; Student t quantiles from a printed table), not computed by the code under test.
"""

from __future__ import annotations

import math

import pytest

from pytest_alma.stats import (
    estimate,
    holm,
    minimum_detectable_difference,
    paired_difference,
    splitmix64,
    unpaired_difference_se,
    wilson,
)

Z = 1.959964
Z2 = Z * Z  # 3.841459


def test_wilson_three_of_ten() -> None:
    # Wilson: centre = (p + z^2/2n) / (1 + z^2/n), half = z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n)
    # p = 0.3, n = 10: denominator 1.3841459; centre = (0.3 + 0.1920730) / 1.3841459 = 0.3555064;
    # half = 1.959964 * sqrt(0.021 + 0.0096036) / 1.3841459 = 1.959964 * 0.1749389 / 1.3841459
    #      = 0.2477151  ->  [0.1077913, 0.6032215] (the published 3/10 interval: 10.8% to 60.3%).
    low, high = wilson(3, 10)
    assert low == pytest.approx(0.1077913, abs=2e-6)
    assert high == pytest.approx(0.6032215, abs=2e-6)


def test_wilson_at_zero_and_all() -> None:
    # p = 0: centre = half = (z^2/2n) / (1 + z^2/n), so the interval is [0, z^2 / (n + z^2)]
    # = [0, 3.841459 / 13.841459] = [0, 0.2775328]; by symmetry 10/10 is [0.7224672, 1].
    assert wilson(0, 10) == (0.0, pytest.approx(0.2775328, abs=1e-6))
    assert wilson(10, 10) == (pytest.approx(0.7224672, abs=1e-6), 1.0)


def test_wilson_four_of_sixteen_as_in_the_fixture_run() -> None:
    # p = 0.25, n = 16: denominator 1.2400912; centre = (0.25 + 0.1200456) / 1.2400912
    # = 0.2984019; half = 1.959964 * sqrt(0.01171875 + 0.00375143) / 1.2400912
    # = 1.959964 * 0.1243792 / 1.2400912 = 0.1965812  ->  [0.1018207, 0.4949831].
    low, high = wilson(4, 16)
    assert low == pytest.approx(0.1018207, abs=2e-6)
    assert high == pytest.approx(0.4949831, abs=2e-6)


def test_binary_scores_use_wilson_with_the_plain_standard_error() -> None:
    est = estimate([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    # 3 successes of 10: the Wilson interval above; se = sqrt(0.3 * 0.7 / 10) = 0.1449138.
    assert (est.n, est.method) == (10, "wilson")
    assert est.mean == pytest.approx(0.3)
    assert est.se == pytest.approx(0.1449138, abs=1e-6)
    assert est.low == pytest.approx(0.1077913, abs=2e-6)
    assert est.high == pytest.approx(0.6032215, abs=2e-6)


def test_t_interval_of_five_values() -> None:
    # 0.1 .. 0.5: mean 0.3; squared deviations 0.04 + 0.01 + 0 + 0.01 + 0.04 = 0.1, s^2 = 0.1/4
    # = 0.025; se = sqrt(0.025 / 5) = 0.0707107; t(4 df, 0.975) = 2.776 (table: 2.7764);
    # half = 2.7764 * 0.0707107 = 0.1963218  ->  [0.1036782, 0.4963218].
    est = estimate([0.1, 0.2, 0.3, 0.4, 0.5])
    assert est.method == "t"
    assert est.mean == pytest.approx(0.3)
    assert est.se == pytest.approx(0.0707107, abs=1e-7)
    assert est.low == pytest.approx(0.1036782, abs=1e-5)
    assert est.high == pytest.approx(0.4963218, abs=1e-5)


def test_t_interval_needs_two_values() -> None:
    est = estimate([0.4])
    assert est.mean == 0.4 and math.isnan(est.low) and math.isnan(est.high) and est.method == ""


def test_paired_sign_flip_with_four_unit_differences() -> None:
    # differences 1, 1, 1, -1, 0: the zero carries no sign; the 4 others have 2^4 = 16 sign
    # patterns. Observed |sum| = 2. A pattern with k plus signs sums to 2k - 4, so |sum| >= 2
    # for k in {0, 1, 3, 4}: 1 + 4 + 4 + 1 = 10 patterns -> p = 10/16 = 0.625.
    # Interval: mean 0.4; deviations 0.6, 0.6, 0.6, -1.4, -0.4 -> s^2 = (3 * 0.36 + 1.96 + 0.16)
    # / 4 = 0.8; se = sqrt(0.8 / 5) = 0.4; half = 2.7764 * 0.4 = 1.11056 -> [-0.71056, 1.51056].
    diff = paired_difference([1.0, 1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0, 1.0])
    assert diff.test == "exact sign-flip"
    assert (diff.n, diff.nonzero) == (5, 4)
    assert diff.p_value == pytest.approx(0.625)
    assert diff.mean == pytest.approx(0.4)
    assert diff.low == pytest.approx(-0.71056, abs=1e-4)
    assert diff.high == pytest.approx(1.51056, abs=1e-4)


def test_paired_sign_flip_weighs_the_sizes_of_differences() -> None:
    # differences 0.5, 0.25, -0.125 (observed sum 0.625). The 8 sign patterns sum to
    # +++ 0.875, ++- 0.625, +-+ 0.375, +-- 0.125, -++ -0.125, -+- -0.375, --+ -0.625, --- -0.875;
    # |sum| >= 0.625 in 4 of them -> p = 4/8 = 0.5 (a sign test, counting signs only, would
    # give 2 positives of 3: p = 1).
    diff = paired_difference([0.75, 0.5, 0.25], [0.25, 0.25, 0.375])
    assert diff.p_value == pytest.approx(0.5)
    assert diff.mean == pytest.approx(0.625 / 3)


def test_paired_sign_flip_in_the_fixture_run() -> None:
    # flaky_goto against no_memory on 8 tasks x 2 repeats: No Memory won both repeats of the 2
    # go-to-win tasks, flaky_goto none. Per task the mean difference: -1, -1 and six 0. Over
    # tasks only the all-minus and all-plus patterns of the 2 non-zero reach |sum| = 2 -> 2/4.
    # (Over the 16 episodes it would be 2/16 = 0.125: four "pairs" that are two tasks.)
    # Interval: mean -2/8 = -0.25; s^2 = (2 * 0.75^2 + 6 * 0.25^2) / 7 = 1.5 / 7 = 0.2142857;
    # se = sqrt(0.2142857 / 8) = 0.1636634; t(7 df, 0.975) = 2.3646 -> half 0.3870022
    # -> [-0.6370, 0.1370].
    tasks = [f"t{i}" for i in range(8) for _ in range(2)]
    treatment = [0.0] * 16
    baseline = [1.0] * 4 + [0.0] * 12
    diff = paired_difference(treatment, baseline, tasks)
    assert (diff.clusters, diff.nonzero, diff.test) == (8, 2, "exact sign-flip")
    assert diff.p_value == pytest.approx(0.5)
    assert diff.se == pytest.approx(0.1636634, abs=1e-7)
    assert diff.low == pytest.approx(-0.6370, abs=1e-4)
    assert diff.high == pytest.approx(0.1370, abs=1e-4)
    # The same scores taken as 16 independent pairs: the old, too narrow answer.
    naive = paired_difference(treatment, baseline)
    assert naive.p_value == pytest.approx(0.125)


def test_sign_flip_over_tasks_not_episodes() -> None:
    # 4 tasks x 3 repeats; the treatment wins every repeat of tasks a and b (repeats identical),
    # ties on c and d. Per episode: six differences of +1, p = 2 / 2^6 = 0.03125 ("significant").
    # Per task: d = 1, 1, 0, 0; two non-zero -> 2 of 4 patterns as extreme: p = 0.5.
    # Interval: mean 0.5; s^2 = (2 * 0.25 + 2 * 0.25) / 3 = 1/3; se = sqrt(1/12) = 0.2886751;
    # t(3 df, 0.975) = 3.1824 -> half 0.918693 -> [-0.418693, 1.418693].
    tasks = [t for t in "abcd" for _ in range(3)]
    treatment = [1.0] * 6 + [0.0] * 6
    baseline = [0.0] * 12
    clustered = paired_difference(treatment, baseline, tasks)
    assert clustered.p_value == pytest.approx(0.5)
    assert clustered.mean == pytest.approx(0.5)
    assert clustered.low == pytest.approx(-0.418693, abs=1e-5)
    assert clustered.high == pytest.approx(1.418693, abs=1e-5)
    assert paired_difference(treatment, baseline).p_value == pytest.approx(2 / 64)


def test_sign_flip_averages_the_repeats_of_a_task() -> None:
    # 3 tasks x 2 repeats: episode differences a: (1, 1), b: (1, 0), c: (0, -1); per task
    # d = 1, 0.5, -0.5 (observed sum 1). Signs on (1, 0.5, 0.5) in absolute value: the 8 sums
    # are +-2, +-1, +-1, +-0 (the 1 with both halves, against both, and with one of them), so
    # |sum| >= 1 in 6 of 8 patterns -> p = 0.75.
    tasks = ["a", "a", "b", "b", "c", "c"]
    diff = paired_difference([1.0, 1.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0], tasks)
    assert diff.nonzero == 3 and diff.p_value == pytest.approx(0.75)
    assert diff.mean == pytest.approx(1 / 3)


def test_monte_carlo_sign_flip_beyond_sixteen_differing_tasks() -> None:
    # 17 tasks, 12 differences of +1 and 5 of -1 (observed sum 7). A pattern with j plus signs
    # sums to 2j - 17, so |sum| >= 7 for j >= 12 or j <= 5: exactly 2 * (C(17,12) + C(17,13) +
    # ... + C(17,17)) / 2^17 = 2 * (6188 + 2380 + 680 + 136 + 17 + 1) / 131072 = 18804 / 131072
    # = 0.1434631. The Monte Carlo p over 200,000 draws has a standard error of sqrt(0.1435 *
    # 0.8565 / 200000) = 0.000784: within 4 of them (0.0032) of the exact value.
    treatment = [1.0] * 12 + [0.0] * 5
    baseline = [0.0] * 12 + [1.0] * 5
    diff = paired_difference(treatment, baseline)
    assert diff.test == "Monte Carlo sign-flip" and diff.nonzero == 17
    assert abs(diff.p_value - 18804 / 131072) < 0.0032
    # Seeded by our own generator: the same data gives the same p every time.
    assert paired_difference(treatment, baseline).p_value == diff.p_value


def test_splitmix64_is_the_published_generator() -> None:
    # The reference SplitMix64 seeded with 0 outputs 0xE220A8397B1DCDAF, then
    # 0x6E789E6AA1B965F4 (its state advanced by the gamma 0x9E3779B97F4A7C15): our function maps
    # a state to the next output, so states 0 and gamma give those two.
    out = splitmix64([0, 0x9E3779B97F4A7C15])
    assert [int(v) for v in out] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4]


def test_clustering_widens_the_interval() -> None:
    # 4 tasks x 2 repeats: a 1,1; b 1,1; c 0,0; d 0,0 (repeats identical). p = 0.5.
    # As 8 independent episodes: Wilson(4 of 8): denominator 1 + 3.841459/8 = 1.4801824,
    # centre 0.5, half = 1.959964 * sqrt(0.03125 + 3.841459/256) / 1.4801824 = 1.959964 *
    # 0.2150714 / 1.4801824 = 0.284783 -> [0.215217, 0.784783].
    # By task: task means 1, 1, 0, 0; s^2 = 4 * 0.25 / 3 = 1/3; Var(p) = s^2 / 4 = 1/12;
    # n* = p(1-p) / Var = 0.25 * 12 = 3, clamped to [k, n] = [4, 8] -> 4: Wilson(0.5, 4):
    # denominator 1.9603647, half = 1.959964 * sqrt(0.0625 + 0.0600228) / 1.9603647 = 1.959964
    # * 0.3500326 / 1.9603647 = 0.349961 -> [0.150039, 0.849961]: wider.
    scores = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    tasks = ["a", "a", "b", "b", "c", "c", "d", "d"]
    naive = estimate(scores)
    clustered = estimate(scores, tasks)
    assert naive.low == pytest.approx(0.215217, abs=2e-6)
    assert naive.high == pytest.approx(0.784783, abs=2e-6)
    assert (clustered.clusters, clustered.effective_n) == (4, 4.0)
    assert clustered.low == pytest.approx(0.150039, abs=2e-6)
    assert clustered.high == pytest.approx(0.849961, abs=2e-6)
    assert clustered.high - clustered.low > naive.high - naive.low


def test_effective_n_between_tasks_and_episodes() -> None:
    # 4 tasks x 2 repeats: a 1,1; b 1,0; c 0,1; d 0,0. p = 0.5; task means 1, .5, .5, 0;
    # s^2 = (0.25 + 0 + 0 + 0.25) / 3 = 1/6; Var(p) = 1/24; n* = 0.25 * 24 = 6 (inside [4, 8]).
    # Wilson(0.5, 6): denominator 1 + 3.841459/6 = 1.6402432; half = 1.959964 * sqrt(0.0416667
    # + 0.0266768) / 1.6402432 = 1.959964 * 0.2614259 / 1.6402432 = 0.312384
    # -> [0.187616, 0.812384]; se = sqrt(0.25 / 6) = 0.2041241.
    est = estimate(
        [1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0], ["a", "a", "b", "b", "c", "c", "d", "d"]
    )
    assert est.effective_n == pytest.approx(6.0)
    assert est.se == pytest.approx(0.2041241, abs=1e-7)
    assert est.low == pytest.approx(0.187616, abs=2e-6)
    assert est.high == pytest.approx(0.812384, abs=2e-6)


def test_identical_repeats_count_each_task_once() -> None:
    # 3 tasks x 2 identical repeats, 1 of 3 tasks solved: task means 1, 0, 0; p = 1/3;
    # s^2 = (4/9 + 1/9 + 1/9) / 2 = 1/3; Var = 1/9; n* = (2/9) / (1/9) = 2 -> clamped to k = 3:
    # exactly Wilson(1 of 3), the interval of the 3 tasks alone.
    est = estimate([1.0, 1.0, 0.0, 0.0, 0.0, 0.0], ["a", "a", "b", "b", "c", "c"])
    assert est.effective_n == 3.0
    assert (est.low, est.high) == wilson(1, 3)
    # At p = 0 the variance says nothing: n* = k = 3 -> [0, z^2 / (3 + z^2)] = [0, 0.5614970].
    zero = estimate([0.0] * 6, ["a", "a", "b", "b", "c", "c"])
    assert zero.effective_n == 3.0
    assert zero.high == pytest.approx(Z2 / (3 + Z2)) and zero.high == pytest.approx(0.5614970)


def test_unbalanced_tasks_weigh_the_same() -> None:
    # A partial run: task a finished 3 repeats (all won), task b 1 (lost). The mean of the task
    # means is (1 + 0) / 2 = 0.5 (the episode mean 3/4 would over-weight a). k = 2: s^2 = 0.5,
    # Var = 0.25, n* = 0.25 / 0.25 = 1 -> clamped to [2, 4] -> 2: Wilson(0.5, 2).
    est = estimate([1.0, 1.0, 1.0, 0.0], ["a", "a", "a", "b"])
    assert est.mean == 0.5 and est.effective_n == 2.0
    assert (est.low, est.high) == wilson(1, 2)


def test_t_interval_over_task_means() -> None:
    # Progression: task a 0.2, 0.4 (mean 0.3); b 0.6, 0.8 (0.7); c 0.5, 0.5 (0.5). Mean 0.5;
    # s^2 = (0.04 + 0.04 + 0) / 2 = 0.04; se = sqrt(0.04 / 3) = 0.1154701; t(2 df, 0.975) =
    # 4.3027 -> half 0.4968275 -> [0.0031725, 0.9968275]. As 6 episodes: s^2 = (0.09 + 0.01 +
    # 0.01 + 0.09) / 5 = 0.04, se = 0.0816497, t(5) = 2.5706 -> half 0.209889: too narrow.
    scores = [0.2, 0.4, 0.6, 0.8, 0.5, 0.5]
    est = estimate(scores, ["a", "a", "b", "b", "c", "c"])
    assert (est.method, est.clusters) == ("t", 3)
    assert est.se == pytest.approx(0.1154701, abs=1e-7)
    assert est.low == pytest.approx(0.0031725, abs=1e-5)
    assert est.high == pytest.approx(0.9968275, abs=1e-5)
    naive = estimate(scores)
    assert naive.high - naive.mean == pytest.approx(0.209889, abs=1e-5)


def test_holm_on_three_p_values() -> None:
    # Sorted: 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04, raised to the running maximum
    # 0.06. Back in the given order: [0.03, 0.06, 0.06].
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # NaN is not in the family (m = 2): 0.4 * 2 = 0.8; 0.5 * 1 = 0.5 -> 0.8. Capped at 1.
    out = holm([0.4, math.nan, 0.5])
    assert out[0] == pytest.approx(0.8) and math.isnan(out[1]) and out[2] == pytest.approx(0.8)
    assert holm([0.6, 0.7]) == [1.0, 1.0]


def test_minimum_detectable_difference_from_paired_tasks() -> None:
    # d = 0.5, 0, 0.5, 0, 0.5 over 5 tasks: mean 0.3; s^2 = (3 * 0.04 + 2 * 0.09) / 4 = 0.075;
    # se = sqrt(0.075 / 5) = 0.1224745. Table: t(4 df, 0.975) = 2.7764, t(4 df, 0.80) = 0.9410:
    # MDE = (2.776445 + 0.940965) * 0.1224745 = 3.717410 * 0.1224745 = 0.455288.
    diff = paired_difference([0.5, 0.0, 0.5, 0.0, 0.5], [0.0] * 5)
    assert diff.se == pytest.approx(0.1224745, abs=1e-7)
    assert minimum_detectable_difference(diff.se, diff.clusters) == pytest.approx(
        0.455288, abs=1e-5
    )


def test_minimum_detectable_difference_from_a_baseline_at_zero() -> None:
    # A baseline that solved none of 4 tasks: n* = 4; the Wilson centre is (0 + z^2/8) /
    # (1 + z^2/4) = 0.4801824 / 1.9603647 = 0.2449453; the SE of a difference between two such
    # designs is sqrt(2 * 0.2449453 * 0.7550547 / 4) = sqrt(0.0924736) = 0.3040947 (not 0, as
    # p(1-p) would give). t(3, 0.975) = 3.1824, t(3, 0.80) = 0.9785: MDE = 4.160918 * 0.3040947
    # = 1.265: no difference a run of 4 tasks could ever show is detectable with 80% power.
    base = estimate([0.0] * 8, [t for t in "abcd" for _ in range(2)])
    se = unpaired_difference_se(base)
    assert se == pytest.approx(0.3040947, abs=1e-6)
    assert minimum_detectable_difference(se, 4) == pytest.approx(1.265313, abs=1e-5)


def test_no_differences_is_p_one_and_an_empty_comparison_is_undefined() -> None:
    same = paired_difference([1.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    assert (same.mean, same.p_value, same.nonzero, same.test) == (
        0.0,
        1.0,
        0,
        "all differences zero",
    )
    empty = paired_difference([], [])
    assert empty.n == 0 and math.isnan(empty.p_value)


def test_wilson_in_the_fixture_run_by_task() -> None:
    # babaisai No Memory: 8 tasks x 2 identical repeats, 2 tasks won: p = 0.25; task means two
    # 1 and six 0: s^2 = (2 * 0.5625 + 6 * 0.0625) / 7 = 0.2142857, Var = 0.0267857, n* =
    # 0.1875 / 0.0267857 = 7 -> clamped to 8. Wilson(0.25, 8): denominator 1.4801824; centre =
    # (0.25 + 0.2400912) / 1.4801824 = 0.3311012; half = 1.959964 * sqrt(0.0234375 + 0.0150057)
    # / 1.4801824 = 1.959964 * 0.1960694 / 1.4801824 = 0.2596216 -> [0.0714796, 0.5907228].
    tasks = [f"t{i}" for i in range(8) for _ in range(2)]
    est = estimate([1.0] * 4 + [0.0] * 12, tasks)
    assert est.effective_n == 8.0
    assert est.low == pytest.approx(0.0714796, abs=2e-6)
    assert est.high == pytest.approx(0.5907228, abs=2e-6)
