"""Parent selection: the reference's formula, worked by hand, and a reproducible random state."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_alma.search.selection import (
    SelectionParams,
    draw,
    new_rng,
    normalised_reward,
    probabilities,
    rng_from_state,
    rng_state,
    selection_score,
)

REFERENCE = SelectionParams()


def test_reference_defaults_and_scores_by_hand() -> None:
    assert (REFERENCE.temperature, REFERENCE.visit_penalty, REFERENCE.normalise) == (
        0.5,
        0.5,
        "sigmoid",
    )
    # sigmoid(0) = 0.5; one visit costs 0.5 * ln 2 = 0.34657...
    assert selection_score(0.3, 0, 0.3, REFERENCE) == pytest.approx(0.5)
    assert selection_score(0.3, 1, 0.3, REFERENCE) == pytest.approx(0.5 - 0.346574, abs=1e-6)
    # sigmoid(0.1) = 0.524979: a +0.10 gain moves the score by about 0.025 (spec 4.3).
    assert normalised_reward(0.4, 0.3, "sigmoid") == pytest.approx(0.524979, abs=1e-6)
    assert normalised_reward(0.4, 0.3, "difference") == pytest.approx(0.1)
    assert normalised_reward(0.4, 0.3, "none") == pytest.approx(0.4)
    with pytest.raises(ValueError, match="sigmoid, difference or none"):
        normalised_reward(0.4, 0.3, "softplus")


def test_softmax_probabilities_by_hand() -> None:
    # scores 0.5 and 0.5 - ln 2 / 2 at T = 0.5: logits 1 and 1 - ln 2, so weights 1 and 1/2.
    probs = probabilities([0.5, 0.5 - math.log(2) / 2], 0.5)
    assert probs == pytest.approx([2 / 3, 1 / 3])


def test_draw_is_without_replacement_and_capped_at_the_archive_size() -> None:
    candidates = [{"id": f"d{i}", "reward": 0.1 * i, "visits": 0} for i in range(3)]
    picked, table = draw(candidates, 5, new_rng(0), 0.0, REFERENCE)
    assert sorted(picked) == ["d0", "d1", "d2"]
    assert sum(row["probability"] for row in table) == pytest.approx(1.0, abs=1e-5)


def test_a_draw_is_reproduced_from_the_saved_state_and_the_stream_continues() -> None:
    candidates = [{"id": f"d{i}", "reward": 0.1 * i, "visits": i % 2} for i in range(6)]
    rng = new_rng(7)
    saved = rng_state(rng)
    first, _ = draw(candidates, 2, rng, 0.2, REFERENCE)
    after = rng_state(rng)
    # The saved state (plain JSON) gives exactly the same draw...
    again, _ = draw(list(reversed(candidates)), 2, rng_from_state(saved), 0.2, REFERENCE)
    assert again == first
    # ...and the stream moves on: the next draw does not replay the first (the reference
    # reseeded with 42 before every draw).
    draws = [draw(candidates, 2, rng_from_state(after), 0.2, REFERENCE)[0]]
    stream = rng_from_state(saved)
    sequence = [draw(candidates, 2, stream, 0.2, REFERENCE)[0] for _ in range(5)]
    assert sequence[0] == first and sequence[1] == draws[0]
    assert len({tuple(s) for s in sequence}) > 1
    assert isinstance(saved["state"]["state"], int)  # JSON-able, not numpy ints


def test_visited_parents_are_drawn_less_often() -> None:
    candidates = [
        {"id": "fresh", "reward": 0.5, "visits": 0},
        {"id": "visited", "reward": 0.5, "visits": 3},
    ]
    rng = np.random.Generator(np.random.PCG64(1))
    counts = {"fresh": 0, "visited": 0}
    for _ in range(400):
        picked, _ = draw(candidates, 1, rng, 0.5, REFERENCE)
        counts[picked[0]] += 1
    # P(fresh) = 1 / (1 + exp(-ln 4)) = 0.8 by the formula.
    assert 0.72 < counts["fresh"] / 400 < 0.88
