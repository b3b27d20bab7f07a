"""Attack: importing the module spins forever (collection must not run it)."""

from pytest_alma import MemoryDesign

while True:
    pass


class BusyImport(MemoryDesign):
    async def general_update(self, trajectory):
        return None

    async def general_retrieve(self, task):
        return {}
