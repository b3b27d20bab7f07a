"""Attack: general_retrieve returns a dict holding a set (not JSON)."""

from pytest_alma import MemoryDesign


class JunkSet(MemoryDesign):
    async def general_update(self, trajectory):
        return None

    async def general_retrieve(self, task):
        return {"rules": {1, 2, 3}}
