"""The search archive: atomic state changes, settings binding, identity by content."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pytest_alma.search import archive as A
from pytest_alma.search.archive import Archive, ArchiveError


def seed(archive: Archive, name: str, reward: float) -> None:
    archive.add_candidate(
        id=f"seed:{name}",
        generation=0,
        origin="seed",
        status=A.SEED,
        name=name,
        source=f"X = {reward}\n",
        source_hash=f"h-{name}",
        reward=reward,
    )


def test_candidates_survive_reopening_and_keep_every_field(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite3"
    archive = Archive(path)
    seed(archive, "one", 0.25)
    archive.update("seed:one", visits=2, meta_cost_usd=0.5)
    archive.close()
    again = Archive(path)
    [c] = again.candidates()
    assert (c.name, c.reward, c.visits, c.meta_cost_usd, c.status) == ("one", 0.25, 2, 0.5, A.SEED)
    assert again.by_hash("h-one") is not None and again.by_hash("nope") is None


def test_start_generation_records_draw_visits_children_and_rng_in_one_transaction(
    tmp_path: Path,
) -> None:
    archive = Archive(tmp_path / "a.sqlite3")
    seed(archive, "one", 0.25)
    seed(archive, "two", 0.5)
    bad_child = {
        "id": "g1.0",
        "generation": 1,
        "origin": "child",
        "status": A.PENDING,
        "no_such_field": 1,
    }
    with pytest.raises(KeyError):
        archive.start_generation(1, ["seed:one"], [], {"s": 1}, {"s": 2}, [bad_child])
    # Nothing of the failed generation is left: no row, no visit, no random state.
    assert archive.generations() == []
    assert archive.candidate("seed:one").visits == 0  # type: ignore[union-attr]
    assert archive.get_meta("rng_state") is None
    child = {
        "id": "g1.0",
        "generation": 1,
        "slot": 0,
        "parent": "seed:one",
        "origin": "child",
        "status": A.PENDING,
    }
    archive.start_generation(1, ["seed:one"], [{"id": "seed:one"}], {"s": 1}, {"s": 2}, [child])
    [generation] = archive.generations()
    assert (generation.status, generation.parents, generation.rng_before) == (
        "running",
        ["seed:one"],
        {"s": 1},
    )
    assert archive.open_generation() == generation
    assert archive.candidate("seed:one").visits == 1  # type: ignore[union-attr]
    assert archive.get_meta("rng_state") == {"s": 2}
    assert [c.id for c in archive.children_of_generation(1)] == ["g1.0"]
    archive.finish_generation(1)
    assert archive.open_generation() is None


def test_selectable_needs_code_and_score_and_never_no_memory(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "a.sqlite3")
    seed(archive, "one", 0.25)
    seed(archive, "no_memory", 0.1)
    archive.add_candidate(id="g1.0", generation=1, origin="child", status=A.FAILED)
    archive.add_candidate(
        id="g1.1", generation=1, origin="child", status=A.WRITTEN, reward=0.3, name="alma_g1_x"
    )
    assert sorted(c.id for c in archive.selectable()) == ["g1.1", "seed:one"]


def test_settings_are_bound_and_other_settings_refused_with_the_differences(
    tmp_path: Path,
) -> None:
    archive = Archive(tmp_path / "a.sqlite3")
    archive.bind_settings({"envs": ["babaisai"], "repeats": 3})
    archive.bind_settings({"envs": ["babaisai"], "repeats": 3})  # same: fine
    with pytest.raises(ArchiveError, match=r"repeats: archive 3, now 1.*--alma-search-archive"):
        archive.bind_settings({"envs": ["babaisai"], "repeats": 1})


def test_an_archive_of_another_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite3"
    Archive(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(ArchiveError, match="schema 99"):
        Archive(path)


def test_attempts_are_recorded_in_order_and_a_resumed_attempt_overwrites_itself(
    tmp_path: Path,
) -> None:
    archive = Archive(tmp_path / "a.sqlite3")
    archive.add_attempt("g1.0", 0, "code0", "contract", False, "boom")
    archive.add_attempt("g1.0", 1, "code1", "smoke", True, None)
    archive.add_attempt("g1.0", 1, "code1", "smoke", True, None)
    attempts = archive.attempts("g1.0")
    assert [(a["attempt"], a["ok"], a["failure"]) for a in attempts] == [
        (0, 0, "boom"),
        (1, 1, None),
    ]
