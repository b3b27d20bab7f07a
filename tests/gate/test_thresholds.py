"""The threshold grammar, the verdict logic and the two-sample statistics, by hand."""

from __future__ import annotations

import math

import pytest

from pytest_alma.compare import (
    Condition,
    Difference,
    Rule,
    ThresholdError,
    difference,
    judge,
    parse_thresholds,
    welch,
)


def diff(mean: float, *, base: float = 0.5, p: float = float("nan"), n: int = 10) -> Difference:
    """A paired difference (now minus record) with the given mean, base and p-value."""
    return Difference(mean, mean - 0.1, mean + 0.1, p, "exact sign-flip", True, n, n, n, base)


# -- grammar ---------------------------------------------------------------------------------


def test_a_bare_rule_applies_to_every_design() -> None:
    t = parse_thresholds("mean:5%")
    assert t.for_design("anything") == Rule((Condition("relative", 0.05),))


def test_relative_absolute_and_significance_conditions() -> None:
    t = parse_thresholds("a=mean:2.5%,b=mean:0.05,c=p:0.01,d=mean:10%+p:0.05")
    assert t.for_design("a").conditions == (Condition("relative", 0.025),)
    assert t.for_design("b").conditions == (Condition("absolute", 0.05),)
    assert t.for_design("c").conditions == (Condition("p", 0.01),)
    assert t.for_design("d").conditions == (Condition("relative", 0.10), Condition("p", 0.05))
    assert t.for_design("d").text == "mean:10%+p:0.05"


def test_exact_name_beats_glob_beats_star_beats_default() -> None:
    t = parse_thresholds("*=mean:7%, g_*=mean:3%, g_memory=mean:1%")
    assert t.for_design("g_memory").text == "mean:1%"
    assert t.for_design("g_other").text == "mean:3%"
    assert t.for_design("no_memory").text == "mean:7%"
    # No '*': designs that no pattern names get the built-in mean:5%.
    assert parse_thresholds("g_memory=p:0.05").for_design("no_memory").text == "mean:5%"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty threshold"),
        ("median:5%", "unknown statistic 'median'"),
        ("mean:five%", "'five' is not a number"),
        ("mean:-1", "0 or more"),
        ("mean", "has no value"),
        ("p:1.5", "between 0 and 1"),
        ("p:0", "between 0 and 1"),
        ("a=mean:5%,,b=mean:1%", "empty entry"),
        ("a=mean:5%,a=mean:1%", "'a' has two thresholds"),
        ("my design=mean:5%", "not a design name or pattern"),
    ],
)
def test_bad_thresholds_name_the_option_and_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(ThresholdError) as err:
        parse_thresholds(text)
    message = str(err.value)
    assert message.startswith("--alma-regression-threshold:")
    assert fragment in message


def test_the_option_name_is_the_callers() -> None:
    with pytest.raises(ThresholdError, match="^--threshold: "):
        parse_thresholds("nope:1", "--threshold")


# -- verdicts (higher is better) ---------------------------------------------------------------


def test_relative_threshold_is_a_fraction_of_the_recorded_mean() -> None:
    rule = parse_thresholds("mean:10%").for_design("d")
    # record 0.60: 10% of it is 0.06 points of score.
    assert judge(rule, diff(-0.05, base=0.60)).kind == "ok"
    assert judge(rule, diff(-0.07, base=0.60)).kind == "regression"
    assert judge(rule, diff(-0.07, base=0.60)).failing
    # The same drop from a higher record is within 10%.
    assert judge(rule, diff(-0.07, base=0.80)).kind == "ok"


def test_exactly_at_the_threshold_passes() -> None:
    rule = parse_thresholds("mean:0.25").for_design("d")
    assert judge(rule, diff(-0.25)).kind == "ok"
    assert judge(rule, diff(-0.2500001)).kind == "regression"


def test_direction_matters_drops_fail_rises_do_not() -> None:
    rule = parse_thresholds("mean:0.1").for_design("d")
    worse, better = judge(rule, diff(-0.3)), judge(rule, diff(+0.3))
    assert (worse.kind, worse.failing) == ("regression", True)
    assert (better.kind, better.failing) == ("improvement", False)
    assert "better beyond mean:0.1" in better.reason


def test_fail_on_improvement_fails_and_says_re_record() -> None:
    rule = parse_thresholds("mean:0.1").for_design("d")
    verdict = judge(rule, diff(+0.3), fail_on_improvement=True)
    assert (verdict.kind, verdict.failing) == ("improvement", True)
    assert "re-record" in verdict.reason and "re-record" in verdict.label
    # Within the threshold an improvement is just ok, flag or not.
    assert judge(rule, diff(+0.05), fail_on_improvement=True).kind == "ok"


