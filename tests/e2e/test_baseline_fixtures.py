"""The per-baseline fixtures, used the way a user's own comparison test would use them."""

from __future__ import annotations

import pytest

from .conftest import BASELINES_USED_BY_FIXTURES


def test_each_baseline_is_a_fixture(pytester: pytest.Pytester) -> None:
    checks = "\n".join(
        f"def test_{name}(alma_baseline_{name}):\n"
        f"    assert alma_baseline_{name}.name == '{name}'\n"
        f"    assert issubclass(alma_baseline_{name}.cls, MemoryDesign)\n"
        for name in BASELINES_USED_BY_FIXTURES
    )
    pytester.makepyfile(test_mine="from pytest_alma import MemoryDesign\n\n" + checks)
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=5)


def test_a_project_copy_wins(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "baselines").mkdir()
    (pytester.path / "baselines" / "no_memory.py").write_text(
        "from pytest_alma import MemoryDesign\n\n"
        "class Patched(MemoryDesign):\n"
        "    async def general_update(self, t):\n        pass\n"
        "    async def general_retrieve(self, t):\n        return {'patched': True}\n"
    )
    pytester.makepyfile(
        test_mine="def test_patched(alma_baseline_no_memory):\n"
        "    assert alma_baseline_no_memory.cls.__name__ == 'Patched'\n"
    )
    pytester.runpytest_subprocess("-p", "no:randomly", "test_mine.py").assert_outcomes(passed=1)
