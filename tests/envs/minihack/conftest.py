"""MiniHack test set-up: where the Boxoban level files are.

The level files are not in the repository (DeepMind's boxoban-levels, Apache-2.0). Tests look in
``$ALMA_MINIHACK_BOXOBAN_LEVELS``, then in ``../shared/data/boxoban-levels`` beside the checkout
(a few files are provided there on the project's machines); Boxoban tests are skipped, saying
so, when neither exists.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "boxoban-levels"


def _levels() -> Path | None:
    configured = os.environ.get("ALMA_MINIHACK_BOXOBAN_LEVELS")
    for candidate in (Path(configured) if configured else None, _SHARED):
        if candidate is not None and (candidate / "hard").is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def levels_or_none() -> Path | None:
    """The Boxoban level folder, or None when there is none."""
    return _levels()


@pytest.fixture(scope="session")
def boxoban_levels() -> Path:
    """The Boxoban level folder (the test is skipped when there is none)."""
    found = _levels()
    if found is None:
        pytest.skip(
            "no Boxoban level files: set ALMA_MINIHACK_BOXOBAN_LEVELS to a checkout of "
            "https://github.com/deepmind/boxoban-levels"
        )
    return found
