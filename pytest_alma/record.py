"""The committed record of a run's scores, and the gate's verdicts against it (docs/ci.md).

``pytest --alma-record`` writes the record (``reports/alma-record.json`` by default): per design
and environment the mean, 95% interval, n and every episode's score by task, seed and repeat,
the design's source hash, the model and the outcome settings. :func:`evaluate` compares a run's
results with it, design by design, under each design's threshold
(:mod:`pytest_alma.compare`). The session-side machinery (replay, the store, the exit status) is
in :mod:`pytest_alma.gate`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_alma.compare import (
    ThresholdError,
    Verdict,
    clustered_estimate,
    compare_scores,
    comparison_table,
    design_scores,
    judge,
    outcome_differences,
    outcome_settings,
    parse_thresholds,
)
from pytest_alma.llm.replay import (
    ReplayInfo,
)
from pytest_alma.report_rows import build_for
from pytest_alma.store import atomic_write_text, read_json

#: The exit status of a session that the gate failed (a regression, or an improvement under
#: ``--alma-fail-on-improvement``), when nothing else failed. Failing tests keep pytest's 1.
REGRESSION_EXIT_CODE = 6
#: The exit status when the gate cannot compare (no record, other settings, nothing ran):
#: pytest's usage error.
GATE_USAGE_EXIT_CODE = 4

RECORD_FORMAT = "pytest-alma-record"
RECORD_VERSION = 1
DEFAULT_RECORD_FILE = "reports/alma-record.json"


class GateError(Exception):
    """The record or the gate cannot be used as asked; the message says why and what to do."""


# -- the record ------------------------------------------------------------------------------


def replay_file_name(record_path: Path) -> str:
    """The replay file's name beside ``record_path``: ``alma-record.json`` ->
    ``alma-replay.jsonl.gz``; any other ``NAME.json`` -> ``NAME.replay.jsonl.gz``."""
    stem = record_path.stem
    if "record" in stem:
        head, _, tail = stem.rpartition("record")
        return f"{head}replay{tail}.jsonl.gz"
    return f"{stem}.replay.jsonl.gz"


def _finite(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else x


def build_record(results: Mapping[str, Any], replay: ReplayInfo | None) -> dict[str, Any]:
    """The record document of a results document (see the module docstring)."""
    designs: dict[str, Any] = {}
    builds = dict(results.get("designs") or {})
    errors: dict[tuple[str, str], int] = {}
    for e in results.get("episodes", []):
        if e.get("phase") == "deploy" and e.get("error"):
            group = (str(e["task"]["env"]), str(e["design"]))
            errors[group] = errors.get(group, 0) + 1
    for (env, design), scores in sorted(design_scores(results).items()):
        est = clustered_estimate(scores)  # the task as the unit, as in the report
        build = build_for(builds, design, env)  # builds are keyed "design@env"
        entry = designs.setdefault(
            design,
            {
                "source_hash": build.get("source_hash"),
                "config": build.get("config"),
                "environments": {},
            },
        )
        entry["environments"][env] = {
            "n": est.n,
            "mean": _finite(est.mean),
            "se": _finite(est.se),
            "low": _finite(est.low),
            "high": _finite(est.high),
            "errors": errors.get((env, design), 0),
            "scores": dict(sorted(scores.items())),
        }
    return {
        "format": RECORD_FORMAT,
        "version": RECORD_VERSION,
        "about": (
            "Written by `pytest --alma-record`, read by `pytest --alma-regression` (docs/ci.md). "
            "Re-record instead of editing it."
        ),
        "run_id": results.get("run_id"),
        "recorded": results.get("finished"),
        "commit": results.get("commit"),
        "model": results.get("model"),
        "test_double": bool(results.get("test_double")),
        "settings": outcome_settings(results) | {"environments": _environments(results)},
        "replay": None
        if replay is None
        else {
            "file": replay.path.name,
            "calls": replay.calls,
            "bytes": replay.bytes,
            "sha256": replay.sha256,
        },
        "designs": designs,
    }


def _environments(results: Mapping[str, Any]) -> dict[str, Any]:
    return dict(dict(results.get("settings") or {}).get("environments") or {})


def write_record(path: Path, record: Mapping[str, Any]) -> None:
    """Write the record atomically, keys sorted and indented, so that diffs read well."""
    text = json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    atomic_write_text(path, text + "\n")


def read_record(path: Path) -> dict[str, Any]:
    """Read and check a record.

    Raises:
        GateError: it is missing or is not a record this version reads.
    """
    if not path.exists():
        raise GateError(
            f"there is no record at {path}: make one with `pytest --alma-record` (with the "
            "options the gate will use, e.g. the same --alma-limit and --alma-repeats), commit "
            "it with its replay file, then run --alma-regression (see docs/ci.md)"
        )
    try:
        data = read_json(path)
    except (OSError, ValueError) as err:
        raise GateError(f"cannot read the record {path}: {err}; re-record it") from None
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        raise GateError(f"{path} is not a pytest-alma record (no format {RECORD_FORMAT!r})")
    if data.get("version") != RECORD_VERSION:
        raise GateError(
            f"{path} is a record of version {data.get('version')!r}; this pytest-alma reads "
            f"version {RECORD_VERSION}: re-record it with --alma-record"
        )
    if not isinstance(data.get("designs"), dict) or not isinstance(data.get("settings"), dict):
        raise GateError(f"{path} has no designs or settings: re-record it with --alma-record")
    return data


def record_scores(record: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, float]]:
    """The per-episode scores of a record, keyed like :func:`~pytest_alma.compare.design_scores`."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for design, entry in dict(record.get("designs") or {}).items():
        for env, numbers in dict(entry.get("environments") or {}).items():
            scores = dict(numbers.get("scores") or {})
            out[(str(env), str(design))] = {str(k): float(v) for k, v in scores.items()}
    return out


