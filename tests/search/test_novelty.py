import hashlib
import time

import pytest

from pytest_alma.search.novelty import (
    find_near_duplicate,
    normalised_source,
    similarity,
    source_digest,
)

DESIGN = '''\
"""Remembers the rules of each level."""

import json  # for the dump


class RuleMemory:
    """Stores one rule per task."""

    LIMIT = 5

    def __init__(self) -> None:
        self.rules: dict[str, str] = {}

    def add(self, task: str, rule: str) -> None:
        """Keep the newest rule."""
        if len(self.rules) < self.LIMIT:
            self.rules[task] = rule

    async def retrieve(self, task: str) -> dict[str, str]:
        """What the agent sees."""
        return {"rule": self.rules.get(task, "")}

    def dump(self) -> str:
        return json.dumps(self.rules)
'''

# The same code, reworded and reformatted: other comments and docstrings, other spacing,
# other quotes, a docstring-free class.
REWORDED = """\
# A new module comment.
import json


class RuleMemory:
    LIMIT = 5

    def __init__(self) -> None:
        # Start empty.
        self.rules: dict[str, str] = {}

    def add(self, task: str, rule: str) -> None:
        '''A different docstring.'''
        if len( self.rules ) < self.LIMIT:   # bounded
            self.rules[task] = rule

    async def retrieve(self, task: str) -> dict[str, str]:
        return {'rule': self.rules.get(task, '')}

    def dump(self) -> str:
        '''Serialise.'''
        return json.dumps(
            self.rules,
        )
"""

ONE_CONSTANT_CHANGED = DESIGN.replace("LIMIT = 5", "LIMIT = 6")

REWRITE = '''\
"""Keeps the last trajectories and shows them."""

from collections import deque


class TrajectoryMemory:
    def __init__(self) -> None:
        self.recent: deque[list[str]] = deque(maxlen=3)

    def store(self, steps: list[str]) -> None:
        self.recent.append(list(steps))

    def show(self) -> list[list[str]]:
        return [steps[-10:] for steps in self.recent]
'''

# ----------------------------------------------------------------------------- normalisation


def test_normalised_source_drops_comments_docstrings_and_formatting() -> None:
    source = (
        '"""Module doc."""\n'
        "# comment\n"
        "import os\n"
        "\n"
        "\n"
        "class A:\n"
        '    """Class doc."""\n'
        "\n"
        "    def f(self):  # trailing\n"
        '        """Method doc."""\n'
        "        return   os.sep\n"
        "\n"
        "\n"
        "async def g():\n"
        '    """Only a docstring."""\n'
    )
    # A body that was only a docstring keeps a `pass`, so the result is still valid code.
    assert normalised_source(source) == (
        "import os\n\nclass A:\n\n    def f(self):\n        return os.sep\n\n"
        "async def g():\n    pass"
    )


def test_normalised_source_keeps_strings_that_are_not_docstrings() -> None:
    source = 'def f():\n    x = 1\n    "not a docstring"\n    return x\n'
    assert normalised_source(source) == "def f():\n    x = 1\n    'not a docstring'\n    return x"


def test_rewording_and_reformatting_keep_the_digest() -> None:
    assert normalised_source(REWORDED) == normalised_source(DESIGN)
    assert source_digest(REWORDED) == source_digest(DESIGN)


def test_a_changed_constant_changes_the_digest() -> None:
    assert source_digest(ONE_CONSTANT_CHANGED) != source_digest(DESIGN)
    assert source_digest("X = 'a'\n") != source_digest("X = 'b'\n")


def test_source_digest_is_the_sha256_of_the_normalised_source() -> None:
    assert source_digest("x  =  1  # one\n") == hashlib.sha256(b"x = 1").hexdigest()


def test_code_that_does_not_parse_falls_back_to_collapsed_text() -> None:
    source = "def f(:\n    # a comment\n\n    return   1\t+ 2  \n"
    assert normalised_source(source) == "def f(:\nreturn 1 + 2"
    assert source_digest(source) == source_digest("def f(:\n  return 1 + 2\n# other comment\n")
    assert source_digest(source) != source_digest("def f(:\n  return 1 + 3\n")


# ----------------------------------------------------------------------------- similarity


def test_similarity_of_identical_and_reworded_code_is_one() -> None:
    assert similarity(DESIGN, DESIGN) == 1.0
    assert similarity(DESIGN, REWORDED) == 1.0
    assert similarity("", "") == 1.0


