"""Attack: general_update grows a list by 1 MB chunks until something gives."""

from pytest_alma import MemoryDesign


class MemoryGrow(MemoryDesign):
    async def general_update(self, trajectory):
        chunks = []
        while True:
            chunks.append(bytearray(1024**2))

    async def general_retrieve(self, task):
        return {}
