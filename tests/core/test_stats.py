import math

import pytest

from pytest_alma.stats import estimate, paired_difference, wilson


def test_binary_scores_get_a_wilson_interval_inside_zero_one() -> None:
    est = estimate([0.0] * 10)
    assert est.mean == 0.0 and est.low == 0.0 and 0.0 < est.high < 0.35
    est = estimate([1.0, 0.0, 1.0, 1.0])
    assert est.low < 0.75 < est.high and est.n == 4


def test_wilson_known_value() -> None:
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4)
    assert high == pytest.approx(0.7634, abs=1e-4)


def test_continuous_scores_get_a_t_interval() -> None:
    est = estimate([0.2, 0.4, 0.6])
    assert est.mean == pytest.approx(0.4)
    assert est.se == pytest.approx(0.11547, abs=1e-4)
    assert est.low == pytest.approx(0.4 - 4.3027 * 0.11547, abs=1e-3)


def test_paired_difference_exact_sign_flip() -> None:
    treatment = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    baseline = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    diff = paired_difference(treatment, baseline)
    assert diff.mean == pytest.approx(5 / 6)
    assert diff.test == "exact sign-flip"
    # 5 non-zero differences, all positive: 2 of 32 sign patterns are as extreme.
    assert diff.p_value == pytest.approx(2 / 32)


def test_paired_difference_identical_is_p_one() -> None:
    diff = paired_difference([1.0, 0.0], [1.0, 0.0])
    assert diff.mean == 0.0 and diff.p_value == 1.0


def test_paired_difference_many_pairs_uses_t_test() -> None:
    treatment = [float(i % 3 == 0) for i in range(60)]
    baseline = [0.0] * 60
    diff = paired_difference(treatment, baseline)
    assert diff.test == "paired t" and diff.p_value < 0.001
    assert not math.isnan(diff.low)


def test_paired_lengths_must_match() -> None:
    with pytest.raises(ValueError):
        paired_difference([1.0], [])
