"""Deliberately broken designs each fail the contract with the expected, readable violation."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_alma.contract import RULES, ContractViolation
from pytest_alma.contract.run import check_design
from pytest_alma.design import DesignLoadError
from pytest_alma.sandbox.static_find import find_design

HEADER = "from pytest_alma import MemoryDesign\n"

BROKEN: dict[str, tuple[str, str, str]] = {
    # name: (class body, expected rule, text the message must contain)
    "empty_memory_crash": (
        """
        class D(MemoryDesign):
            def __init__(self, ctx):
                super().__init__(ctx)
                self.items = []
            async def general_update(self, t):
                self.items.append(t.task.task_id)
            async def general_retrieve(self, task):
                return {"last": self.items[-1]}
        """,
        "retrieve-on-empty-memory",
        "IndexError",
    ),
    "returns_a_set": (
        """
        class D(MemoryDesign):
            async def general_update(self, t):
                pass
            async def general_retrieve(self, task):
                return {"actions": set(task.actions)}
        """,
        "retrieve-returns-json-dict",
        "not strict JSON",
    ),
    "returns_a_list": (
        """
        class D(MemoryDesign):
            async def general_update(self, t):
                pass
            async def general_retrieve(self, task):
                return ["not", "a", "dict"]
        """,
        "retrieve-returns-json-dict",
        "returned list, expected a dict",
    ),
    "too_large": (
        """
        class D(MemoryDesign):
            async def general_update(self, t):
                pass
            async def general_retrieve(self, task):
                return {"padding": "x" * 20000}
        """,
        "retrieve-size",
        "the cap is 16000",
    ),
    "mutates_input": (
        """
        class D(MemoryDesign):
            async def general_update(self, t):
                object.__setattr__(t, "steps", t.steps[:1])
            async def general_retrieve(self, task):
                return {}
        """,
        "no-input-mutation",
        "trajectory was changed",
    ),
    "nondeterministic": (
        """
        import random
        class D(MemoryDesign):
            async def general_update(self, t):
                pass
            async def general_retrieve(self, task):
                return {"tip": random.choice(["a", "b", "c", "d", "e", "f", "g", "h"]) * 3}
        """,
        "retrieve-deterministic",
        "use ctx.rng",
    ),
    "global_state": (
        """
        SEEN = []
        class D(MemoryDesign):
            async def general_update(self, t):
                SEEN.append(t.task.task_id)
            async def general_retrieve(self, task):
                return {"seen": SEEN[-3:]}
        """,
        "snapshot-restore",
        "not in module globals",
    ),
    "unpicklable_state": (
        """
        import threading
        class D(MemoryDesign):
            def __init__(self, ctx):
                super().__init__(ctx)
                self.lock = threading.Lock()
            async def general_update(self, t):
                pass
            async def general_retrieve(self, task):
                return {}
        """,
        "snapshot-restore",
        "cannot be snapshotted",
    ),
    "rejects_failures": (
        """
        class D(MemoryDesign):
            async def general_update(self, t):
                if not t.success:
                    raise ValueError("expected a success")
            async def general_retrieve(self, task):
                return {}
        """,
        "update-accepts-trajectory",
        "expected a success",
    ),
    "rejects_empty_episodes": (
        """
        class D(MemoryDesign):
            def __init__(self, ctx):
                super().__init__(ctx)
                self.last = {}
            async def general_update(self, t):
                self.last[t.task.task_id] = t.steps[-1].action
            async def general_retrieve(self, task):
                return {"last": self.last.get(task.task.task_id, "")}
        """,
        "update-accepts-trajectory",
        "IndexError",
    ),
    "slow_update": (
        """
        import time
        class D(MemoryDesign):
            def general_update(self, t):
                time.sleep(0.5)
            def general_retrieve(self, task):
                return {}
        """,
        "time-limit",
        "did not finish within 0.2 s",
    ),
    "blocks_the_loop": (
        """
        import time
        class D(MemoryDesign):
            async def general_update(self, t):
                pass
            async def general_retrieve(self, task):
                time.sleep(0.25)
                return {}
        """,
        "time-limit",
        "0.2 s",
    ),
}


def write_design(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + textwrap.dedent(body))
    return path


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_design_gives_readable_violation(tmp_path: Path, name: str) -> None:
    body, rule, needle = BROKEN[name]
    loaded = find_design(write_design(tmp_path, name, body))
    with pytest.raises(ContractViolation) as info:
        check_design(loaded, profile="ci", call_timeout_s=0.2, envs=("babaisai", "alfworld"))
    message = str(info.value)
    assert info.value.rule == rule, message
    assert f"contract rule '{rule}'" in message
    assert RULES[rule] in message
    assert needle in message
    assert "D.general_" in message or "snapshot/restore of D" in message
    # A short repr of the input, never a whole dataclass dump.
    assert "Step(" not in message
    assert len(message) < 3000


def test_search_finds_and_shrinks_a_sequence(tmp_path: Path) -> None:
    """With the fixed edge cases off, Hypothesis finds the failure and lists the steps."""
    body = """
    class D(MemoryDesign):
        def __init__(self, ctx):
            super().__init__(ctx)
            self.updates = 0
        async def general_update(self, t):
            self.updates += 1
        async def general_retrieve(self, task):
            if self.updates and task.task.env == "alfworld":
                raise KeyError("no alfworld memory")
            return {}
    """
    loaded = find_design(write_design(tmp_path, "env_specific", body))
    with pytest.raises(ContractViolation) as info:
        check_design(loaded, profile="ci", envs=("babaisai", "alfworld"), edge_cases=False)
    message = str(info.value)
    assert "Call sequence (unshrunk) (Hypothesis, profile 'ci')" in message
    assert "state.retrieve_on_empty_memory(start=TaskStart(env=" in message
    assert "state.update(trajectory=Trajectory(env='alfworld'" in message
    assert "no alfworld memory" in message


def test_failing_constructor_is_a_load_error(tmp_path: Path) -> None:
    body = """
    class D(MemoryDesign):
        def __init__(self, ctx):
            raise RuntimeError("constructor exploded")
    """
    loaded = find_design(write_design(tmp_path, "bad_init", body))
    with pytest.raises(DesignLoadError, match="constructor exploded"):
        check_design(loaded, profile="ci")


def test_the_check_runs_no_design_code_in_this_process(tmp_path: Path) -> None:
    """The design is imported, called, snapshotted and restored in its own process only."""
    import sys

    body = """
    import os
    class D(MemoryDesign):
        def __init__(self, ctx):
            super().__init__(ctx)
            self.pid = os.getpid()
        async def general_update(self, t):
            pass
        async def general_retrieve(self, task):
            return {"pid": self.pid}
    """
    spec = find_design(write_design(tmp_path, "counter", body))
    check_design(spec, profile="ci", envs=("babaisai",))
    assert not [name for name in sys.modules if name.startswith("pytest_alma_design_counter")]
