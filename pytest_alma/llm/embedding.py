"""Deterministic text embeddings and token estimates for the scripted model (a test double).

An embedding is a hashed bag of features, L2-normalised: lowercase word tokens (weight 1) and
character trigrams of the lowercased text (weight 0.5), each hashed to a dimension and a sign.
Identical texts give identical vectors; texts sharing words and spellings get a high cosine.
Hashes are computed with fixed arithmetic (never Python's salted ``hash``), so vectors are the same
in every process and on every run.
"""

from __future__ import annotations

import hashlib
import math
import re

import numpy as np
import numpy.typing as npt

DEFAULT_DIMS = 256
_WORD = re.compile(r"\w+")
# Constants for mixing trigram codes (64-bit, odd multipliers from splitmix64).
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def estimate_tokens(text: str) -> int:
    """A deterministic token estimate: ceil(characters / 4), the usual rule of thumb."""
    return math.ceil(len(text) / 4)


def _word_features(text: str, dims: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    words = _WORD.findall(text)
    index = np.empty(len(words), dtype=np.int64)
    weight = np.empty(len(words), dtype=np.float64)
    for i, word in enumerate(words):
        digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        index[i] = digest % dims
        weight[i] = 1.0 if (digest >> 40) & 1 else -1.0
    return index, weight


def _trigram_features(
    text: str, dims: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint64)
    if data.size < 3:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    # Vectorised: a trigram's code is its three bytes, then a splitmix64-style finaliser spreads it.
    with np.errstate(over="ignore"):  # uint64 wrap-around is the intended arithmetic
        code = (data[:-2] << np.uint64(16)) | (data[1:-1] << np.uint64(8)) | data[2:]
        code = (code ^ (code >> np.uint64(30))) * _MIX1
        code = (code ^ (code >> np.uint64(27))) * _MIX2
        code = code ^ (code >> np.uint64(31))
    index = (code % np.uint64(dims)).astype(np.int64)
    weight = np.where((code >> np.uint64(40)) & np.uint64(1), 0.5, -0.5)
    return index, weight


def embed_text(text: str, dims: int = DEFAULT_DIMS) -> list[float]:
    """The embedding of ``text`` with ``dims`` dimensions (unit length; all zeros for no text)."""
    if dims < 1:
        raise ValueError(f"embedding dimensions must be positive, got {dims}")
    lowered = text.lower()
    w_index, w_weight = _word_features(lowered, dims)
    t_index, t_weight = _trigram_features(lowered, dims)
    # bincount with weights sums floats (its stubs claim ints, hence the no-copy astype).
    vector = np.bincount(
        np.concatenate([w_index, t_index]),
        weights=np.concatenate([w_weight, t_weight]),
        minlength=dims,
    ).astype(np.float64, copy=False)
    norm = float(np.linalg.norm(vector))
    if norm > 0.0:
        vector = vector / norm
    return [float(v) for v in vector.tolist()]


def cosine(a: list[float], b: list[float]) -> float:
    """Cosine similarity of two vectors (0.0 when either is all zeros)."""
    va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denominator = float(np.linalg.norm(va) * np.linalg.norm(vb))
    return float(va @ vb) / denominator if denominator else 0.0
