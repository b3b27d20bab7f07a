"""Attack: general_retrieve returns a set instead of a dict."""

from pytest_alma import MemoryDesign


class JunkNotDict(MemoryDesign):
    async def general_update(self, trajectory):
        return None

    async def general_retrieve(self, task):
        return {"baba", "is", "you"}
