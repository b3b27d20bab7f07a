"""Static checks as tests, so that the one README test command also lints and type-checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )


def test_ruff_is_clean() -> None:
    result = run("ruff", "check", "pytest_alma", "tests", "benchmarks", "designs", "baselines")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = run("mypy", "--strict", "pytest_alma")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_setup_command_installs_every_extra_the_tests_need() -> None:
    # Environment tests skip when their extra is missing (so that a partial install still runs
    # the rest). After the README's set-up command nothing may be missing, or those skips would
    # hide failures: check that every extra it names is importable.
    import importlib.util
    import re

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    setup = re.search(r"pip install -e '\.\[([a-z,]+)\]'", readme)
    assert setup, "the README has no `pip install -e '.[...]'` set-up command"
    modules = {"minihack": "minihack", "textworld": "textworld", "alfworld": "alfworld"}
    missing = [
        extra
        for extra in setup.group(1).split(",")
        if extra in modules and importlib.util.find_spec(modules[extra]) is None
    ]
    assert not missing, f"installed without the extras {missing}: run the README's set-up command"
