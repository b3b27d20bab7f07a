"""Attack: general_retrieve returns a dict holding bytes (not JSON)."""

from pytest_alma import MemoryDesign


class JunkBytes(MemoryDesign):
    async def general_update(self, trajectory):
        return None

    async def general_retrieve(self, task):
        return {"rules": b"baba is you"}
