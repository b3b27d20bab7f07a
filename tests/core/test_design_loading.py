import asyncio
import random
from pathlib import Path

import pytest

from pytest_alma.design import (
    DesignContext,
    DesignLoadError,
    instantiate,
    load_design,
    restore,
    snapshot,
)
from pytest_alma.records import Task, TaskStart, Trajectory

HEADER = "from pytest_alma import MemoryDesign\n"


class NoLLM:
    async def chat(self, messages, **kw):  # type: ignore[no-untyped-def]
        raise AssertionError("not used")

    async def embed(self, texts):  # type: ignore[no-untyped-def]
        raise AssertionError("not used")


def ctx(tmp_path: Path) -> DesignContext:
    return DesignContext(llm=NoLLM(), rng=random.Random(0), scratch_dir=tmp_path, seed=0)


def write(tmp_path: Path, body: str, name: str = "d.py") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


START = TaskStart(Task("babaisai", "goto_win", "train", 1), "obs", "goal", ("up",))


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "class D(MemoryDesign):\n    def f(:\n        pass\n")
    with pytest.raises(DesignLoadError, match=r"d\.py:3: syntax error"):
        load_design(path)


def test_no_design_class_lists_what_was_found(tmp_path: Path) -> None:
    path = write(tmp_path, "class Helper:\n    pass\n")
    with pytest.raises(DesignLoadError, match="no memory design class found.*Helper"):
        load_design(path)


def test_several_design_classes_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, "class B(MemoryDesign):\n    pass\nclass A(MemoryDesign):\n    pass\n")
    with pytest.raises(DesignLoadError, match=r"several memory design classes found \(A, B\)"):
        load_design(path)


def test_abstract_base_is_not_a_design(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "class Base(MemoryDesign):\n    abstract = True\nclass Real(Base):\n    pass\n",
    )
    assert load_design(path).cls.__name__ == "Real"


def test_import_error_shows_the_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "raise RuntimeError('boom at import')\n")
    with pytest.raises(DesignLoadError, match="boom at import"):
        load_design(path)


def test_constructor_failure(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "class D(MemoryDesign):\n    def __init__(self, ctx):\n        raise ValueError('nope')\n",
    )
    loaded = load_design(path)
    with pytest.raises(DesignLoadError, match="(?s)constructing D .*nope"):
        instantiate(loaded, ctx(tmp_path))


def test_sync_methods_run_and_snapshot_restores(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "class D(MemoryDesign):\n"
        "    def __init__(self, ctx):\n"
        "        super().__init__(ctx)\n"
        "        self.seen = []\n"
        "    def general_update(self, t):\n"
        "        self.seen.append(t.task.task_id)\n"
        "    def general_retrieve(self, task):\n"
        "        return {'seen': list(self.seen)}\n",
    )
    loaded = load_design(path)
    design = instantiate(loaded, ctx(tmp_path))
    traj = Trajectory(START, (), 0.0, False)
    design.general_update(traj)  # type: ignore[unused-coroutine]
    blob = snapshot(design)
    again = restore(loaded, ctx(tmp_path), blob)
    assert again.general_retrieve(START) == {"seen": ["goto_win"]}  # type: ignore[comparison-overlap]
    assert again.ctx is not None


def test_state_dict_designs_restore_through_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "import threading\n"
        "class D(MemoryDesign):\n"
        "    def __init__(self, ctx):\n"
        "        super().__init__(ctx)\n"
        "        self.lock = threading.Lock()\n"
        "        self.n = 0\n"
        "    def state_dict(self):\n"
        "        return {'n': self.n}\n"
        "    def load_state_dict(self, s):\n"
        "        self.n = s['n']\n"
        "    async def general_update(self, t):\n"
        "        self.n += 1\n"
        "    async def general_retrieve(self, task):\n"
        "        return {'n': self.n}\n",
    )
    loaded = load_design(path)
    design = instantiate(loaded, ctx(tmp_path))
    asyncio.run(design.general_update(Trajectory(START, (), 0.0, False)))
    restored = restore(loaded, ctx(tmp_path), snapshot(design))
    assert asyncio.run(restored.general_retrieve(START)) == {"n": 1}
