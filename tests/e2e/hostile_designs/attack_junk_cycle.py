"""Attack: general_retrieve returns a dict that contains itself."""

from pytest_alma import MemoryDesign


class JunkCycle(MemoryDesign):
    async def general_update(self, trajectory):
        return None

    async def general_retrieve(self, task):
        memory = {"rules": []}
        memory["rules"].append(memory)
        return memory
