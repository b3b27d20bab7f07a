"""Attack: general_retrieve never returns (it awaits forever)."""

import asyncio

from pytest_alma import MemoryDesign


class HangRetrieve(MemoryDesign):
    async def general_update(self, trajectory):
        return None

    async def general_retrieve(self, task):
        await asyncio.sleep(10**6)
        return {}
