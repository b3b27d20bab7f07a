"""Compare scores of two runs (or of a run and the committed record), and judge the difference.

Pytest-free. Used by ``python -m pytest_alma compare RUN_A RUN_B`` and by the regression gate
(:mod:`pytest_alma.gate`). The numbers are per design and environment, over deployment episodes:

* **B minus A**, paired on the same task, seed and repeat whenever episodes match, with the task
  as the statistical unit like the run's report (:mod:`pytest_alma.stats`): per task the mean
  difference over its matched repeats, the mean of those with a t interval over tasks, and a
  sign-flip test over tasks (exact up to 16 tasks that differ, seeded Monte Carlo beyond). When
  no episode matches, an unpaired Welch test on the two sides' task means, and the output says
  so. The task of an episode is read from its label (:func:`label_task`).
* **Thresholds** (``--alma-regression-threshold``): direction-aware (a higher score is better),
  per design, relative (``mean:5%``), absolute (``mean:0.05``) or significance-based
  (``p:0.05``), combinable (``mean:5%+p:0.05``: both must agree). :func:`judge` turns a
  difference and a rule into a verdict.
* **Settings**: which settings decide the outcome, and which differences make a comparison
  meaningless (:func:`protocol_differences`) or a gate comparison invalid
  (:func:`outcome_differences`).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tabulate import tabulate

from pytest_alma.stats import Estimate, estimate, paired_difference

#: Settings in ``results["settings"]`` that do not change what an episode scores: how the run
#: was executed (concurrency, the cache, retries, timeouts, the budget, the test double's
#: latency and injected faults, which the retries absorb) rather than what was played.
NON_OUTCOME_SETTINGS = frozenset(
    {
        "cache",
        "budget_usd",
        "design_timeout",
        "llm_timeout",
        "llm_retries",
        "concurrency",
        "scripted_latency",
        "faults",
        # Which environments ran: compared per environment instead (see outcome_differences).
        "envs",
    }
)

#: Settings that decide which tasks, seeds and games are played. Two runs that differ in one of
#: them played different episodes: comparing their scores says nothing about the designs.
PROTOCOL_SETTINGS = ("split", "seed", "train_size", "limit", "rollout", "max_steps")

#: The verdict's tolerance for rounding: a difference exactly at the threshold passes.
EPS = 1e-9


class ThresholdError(ValueError):
    """A threshold specification that cannot be parsed (the message names the option)."""


# -- per-episode scores ----------------------------------------------------------------------


def episode_label(episode: Mapping[str, Any]) -> str:
    """The episode's id within its design and environment: ``<task>-s<seed>-r<repeat>``.

    The same text as the deployment item's label (``deploy[<label>]``), so a record reads like
    the test ids.
    """
    task = episode["task"]
    return f"{task['task_id']}-s{task['seed']}-r{episode['repeat']}"


def design_scores(results: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, float]]:
    """Deployment scores of a results document by (environment, design), then episode label."""
    scores: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for episode in results.get("episodes", []):
        if episode.get("phase") == "deploy":
            group = (str(episode["task"]["env"]), str(episode["design"]))
            scores[group][episode_label(episode)] = float(episode["score"])
    return dict(scores)


_LABEL = re.compile(r"^(?P<task>.+)-s-?\d+-r\d+$")


def label_task(label: str) -> str:
    """The task of an episode label (``<task>-s<seed>-r<repeat>`` -> ``<task>``): the cluster
    its repeats share. A label of another shape is its own task."""
    match = _LABEL.match(label)
    return match.group("task") if match else label


def clustered_estimate(scores: Mapping[str, float]) -> Estimate:
    """The estimate of episode scores keyed by label, with the task as the unit."""
    labels = sorted(scores)
    return estimate([scores[k] for k in labels], [label_task(k) for k in labels])


def _task_means(scores: Mapping[str, float]) -> list[float]:
    by_task: dict[str, list[float]] = defaultdict(list)
    for label in sorted(scores):
        by_task[label_task(label)].append(scores[label])
    return [math.fsum(v) / len(v) for v in by_task.values()]


@dataclass(frozen=True)
class Difference:
    """B minus A for one design and environment.

    ``base`` is A's mean over the episodes the difference is computed on (the matched ones when
    paired; the mean of the task means): relative thresholds are fractions of it. ``tasks``:
    the tasks the test ran over (0 when unknown).
    """

    mean: float
    low: float
    high: float
    p_value: float
    test: str
    paired: bool
    matched: int
    n_a: int
    n_b: int
    base: float
    tasks: int = 0

    @property
    def describe_pairing(self) -> str:
        """How the difference was tested: ``"8/8 paired, exact sign-flip"``, ``"6 of 8/7
        paired over 3 tasks, exact sign-flip"`` or ``"unpaired, Welch (no episode matched)"``."""
        if not self.paired:
            return f"unpaired, {self.test} (no episode matched)"
        # Repeats of a task are one unit of the test: say how many units there were.
        over = f" over {self.tasks} tasks" if 0 < self.tasks != self.matched else ""
        if self.matched == self.n_a == self.n_b:
            return f"{self.matched}/{self.matched} paired{over}, {self.test}"
        return f"{self.matched} of {self.n_a}/{self.n_b} paired{over}, {self.test}"


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float, float]:
    """Mean of ``b`` minus mean of ``a``, its Welch 95% interval and two-sided p-value.

    NaN interval and p-value when either sample has fewer than two values.
    """
    nan = float("nan")
    if not a or not b:
        return (nan, nan, nan, nan)
    na, nb = len(a), len(b)
    ma, mb = math.fsum(a) / na, math.fsum(b) / nb
    diff = mb - ma
    if na < 2 or nb < 2:
        return (diff, nan, nan, nan)
    va = math.fsum((x - ma) ** 2 for x in a) / (na - 1)
    vb = math.fsum((x - mb) ** 2 for x in b) / (nb - 1)
    se2 = va / na + vb / nb
    if se2 == 0.0:
        # Both samples constant: the difference is exact.
        return (diff, diff, diff, 1.0 if diff == 0.0 else 0.0)
    df = se2**2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    se = math.sqrt(se2)
    from scipy import special  # lazily: see pytest_alma.stats

    half = float(special.stdtrit(df, 0.975)) * se
    p = float(2.0 * special.stdtr(df, -abs(diff) / se))
    return (diff, diff - half, diff + half, min(1.0, p))


