"""pytest-alma: benchmark and meta-learn the memory of LLM agents under pytest.

The public API is imported lazily so that the pytest plugin entry point stays cheap for test
runs that never touch a memory design.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pytest_alma.design import DesignContext, MemoryDesign
    from pytest_alma.records import Step, Task, TaskStart, Trajectory

__all__ = ["DesignContext", "MemoryDesign", "Step", "Task", "TaskStart", "Trajectory"]

_LAZY = {
    "DesignContext": "pytest_alma.design",
    "MemoryDesign": "pytest_alma.design",
    "Step": "pytest_alma.records",
    "Task": "pytest_alma.records",
    "TaskStart": "pytest_alma.records",
    "Trajectory": "pytest_alma.records",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'pytest_alma' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
