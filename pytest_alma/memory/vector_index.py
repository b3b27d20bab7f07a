"""Exact cosine top-k over a numpy matrix, with cheap appends; pickles with the design state.

Why not a library: at the sizes a memory design reaches (up to ~10^5 items of a few hundred
dimensions) an exact matrix-vector product is a few milliseconds, exact (no recall loss), has
no native dependency, and pickles with the design like any other attribute. Rows are stored
L2-normalised as float32, so a search is one ``matrix @ query`` plus ``argpartition``.

Appends grow the matrix geometrically (amortised O(1) per row); nothing is ever re-embedded or
re-normalised after it was added, unlike the reference ports, which re-embed the whole store on
every retrieval.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Vector = Sequence[float] | npt.NDArray[np.floating[Any]]


def usable_vector(vector: Any, dim: int | None) -> bool:
    """Whether an embedding can go into (or query) an index: finite, non-zero, of size ``dim``.

    Embeddings come back from servers; a design should check them rather than crash on an empty,
    zero, non-finite or wrongly sized one.
    """
    if isinstance(vector, np.ndarray):
        vector = vector.tolist()
    if not isinstance(vector, list | tuple) or not vector:
        return False
    if dim is not None and len(vector) != dim:
        return False
    try:
        values = [float(v) for v in vector]
    except (TypeError, ValueError):
        return False
    return all(math.isfinite(v) for v in values) and any(v != 0.0 for v in values)


class VectorIndex:
    """Vectors with ids; :meth:`search` returns the ``k`` most cosine-similar ids.

    Args:
        dim: the vector size; ``None`` takes it from the first vector added.
    """

    def __init__(self, dim: int | None = None) -> None:
        self.dim = dim
        self._matrix = np.zeros((0, dim or 0), dtype=np.float32)
        self._size = 0
        self._ids: list[Hashable] = []

    def __len__(self) -> int:
        return self._size

    @property
    def ids(self) -> list[Hashable]:
        """The ids in insertion order."""
        return list(self._ids)

    def add(self, item_id: Hashable, vector: Vector) -> None:
        """Add one vector under ``item_id`` (ids need not be unique; each add is a row)."""
        self.add_many([item_id], [vector])

    def add_many(self, item_ids: Sequence[Hashable], vectors: Sequence[Vector]) -> None:
        """Add several vectors at once.

        Raises:
            ValueError: the counts differ, or a vector has the wrong size or is all zeros.
        """
        if len(item_ids) != len(vectors):
            raise ValueError(f"{len(item_ids)} ids but {len(vectors)} vectors")
        if len(vectors) == 0:  # not `not vectors`: a 2-D numpy array has no truth value
            return
        rows = np.asarray(vectors, dtype=np.float32)
        if rows.ndim != 2:
            raise ValueError(f"vectors must all have one size; got shape {rows.shape}")
        if self.dim is None:
            self.dim = int(rows.shape[1])
            self._matrix = np.zeros((0, self.dim), dtype=np.float32)
        if rows.shape[1] != self.dim:
            raise ValueError(f"vectors have size {rows.shape[1]}, this index holds {self.dim}")
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise ValueError("a zero vector has no direction; it cannot be searched by cosine")
        rows /= norms
        needed = self._size + len(rows)
        if needed > len(self._matrix):
            grown = np.zeros((max(needed, 2 * len(self._matrix), 16), self.dim), np.float32)
            grown[: self._size] = self._matrix[: self._size]
            self._matrix = grown
        self._matrix[self._size : needed] = rows
        self._size = needed
        self._ids.extend(item_ids)

    def search(
        self, query: Vector, k: int = 1, threshold: float | None = None
    ) -> list[tuple[Hashable, float]]:
        """The ``k`` best ``(id, cosine)`` pairs, best first; only those >= ``threshold``.

        An empty index, ``k <= 0`` or a zero query give an empty list.
        """
        if self._size == 0 or k <= 0:
            return []
        q = np.asarray(query, dtype=np.float32).ravel()
        if q.shape[0] != self.dim:
            raise ValueError(f"query has size {q.shape[0]}, this index holds {self.dim}")
        norm = float(np.linalg.norm(q))
        if norm == 0.0:
            return []
        scores = self._matrix[: self._size] @ (q / norm)
        k = min(k, self._size)
        top = np.argpartition(-scores, k - 1)[:k] if k < self._size else np.arange(self._size)
        # Best first; ties broken by insertion order so that results are deterministic.
        order = top[np.lexsort((top, -scores[top]))]
        found = [(self._ids[i], float(scores[i])) for i in order]
        if threshold is not None:
            found = [(i, s) for i, s in found if s >= threshold]
        return found

    def vector(self, position: int) -> npt.NDArray[np.float32]:
        """A copy of the (unit-length) row added at ``position`` (0-based insertion order)."""
        if not 0 <= position < self._size:
            raise IndexError(f"position must be within 0..{self._size - 1}, got {position}")
        row: npt.NDArray[np.float32] = self._matrix[position].copy()
        return row

    def similarities(self, query: Vector, positions: Sequence[int]) -> list[float]:
        """Cosines between ``query`` and the rows added at ``positions`` (0-based, in order).

        For designs that score a few known items (graph neighbours) without a full search and
        without keeping a second copy of the vectors.
        """
        if not positions:
            return []
        q = np.asarray(query, dtype=np.float32).ravel()
        if q.shape[0] != self.dim:
            raise ValueError(f"query has size {q.shape[0]}, this index holds {self.dim}")
        rows = np.asarray(positions, dtype=np.int64)
        if rows.min() < 0 or rows.max() >= self._size:
            raise IndexError(f"positions must be within 0..{self._size - 1}")
        norm = float(np.linalg.norm(q))
        if norm == 0.0:
            return [0.0] * len(rows)
        return [float(v) for v in self._matrix[rows] @ (q / norm)]

    def __getstate__(self) -> dict[str, Any]:
        # Pickle only the used rows: the spare capacity is not memory state.
        return {"dim": self.dim, "matrix": self._matrix[: self._size].copy(), "ids": self._ids}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.dim = state["dim"]
        self._matrix = state["matrix"]
        self._size = len(self._matrix)
        self._ids = list(state["ids"])
