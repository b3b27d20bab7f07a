"""Parent selection: the reference's visit-penalised softmax, with its random state kept.

Each selectable design gets ``score = normalise(reward - no_memory_reward) - penalty * ln(1 +
visits)``; parents are drawn without replacement with probability ``softmax(score / T)``. The
reference's defaults: sigmoid normalisation, penalty 0.5, temperature 0.5, k = min(5, n).

The reference reseeds numpy with 42 before every draw, so every generation replays the same
random stream. Here one PCG64 generator is seeded once per archive (with the run seed) and its
state is saved in the archive with each draw: a resumed or later search continues the stream,
and any draw can be recomputed from the generation's saved ``rng_before`` and scores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SelectionParams:
    """The selection knobs (``--alma-search-temperature`` and friends)."""

    temperature: float = 0.5
    visit_penalty: float = 0.5
    normalise: str = "sigmoid"  # "sigmoid", "difference" or "none"


def normalised_reward(reward: float, baseline: float, how: str) -> float:
    """A reward relative to No Memory: ``sigmoid(r - r0)`` (reference), ``r - r0``, or ``r``."""
    if how == "sigmoid":
        return 1.0 / (1.0 + math.exp(-(reward - baseline)))
    if how == "difference":
        return reward - baseline
    if how == "none":
        return reward
    raise ValueError(f"unknown normalisation {how!r}: use sigmoid, difference or none")


def selection_score(reward: float, visits: int, baseline: float, params: SelectionParams) -> float:
    """A design's selection score: its normalised reward minus the visit penalty."""
    return normalised_reward(reward, baseline, params.normalise) - params.visit_penalty * math.log(
        1 + visits
    )


def probabilities(scores: Sequence[float], temperature: float) -> np.ndarray:
    """``softmax(scores / temperature)``, max-subtracted for numerical safety."""
    logits = np.asarray(scores, dtype=np.float64) / temperature
    logits -= logits.max()
    weights = np.exp(logits)
    result: np.ndarray = weights / weights.sum()
    return result


def new_rng(seed: int) -> np.random.Generator:
    """The search's generator, seeded once per archive."""
    return np.random.Generator(np.random.PCG64(seed))


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's state as plain JSON (stored in the archive)."""
    state: Any = rng.bit_generator.state
    result: dict[str, Any] = _jsonable(state)
    return result


def rng_from_state(state: Mapping[str, Any]) -> np.random.Generator:
    """A generator that continues exactly where ``state`` was taken."""
    bit_generator = np.random.PCG64()
    bit_generator.state = dict(state)  # type: ignore[assignment]  # numpy's TypedDict
    return np.random.Generator(bit_generator)


def draw(
    candidates: Sequence[Mapping[str, Any]],
    k: int,
    rng: np.random.Generator,
    baseline: float,
    params: SelectionParams,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Draw ``min(k, n)`` parents without replacement.

    ``candidates`` are mappings with ``id``, ``reward`` and ``visits``. Returns the drawn ids in
    draw order and the selection table (id, reward, visits, score, probability) for the archive.
    """
    if not candidates:
        return [], []
    ordered = sorted(candidates, key=lambda c: str(c["id"]))  # independent of query order
    scores = [
        selection_score(float(c["reward"]), int(c["visits"]), baseline, params) for c in ordered
    ]
    probs = probabilities(scores, params.temperature)
    count = min(k, len(ordered))
    picked = rng.choice(len(ordered), size=count, replace=False, p=probs)
    table = [
        {
            "id": str(c["id"]),
            "reward": float(c["reward"]),
            "visits": int(c["visits"]),
            "score": round(s, 6),
            "probability": round(float(p), 6),
        }
        for c, s, p in zip(ordered, scores, probs, strict=True)
    ]
    return [str(ordered[int(i)]["id"]) for i in picked], table


def _jsonable(value: Any) -> Any:
    """numpy integers inside the PCG64 state dict as plain ints."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value
