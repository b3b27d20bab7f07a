"""Attack: general_retrieve returns a dict holding NaN (not strict JSON)."""

from pytest_alma import MemoryDesign


class JunkNan(MemoryDesign):
    async def general_update(self, trajectory):
        return None

    async def general_retrieve(self, task):
        return {"score": float("nan")}
