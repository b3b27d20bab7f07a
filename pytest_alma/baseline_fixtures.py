"""One pytest fixture per baseline, for users who write their own comparison tests.

Each fixture gives the baseline as a :class:`~pytest_alma.design.LoadedDesign` (its class, file
and source hash), loaded the way the harness loads any design. Build one with your own context::

    def test_my_design_stores_less(alma_baseline_reasoning_bank, my_ctx):
        bank = alma_baseline_reasoning_bank.cls(my_ctx)
        ...

The file is looked up in the project's ``baselines/`` folder first (so a project may pin or
patch its own copy), then in the folder shipped beside this package in a source checkout. A
missing baseline fails the test that asked for it, saying where it looked.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_alma.design import LoadedDesign

#: The baselines, by module name (``baselines/<name>.py``).
BASELINES: tuple[str, ...] = (
    "no_memory",
    "trajectory_retrieval",
    "reasoning_bank",
    "dynamic_cheatsheet",
    "g_memory",
)
_SHIPPED = Path(__file__).resolve().parents[1] / "baselines"


def baseline_path(name: str, rootdir: Path) -> Path:
    """Where the baseline ``name`` is read from (the project's copy wins)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; the baselines are {', '.join(BASELINES)}")
    for folder in (rootdir / "baselines", _SHIPPED):
        candidate = folder / f"{name}.py"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"baseline {name!r} not found: looked for {rootdir / 'baselines' / f'{name}.py'} and "
        f"{_SHIPPED / f'{name}.py'}; copy it from the pytest-alma repository into baselines/"
    )


def load_baseline(name: str, rootdir: Path) -> LoadedDesign:
    """Load the baseline ``name`` as the harness loads designs."""
    from pytest_alma.design import load_design

    return load_design(baseline_path(name, rootdir))


def _fixture(name: str) -> object:
    def fixture(request: pytest.FixtureRequest) -> LoadedDesign:
        return load_baseline(name, Path(request.config.rootpath))

    fixture.__name__ = f"alma_baseline_{name}"
    fixture.__doc__ = f"The {name} baseline as a LoadedDesign (``.cls(ctx)`` builds one)."
    return pytest.fixture(scope="session", name=f"alma_baseline_{name}")(fixture)


alma_baseline_no_memory = _fixture("no_memory")
alma_baseline_trajectory_retrieval = _fixture("trajectory_retrieval")
alma_baseline_reasoning_bank = _fixture("reasoning_bank")
alma_baseline_dynamic_cheatsheet = _fixture("dynamic_cheatsheet")
alma_baseline_g_memory = _fixture("g_memory")
