"""``python -m pytest_alma compare`` and the gate use the report's statistics: the task is the
unit, read from the episode labels (``<task>-s<seed>-r<repeat>``)."""

from __future__ import annotations

import pytest

from pytest_alma.compare import clustered_estimate, difference, label_task, score_cell


def test_the_task_of_a_label() -> None:
    assert label_task("goto_win-distr_obj-s243226936-r1") == "goto_win-distr_obj"
    # A task id that itself looks like a label keeps all but the last seed and repeat.
    assert label_task("a-s1-r2-s3-r4") == "a-s1-r2"
    assert label_task("MiniHack-Room-5x5-v0-s-5-r1") == "MiniHack-Room-5x5-v0"
    assert label_task("no label shape") == "no label shape"


def test_difference_is_tested_over_tasks() -> None:
    # Tasks a and b, 3 repeats each with different seeds: B wins every repeat of a, ties on b.
    # Over episodes: 3 differences of +1, exact p = 2/8 = 0.25. Over tasks: 1 non-zero task,
    # p = 2/2 = 1; and 2 tasks give a t interval with 1 df: d = 1, 0, mean 0.5, se =
    # sqrt(0.5 / 2) = 0.5, t(1, 0.975) = 12.7062 -> [-5.853, 6.853].
    a = {f"{t}-s{10 * r + i}-r{r}": 0.0 for i, t in enumerate("ab") for r in (1, 2, 3)}
    b = {label: (1.0 if label.startswith("a-") else 0.0) for label in a}
    d = difference(a, b)
    assert (d.matched, d.tasks) == (6, 2)
    assert d.p_value == 1.0 and d.mean == pytest.approx(0.5)
    assert d.low == pytest.approx(0.5 - 12.7062 * 0.5, abs=1e-3)
    assert d.describe_pairing == "6/6 paired over 2 tasks, exact sign-flip"


def test_unpaired_welch_over_task_means() -> None:
    # Nothing matches (other seeds): Welch on the task means. A: t0 0, 0 -> 0; t1 1, 1 -> 1;
    # B: t0 1, 1 -> 1; t1 1, 1 -> 1. Means 0.5 and 1: B - A = 0.5, base (A's mean) 0.5.
    a = {"t0-s1-r1": 0.0, "t0-s2-r2": 0.0, "t1-s3-r1": 1.0, "t1-s4-r2": 1.0}
    b = {"t0-s5-r1": 1.0, "t0-s6-r2": 1.0, "t1-s7-r1": 1.0, "t1-s8-r2": 1.0}
    # A's task means vary (variance 0.5, 2 tasks), B's do not: se^2 = 0.5 / 2 = 0.25, se = 0.5,
    # df = 0.25^2 / (0.25^2 / 1) = 1; t = 0.5 / 0.5 = 1 on 1 df (Cauchy): p = 0.5 exactly;
    # half-width t(1, 0.975) * 0.5 = 12.7062 * 0.5 = 6.3531. (Over the 4 episodes per side it
    # would be se^2 = (1/3) / 4 and a far narrower interval.)
    d = difference(a, b)
    assert not d.paired and d.test == "Welch"
    assert d.mean == pytest.approx(0.5) and d.base == pytest.approx(0.5)
    assert d.p_value == pytest.approx(0.5)
    assert d.high - d.mean == pytest.approx(6.3531, abs=1e-3)


def test_scores_show_their_tasks() -> None:
    scores = {"t0-s1-r1": 1.0, "t0-s2-r2": 1.0, "t1-s3-r1": 0.0, "t1-s4-r2": 0.0}
    est = clustered_estimate(scores)
    assert (est.n, est.clusters, est.effective_n) == (4, 2, 2.0)
    # Wilson(0.5, 2): denominator 1 + 3.841459 / 2 = 2.9207295, half = 1.959964 *
    # sqrt(0.125 + 0.2400912) / 2.9207295 = 1.959964 * 0.6042276 / 2.9207295 = 0.405468
    # -> [9.5, 90.5] in percent.
    assert score_cell(est) == "50.0 [9.5, 90.5] n=4 (2 tasks)"
