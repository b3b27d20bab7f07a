"""A broken design fails its own items with a readable message; everything else completes."""

from __future__ import annotations

import pytest

from .conftest import QUICK, results_of

BROKEN = {
    "syntax_error.py": "from pytest_alma import MemoryDesign\nclass D(MemoryDesign)\n    pass\n",
    "no_class.py": "X = 1\n",
    "bad_init.py": (
        "from pytest_alma import MemoryDesign\n"
        "class D(MemoryDesign):\n"
        "    def __init__(self, ctx):\n"
        "        raise RuntimeError('constructor exploded')\n"
    ),
    "bad_retrieve.py": (
        "from pytest_alma import MemoryDesign\n"
        "class D(MemoryDesign):\n"
        "    async def general_update(self, t):\n"
        "        pass\n"
        "    async def general_retrieve(self, task):\n"
        "        raise LookupError('retrieve exploded')\n"
    ),
}


@pytest.mark.parametrize("workers", [["-p", "no:xdist"], ["-n", "2"]], ids=["serial", "xdist"])
def test_broken_designs_fail_alone(project: pytest.Pytester, workers: list[str]) -> None:
    for name, source in BROKEN.items():
        (project.path / "designs" / name).write_text(source)
    result = project.runpytest_subprocess(*QUICK, *workers)
    out = result.stdout.str()
    assert "syntax_error.py:2: syntax error" in out
    assert "no memory design class found" in out
    assert "constructor exploded" in out
    assert "retrieve exploded" in out
    outcomes = result.parseoutcomes()
    # the two good designs: 5 items each pass; each broken design fails its own 5 items,
    # except bad_retrieve whose contract check fails too and whose collect items pass (2).
    assert outcomes["passed"] == 10 + 2 + 2
    assert outcomes["failed"] == 5 + 5 + 3 + 3
    data = results_of(project)
    designs = {e["design"] for e in data["episodes"]}
    assert {"example_rules", "no_memory", "bad_retrieve"} <= designs
    bad = [e for e in data["episodes"] if e["design"] == "bad_retrieve"]
    assert bad and all("retrieve exploded" in e["error"] for e in bad)
    assert "bad_retrieve" in (project.path / "reports" / data["run_id"] / "summary.md").read_text()
