"""Crash-safe results: episodes reach episodes.jsonl as they finish; SIGTERM and SIGKILL leave a
partial report with what finished."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ARGS = [
    "-q",
    "-p",
    "no:xdist",
    "-p",
    "no:randomly",
    "--alma-split=all",
    "--alma-limit=20",
    "--alma-repeats=2",
    "--alma-max-steps=10",
    "--alma-scripted-latency=40",
]


def _journal_episodes(reports: Path) -> int:
    count = 0
    for path in reports.glob("*/episodes.jsonl"):
        with contextlib.suppress(OSError):
            count += sum(1 for line in path.read_text().splitlines() if '"type":"episode"' in line)
    return count


def _start_and_wait(project: pytest.Pytester, episodes: int) -> subprocess.Popen[bytes]:
    """Start a session in its own process group; return once ``episodes`` are journaled."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *ARGS],
        cwd=project.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if _journal_episodes(project.path / "reports") >= episodes:
            return proc
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("the session ended (or stalled) before it journaled any episode")


def _run_dir(project: pytest.Pytester) -> Path:
    (run_dir,) = [p.parent for p in (project.path / "reports").glob("*/episodes.jsonl")]
    return run_dir


def _check_partial(results: dict[str, Any], run_dir: Path) -> None:
    assert results["partial"] is True and results["partial_reason"]
    episodes = results["episodes"]
    journaled = _journal_episodes(run_dir.parent)
    assert 0 < len(episodes) == journaled
    # Fewer than the plan's 2 designs x 10 tasks x 2 repeats: the run really was cut short.
    assert len(episodes) < 40
    assert results["designs"], "the build records were journaled too"


def test_sigterm_writes_partial_results(project: pytest.Pytester) -> None:
    proc = _start_and_wait(project, episodes=3)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    run_dir = _run_dir(project)
    results = json.loads((run_dir / "results.json").read_text())
    _check_partial(results, run_dir)
    assert "SIGTERM" in results["partial_reason"]
    assert (run_dir / "summary.md").exists()


def test_sigkill_then_report_rebuilds_partial_results(project: pytest.Pytester) -> None:
    proc = _start_and_wait(project, episodes=3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    run_dir = _run_dir(project)
    assert not (run_dir / "results.json").exists()
    report = subprocess.run(
        [sys.executable, "-m", "pytest_alma", "report", str(run_dir)],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    assert "rebuilt" in report.stdout and "no_memory" in report.stdout
    results = json.loads((run_dir / "results.json").read_text())
    _check_partial(results, run_dir)
    assert "episodes.jsonl" in results["partial_reason"]
    assert (run_dir / "summary.md").exists()


def test_a_complete_run_is_not_partial(project: pytest.Pytester) -> None:
    project.runpytest_subprocess("--alma-limit=4", "--alma-repeats=1", "--alma-max-steps=6")
    reports = project.path / "reports"
    run_dir = reports / (reports / "LATEST").read_text().strip()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["partial"] is False and results["partial_reason"] is None
    lines = [json.loads(line) for line in (run_dir / "episodes.jsonl").read_text().splitlines()]
    assert lines[0]["type"] == "run"
    assert sum(1 for r in lines if r["type"] == "episode") == len(results["episodes"]) == 4


def test_sigterm_before_any_episode_still_says_the_run_is_partial(
    project: pytest.Pytester,
) -> None:
    # 5 s per model call: no episode can finish before the signal.
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *ARGS[:-1], "--alma-scripted-latency=5000"],
        cwd=project.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(
            (project.path / "reports").glob("*/episodes.jsonl")
        ):
            time.sleep(0.05)
        time.sleep(1.0)  # items are running (waiting on the model) by now
        assert _journal_episodes(project.path / "reports") == 0
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    run_dir = _run_dir(project)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["partial"] is True and "SIGTERM" in results["partial_reason"]
    assert results["episodes"] == []
    assert "PARTIAL" in (run_dir / "summary.md").read_text()
