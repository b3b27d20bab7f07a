"""Attack: an async general_update that spins forever, blocking its event loop."""

from pytest_alma import MemoryDesign


class BusyUpdate(MemoryDesign):
    async def general_update(self, trajectory):
        while True:
            pass

    async def general_retrieve(self, task):
        return {}
