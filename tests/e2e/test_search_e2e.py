"""`pytest --alma-search` end to end, with the scripted meta-model (a TEST DOUBLE).

Canned answers steer each parent: seed_a's child is broken and repaired, seed_b's child cannot be
repaired, seed_c's child repeats its parent. The tests read the archive, the written design files
and the next plain run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_alma.design import load_design
from pytest_alma.llm.scripted_meta import FIXABLE_MARK, template_design
from pytest_alma.search import archive as A
from pytest_alma.search.archive import Archive
from pytest_alma.search.novelty import similarity
from pytest_alma.search.selection import SelectionParams, draw, rng_from_state

from .conftest import QUICK, REPO, results_of

ARCHIVE = Path(".alma") / "search" / "archive.sqlite3"
RETRIEVE = "    async def general_retrieve(self, task: TaskStart) -> dict[str, Any]:\n"


def with_bug(code: str, mark: str) -> str:
    """``code`` whose retrieve raises, on a line the scripted repair removes (or not)."""
    bug = f'        raise RuntimeError("scripted bug in retrieve")  {mark}\n'
    assert RETRIEVE in code
    return code.replace(RETRIEVE, RETRIEVE + bug)


def seed_design(marker: str) -> str:
    """The example design with a constant that makes its code (and prompts) distinct."""
    source = (REPO / "designs" / "example_rules.py").read_text()
    return source.replace("MAX_PER_KEY = 5", f'MAX_PER_KEY = 5\nMARKER = "{marker}"', 1)


@pytest.fixture
def search_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    (pytester.path / "designs").mkdir()
    (pytester.path / "baselines").mkdir()
    shutil.copy(REPO / "baselines" / "no_memory.py", pytester.path / "baselines")
    for marker in ("SEED-A", "SEED-B", "SEED-C"):
        name = f"seed_{marker[-1].lower()}.py"
        (pytester.path / "designs" / name).write_text(seed_design(marker))
    rules = [
        # seed_a: the first analysis is not JSON (re-asked), the child is broken but repairable.
        {
            "role": "analysis",
            "when": 'MARKER = "SEED-A"',
            "reply": "I think it is fine.",
            "first_only": True,
        },
        {
            "role": "generate",
            "when": 'MARKER = "SEED-A"',
            "reply": "```python\n" + with_bug(template_design("a"), FIXABLE_MARK) + "```",
        },
        # seed_b: a child whose bug survives every repair.
        {
            "role": "generate",
            "when": 'MARKER = "SEED-B"',
            "reply": "```python\n"
            + with_bug(template_design("b"), "# scripted-bug: persistent")
            + "```",
        },
        # seed_c: a child that is its parent again.
        {
            "role": "generate",
            "when": 'MARKER = "SEED-C"',
            "reply": "```python\n" + seed_design("SEED-C") + "```",
        },
    ]
    script = pytester.path / "meta_script.json"
    script.write_text(json.dumps({"rules": rules}))
    monkeypatch.setenv("ALMA_SCRIPTED_META", str(script))
    pytester.makeini("[pytest]\ntestpaths = designs baselines\n")
    return pytester


SEARCH = [*QUICK, "-n", "2", "--alma-search", "--alma-search-children=3", "--alma-search-repairs=1"]


def by_parent(archive: Archive) -> dict[str, A.Candidate]:
    return {c.parent: c for c in archive.candidates() if c.origin == "child" and c.parent}


def test_search_repairs_fails_dedupes_writes_and_the_next_run_evaluates(
    search_project: pytest.Pytester,
) -> None:
    result = search_project.runpytest_subprocess(*SEARCH)
    assert result.ret == 0, result.stdout.str()
    out = result.stdout.str()
    assert "pytest-alma search" in out and "search: wrote" in out
    archive = Archive(search_project.path / ARCHIVE)
    children = by_parent(archive)
    assert set(children) == {"seed:seed_a", "seed:seed_b", "seed:seed_c"}
    # Every seed was drawn once, in generation 1, and its visit counted once.
    assert [g.number for g in archive.generations()] == [1]
    assert {c.id: c.visits for c in archive.candidates() if c.origin == "seed"} == {
        "seed:seed_a": 1,
        "seed:seed_b": 1,
        "seed:seed_c": 1,
    }
    assert archive.get_meta("baseline") is not None
    # The draw is reproducible from what the archive saved: the state before it and the scores.
    [generation] = archive.generations()
    assert generation.rng_before is not None
    again, _ = draw(
        generation.selection,
        3,
        rng_from_state(generation.rng_before),
        archive.get_meta("baseline"),
        SelectionParams(),
    )
    assert again == generation.parents
    assert archive.get_meta("rng_state") == generation.rng_after != generation.rng_before

    repaired = children["seed:seed_a"]
    assert repaired.status == A.WRITTEN and repaired.attempts == 1
    attempts = archive.attempts(repaired.id)
    assert [(a["ok"], a["stage"]) for a in attempts] == [(0, "contract"), (1, "smoke")]
    assert "scripted bug in retrieve" in attempts[0]["failure"]  # the actual failure
    assert len(attempts[0]["failure"]) <= 4200  # not a whole log
    assert repaired.analysis_json is not None  # valid after the re-ask
    assert repaired.reward is not None and repaired.reward_n and repaired.meta_tokens > 0

    broken = children["seed:seed_b"]
    assert broken.status == A.FAILED and broken.stage == "contract"
    assert "scripted bug in retrieve" in (broken.reason or "")
    assert [a["ok"] for a in archive.attempts(broken.id)] == [0, 0]  # both tested

    duplicate = children["seed:seed_c"]
    assert duplicate.status == A.DUPLICATE and duplicate.duplicate_of == "seed:seed_c"
    archive.close()

    # Only the repaired child reached designs/, with its provenance on top.
    written = sorted(p.name for p in (search_project.path / "designs").glob("alma_*.py"))
    assert written == [f"{repaired.name}.py"]
    path = search_project.path / "designs" / written[0]
    header = path.read_text().split('"""')[1]
    for expected in (
        "Learned memory design",
        "parent seed_a (seed:seed_a)",
        "generation 1",
        "meta-model scripted",
        "Search reward:",
        "No Memory",
        "1 repair round(s)",
        "TEST DOUBLE",
        "suggested changes",
    ):
        assert expected in header, expected
    assert FIXABLE_MARK not in path.read_text()
    load_design(path)

    status = subprocess.run(
        [sys.executable, "-m", "pytest_alma", "search", "status"],
        cwd=search_project.path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "duplicate of seed:seed_c" in status.stdout and "lineage:" in status.stdout
    assert f"{repaired.name} [{repaired.id}, written]" in status.stdout

    # The next plain run collects and evaluates the new design alongside the others.
    again = search_project.runpytest_subprocess(*QUICK, "-n", "2")
    assert again.ret == 0, again.stdout.str()
    designs = {e["design"] for e in results_of(search_project)["episodes"]}
    assert repaired.name in designs and {"no_memory", "seed_a"} <= designs


def test_edit_format_children_then_other_settings_refused_clearly(
    search_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALMA_SCRIPTED_META")  # the built-in answers: one-constant edits
    # Novelty 1.0 rejects identical code only: a one-constant edit is 0.99 similar.
    first = search_project.runpytest_subprocess(
        *SEARCH, "--alma-search-edit-format=edits", "--alma-search-novelty=1.0"
    )
    assert first.ret == 0, first.stdout.str()
    archive = Archive(search_project.path / ARCHIVE)
    for child in by_parent(archive).values():
        parent = archive.candidate(child.parent or "")
        assert child.status == A.WRITTEN and parent is not None and child.source != parent.source
        changed = set(child.source.splitlines()) ^ set((parent.source or "").splitlines())
        assert len(changed) == 2 and any("MAX_PER_KEY" in line for line in changed)
    archive.close()
    other = search_project.runpytest_subprocess(*SEARCH, "--alma-seed=9")
    out = other.stdout.str()
    assert "search: not run" in out and "seed: archive 0, now 9" in out


def test_budget_stops_the_search_at_a_generation_boundary(
    search_project: pytest.Pytester,
) -> None:
    prices = search_project.path / "prices.json"
    # Output tokens dear and input nearly free: the budget reserves each meta call's worst case
    # (its prompt bytes at the input rate plus --alma-meta-max-tokens at the output rate) before
    # sending it, so a generation needs one worst case of headroom to finish.
    prices.write_text(json.dumps({"priced-meta": {"input": 0.001, "output": 1000.0}}))
    meta_cap = 1024  # the scripted meta-agent's replies are a few hundred tokens
    priced = [
        *QUICK,
        "-n",
        "2",
        "--alma-search",
        "--alma-search-children=1",
        "--alma-meta-model=priced-meta",
        f"--alma-prices={prices}",
        f"--alma-meta-max-tokens={meta_cap}",
    ]
    measure = search_project.runpytest_subprocess(*priced, "--alma-store=.measure")
    assert measure.ret == 0, measure.stdout.str()
    gen_cost = sum(
        c.meta_cost_usd + c.eval_cost_usd
        for c in Archive(search_project.path / ".measure/search/archive.sqlite3").candidates()
        if c.origin == "child"
    )
    assert gen_cost > 0
    # Enough for generation 1 and its last call's worst case, not enough for a second one.
    headroom = meta_cap * 1000.0 / 1e6 + 0.05
    budget = gen_cost + headroom
    assert budget < 2 * gen_cost, (gen_cost, headroom)
    result = search_project.runpytest_subprocess(
        *priced, "--alma-search-steps=3", f"--alma-budget-usd={budget}"
    )
    out = result.stdout.str()
    assert "stopping at this generation boundary" in out, out
    archive = Archive(search_project.path / ARCHIVE)
    assert [(g.number, g.status) for g in archive.generations()] == [(1, "done")]
    assert all(c.status in A.TERMINAL for c in archive.candidates())


def _poll_archive(path: Path, sql: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            try:
                with sqlite3.connect(path, timeout=1) as db:
                    if db.execute(sql).fetchone()[0]:
                        return True
            except sqlite3.Error:
                pass
        time.sleep(0.2)
    return False


def test_sigkill_mid_generation_then_resume_loses_and_duplicates_nothing(
    search_project: pytest.Pytester,
) -> None:
    args = [
        sys.executable,
        "-m",
        "pytest",
        *SEARCH,
        "--alma-search-steps=2",
        "-p",
        "no:cacheprovider",
    ]
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    proc = subprocess.Popen(
        args,
        cwd=search_project.path,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    archive_path = search_project.path / ARCHIVE
    try:
        # Kill once a child is past analysis but before the generation is done.
        reached = _poll_archive(
            archive_path,
            "SELECT COUNT(*) FROM candidates WHERE origin = 'child' AND status IN "
            "('generated', 'verified')",
            timeout_s=240,
        )
        assert reached, "the search never got to a generated child"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    with sqlite3.connect(archive_path) as db:
        killed_at = db.execute(
            "SELECT id, status FROM candidates WHERE origin = 'child'"
        ).fetchall()
        assert db.execute("SELECT status FROM generations").fetchall() == [("running",)]
    resumed = search_project.runpytest_subprocess(*SEARCH, "--alma-search-steps=2")
    assert resumed.ret == 0, resumed.stdout.str()
    assert "resuming generation 1" in resumed.stdout.str()
    archive = Archive(archive_path)
    generations = archive.generations()
    assert [(g.number, g.status) for g in generations] == [(1, "done"), (2, "done")]
    children = [c for c in archive.candidates() if c.origin == "child"]
    # Nothing lost: every child the killed run had started is still there and finished...
    assert {cid for cid, _ in killed_at} <= {c.id for c in children}
    assert all(c.status in A.TERMINAL for c in children)
    # ...and nothing duplicated: one child per drawn parent per generation, visits = draws.
    for g in generations:
        assert len([c for c in children if c.generation == g.number]) == len(g.parents)
    draws: dict[str, int] = {}
    for g in generations:
        for parent in g.parents:
            draws[parent] = draws.get(parent, 0) + 1
    assert {c.id: c.visits for c in archive.candidates() if c.visits} == draws
    written = {Path(c.path).name for c in children if c.status == A.WRITTEN and c.path}
    assert written == {p.name for p in (search_project.path / "designs").glob("alma_*.py")}
    hashes = [c.source_hash for c in children if c.status == A.WRITTEN]
    assert len(hashes) == len(set(hashes))


def test_root_from_scratch_then_a_child_scored_on_heldout_tasks(
    search_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, child = template_design("root"), template_design("child 3")
    assert similarity(root, child) < 0.98  # two structurally different designs
    script = search_project.path / "scratch_script.json"
    script.write_text(
        json.dumps(
            [
                {"role": "generate", "when": "There is no design yet", "reply": root},
                {"role": "generate", "when": "## Current design", "reply": child},
            ]
        )
    )
    monkeypatch.setenv("ALMA_SCRIPTED_META", str(script))
    result = search_project.runpytest_subprocess(
        *QUICK,
        "-n",
        "2",
        "--alma-search",
        "--alma-search-root=scratch",
        "--alma-search-steps=2",
        "--alma-search-children=1",
        "--alma-search-heldout=0.5",
    )
    out = result.stdout.str()
    assert result.ret == 0, out
    assert "writing a first design from scratch" in out and "search spend: meta-agent $" in out
    archive = Archive(search_project.path / ARCHIVE)
    candidates = archive.candidates()
    # No seeds: the root was written from scratch (generation 0), its child drawn from it.
    assert [(c.id, c.origin, c.parent, c.status) for c in candidates] == [
        ("g0.0", "scratch", None, A.WRITTEN),
        ("g1.0", "child", "g0.0", A.WRITTEN),
    ]
    held = archive.get_meta("heldout")
    # 4 tasks: 2 deployed, 1 held out; rewards count only its episode (1 repeat).
    assert [len(ids) for ids in held.values()] == [1]
    assert all(c.reward_n == 1 for c in candidates)
    assert archive.candidate("g0.0").visits == 1  # type: ignore[union-attr]