def test_significance_fails_only_when_significantly_worse() -> None:
    rule = parse_thresholds("p:0.05").for_design("d")
    assert judge(rule, diff(-0.4, p=0.01)).kind == "regression"
    assert judge(rule, diff(-0.4, p=0.20)).kind == "ok"  # large but not significant
    assert judge(rule, diff(+0.4, p=0.01)).kind == "improvement"
    assert judge(rule, diff(-0.4)).kind == "ok"  # no test (NaN p): never "significant"


def test_combined_conditions_must_all_agree() -> None:
    rule = parse_thresholds("mean:0.1+p:0.05").for_design("d")
    assert judge(rule, diff(-0.3, p=0.01)).kind == "regression"
    assert judge(rule, diff(-0.3, p=0.30)).kind == "ok"
    assert judge(rule, diff(-0.05, p=0.01)).kind == "ok"


def test_relative_threshold_from_a_zero_record_fails_no_drop_but_any_rise_counts() -> None:
    rule = parse_thresholds("mean:5%").for_design("d")
    assert judge(rule, diff(0.0, base=0.0)).kind == "ok"
    assert judge(rule, diff(+0.1, base=0.0), fail_on_improvement=True).failing


def test_no_data_is_not_a_verdict() -> None:
    rule = parse_thresholds("mean:5%").for_design("d")
    empty = Difference(math.nan, math.nan, math.nan, math.nan, "none", False, 0, 0, 3, math.nan)
    assert judge(rule, empty).kind == "no data" and not judge(rule, empty).failing


# -- the statistics behind the verdicts -------------------------------------------------------


def test_difference_pairs_on_matching_episodes() -> None:
    record = {"t1-s1-r1": 1.0, "t2-s2-r1": 1.0, "t3-s3-r1": 0.0, "t4-s4-r1": 1.0}
    now = {"t1-s1-r1": 1.0, "t2-s2-r1": 0.0, "t3-s3-r1": 0.0, "t5-s5-r1": 1.0}
    d = difference(record, now)
    # Matched: t1, t2, t3; differences 0, -1, 0: mean -1/3, one non-zero difference, so the
    # exact sign-flip p-value is 2/2 = 1; base is the record's mean over the matched: 2/3.
    assert d.paired and d.matched == 3 and (d.n_a, d.n_b) == (4, 4)
    assert d.mean == pytest.approx(-1 / 3)
    assert d.base == pytest.approx(2 / 3)
    assert d.p_value == 1.0 and d.test == "exact sign-flip"
    assert d.describe_pairing == "3 of 4/4 paired, exact sign-flip"


def test_difference_falls_back_to_welch_when_nothing_matches() -> None:
    d = difference({"a": 1.0, "b": 2.0, "c": 3.0}, {"x": 2.0, "y": 4.0, "z": 6.0})
    assert not d.paired and d.test == "Welch"
    assert d.describe_pairing == "unpaired, Welch (no episode matched)"
    assert d.mean == pytest.approx(2.0)


def test_welch_by_hand() -> None:
    # a = 1, 2, 3 (mean 2, var 1); b = 2, 4, 6 (mean 4, var 4).
    # se^2 = 1/3 + 4/3 = 5/3; t = 2 / sqrt(5/3) = 1.5492; df = (5/3)^2 / ((1/3)^2/2 + (4/3)^2/2)
    # = 2.7778 / 0.94444 = 2.9412; two-sided p for t=1.5492 at 2.94 df = 0.2210 (tables).
    mean, low, high, p = welch([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
    assert mean == pytest.approx(2.0)
    assert p == pytest.approx(0.2210, abs=5e-4)
    # The interval is symmetric around the mean: t(0.975, 2.94) * sqrt(5/3) = 3.219 * 1.291
    # (t(0.975, 3) is 3.182 in the tables; a little fewer degrees of freedom, a little more).
    assert (high - mean) == pytest.approx(mean - low)
    assert (high - mean) == pytest.approx(4.155, abs=0.005)


def test_welch_edge_cases() -> None:
    assert welch([1.0, 1.0], [1.0, 1.0])[3] == 1.0  # both constant and equal
    assert welch([0.0, 0.0], [1.0, 1.0])[3] == 0.0  # both constant, different
    mean, low, _, p = welch([1.0], [0.0, 1.0])
    assert mean == pytest.approx(-0.5) and math.isnan(low) and math.isnan(p)
