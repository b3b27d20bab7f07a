"""Building blocks for memory designs (the baselines use them; so may yours)."""

from pytest_alma.memory.text import clip, task_text, trajectory_text
from pytest_alma.memory.vector_index import VectorIndex, usable_vector

__all__ = ["VectorIndex", "clip", "task_text", "trajectory_text", "usable_vector"]
