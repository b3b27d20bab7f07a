"""Attack: general_retrieve returns a dict holding a 100 MB string (far over the size limit)."""

from pytest_alma import MemoryDesign


class JunkHuge(MemoryDesign):
    async def general_update(self, trajectory):
        return None

    async def general_retrieve(self, task):
        return {"rules": "a" * 100_000_000}
