import math

import pytest

from pytest_alma.stats import (
    estimate,
    holm,
    minimum_detectable_difference,
    paired_difference,
    wilson,
)


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


def test_paired_difference_many_tasks_uses_a_seeded_monte_carlo_sign_flip() -> None:
    treatment = [float(i % 3 == 0) for i in range(60)]
    baseline = [0.0] * 60
    diff = paired_difference(treatment, baseline)
    assert diff.test == "Monte Carlo sign-flip" and diff.nonzero == 20
    # 20 differences of +1 and none below: only the all-plus and all-minus patterns reach the
    # observed |sum| (2 in 2^20), so the Monte Carlo p is (1 + hits) / (1 + draws), tiny.
    assert diff.p_value < 0.001
    assert not math.isnan(diff.low)
    assert paired_difference(treatment, baseline).p_value == diff.p_value  # seeded


def test_paired_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="same length"):
        paired_difference([1.0], [])
    with pytest.raises(ValueError, match="cluster labels"):
        estimate([1.0, 0.0], ["a"])


def test_clusters_are_the_unit_of_the_estimate() -> None:
    # Two tasks, their repeats identical: the interval is that of 2 tasks, not 6 episodes.
    est = estimate([1.0, 1.0, 1.0, 0.0, 0.0, 0.0], ["a", "a", "a", "b", "b", "b"])
    assert (est.n, est.clusters, est.effective_n) == (6, 2, 2.0)
    assert (est.low, est.high) == wilson(1, 2)
    # Without labels every value is its own task (the classical interval).
    plain = estimate([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    assert (plain.clusters, plain.effective_n) == (6, 6.0)
    assert (plain.low, plain.high) == wilson(3, 6)


def test_paired_difference_counts_tasks_not_episodes() -> None:
    diff = paired_difference([1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], ["a", "a", "b", "b"])
    assert (diff.n, diff.clusters, diff.nonzero) == (4, 2, 1)
    assert diff.mean == pytest.approx(0.5) and diff.p_value == 1.0  # 1 task: 2 of 2 patterns


def test_holm_and_mde_edge_cases() -> None:
    assert holm([]) == []
    assert math.isnan(holm([math.nan])[0])
    assert holm([0.2]) == [0.2]
    assert math.isnan(minimum_detectable_difference(0.1, 1))  # one task: no t quantile
    assert math.isnan(minimum_detectable_difference(0.0, 10))  # no spread: nothing to say
    assert minimum_detectable_difference(0.1, 10) > minimum_detectable_difference(0.1, 100)
