"""Attack: general_retrieve returns a dict holding a plain object() (not JSON)."""

from pytest_alma import MemoryDesign


class JunkObject(MemoryDesign):
    async def general_update(self, trajectory):
        return None

    async def general_retrieve(self, task):
        return {"rules": object()}