def test_similarity_small_hand_computed_values() -> None:
    # x = 1 <NEWLINE> against x = 2 <NEWLINE>: 3 of 4 tokens match, 2 * 3 / 8.
    assert similarity("x = 1", "x = 2") == pytest.approx(0.75)
    # Three lines of 4 tokens, one token differs: 2 * 11 / 24.
    assert similarity("a = 1\nb = 2\nc = 3", "a = 1\nb = 5\nc = 3") == pytest.approx(11 / 12)
    # Only the end of the statement matches: 2 * 1 / (4 + 10).
    assert similarity("x = 1", "def f():\n    pass") == pytest.approx(1 / 7)
    assert similarity("", "x = 1") == 0.0


def test_similarity_is_symmetric_and_bounded() -> None:
    pairs = [(DESIGN, ONE_CONSTANT_CHANGED), (DESIGN, REWRITE), ("x = 1", "")]
    for a, b in pairs:
        forward, backward = similarity(a, b), similarity(b, a)
        assert 0.0 <= forward <= 1.0
        assert forward == pytest.approx(backward)


def test_a_one_line_change_is_more_similar_than_a_rewrite() -> None:
    near = similarity(DESIGN, ONE_CONSTANT_CHANGED)
    far = similarity(DESIGN, REWRITE)
    assert 0.98 < near < 1.0
    assert far < 0.5
    assert far < near


def test_similarity_works_on_code_that_does_not_parse() -> None:
    broken = "def f(:\n    return 1\n"
    assert similarity(broken, broken + "# only a comment\n") == 1.0
    assert 0.0 < similarity(broken, "def f(:\n    return 2\n") < 1.0


def test_similarity_of_two_500_line_files_is_fast() -> None:
    def design(seed: int) -> str:
        lines = []
        for f in range(50):
            lines.append(f"def func_{f}(a, b, c={(f * seed) % 7}):")
            lines += [
                f"    x{k} = call_{(f * k + seed) % 31}(a, b[{k % 5}], c) + {k}" for k in range(9)
            ]
        return "\n".join(lines) + "\n"

    a = design(1)
    assert len(a.splitlines()) == 500
    near = a.replace("x3 = call_", "y3 = call_", 1)
    start = time.perf_counter()
    assert similarity(a, near) > 0.99
    assert similarity(a, design(2)) < 0.99
    # Generous for slow CI machines; a plain token-level SequenceMatcher takes several seconds.
    assert time.perf_counter() - start < 5.0


# ----------------------------------------------------------------------------- near duplicates


def test_find_near_duplicate_prefers_an_exact_digest_match() -> None:
    others = {"near": ONE_CONSTANT_CHANGED, "same": REWORDED, "far": REWRITE}
    # "near" comes first and is very similar, but the exact match counts first.
    assert find_near_duplicate(DESIGN, others, threshold=0.5) == ("same", 1.0)


def test_find_near_duplicate_finds_the_most_similar_above_the_threshold() -> None:
    two_changes = ONE_CONSTANT_CHANGED.replace('"rule"', '"rules"')
    others = {"far": REWRITE, "two": two_changes, "one": ONE_CONSTANT_CHANGED}
    found = find_near_duplicate(DESIGN, others, threshold=0.9)
    assert found is not None
    key, score = found
    assert key == "one"
    assert score == pytest.approx(similarity(DESIGN, ONE_CONSTANT_CHANGED))
    assert score > similarity(DESIGN, two_changes)


def test_find_near_duplicate_keeps_the_first_of_equally_similar() -> None:
    others = {"first": "x = 2", "second": "x = 3"}
    assert find_near_duplicate("x = 1", others, threshold=0.5) == ("first", 0.75)


def test_find_near_duplicate_counts_a_similarity_equal_to_the_threshold() -> None:
    assert find_near_duplicate("x = 1", {"a": "x = 2"}, threshold=0.75) == ("a", 0.75)


def test_find_near_duplicate_returns_none_below_the_threshold() -> None:
    assert find_near_duplicate(DESIGN, {"far": REWRITE}, threshold=0.5) is None
    assert find_near_duplicate("x = 1", {"a": "x = 2"}, threshold=0.76) is None
    assert find_near_duplicate(DESIGN, {}, threshold=0.0) is None


def test_find_near_duplicate_rejects_a_threshold_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="threshold"):
        find_near_duplicate(DESIGN, {"a": DESIGN}, threshold=1.5)
    with pytest.raises(ValueError, match="threshold"):
        find_near_duplicate(DESIGN, {"a": DESIGN}, threshold=float("nan"))
