"""The report's statistics against values worked out by hand from the textbook formulas.

Every expected number below is derived in the comment above it (z = 1.959964, the 97.5%
normal quantile; Student t quantiles from a printed table), not computed by the code under test.
"""

from __future__ import annotations

import math

import pytest

from pytest_alma.stats import estimate, paired_difference, wilson

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
    # flaky_goto against no_memory on 16 pairs: 4 pairs are (0, 1), 12 are equal. All 4
    # differences are -1: only the all-minus and all-plus patterns reach |sum| = 4 -> 2/16.
    # Interval: mean -0.25; s^2 = (4 * 0.75^2 + 12 * 0.25^2) / 15 = 3 / 15 = 0.2; se = sqrt(0.2
    # / 16) = 0.1118034; t(15 df, 0.975) = 2.1314 -> half 0.2383 -> [-0.4883, -0.0117].
    treatment = [0.0] * 16
    baseline = [1.0] * 4 + [0.0] * 12
    diff = paired_difference(treatment, baseline)
    assert diff.p_value == pytest.approx(0.125)
    assert diff.low == pytest.approx(-0.4883, abs=1e-4)
    assert diff.high == pytest.approx(-0.0117, abs=1e-4)


def _two_sided_p_even_df(t: float, df: int) -> float:
    """Abramowitz & Stegun 26.7.3 (even degrees of freedom), a finite sum with no library:
    P(|T| < t) = sin(theta) * (1 + cos^2/2 + 1*3 cos^4/(2*4) + ... ), theta = atan(t / sqrt(df))."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    term = total = 1.0
    for k in range(1, df // 2):
        term *= (2 * k - 1) / (2 * k) * c2
        total += term
    return 1.0 - math.sin(theta) * total


def test_paired_t_test_beyond_sixteen_differing_pairs() -> None:
    # 17 differences, 12 of +1 and 5 of -1: mean 7/17 = 0.4117647; s^2 = (17 - 17 * (7/17)^2)
    # / 16 = 0.8823529; se = sqrt(0.8823529 / 17) = 0.2278218; t = 1.807392 on 16 df. The
    # table puts it between t(0.95) = 1.746 and t(0.975) = 2.120, so 0.05 < p < 0.10; the
    # closed form above gives p = 0.0895392.
    treatment = [1.0] * 12 + [0.0] * 5
    baseline = [0.0] * 12 + [1.0] * 5
    diff = paired_difference(treatment, baseline)
    assert diff.test == "paired t" and diff.nonzero == 17
    t = (7 / 17) / math.sqrt((17 - 17 * (7 / 17) ** 2) / 16 / 17)
    assert t == pytest.approx(1.807392, abs=1e-6)
    assert 0.05 < diff.p_value < 0.10
    assert diff.p_value == pytest.approx(_two_sided_p_even_df(t, 16), abs=1e-7)
    assert diff.p_value == pytest.approx(0.0895392, abs=1e-6)


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
