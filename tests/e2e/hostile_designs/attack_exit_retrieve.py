"""Attack: general_retrieve ends its process with os._exit(3) (no cleanup, no exception)."""

import os

from pytest_alma import MemoryDesign


class ExitRetrieve(MemoryDesign):
    async def general_update(self, trajectory):
        return None

    async def general_retrieve(self, task):
        os._exit(3)
