"""Deterministic embeddings of the scripted model."""

from __future__ import annotations

import math

from pytest_alma.llm.embedding import cosine, embed_text, estimate_tokens


def test_identical_text_identical_vector() -> None:
    text = "The red door is two steps to the left."
    assert embed_text(text) == embed_text(text)
    assert embed_text(text, 64) == embed_text(text, 64) and len(embed_text(text, 64)) == 64


def test_unit_length_and_empty_text() -> None:
    assert math.isclose(sum(v * v for v in embed_text("hello world")), 1.0)
    assert embed_text("") == [0.0] * 256


def test_similar_beats_dissimilar() -> None:
    anchor = embed_text("baba moves left toward the red door and wins")
    similar = embed_text("Baba moves left towards the red door to win")
    dissimilar = embed_text("quarterly revenue grew by seven percent in europe")
    assert cosine(anchor, similar) > 0.6
    assert cosine(anchor, similar) > cosine(anchor, dissimilar) + 0.3


def test_token_estimate() -> None:
    assert (
        estimate_tokens("") == 0 and estimate_tokens("abcd") == 1 and estimate_tokens("abcde") == 2
    )
