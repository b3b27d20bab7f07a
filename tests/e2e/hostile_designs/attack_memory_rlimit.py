"""Attack: raise the memory limit before allocating; report what happened as the memory."""

import resource

from pytest_alma import MemoryDesign

_DONE = {}


def _try(action):
    try:
        return f"ok: {action()!r}"
    except BaseException as exc:  # MemoryError too: the outcome is the point
        return f"{type(exc).__name__}: {exc}"


def _attack():
    if _DONE:  # once per process (the contract calls retrieve many times)
        return dict(_DONE)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    inf = resource.RLIM_INFINITY
    _DONE.update(
        {
            "limits_before": [soft, hard],
            "raise_to_infinity": _try(lambda: resource.setrlimit(resource.RLIMIT_AS, (inf, inf))),
            "raise_soft_to_infinity": _try(
                lambda: resource.setrlimit(resource.RLIMIT_AS, (inf, hard))
            ),
            "raise_hard": _try(lambda: resource.setrlimit(resource.RLIMIT_AS, (hard, hard * 8))),
            "raise_cpu": _try(lambda: resource.setrlimit(resource.RLIMIT_CPU, (inf, inf))),
            "limits_after": list(resource.getrlimit(resource.RLIMIT_AS)),
            "allocate_3_gb": _try(lambda: len(bytearray(3 * 1024**3))),
        }
    )
    return dict(_DONE)


class MemoryRlimit(MemoryDesign):
    async def general_update(self, trajectory):
        return None

    async def general_retrieve(self, task):
        return _attack()
