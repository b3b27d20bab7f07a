"""Attack: leave processes behind: a forked ``sleep 987654``, and a double-forked, setsid'd
``sleep 987655`` that has left its process group and session."""

import os

from pytest_alma import MemoryDesign

_STARTED = []


def _spawn():
    if _STARTED:  # once per process
        return list(_STARTED)
    child = os.fork()
    if child == 0:
        try:
            os.execvp("sleep", ["sleep", "987654"])
        finally:
            os._exit(0)
    middle = os.fork()
    if middle == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "987655"])
        finally:
            os._exit(0)
    os.waitpid(middle, 0)
    _STARTED.extend([child, middle])
    return list(_STARTED)


class ForkSleep(MemoryDesign):
    async def general_update(self, trajectory):
        _spawn()

    async def general_retrieve(self, task):
        return {"children": _spawn()}
