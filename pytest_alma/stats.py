"""Honest statistics for small samples of episode scores, with the task as the unit.

Repeats of one task are correlated (the same level family, the same model; with a deterministic
server and game they are the very same episode), so every interval and test here treats the
**task** (the cluster) as the unit, never the single episode. The callers pass, beside each
episode score, the task it belongs to (``clusters``); without them every value is its own task,
which gives back the classical independent-sample statistics.

Notation: task ``i`` of ``k`` has ``m_i`` episodes with mean score ``ybar_i``; ``n = sum m_i``.

**Score.** ``p = mean of the k task means``. With the same number of repeats for every task (the
planned design) this is the mean over episodes. When they differ (a partial run, where some
repeats never finished) each task still weighs the same, so the estimate aims at what the full,
balanced run would have measured instead of over-weighting the tasks that finished more repeats.

**Its standard error** is the cluster-robust one: the task means are independent, so
``Var(p) = s^2 / k`` with ``s^2`` the sample variance of the ``k`` task means.

**Interval of a success rate** (every score 0 or 1): Wilson's score interval at the *effective
number of episodes* (Kish's design effect, as in Korn and Graubard's interval for clustered
proportions): ``n* = p (1 - p) / Var(p)``, clamped to ``[k, n]``. Repeats that add nothing
(identical repeats) give ``n* = k``: each task counts once; repeats that are as good as new
tasks give ``n* = n``. When ``p`` is 0 or 1, or there is one task, ``Var(p)`` says nothing and
``n* = k`` (the conservative end). Reported SE: ``sqrt(p (1 - p) / n*)``.

**Interval of a continuous score** (TextWorld progression): Student t over the task means,
``p +- t(0.975, k - 1) * sqrt(s^2 / k)``; ``n*`` is reported the same way, from the episode
variance around ``p`` (informational: the interval does not use it). No interval with one task.

**Paired difference** against a baseline, on the episodes both played (same task, seed and
repeat): per task the mean difference ``d_i`` over its matched episodes; the estimate is the
mean of the ``d_i``, its interval the t interval over the ``d_i`` with ``k - 1`` degrees of
freedom, and its two-sided p-value a **sign-flip permutation test over the tasks** (under the
null hypothesis of no effect each ``d_i`` is symmetric around 0): exact, enumerating all
``2^j`` sign patterns of the ``j`` non-zero ``d_i``, up to :data:`EXACT_PERMUTATION_MAX`; beyond
that a Monte Carlo test over :data:`MONTE_CARLO_DRAWS` sign patterns drawn from a fixed,
self-contained generator (SplitMix64, so the same data gives the same p on any machine and any
numpy), ``p = (1 + hits) / (1 + draws)`` (its Monte Carlo standard error is at most 0.0011,
0.0005 near p = 0.05). No non-zero ``d_i``: p = 1.

**Holm.** The p-values of several designs against one baseline in one environment are adjusted
with Holm's step-down method (:func:`holm`), controlling the family-wise error rate.

**Minimum detectable difference** (:func:`minimum_detectable_difference`): the true difference a
two-sided test at alpha = 0.05 would detect with 80% power, for a difference whose standard
error is ``se`` on ``k`` tasks: ``(t(0.975, k - 1) + t(0.80, k - 1)) * se``. For a paired row
``se`` is the standard error of the mean task difference (``sd(d_i) / sqrt(k)``); when there is
none (the baseline row, or every ``d_i`` zero) it is :func:`unpaired_difference_se` of the
baseline, ``sqrt(2)`` times its clustered SE (two designs with the baseline's spread and no
correlation between them; for 0/1 scores at the Wilson centre, so that a baseline at 0% or 100%
does not claim to detect everything). It is computed from this run's own spread: a planning
number that tells "no effect" from "too few tasks", not a test.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

# scipy is imported lazily, where it is needed: ``import scipy.stats`` costs 0.85 s of CPU and
# ran in the controller's sessionfinish of every run (measured: 23% of a cached -n 16 re-run
# after start-up). ``scipy.special`` alone imports in 0.29 s; only it is used.

Z95 = 1.959963984540054
EXACT_PERMUTATION_MAX = 16
MONTE_CARLO_DRAWS = 200_000
MONTE_CARLO_SEED = 0x414C4D41  # "ALMA": the counter the SplitMix64 sign patterns start from
ALPHA = 0.05
POWER = 0.80

_NAN = float("nan")


@dataclass(frozen=True)
class Estimate:
    """A mean with its standard error and a 95% interval over ``n`` episodes of ``clusters`` tasks.

    ``method`` names the interval: ``"wilson"`` (every value 0 or 1; Wilson at
    ``effective_n``), ``"t"`` (Student t over the task means, ``clusters - 1`` df), or ``""``
    when there is no interval (a t interval needs two tasks; no values at all).
    ``effective_n`` is ``n*`` of the module docstring.
    """

    mean: float
    se: float
    low: float
    high: float
    n: int
    method: str = ""
    clusters: int = 0
    effective_n: float = _NAN


def _t_quantile(df: float, q: float) -> float:
    from scipy import special

    # Exactly what scipy.stats.t.ppf(q, df) computes (t_gen._ppf is special.stdtrit).
    return float(special.stdtrit(df, q))


def _groups(values: Sequence[float], clusters: Sequence[Hashable] | None) -> list[list[float]]:
    """The values of each cluster, clusters in order of first appearance."""
    if clusters is None:
        return [[float(v)] for v in values]
    if len(clusters) != len(values):
        raise ValueError(
            f"{len(values)} values but {len(clusters)} cluster labels: pass one task label "
            "per value (or none, for independent values)"
        )
    by_key: dict[Hashable, list[float]] = {}
    for value, key in zip(values, clusters, strict=True):
        by_key.setdefault(key, []).append(float(value))
    return list(by_key.values())


def _mean_and_var(means: Sequence[float]) -> tuple[float, float]:
    """Mean of ``means`` and the variance of that mean (``s^2 / k``; NaN with one value)."""
    k = len(means)
    mean = math.fsum(means) / k
    if k < 2:
        return mean, _NAN
    return mean, math.fsum((m - mean) ** 2 for m in means) / (k - 1) / k


def wilson_interval(p: float, n: float) -> tuple[float, float]:
    """The Wilson score 95% interval of a proportion ``p`` observed over ``n`` (real) trials."""
    if n <= 0 or math.isnan(n) or math.isnan(p):
        return (_NAN, _NAN)
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    # At p = 0 and p = 1 the bound is exactly 0 or 1 (centre and half are equal); rounding
    # would otherwise print 99.99...% as the upper bound of a perfect score.
    low = 0.0 if p == 0.0 else max(0.0, centre - half)
    high = 1.0 if p == 1.0 else min(1.0, centre + half)
    return (low, high)


def wilson(successes: int, n: int) -> tuple[float, float]:
    """The Wilson score 95% interval of ``successes`` out of ``n`` independent trials."""
    if n == 0:
        return (_NAN, _NAN)
    return wilson_interval(successes / n, n)


def wilson_centre(p: float, n: float) -> float:
    """The centre of the Wilson interval: ``(p + z^2 / 2n) / (1 + z^2 / n)``."""
    return (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)


def _effective_n(spread: float, var_mean: float, k: int, n: int) -> float:
    """``n* = spread / Var(mean)`` clamped to ``[k, n]`` (see the module docstring)."""
    if spread <= 0.0 or math.isnan(var_mean):
        return float(k)  # p at 0 or 1, constant scores, or one task: nothing to say more
    if var_mean <= 0.0:
        return float(n)  # every task mean equal while episodes vary: as good as independent
    return min(float(n), max(float(k), spread / var_mean))


def estimate(values: Sequence[float], clusters: Sequence[Hashable] | None = None) -> Estimate:
    """Mean, clustered SE and 95% interval; Wilson at ``n*`` when every value is 0 or 1.

    ``clusters`` names the task of each value (repeats of one task share a label); without
    it every value is its own task.
    """
    if not values:
        return Estimate(_NAN, _NAN, _NAN, _NAN, 0)
    groups = _groups(values, clusters)
    k, n = len(groups), len(values)
    mean, var_mean = _mean_and_var([math.fsum(g) / len(g) for g in groups])
    if all(v in (0.0, 1.0) for v in values):
        p = mean
        n_star = _effective_n(p * (1 - p), var_mean, k, n)
        low, high = wilson_interval(p, n_star)
        se = math.sqrt(p * (1 - p) / n_star)
        return Estimate(p, se, low, high, n, "wilson", k, n_star)
    spread = math.fsum((float(v) - mean) ** 2 for v in values) / n
    n_star = _effective_n(spread, var_mean, k, n)
    if k < 2:
        return Estimate(mean, _NAN, _NAN, _NAN, n, "", k, n_star)
    se = math.sqrt(var_mean)
    half = _t_quantile(k - 1, 0.975) * se
    return Estimate(mean, se, mean - half, mean + half, n, "t", k, n_star)


@dataclass(frozen=True)
class PairedDifference:
    """Mean of (treatment - baseline) over tasks, from the matched episodes, with its test.

    ``low``/``high``: the t interval over the per-task differences (``clusters - 1`` df);
    ``se``: its standard error; ``n``: matched episodes; ``clusters``: tasks; ``nonzero``:
    tasks whose mean difference is not zero (only they carry information for the sign-flip
    test); ``test``: ``"exact sign-flip"``, ``"Monte Carlo sign-flip"``, ``"all differences
    zero"`` or ``"none"``.
    """

    mean: float
    low: float
    high: float
    n: int
    p_value: float
    test: str
    nonzero: int = 0
    clusters: int = 0
    se: float = _NAN


def paired_difference(
    treatment: Sequence[float],
    baseline: Sequence[float],
    clusters: Sequence[Hashable] | None = None,
) -> PairedDifference:
    """Compare two score lists matched element by element; ``clusters`` names each pair's task.

    Raises:
        ValueError: the lists (or the cluster labels) differ in length.
    """
    if len(treatment) != len(baseline):
        raise ValueError(
            f"paired samples must have the same length ({len(treatment)} treatment scores, "
            f"{len(baseline)} baseline scores): pass the scores of the same episodes, in order"
        )
    diffs = [float(t) - float(b) for t, b in zip(treatment, baseline, strict=True)]
    n = len(diffs)
    if n == 0:
        return PairedDifference(_NAN, _NAN, _NAN, 0, _NAN, "none")
    task_diffs = [math.fsum(g) / len(g) for g in _groups(diffs, clusters)]
    k = len(task_diffs)
    mean, var_mean = _mean_and_var(task_diffs)
    se = math.sqrt(var_mean) if not math.isnan(var_mean) else _NAN
    if math.isnan(se):
        low = high = _NAN
    else:
        half = _t_quantile(k - 1, 0.975) * se
        low, high = mean - half, mean + half
    # A task whose repeats cancel out sums to zero exactly or to a rounding residue.
    nonzero = [d for d in task_diffs if abs(d) > 1e-12]
    if not nonzero:
        return PairedDifference(mean, low, high, n, 1.0, "all differences zero", 0, k, se)
    if len(nonzero) <= EXACT_PERMUTATION_MAX:
        p, test = _sign_flip_p(nonzero), "exact sign-flip"
    else:
        p, test = _monte_carlo_sign_flip_p(nonzero), "Monte Carlo sign-flip"
    return PairedDifference(mean, low, high, n, p, test, len(nonzero), k, se)


def _hits(sums: Any, observed: float) -> int:
    import numpy as np

    # Equal sums computed in another order differ in the last bits: compare with a tolerance.
    return int(np.count_nonzero(np.abs(sums) >= observed - 1e-9 * max(1.0, observed)))


def _sign_flip_p(diffs: Sequence[float]) -> float:
    """Two-sided exact p-value of the mean difference under random sign flips.

    All ``2**k`` sign patterns are enumerated at once with numpy (65,536 patterns at the most:
    a few milliseconds, where a Python loop took 0.2 s per comparison and a report compares
    every design on every environment).
    """
    import numpy as np

    values = np.asarray(diffs, dtype=np.float64)
    k = len(values)
    total = 1 << k
    patterns = np.arange(total, dtype=np.int64)[:, None] >> np.arange(k, dtype=np.int64)
    signs = 1.0 - 2.0 * (patterns & 1)  # bit set: flip the sign
    return _hits(signs @ values, abs(math.fsum(diffs))) / total


def splitmix64(counters: Any) -> Any:
    """SplitMix64 (Steele, Lea and Flood 2014) of a uint64 numpy array: a fixed generator that
    no library update can change, so Monte Carlo p-values are the same everywhere."""
    import numpy as np

    z = np.asarray(counters, dtype=np.uint64)
    with np.errstate(over="ignore"):  # the arithmetic is modulo 2^64 by design
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _monte_carlo_sign_flip_p(diffs: Sequence[float], draws: int = MONTE_CARLO_DRAWS) -> float:
    """Two-sided Monte Carlo p-value over ``draws`` sign patterns: ``(1 + hits) / (1 + draws)``.

    Draw ``j`` flips the sign of difference ``i`` when bit ``i % 64`` of
    ``splitmix64(MONTE_CARLO_SEED + j * words + i // 64)`` is set (``words`` 64-bit words per
    draw).
    """
    import numpy as np

    values = np.asarray(diffs, dtype=np.float64)
    k = len(values)
    words = (k + 63) // 64
    observed = abs(math.fsum(diffs))
    shifts = np.arange(64, dtype=np.uint64)
    hits = 0
    chunk = 8192
    for start in range(0, draws, chunk):
        count = min(chunk, draws - start)
        index = np.arange(start * words, (start + count) * words, dtype=np.uint64)
        words_drawn = splitmix64(index + np.uint64(MONTE_CARLO_SEED)).reshape(count, words)
        bits = (words_drawn[:, :, None] >> shifts) & np.uint64(1)
        signs = 1.0 - 2.0 * bits.reshape(count, words * 64)[:, :k].astype(np.float64)
        hits += _hits(signs @ values, observed)
    return (1 + hits) / (1 + draws)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values, in their order; NaN stays NaN and
    is not counted in the family.

    Sorted ascending, the ``j``-th smallest (from 1) of ``m`` becomes
    ``max over i <= j of min(1, (m - i + 1) p_(i))``.
    """
    ranked = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    m = len(ranked)
    out = [_NAN] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(ranked):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def minimum_detectable_difference(
    se: float, clusters: int, *, alpha: float = ALPHA, power: float = POWER
) -> float:
    """The true difference a two-sided level-``alpha`` t test on ``clusters`` tasks detects with
    probability ``power``: ``(t(1 - alpha/2, k - 1) + t(power, k - 1)) * se``.

    NaN with fewer than two tasks or no positive standard error.
    """
    if clusters < 2 or not se > 0.0:  # also NaN
        return _NAN
    df = clusters - 1
    return (_t_quantile(df, 1 - alpha / 2) + _t_quantile(df, power)) * se


def unpaired_difference_se(est: Estimate) -> float:
    """The standard error of a difference between two designs that both vary like ``est``
    (``sqrt(2)`` times its clustered SE); for 0/1 scores the binomial SE at the Wilson centre
    ``sqrt(c (1 - c) / n*)``, which is not zero at 0% or 100%."""
    if est.n == 0:
        return _NAN
    if est.method == "wilson":
        centre = wilson_centre(est.mean, est.effective_n)
        return math.sqrt(2.0 * centre * (1 - centre) / est.effective_n)
    return math.sqrt(2.0) * est.se
