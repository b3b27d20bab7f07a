"""Generating, caching and playing TextWorld games, offline, with the real textworld package.

One small game per family is generated once per module (a few seconds each) into a temporary
folder; everything else reuses it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("textworld", reason="TextWorld tests need pip install -e '.[textworld]'")

from pytest_alma.envs.base import (
    Environment,
    Episode,
    InvalidAction,
    instructions_for,
)
from pytest_alma.envs.textworld import generate
from pytest_alma.envs.textworld.adapter import (
    TextWorldEnvironment,
    TextWorldEpisode,
    clean_observation,
)
from pytest_alma.envs.textworld.generate import GameFiles, ensure_game
from pytest_alma.envs.textworld.tasks import UnknownTaskError
from pytest_alma.records import Task

SMALL = {
    "treasure_hunter": "tw-treasure_hunter-L1-s1",
    "cooking": "tw-cooking-L1-s1",
    "coin_collector": "tw-coin_collector-L1-s1",
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tw_games")


@pytest.fixture(scope="module")
def games(folder: Path) -> dict[str, GameFiles]:
    return {family: ensure_game(task_id, folder) for family, task_id in SMALL.items()}


@pytest.fixture(scope="module")
def env(folder: Path) -> TextWorldEnvironment:
    return TextWorldEnvironment(str(folder))


def task(task_id: str) -> Task:
    return Task(env="textworld", task_id=task_id, split="all", seed=0)


@pytest.mark.parametrize("family", list(SMALL))
def test_walkthrough_wins(
    family: str, games: dict[str, GameFiles], env: TextWorldEnvironment
) -> None:
    files = games[family]
    assert files.game_file.is_file() and files.json_file.is_file()
    assert files.meta()["generation"]["challenge"] == f"tw-{family}"
    episode = env.open(task(SMALL[family]), max_steps=80)
    try:
        start = episode.reset()
        assert start.goal and start.goal in instructions_for(env, episode)
        assert start.goal not in start.observation  # the objective is cut from the first text
        assert "$$" not in start.observation  # no banner
        assert start.actions and set(start.actions) == set(episode.valid_actions())
        assert episode.score() == (0.0, False)
        policy = episode.policy_commands()
        assert policy
        result = None
        for command in policy:
            assert not episode.score()[1]
            result = episode.step(command)
            assert not result.observation.rstrip().endswith(">")
            assert "=-0/" not in result.observation  # no z-machine status line
        assert result is not None and result.done
        assert result.info["won"]
        assert episode.score() == (1.0, True)
        with pytest.raises(RuntimeError, match="has ended"):
            episode.step("look")
    finally:
        episode.close()


def test_game_metadata_walkthrough_also_wins(games: dict[str, GameFiles]) -> None:
    files = games["coin_collector"]
    episode = TextWorldEpisode(task(files.spec.task_id), files, 80)
    episode.reset()
    for command in files.walkthrough():
        result = episode.step(command)
    assert result.done and episode.score() == (1.0, True)
    episode.close()


def test_cooking_gives_partial_credit(
    games: dict[str, GameFiles], env: TextWorldEnvironment
) -> None:
    episode = env.open(task(SMALL["cooking"]), max_steps=80)
    episode.reset()
    policy = episode.policy_commands()
    rewards = [episode.step(command).reward for command in policy[:-1]]
    score, success = episode.score()
    assert 0.0 < score < 1.0 and not success  # points for steps done, not yet won
    assert sum(rewards) == pytest.approx(score)
    episode.close()


def test_same_seed_gives_the_same_game(games: dict[str, GameFiles], tmp_path: Path) -> None:
    first = games["treasure_hunter"]
    again = ensure_game(first.spec, tmp_path)
    assert again.generated
    assert again.game_file.read_bytes() == first.game_file.read_bytes()
    assert again.json_file.read_bytes() == first.json_file.read_bytes()
    other = ensure_game("tw-treasure_hunter-L1-s2", tmp_path)
    assert other.json_file.read_bytes() != first.json_file.read_bytes()


def test_cache_avoids_regeneration(games: dict[str, GameFiles], folder: Path) -> None:
    count = generate.generation_count
    files = games["cooking"]
    mtime = files.game_file.stat().st_mtime_ns
    again = ensure_game(SMALL["cooking"], folder)
    assert not again.generated
    assert again.folder == files.folder
    assert generate.generation_count == count
    assert again.game_file.stat().st_mtime_ns == mtime
    # Nothing half-written is left behind.
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_cache_folder_from_environment_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(generate.GAMES_ENV_VAR, str(tmp_path / "games"))
    assert generate.games_dir() == tmp_path / "games"
    monkeypatch.delenv(generate.GAMES_ENV_VAR)
    assert generate.games_dir() == Path(".alma") / "textworld_games"


def test_cache_key_covers_what_affects_the_game() -> None:
    from pytest_alma.envs.textworld.tasks import GameSpec

    keys = {
        generate.cache_key(GameSpec("treasure_hunter", 1, 1)),
        generate.cache_key(GameSpec("treasure_hunter", 2, 1)),
        generate.cache_key(GameSpec("treasure_hunter", 1, 2)),
        generate.cache_key(GameSpec("coin_collector", 1, 1)),
    }
    assert len(keys) == 4


def test_environment_protocol(env: TextWorldEnvironment, games: dict[str, GameFiles]) -> None:
    assert isinstance(env, Environment)
    assert env.name == "textworld"
    assert env.default_split() == "eval_in_distribution"
    assert env.default_max_steps() == 80
    assert env.default_action() == "look"
    assert env.tasks("train") == env.tasks("train")
    settings = env.settings()
    assert settings["textworld"] and settings["goal_in_prompt"] is True
    episode = env.open(task(SMALL["treasure_hunter"]), max_steps=80)
    assert isinstance(episode, Episode)
    episode.reset()
    with pytest.raises(InvalidAction, match="shorter than 256"):
        episode.step("x" * 256)
    result = episode.step("dance wildly")  # free text goes to TextWorld's parser
    assert not result.done and result.reward == 0.0 and result.observation
    assert episode.step(env.default_action()).observation
    episode.close()


def test_bad_task_id_is_a_clear_error(env: TextWorldEnvironment) -> None:
    with pytest.raises(UnknownTaskError, match="tw-<family>-L<level>-s<seed>"):
        env.open(task("treasure_hunter-5"), max_steps=80)
    with pytest.raises(UnknownTaskError, match="out of range"):
        env.open(task("tw-coin_collector-L301-s1"), max_steps=80)


def test_clean_observation() -> None:
    raw = (
        "\n\n  ____ \n | $$ |\n\nWelcome! Find the key.\n\n-= Hall =-\nA hall.\n\n\n\n"
        ">                          -= Hall =-0/1"
    )
    assert clean_observation(raw, "Welcome! Find the key.") == "-= Hall =-\nA hall."
    assert clean_observation("\nYou take it.\n\n\n>  ") == "You take it."
    assert clean_observation("\nYou go.\n\n>   -= Bedroom =-1/12") == "You go."
