"""MiniHack test set-up: where the Boxoban level files come from.

DeepMind's level files are not in the repository (boxoban-levels, Apache-2.0). Tests use
``$ALMA_MINIHACK_BOXOBAN_LEVELS`` or ``../shared/data/boxoban-levels`` beside the checkout when
one exists, and otherwise a tiny folder of puzzles written here, in the same format (``; N``
header, 10x10 board: ``#`` wall, ``$`` box, ``.`` target, ``@`` player). So Boxoban is always
tested, never skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "boxoban-levels"

#: Two small puzzles of our own, 4 boxes and 4 targets each.
_PUZZLES = """\
; 0
##########
#        #
#  $  .  #
#        #
#  $  .  #
#    @   #
#  $  .  #
#        #
#  $  .  #
##########

; 1
##########
#   #    #
# $ # .  #
#   #    #
# $   .  #
#    @   #
# $   .  #
#   #    #
# $ # .  #
##########

"""


def _found() -> Path | None:
    configured = os.environ.get("ALMA_MINIHACK_BOXOBAN_LEVELS")
    for candidate in (Path(configured) if configured else None, _SHARED):
        if candidate is not None and (candidate / "hard").is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def boxoban_levels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Boxoban level folder: the real files when present, else our own small puzzles."""
    found = _found()
    if found is not None:
        return found
    root = tmp_path_factory.mktemp("boxoban-levels")
    for folder in ("hard", "medium/train", "unfiltered/train"):
        (root / folder).mkdir(parents=True)
        (root / folder / "000.txt").write_text(_PUZZLES)
    return root
