"""Where design code runs: a design process of its own, in bubblewrap where it works.

- :mod:`~pytest_alma.sandbox.static_find`: the design class found from the syntax tree, so
  that collecting a design runs none of its code (:class:`DesignSpec`).
- :mod:`~pytest_alma.sandbox.launch`: how a design process is started (bubblewrap's namespaces,
  read-only binds and clean environment, or a plain subprocess labelled unsandboxed) and its
  hard limits.
- :mod:`~pytest_alma.sandbox.protocol`: the JSON lines a worker and a design process exchange.
- :mod:`~pytest_alma.sandbox.host`: the program of the design process, the only place design
  code runs.
- :mod:`~pytest_alma.sandbox.process`: the worker's side: requests under a wall-clock limit,
  the design's LLM calls answered with a token scoped to it, a killed process replaced.

What is enforced, by what, and what is not: ``docs/isolation.md``.
"""

from __future__ import annotations

from pytest_alma.sandbox.launch import Limits, Sandbox, SandboxUnavailable, choose_sandbox
from pytest_alma.sandbox.static_find import DesignSpec, StaticFindError, find_design

__all__ = [
    "DesignSpec",
    "Limits",
    "Sandbox",
    "SandboxUnavailable",
    "StaticFindError",
    "choose_sandbox",
    "find_design",
]
