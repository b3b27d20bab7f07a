"""Attack: SIGKILL its whole process group (itself included)."""

import os
import signal

from pytest_alma import MemoryDesign


class KillGroup(MemoryDesign):
    async def general_update(self, trajectory):
        return None

    async def general_retrieve(self, task):
        os.killpg(0, signal.SIGKILL)
        return {}