def difference(a: Mapping[str, float], b: Mapping[str, float]) -> Difference:
    """B minus A, paired over the episodes both have (by label), else unpaired (Welch over task
    means); the task is the unit either way."""
    matched = sorted(a.keys() & b.keys())
    if matched:
        before = [a[k] for k in matched]
        tasks = [label_task(k) for k in matched]
        paired = paired_difference([b[k] for k in matched], before, tasks)
        return Difference(
            mean=paired.mean,
            low=paired.low,
            high=paired.high,
            p_value=paired.p_value,
            test=paired.test,
            paired=True,
            matched=len(matched),
            n_a=len(a),
            n_b=len(b),
            base=estimate(before, tasks).mean,
            tasks=paired.clusters,
        )
    means_a, means_b = _task_means(a), _task_means(b)
    mean, low, high, p = welch(means_a, means_b)
    base = math.fsum(means_a) / len(means_a) if means_a else float("nan")
    return Difference(mean, low, high, p, "Welch", False, 0, len(a), len(b), base)


# -- thresholds ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One part of a rule: ``mean:N%`` (relative), ``mean:X`` (absolute) or ``p:ALPHA``."""

    kind: Literal["relative", "absolute", "p"]
    value: float

    @property
    def text(self) -> str:
        if self.kind == "relative":
            return f"mean:{self.value * 100:g}%"
        if self.kind == "absolute":
            return f"mean:{self.value:g}"
        return f"p:{self.value:g}"

    def worse(self, diff: Difference) -> bool:
        """Whether ``diff`` (now minus before) is a drop beyond this condition."""
        return self._beyond(diff, -diff.mean)

    def better(self, diff: Difference) -> bool:
        """Whether ``diff`` is a rise beyond this condition."""
        return self._beyond(diff, diff.mean)

    def _beyond(self, diff: Difference, change: float) -> bool:
        if math.isnan(change):
            return False
        if self.kind == "p":
            return change > 0 and not math.isnan(diff.p_value) and diff.p_value < self.value
        allowed = self.value * abs(diff.base) if self.kind == "relative" else self.value
        return change > allowed + EPS


@dataclass(frozen=True)
class Rule:
    """The conditions one design is gated by; a change counts only if all of them agree."""

    conditions: tuple[Condition, ...]

    @property
    def text(self) -> str:
        return "+".join(c.text for c in self.conditions)


DEFAULT_RULE = Rule((Condition("relative", 0.05),))

_THRESHOLD_HELP = (
    "use mean:N% (worse by more than N percent of the recorded mean), mean:X (worse by more "
    "than X, in score units: 0.05 is 5 points of success rate) or p:ALPHA (significantly worse "
    "by the paired test), joined by '+' to require all, optionally per design: "
    "'example_rules=mean:2%,g_*=p:0.05,*=mean:5%'"
)