def settings_refusal(differences: list[str], record_path: Path) -> str:
    """The message that refuses a comparison under other settings."""
    listed = "; ".join(differences)
    return (
        f"the regression gate refuses to compare: this run's outcome settings differ from those "
        f"of the record {record_path}: {listed}. Run with the record's settings, or, if the "
        "change is intended, re-record with --alma-record and commit the new record"
    )


@dataclass
class GateOutcome:
    """What the gate concluded: the lines to print and whether the session must fail."""

    lines: list[str]
    failing: bool
    failures: int = 0


def evaluate(
    record: Mapping[str, Any],
    results: Mapping[str, Any],
    *,
    threshold: str,
    fail_on_improvement: bool,
    record_path: Path,
) -> GateOutcome:
    """Compare a run's results with the record (see the module docstring).

    Raises:
        GateError: the settings differ, the threshold does not parse, or nothing was compared.
    """
    try:
        thresholds = parse_thresholds(threshold)
    except ThresholdError as err:
        raise GateError(str(err)) from None
    differences = outcome_differences(record, results)
    if differences:
        raise GateError(settings_refusal(differences, record_path))
    before = record_scores(record)
    now = design_scores(results)
    if not now:
        raise GateError(
            "the regression gate compared nothing: no deployment episode finished in this run "
            "(were the deploy items deselected with -k?)"
        )
    record_designs = dict(record.get("designs") or {})
    builds = dict(results.get("designs") or {})
    notes: dict[tuple[str, str], str] = {}
    for group in before.keys() | now.keys():
        design = group[1]
        if group not in before:
            notes[group] = "new (not gated): not in the record"
        elif group not in now:
            notes[group] = "not run (not gated)"
        else:
            old_hash = dict(record_designs.get(design) or {}).get("source_hash")
            new_hash = build_for(builds, design, group[0]).get("source_hash")
            if old_hash and new_hash and old_hash != new_hash:
                notes[group] = f"design changed since the record ({old_hash} -> {new_hash})"
    rows = compare_scores(before, now, notes)
    verdicts: dict[tuple[str, str], tuple[str, Verdict]] = {}
    reasons: list[str] = []
    for row in rows:
        if row.diff is None:
            continue
        rule = thresholds.for_design(row.design)
        verdict = judge(rule, row.diff, fail_on_improvement=fail_on_improvement)
        verdicts[(row.env, row.design)] = (rule.text, verdict)
        if verdict.failing or verdict.kind == "improvement":
            reasons.append(f"{row.design} on {row.env}: {verdict.label}: {verdict.reason}")
    if not verdicts:
        raise GateError(
            "the regression gate compared nothing: no design and environment of this run is in "
            f"the record {record_path} (record {len(before)}, run {len(now)} pairs); run the "
            "recorded designs and environments, or re-record"
        )
    failing = any(v.failing for _, v in verdicts.values())
    lines = [
        f"record: {record_path} (run {record.get('run_id')}, model {record.get('model')}); "
        f"now: run {results.get('run_id')}",
        *comparison_table(rows, ("record", "now"), verdicts),
        "scores in % with 95% intervals; now - record in percentage points, paired on the same "
        "task, seed and repeat",
        *reasons,
    ]
    if any(v.kind == "improvement" and not v.failing for _, v in verdicts.values()):
        lines.append(
            "an improvement does not fail the gate; re-record (--alma-record) to raise the bar, "
            "or add --alma-fail-on-improvement to make unexpected improvements fail"
        )
    regressions = sum(1 for _, v in verdicts.values() if v.kind == "regression")
    improvements = sum(1 for _, v in verdicts.values() if v.kind == "improvement" and v.failing)
    if failing:
        lines.append(
            f"GATE FAILED: {regressions} regression(s), {improvements} unexpected "
            f"improvement(s) (exit code {REGRESSION_EXIT_CODE} when no test failed)"
        )
    else:
        lines.append(f"gate passed: {len(verdicts)} design/environment pair(s) compared")
    return GateOutcome(lines, failing, regressions + improvements)
