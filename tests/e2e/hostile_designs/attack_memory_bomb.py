"""Attack: general_update allocates 8 GB at once."""

from pytest_alma import MemoryDesign


class MemoryBomb(MemoryDesign):
    async def general_update(self, trajectory):
        self.blob = bytearray(8 * 1024**3)

    async def general_retrieve(self, task):
        return {}
