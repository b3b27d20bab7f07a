"""The record, the regression gate and replay-only CI, run as users run them (subprocesses).

One project is recorded per module (a plain run first, so that the recording run starts from a
warm store, as it does for users); each test works on a copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

#: 6 tasks (3 collected, 3 deployed x 2 repeats): the scripted agent solves 1 of 6 episodes.
ARGS = (
    "--alma-limit=6",
    "--alma-repeats=2",
    "--alma-max-steps=8",
    "-p",
    "no:randomly",
    "-p",
    "no:cacheprovider",
)


def run(cwd: Path, *args: str, module: str = "pytest") -> subprocess.CompletedProcess[str]:
    """``python -m <module> args`` in ``cwd``, with no key, no ALMA_* settings, no xdist state."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ALMA_", "PYTEST_", "OPENAI_")) and k != "CI"
    }
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"  # never the internet, even by a bug
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def gate_lines(text: str) -> list[str]:
    """The lines of the gate's terminal section."""
    section = text.split("pytest-alma regression gate", 1)[1]
    return section.splitlines()[1:]


def new_project(path: Path) -> Path:
    (path / "designs").mkdir(parents=True)
    (path / "baselines").mkdir()
    shutil.copy(REPO / "designs" / "example_rules.py", path / "designs")
    shutil.copy(REPO / "baselines" / "no_memory.py", path / "baselines")
    (path / "pytest.ini").write_text("[pytest]\ntestpaths = designs baselines\n")
    return path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project with a committed record, made from a warm store; its runs are kept."""
    project = new_project(tmp_path_factory.mktemp("recorded"))
    plain = run(project, *ARGS, "-n", "2")
    assert plain.returncode == 0, output(plain)
    record = run(project, *ARGS, "-n", "2", "--alma-record")
    assert record.returncode == 0, output(record)
    (project / "record-output.txt").write_text(output(record))
    yield project


def clone(source: Path, target: Path, *, store: bool) -> Path:
    """A copy of the project: designs, baselines, config, the record and its replay file (and
    the runs and the .alma store when ``store``)."""
    new_project(target)
    shutil.copy(source / "designs" / "example_rules.py", target / "designs")
    (target / "reports").mkdir()
    for name in ("alma-record.json", "alma-replay.jsonl.gz"):
        shutil.copy(source / "reports" / name, target / "reports" / name)
    if store:
        shutil.copytree(source / ".alma", target / ".alma")
    return target


def record_of(project: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project / "reports" / "alma-record.json").read_text())
    return data


def latest_results(project: Path) -> dict[str, Any]:
    run_id = (project / "reports" / "LATEST").read_text().strip()
    data: dict[str, Any] = json.loads((project / "reports" / run_id / "results.json").read_text())
    return data


def tamper(project: Path, design: str, score: float) -> None:
    """Overwrite every recorded episode score of ``design``."""
    path = project / "reports" / "alma-record.json"
    record = json.loads(path.read_text())
    scores = record["designs"][design]["environments"]["babaisai"]["scores"]
    for label in scores:
        scores[label] = score
    path.write_text(json.dumps(record, indent=2))


# -- recording ---------------------------------------------------------------------------------


def test_record_holds_every_episode_and_names_a_small_replay(recorded: Path) -> None:
    record = record_of(recorded)
    assert set(record["designs"]) == {"example_rules", "no_memory"}
    for entry in record["designs"].values():
        numbers = entry["environments"]["babaisai"]
        assert numbers["n"] == 6 and len(numbers["scores"]) == 6
        assert entry["source_hash"]
    assert record["model"] == "scripted" and record["test_double"] is True
    assert record["settings"]["limit"] == 6 and record["settings"]["repeats"] == 2
    assert "cache" not in record["settings"] and "concurrency" not in record["settings"]
    replay = recorded / "reports" / "alma-replay.jsonl.gz"
    assert record["replay"]["file"] == replay.name
    assert record["replay"]["bytes"] == replay.stat().st_size
    assert record["replay"]["calls"] > 0
    text = (recorded / "record-output.txt").read_text()
    assert "pytest-alma record" in text and "alma-replay.jsonl.gz" in text
    # The store was put back after the recording session re-played it.
    assert (recorded / ".alma" / "collection").is_dir()
    assert not list((recorded / ".alma").glob(".record-aside-*"))


# -- the gate ----------------------------------------------------------------------------------


def test_gate_passes_when_nothing_changed(recorded: Path, tmp_path: Path) -> None:
    project = clone(recorded, tmp_path / "p", store=True)
    proc = run(project, *ARGS, "-p", "no:xdist", "--alma-regression")
    assert proc.returncode == 0, output(proc)
    text = output(proc)
    assert "pytest-alma regression gate" in text and "gate passed: 2" in text
    assert "REGRESSION" not in text


def test_a_regression_fails_the_session_with_a_summary(recorded: Path, tmp_path: Path) -> None:
    # A warm store: replaying sets its collection episodes and memory builds aside.
    project = clone(recorded, tmp_path / "p", store=True)
    stored = sorted(p.name for p in (project / ".alma" / "collection").rglob("*.json"))
    tamper(project, "example_rules", 1.0)  # the record says it solved everything
    proc = run(project, *ARGS, "-p", "no:xdist", "--alma-regression", "--alma-cache=replay-only")
    assert proc.returncode == 6, output(proc)
    text = output(proc)
    lines = gate_lines(text)
    row = next(line for line in lines if line.startswith("babaisai  example_rules"))
    for part in ("100.0", "16.7", "-83.3", "6/6 paired", "mean:5%", "REGRESSION"):
        assert part in row, row
    no_memory = next(line for line in lines if line.startswith("babaisai  no_memory"))
    assert no_memory.split()[-1] == "ok"
    assert "GATE FAILED: 1 regression(s)" in text
    assert "20 passed, 1 failed the gate" in text.rstrip().splitlines()[-1]
    results = latest_results(project)
    assert all(c["played_now"] for c in results["collection"])
    assert stored == sorted(p.name for p in (project / ".alma" / "collection").rglob("*.json"))
    assert not list((project / ".alma").glob(".record-aside-*"))


@pytest.mark.parametrize("fail_on_improvement", [False, True])
def test_an_improvement_fails_only_when_asked(
    recorded: Path, tmp_path: Path, fail_on_improvement: bool
) -> None:
    project = clone(recorded, tmp_path / "p", store=False)
    tamper(project, "no_memory", 0.0)  # now it solves one episode the record says it failed
    flags = ["--alma-fail-on-improvement"] if fail_on_improvement else []
    proc = run(
        project, *ARGS, "-p", "no:xdist", "--alma-regression", "--alma-cache=replay-only", *flags
    )
    text = output(proc)
    if fail_on_improvement:
        assert proc.returncode == 6, text
        assert "IMPROVED (fails: re-record)" in text and "re-record" in text
    else:
        assert proc.returncode == 0, text
        assert "improved" in text and "re-record (--alma-record) to raise the bar" in text


@pytest.mark.parametrize(
    ("option", "difference"),
    [("--alma-repeats=1", "repeats: 2 (record) vs 1 (now)"), ("--alma-seed=3", "seed: 0")],
)
def test_other_settings_are_refused_before_any_episode(
    recorded: Path, tmp_path: Path, option: str, difference: str
) -> None:
    project = clone(recorded, tmp_path / "p", store=False)
    proc = run(project, *ARGS, option, "--alma-regression", "--alma-cache=replay-only")
    assert proc.returncode == 4, output(proc)
    assert "refuses to compare" in proc.stderr and difference in proc.stderr
    assert "re-record" in proc.stderr
    assert not (project / "reports" / "LATEST").exists()  # no episode was played


def test_gating_without_a_record_says_how_to_make_one(tmp_path: Path) -> None:
    project = new_project(tmp_path / "p")
    proc = run(project, *ARGS, "--alma-regression")
    assert proc.returncode == 4
    assert "there is no record" in proc.stderr and "pytest --alma-record" in proc.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--alma-record", "--alma-regression"], "exclude each other"),
        (["--alma-record", "--alma-cache=off"], "--alma-record needs the response cache"),
        (["--alma-regression", "--alma-regression-threshold=mean:lots"], "'lots' is not a number"),
    ],
)
def test_unusable_option_combinations_are_usage_errors(
    recorded: Path, tmp_path: Path, options: list[str], message: str
) -> None:
    project = clone(recorded, tmp_path / "p", store=False)
    proc = run(project, *ARGS, *options)
    assert proc.returncode == 4 and message in proc.stderr, output(proc)


# -- deterministic CI: replay-only -------------------------------------------------------------


def test_replay_only_from_a_clean_store_elsewhere_reproduces_the_record_exactly(
    recorded: Path, tmp_path: Path
) -> None:
    # Another directory (as a CI checkout), no .alma store, and a scripted model that would
    # fail every call it got (500, no retries): only the replay file can answer.
    project = clone(recorded, tmp_path / "ci-checkout", store=False)
    proc = run(
        project,
        *ARGS,
        "-p",
        "no:xdist",
        "--alma-regression",
        "--alma-cache=replay-only",
        "--alma-faults=500:1",
        "--alma-llm-retries=0",
    )
    text = output(proc)
    assert proc.returncode == 0, text
    results = latest_results(project)
    record = record_of(recorded)
    for design, entry in record["designs"].items():
        now = {
            f"{e['task']['task_id']}-s{e['task']['seed']}-r{e['repeat']}": e["score"]
            for e in results["episodes"]
            if e["design"] == design
        }
        assert now == entry["environments"]["babaisai"]["scores"]  # exactly, episode by episode
    totals = results["llm"]["totals"]
    assert totals["calls"] > 0 and totals["calls"] == totals["cache_hits"]
    assert totals["errors"] == 0 and totals["retries"] == 0
    assert f"answered from the replay: {totals['calls']}, model calls: 0" in text
    # Collection episodes and memory builds were played again, through the replay file.
    assert results["collection"] and all(c["played_now"] for c in results["collection"])
    assert "gate passed: 2" in text


def test_a_call_missing_from_the_replay_fails_clearly(recorded: Path, tmp_path: Path) -> None:
    project = clone(recorded, tmp_path / "p", store=False)
    design = project / "designs" / "example_rules.py"
    source = design.read_text()
    changed = source.replace(
        "memory: dict[str, Any] = {}", 'memory: dict[str, Any] = {"note": "new prompt"}'
    )
    assert changed != source
    design.write_text(changed)
    proc = run(project, *ARGS, "-n", "2", "--alma-regression", "--alma-cache=replay-only")
    text = output(proc)
    assert proc.returncode == 1, text  # the episodes that needed a new call failed
    assert "CacheMissError: this LLM call is not in the replay file" in text
    assert "a design, a prompt, the model or an outcome setting changed" in text
    assert "--alma-record" in text
    assert "call(s) were missing from the replay file" in text
    assert "example_rules (6 episodes)" in text
    assert "design changed since the record" in text


# -- python -m pytest_alma compare -------------------------------------------------------------


def run_dirs(project: Path) -> list[Path]:
    return sorted(p.parent for p in (project / "reports").glob("*/results.json"))


def test_compare_pairs_two_runs(recorded: Path) -> None:
    first, second = run_dirs(recorded)[:2]
    proc = run(recorded, "compare", str(first), str(second), module="pytest_alma")
    assert proc.returncode == 0, output(proc)
    rows = [line for line in proc.stdout.splitlines() if line.startswith("babaisai")]
    assert len(rows) == 2 and all("6/6 paired" in row for row in rows)
    assert "+0.0" in rows[0]
    record = run(recorded, "compare", "reports/alma-record.json", "latest", module="pytest_alma")
    assert record.returncode == 0 and "A: record reports/alma-record.json" in record.stdout


def test_compare_refuses_runs_of_other_episodes(recorded: Path, tmp_path: Path) -> None:
    first = run_dirs(recorded)[0]
    other = tmp_path / "other-run"
    shutil.copytree(first, other)
    results = json.loads((other / "results.json").read_text())
    results["settings"]["seed"] = 7
    (other / "results.json").write_text(json.dumps(results))
    proc = run(recorded, "compare", str(first), str(other), module="pytest_alma")
    assert proc.returncode == 2
    assert "refusing to compare" in proc.stderr and "seed: 0 (A) vs 7 (B)" in proc.stderr
    forced = run(recorded, "compare", str(first), str(other), "--force", module="pytest_alma")
    assert forced.returncode == 0 and "compared anyway (--force)" in forced.stdout


def test_compare_threshold_sets_the_exit_status(recorded: Path, tmp_path: Path) -> None:
    first = run_dirs(recorded)[0]
    worse = tmp_path / "worse-run"
    shutil.copytree(first, worse)
    results = json.loads((worse / "results.json").read_text())
    for e in results["episodes"]:
        e["score"] = 0.0
    (worse / "results.json").write_text(json.dumps(results))
    args = ["compare", str(first), str(worse), "--threshold", "mean:5%"]
    proc = run(recorded, *args, module="pytest_alma")
    assert proc.returncode == 6 and "REGRESSION" in proc.stdout, output(proc)
    bad = run(recorded, "compare", str(first), str(worse), "--threshold", "x", module="pytest_alma")
    assert bad.returncode == 2 and "--threshold: " in bad.stderr


def test_replay_only_needs_no_api_key(tmp_path: Path) -> None:
    # A real model name, no key and no server: replay-only starts (no "needs an API key" usage
    # error) and, with no replay of its calls, fails the episodes with the replay message.
    project = new_project(tmp_path / "p")
    proc = run(
        project,
        *ARGS,
        "-p",
        "no:xdist",
        "--alma-model=gpt-4o-mini",
        "--alma-cache=replay-only",
        "-k",
        "collect",
    )
    text = output(proc)
    assert proc.returncode == 1, text
    assert "needs an API key" not in text
    assert "CacheMissError" in text and "replay-only mode" in text