def _number(text: str, spec: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ThresholdError(
            f"{option}: {spec!r}: {text!r} is not a number; {_THRESHOLD_HELP}"
        ) from None
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise ThresholdError(f"{option}: {spec!r}: the value must be 0 or more; {_THRESHOLD_HELP}")
    return value


def _condition(text: str, spec: str, option: str) -> Condition:
    stat, colon, value = text.strip().partition(":")
    stat, value = stat.strip().lower(), value.strip()
    if not colon or not value:
        raise ThresholdError(f"{option}: {spec!r}: {text!r} has no value; {_THRESHOLD_HELP}")
    if stat == "p":
        alpha = _number(value, spec, option)
        if not 0 < alpha < 1:
            raise ThresholdError(
                f"{option}: {spec!r}: a significance level must be between 0 and 1 (e.g. p:0.05)"
            )
        return Condition("p", alpha)
    if stat != "mean":
        raise ThresholdError(f"{option}: {spec!r}: unknown statistic {stat!r}; {_THRESHOLD_HELP}")
    if value.endswith("%"):
        return Condition("relative", _number(value[:-1], spec, option) / 100.0)
    return Condition("absolute", _number(value, spec, option))


@dataclass(frozen=True)
class Thresholds:
    """Rules by design pattern, in the order given; see :func:`parse_thresholds`."""

    rules: tuple[tuple[str, Rule], ...]
    default: Rule = DEFAULT_RULE

    def for_design(self, design: str) -> Rule:
        """The rule of ``design``: its exact name, else the first glob that matches, else
        ``*``, else the default (``mean:5%``)."""
        for pattern, rule in self.rules:
            if pattern == design:
                return rule
        for pattern, rule in self.rules:
            if pattern != "*" and fnmatch.fnmatchcase(design, pattern):
                return rule
        for pattern, rule in self.rules:
            if pattern == "*":
                return rule
        return self.default


def parse_thresholds(text: str, option: str = "--alma-regression-threshold") -> Thresholds:
    """Parse ``[design=]rule[,design=rule...]``; a bare rule applies to every design (``*``).

    Raises:
        ThresholdError: the text does not parse (the message names ``option`` and the grammar).
    """
    if not text or not text.strip():
        raise ThresholdError(f"{option}: empty threshold; {_THRESHOLD_HELP}")
    rules: list[tuple[str, Rule]] = []
    for part in text.split(","):
        spec = part.strip()
        if not spec:
            raise ThresholdError(f"{option}: {text!r} has an empty entry; {_THRESHOLD_HELP}")
        pattern, equals, rule_text = spec.partition("=")
        if not equals:
            pattern, rule_text = "*", spec
        pattern = pattern.strip()
        if not pattern or any(c.isspace() for c in pattern):
            raise ThresholdError(
                f"{option}: {spec!r}: {pattern!r} is not a design name or pattern; "
                f"{_THRESHOLD_HELP}"
            )
        if any(p == pattern for p, _ in rules):
            raise ThresholdError(f"{option}: {pattern!r} has two thresholds in {text!r}")
        conditions = tuple(_condition(c, spec, option) for c in rule_text.split("+"))
        rules.append((pattern, Rule(conditions)))
    return Thresholds(tuple(rules))


# -- verdicts --------------------------------------------------------------------------------

VerdictKind = Literal["ok", "regression", "improvement", "no data"]


@dataclass(frozen=True)
class Verdict:
    """What the gate concludes about one design and environment."""

    kind: VerdictKind
    failing: bool
    reason: str

    @property
    def label(self) -> str:
        if self.kind == "regression":
            return "REGRESSION"
        if self.kind == "improvement":
            return "IMPROVED (fails: re-record)" if self.failing else "improved"
        return self.kind


def _points(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}"


def judge(rule: Rule, diff: Difference, *, fail_on_improvement: bool = False) -> Verdict:
    """The verdict on ``diff`` (now minus before) under ``rule``; a higher score is better."""
    if diff.n_a == 0 or diff.n_b == 0 or math.isnan(diff.mean):
        return Verdict("no data", False, "nothing to compare")
    change = f"{'+' if diff.mean >= 0 else ''}{_points(diff.mean)} points"
    test = "" if math.isnan(diff.p_value) else f", p={diff.p_value:.3g}"
    if all(c.worse(diff) for c in rule.conditions):
        return Verdict("regression", True, f"{change}{test}: worse beyond {rule.text}")
    if all(c.better(diff) for c in rule.conditions):
        if fail_on_improvement:
            return Verdict(
                "improvement",
                True,
                f"{change}{test}: better beyond {rule.text} and --alma-fail-on-improvement is "
                "set; re-record to make this the new bar",
            )
        return Verdict("improvement", False, f"{change}{test}: better beyond {rule.text}")
    return Verdict("ok", False, f"{change}{test}: within {rule.text}")


# -- settings --------------------------------------------------------------------------------


def outcome_settings(results: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a results document (or record) that decide episode outcomes.

    ``results["settings"]`` without :data:`NON_OUTCOME_SETTINGS`, with the model the run
    actually used (``scripted`` when none was set) and whether it was the test double.
    """
    settings = {
        k: v for k, v in dict(results.get("settings", {})).items() if k not in NON_OUTCOME_SETTINGS
    }
    settings["model"] = results.get("model")
    settings["test_double"] = bool(results.get("test_double"))
    return settings


def _differences(
    a: Mapping[str, Any], b: Mapping[str, Any], keys: Sequence[str] | None, names: tuple[str, str]
) -> list[str]:
    out: list[str] = []
    wanted = sorted((a.keys() & b.keys()) - {"environments"}) if keys is None else list(keys)
    for key in wanted:
        if key in a and key in b and a[key] != b[key]:
            out.append(f"{key}: {a[key]!r} ({names[0]}) vs {b[key]!r} ({names[1]})")
    envs_a = dict(a.get("environments") or {})
    envs_b = dict(b.get("environments") or {})
    for env in sorted(envs_a.keys() & envs_b.keys()):
        ea, eb = dict(envs_a[env] or {}), dict(envs_b[env] or {})
        for key in sorted(ea.keys() | eb.keys()):
            if ea.get(key) != eb.get(key):
                out.append(
                    f"environments.{env}.{key}: {ea.get(key)!r} ({names[0]}) vs "
                    f"{eb.get(key)!r} ({names[1]})"
                )
    return out


def outcome_differences(
    before: Mapping[str, Any], now: Mapping[str, Any], names: tuple[str, str] = ("record", "now")
) -> list[str]:
    """Every outcome setting that differs (see :func:`outcome_settings`), one line each.

    Settings present on one side only (written by another version) are not compared;
    environments are compared where both ran them.
    """
    return _differences(outcome_settings(before), outcome_settings(now), None, names)


def protocol_differences(
    a: Mapping[str, Any], b: Mapping[str, Any], names: tuple[str, str] = ("A", "B")
) -> list[str]:
    """Differences in :data:`PROTOCOL_SETTINGS` and environment settings: different episodes."""
    return _differences(outcome_settings(a), outcome_settings(b), PROTOCOL_SETTINGS, names)


# -- rows and tables -------------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonRow:
    """One design on one environment: A, B and B minus A (``None`` where a side is missing)."""

    env: str
    design: str
    a: Estimate | None
    b: Estimate | None
    diff: Difference | None
    note: str = ""


def compare_scores(
    a: Mapping[tuple[str, str], Mapping[str, float]],
    b: Mapping[tuple[str, str], Mapping[str, float]],
    notes: Mapping[tuple[str, str], str] | None = None,
) -> list[ComparisonRow]:
    """Rows for every (environment, design) in either side, sorted by environment and design."""
    rows: list[ComparisonRow] = []
    for group in sorted(a.keys() | b.keys()):
        sa, sb = a.get(group), b.get(group)
        rows.append(
            ComparisonRow(
                env=group[0],
                design=group[1],
                a=clustered_estimate(sa) if sa else None,
                b=clustered_estimate(sb) if sb else None,
                diff=difference(sa, sb) if sa and sb else None,
                note=(notes or {}).get(group, ""),
            )
        )
    return rows


def score_cell(est: Estimate | None) -> str:
    """``"33.3 [9.7, 70.0] n=6"`` (percent, 95% interval, episodes; ``n=6 (3 tasks)`` when
    tasks repeat), or ``"-"``."""
    if est is None or est.n == 0:
        return "-"
    n = f"n={est.n}" + (f" ({est.clusters} tasks)" if 0 < est.clusters < est.n else "")
    if math.isnan(est.low):
        return f"{_points(est.mean)} {n}"
    return f"{_points(est.mean)} [{_points(est.low)}, {_points(est.high)}] {n}"


def diff_cell(diff: Difference | None) -> str:
    """``"+4.2 [-1.0, 9.4] p=0.31"`` (percentage points), or ``"-"``."""
    if diff is None:
        return "-"
    sign = "+" if diff.mean >= 0 else ""
    interval = "" if math.isnan(diff.low) else f" [{_points(diff.low)}, {_points(diff.high)}]"
    p = "" if math.isnan(diff.p_value) else f" p={diff.p_value:.3g}"
    return f"{sign}{_points(diff.mean)}{interval}{p}"


def comparison_table(
    rows: Sequence[ComparisonRow],
    names: tuple[str, str] = ("A", "B"),
    verdicts: Mapping[tuple[str, str], tuple[str, Verdict]] | None = None,
) -> list[str]:
    """The rows as a plain-text table (one line per row after the header)."""
    headers = [
        "env",
        "design",
        f"{names[0]} %",
        f"{names[1]} %",
        f"{names[1]} - {names[0]}",
        "test",
    ]
    if verdicts is not None:
        headers += ["threshold", "verdict"]
    headers.append("note")
    table: list[list[Any]] = []
    for row in rows:
        if row.diff is None:
            test = f"only in {names[0]}" if row.b is None else f"only in {names[1]}"
        else:
            test = row.diff.describe_pairing
        line: list[Any] = [
            row.env,
            row.design,
            score_cell(row.a),
            score_cell(row.b),
            diff_cell(row.diff),
            test,
        ]
        if verdicts is not None:
            judged = verdicts.get((row.env, row.design))
            line += ["-", "-"] if judged is None else [judged[0], judged[1].label]
        line.append(row.note)
        table.append(line)
    text: str = tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True)
    return text.splitlines()


# -- two documents (runs or records) ---------------------------------------------------------


class ComparisonRefused(ValueError):
    """Two documents whose episodes differ (other tasks, seeds or games): see ``--force``."""


def _source_hashes(doc: Mapping[str, Any]) -> dict[str, str]:
    # Runs and records both keep designs.<key>.source_hash; a run's build records are keyed
    # "<design>@<env>" and name their design.
    designs = dict(doc.get("designs") or {})
    return {
        str(info.get("design") or name): str(info["source_hash"])
        for name, info in designs.items()
        if isinstance(info, Mapping) and info.get("source_hash")
    }


def compare_documents(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    scores_a: Mapping[tuple[str, str], Mapping[str, float]],
    scores_b: Mapping[tuple[str, str], Mapping[str, float]],
    *,
    names: tuple[str, str] = ("A", "B"),
    force: bool = False,
    thresholds: Thresholds | None = None,
    fail_on_improvement: bool = False,
) -> tuple[list[str], bool]:
    """The report comparing B with A, and whether a threshold (if given) failed.

    Raises:
        ComparisonRefused: the protocol settings differ (other episodes) and ``force`` is off.
    """
    protocol = protocol_differences(a, b, names)
    if protocol and not force:
        raise ComparisonRefused(
            "refusing to compare: the runs played different episodes, so their scores are not "
            "comparable: " + "; ".join(protocol) + ". Compare runs made with the same split, "
            "seed, train size, limit, rollout, step cap and environment settings, or pass "
            "--force to compare anyway (unpaired where episodes do not match)"
        )
    others = [d for d in outcome_differences(a, b, names) if d not in protocol]
    hashes_a, hashes_b = _source_hashes(a), _source_hashes(b)
    notes: dict[tuple[str, str], str] = {}
    for group in scores_a.keys() & scores_b.keys():
        ha, hb = hashes_a.get(group[1]), hashes_b.get(group[1])
        if ha and hb and ha != hb:
            notes[group] = f"design source differs ({ha} -> {hb})"
    rows = compare_scores(scores_a, scores_b, notes)
    verdicts: dict[tuple[str, str], tuple[str, Verdict]] | None = None
    if thresholds is not None:
        verdicts = {}
        for row in rows:
            if row.diff is not None:
                rule = thresholds.for_design(row.design)
                verdicts[(row.env, row.design)] = (
                    rule.text,
                    judge(rule, row.diff, fail_on_improvement=fail_on_improvement),
                )
    lines: list[str] = []
    if protocol:
        lines.append("compared anyway (--force) although the runs played different episodes:")
        lines += [f"  {d}" for d in protocol]
    if others:
        lines.append("settings that differ (compared anyway):")
        lines += [f"  {d}" for d in others]
    lines += comparison_table(rows, names, verdicts)
    lines.append(
        f"{names[1]} - {names[0]}: scores in %, differences in percentage points, 95% intervals "
        "with the task as the unit (repeats of a task are one unit); paired on the same task, "
        "seed and repeat where episodes match (sign-flip test over tasks: exact up to 16 that "
        "differ, seeded Monte Carlo beyond), Welch's unpaired test on task means where none match"
    )
    failing = verdicts is not None and any(v.failing for _, v in verdicts.values())
    return lines, failing
