"""Attack: general_retrieve crashes the interpreter (reads address 0 through ctypes)."""

import ctypes

from pytest_alma import MemoryDesign


class SegfaultRetrieve(MemoryDesign):
    async def general_update(self, trajectory):
        return None

    async def general_retrieve(self, task):
        ctypes.string_at(0)
        return {}
