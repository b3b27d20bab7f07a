"""No Memory: the baseline every design is compared against.

It stores nothing and retrieves an empty dict, so the agent's prompt has no memory block. Its
deployment episodes are the reference for the paired differences in every report. Cost: no LLM
or embedding calls in update or retrieve.
"""

from __future__ import annotations

from typing import Any

from pytest_alma import MemoryDesign, TaskStart, Trajectory


class NoMemory(MemoryDesign):
    """Remembers nothing."""

    async def general_update(self, trajectory: Trajectory) -> None:
        return None

    async def general_retrieve(self, task: TaskStart) -> dict[str, Any]:
        return {}
