"""The BALROG-style MiniHack text observation (docs/minihack.md, "The text observation").

Real states come from nle 1.3 + minihack 1.0.2 with NetHack seeded explicitly (gymnasium's
``reset(seed=...)`` alone does not seed NetHack's RNGs, so the same seed would not give the same
map) and its clock pinned as the harness pins it (otherwise the start message and the luck
depend on the date: "You are lucky!  Full moon tonight."). Synthetic observations (a
stone-filled map with a few glyphs and descriptions) cover the distance and compass words
exactly.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # minihack 1.0.2 imports the deprecated pkg_resources
    import minihack  # noqa: F401  (registers the MiniHack gym ids)
from nle import nethack

from pytest_alma.envs.minihack import clock, language, text
from pytest_alma.envs.minihack.language import (
    COMPASS_WORDS,
    DISTANCE_WORDS,
    GLYPH_CMAP_OFF,
    compass_index,
    distance_index,
    language_lines,
)
from pytest_alma.envs.minihack.text import (
    OBSERVATION_KEYS,
    SECTION_HEADERS,
    cursor_text,
    inventory_text,
    map_lines,
    message_text,
    observation_text,
    self_description,
)

Obs = dict[str, npt.NDArray[Any]]

# ---------------------------------------------------------------------------------------------
# Real NLE states


@cache
def _play(task: str, seed: int, actions: tuple[int, ...] = ()) -> Obs:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium's passive checker warns about NLE's spaces
        env: Any = gym.make(task, observation_keys=OBSERVATION_KEYS)
    try:
        clock.pin_env(env)  # the harness's pinned date: the same text on any day
        env.unwrapped.seed(seed, seed, False)  # core, disp; no anti-TAS reseeding
        obs, _ = env.reset(seed=seed)
        for action in actions:
            obs, *_ = env.step(action)
        # NLE refills the same buffers on every step: keep copies.
        return {key: np.array(value, copy=True) for key, value in obs.items()}
    finally:
        env.close()


def play(task: str, seed: int = 0, actions: Sequence[int] = ()) -> Obs:
    """The observation after reset(seed) and ``actions`` (indices into the task's actions)."""
    return _play(task, seed, tuple(actions))


def sections(observation: str) -> dict[str, list[str]]:
    """Split a text observation into {header: body lines} by the known headers."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in observation.split("\n"):
        if line in SECTION_HEADERS and line not in out:
            current = line
            out[current] = []
        else:
            out[current].append(line)
    return out


def agent_from_text(observation: str) -> tuple[int, int, list[str]]:
    """What a scripted policy reads: the cursor's (x, y) and the map lines."""
    parts = sections(observation)
    match = re.fullmatch(r"\(x=(\d+), y=(\d+)\)", parts["cursor:"][1])
    assert match is not None
    return int(match[1]), int(match[2]), parts["map:"]


# Quest-Easy, seed 0 (a caveman by a lava river; docs/minihack.md shows the same text).
QUEST_EASY_SEED_0 = """\
inventory:
a: a +1 club (weapon in hand)
b: a +2 sling (alternate weapon; not wielded)
c: 17 uncursed flint stones (in quiver pouch)
d: 30 uncursed rocks
e: an uncursed +0 leather armor (being worn)
f: a horn
g: a tin wand

message:
f - a horn.  g - a tin wand.

language observation:
horizontal wall very near northwest and northnorthwest and north and northnortheast \
and northeast and eastnortheast
vertical wall very near southsouthwest and southwest and westsouthwest and west and westnorthwest
horizontal wall near eastsoutheast and southeast and southsoutheast and south \
and southsouthwest and eastnortheast
molten lava near east and eastsoutheast and southeast and eastnortheast
horizontal wall far east and eastsoutheast and eastnortheast
lichen far east
staircase down far east
vertical wall far east

cursor:
Yourself a caveman
(x=26, y=10)

map:







                        --------------
                        |.....}......---
                        |.@...}........-
                        |.....}..........F........>.|
                        |.....}........--------     |
                        |.....}......---
                        --------------







Agent the Troglodyte           St:18/02 Dx:10 Co:18 In:10 Wi:11 Ch:6 Neutral S:
Dlvl:1 $:0 HP:16(16) Pw:2(2) AC:8 Xp:1/0"""


def test_quest_easy_seed_0_whole_text() -> None:
    assert observation_text(play("MiniHack-Quest-Easy-v0")) == QUEST_EASY_SEED_0


def test_docs_show_the_example_verbatim() -> None:
    docs = Path(__file__).resolve().parents[3] / "docs" / "minihack.md"
    assert f"```\n{QUEST_EASY_SEED_0}\n```" in docs.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "task",
    [
        "MiniHack-Room-5x5-v0",
        "MiniHack-MazeWalk-9x9-v0",
        "MiniHack-Corridor-R3-v0",
        "MiniHack-Quest-Easy-v0",
    ],
)
def test_all_five_parts_in_order(task: str) -> None:
    observation = observation_text(play(task))
    assert list(sections(observation)) == list(SECTION_HEADERS)
    assert sections(observation)["inventory:"][0].startswith("a: ")
    assert len(sections(observation)["map:"]) == 23
    # Consecutive sections are separated by exactly one blank line.
    for header in SECTION_HEADERS[1:]:
        assert f"\n\n{header}\n" in observation


def test_mazewalk_9x9_seed_0_after_two_steps_south() -> None:
    # MazeWalk's walls are solid rock (blank): the maze shows only floor and the up stairs the
    # agent started on. Action 2 is "south" in MazeWalk's action set.
    obs = play("MiniHack-MazeWalk-9x9-v0", 0, [2, 2])
    assert language.language_observation(obs) == "staircase up very near north"
    assert cursor_text(obs) == "cursor:\nYourself a rogue\n(x=36, y=11)"
    assert message_text(obs) == "message:\n"  # nothing was said: an empty body line


def test_room_5x5_seed_0() -> None:
    obs = play("MiniHack-Room-5x5-v0")
    assert language.language_observation(obs) == "staircase down near southeast"
    assert cursor_text(obs) == "cursor:\nYourself a rogue\n(x=36, y=10)"
    # The pinned date is a last-quarter moon: no "You are lucky!  Full moon tonight."
    assert message_text(obs) == (
        "message:\nHello Agent, welcome to NetHack!  You are a chaotic male human Rogue."
    )
    assert inventory_text(obs).split("\n")[:2] == [
        "inventory:",
        "a: a +0 short sword (weapon in hand)",
    ]
    lines = map_lines(obs)
    assert lines[9] == " " * 36 + "@...."  # tty row 10
    assert lines[13] == " " * 36 + "....>"
    assert lines[21].startswith("Agent the Footpad")
    assert lines[22].startswith("Dlvl:1 $:0 HP:12(12)")
    assert all(line == line.rstrip() for line in lines)


def test_corridor_r3_seed_0_language() -> None:
    assert language_lines(play("MiniHack-Corridor-R3-v0")) == [
        "doorway adjacent southwest and northwest",
        "vertical wall adjacent west",
        "horizontal wall very near northnorthwest and north and northnortheast and northeast and "
        "eastnortheast",
        "vertical wall very near southsouthwest",
        "horizontal wall near southeast and southsoutheast and south and southsouthwest and "
        "eastnortheast",
        "vertical wall near east and eastsoutheast and southeast and eastnortheast",
    ]


@pytest.mark.parametrize(
    ("task", "actions"),
    [
        ("MiniHack-Room-5x5-v0", []),
        ("MiniHack-Quest-Easy-v0", [1, 1, 2]),
        # Action 8 is "open": NetHack asks "In what direction?" and the tty cursor moves to the
        # message line, while the text's cursor still points at the agent.
        ("MiniHack-Corridor-R3-v0", [8]),
    ],
)
def test_cursor_points_at_the_agent_on_the_map(task: str, actions: list[int]) -> None:
    obs = play(task, 0, actions)
    x, y, lines = agent_from_text(observation_text(obs))
    assert lines[y - 1][x] == "@"
    if actions == [8]:
        assert message_text(obs) == "message:\nIn what direction?"
        assert obs["tty_chars"][0].tobytes().startswith(b"In what direction?")


def reference_lines(obs: Obs) -> list[str]:
    """The language rules written as plainly as possible: every cell, read and sorted in Python."""
    ax, ay = int(obs["blstats"][0]), int(obs["blstats"][1])
    found: dict[tuple[int, str], set[int]] = {}
    rows, cols = obs["glyphs"].shape
    for y in range(rows):
        for x in range(cols):
            if (x, y) == (ax, ay):
                continue
            glyph = int(obs["glyphs"][y, x])
            name = obs["screen_descriptions"][y, x].tobytes().split(b"\0")[0].decode().strip()
            if nethack.glyph_is_cmap(glyph) and 1 <= nethack.glyph_to_cmap(glyph) <= 11:
                drawn = nethack.symdef.from_idx(nethack.glyph_to_cmap(glyph)).sym
                name = "vertical wall" if drawn in ("|", ord("|")) else "horizontal wall"
            name = name.removeprefix("a ") if name.startswith("a ") else name.removeprefix("an ")
            if name in ("", "floor of a room", "dark part of a room"):
                continue
            distance = distance_index(x - ax, y - ay)
            found.setdefault((distance, name), set()).add(compass_index(x - ax, y - ay))
    return [
        f"{name} {DISTANCE_WORDS[distance]} "
        + " and ".join(
            COMPASS_WORDS[c] for c in sorted(found[distance, name], key=lambda c: -c % 16)
        )
        for distance, name in sorted(found)
    ]


@pytest.mark.parametrize(
    "task",
    [
        "MiniHack-MazeWalk-15x15-v0",
        "MiniHack-Corridor-R3-v0",
        "MiniHack-CorridorBattle-Dark-v0",
        "MiniHack-Quest-Easy-v0",
        "MiniHack-Quest-Medium-v0",
        "MiniHack-Room-Monster-15x15-v0",
        "MiniHack-KeyRoom-S5-v0",
    ],
)
def test_language_matches_a_plain_reference_and_cursor_finds_the_agent(task: str) -> None:
    rng = np.random.default_rng(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env: Any = gym.make(task, observation_keys=OBSERVATION_KEYS)
    try:
        clock.pin_env(env)
        env.unwrapped.seed(3, 3, False)
        obs, _ = env.reset(seed=3)
        for step in range(40):
            if step % 8 == 0:
                assert language_lines(obs) == reference_lines(obs), step
                x, y, lines = agent_from_text(observation_text(obs))
                assert lines[y - 1][x] == "@"
            obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            if terminated or truncated:
                obs, _ = env.reset()
    finally:
        env.close()


def test_constants_match_nle() -> None:
    assert nethack.GLYPH_CMAP_OFF == GLYPH_CMAP_OFF
    assert nethack.MAX_GLYPH == language.MAX_GLYPH
    assert (language.MAP_ROWS, language.MAP_COLS) == nethack.DUNGEON_SHAPE
    explain = [nethack.symdef.from_idx(i).explanation for i in range(21)]
    assert explain[19] == "floor of a room"
    assert explain[20] == "dark part of a room"
    assert explain[1:12] == ["wall"] * 11
    assert nethack.symdef.from_idx(0).sym in (" ", ord(" "))
    # The wall pieces we call vertical are exactly those the tty draws as "|".
    drawn = {i: nethack.symdef.from_idx(i).sym for i in range(1, 12)}
    vertical = {i for i, sym in drawn.items() if sym in ("|", ord("|"))}
    assert vertical == set(language._VERTICAL_WALL_SYMS)
    assert nethack.NLE_BL_X == 0
    assert nethack.NLE_BL_Y == 1


# ---------------------------------------------------------------------------------------------
# Synthetic observations

STONE = GLYPH_CMAP_OFF + 0
ROOM = GLYPH_CMAP_OFF + 19
DARKROOM = GLYPH_CMAP_OFF + 20
THING = nethack.GLYPH_OBJ_OFF  # any glyph whose kind is read from screen_descriptions
AX, AY = 40, 10


def fake_obs(
    cells: dict[tuple[int, int], str | int] | None = None,
    agent: tuple[int, int] = (AX, AY),
    message: str = "",
    inventory: Sequence[tuple[str, str]] = (),
) -> Obs:
    """A stone map with the agent at ``agent`` and ``cells`` at absolute (x, y).

    A cell's value is a description (on glyph THING) or a glyph (with no description).
    """
    rows, cols = nethack.DUNGEON_SHAPE
    glyphs = np.full((rows, cols), STONE, dtype=np.int16)
    descriptions = np.zeros((rows, cols, 80), dtype=np.uint8)

    def describe(x: int, y: int, value: str) -> None:
        raw = value.encode()
        descriptions[y, x, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)

    ax, ay = agent
    glyphs[ay, ax] = nethack.GLYPH_MON_OFF  # an ordinary monster glyph stands for the hero
    describe(ax, ay, "human knight called Agent")
    for (x, y), value in (cells or {}).items():
        if isinstance(value, str):
            glyphs[y, x] = THING
            describe(x, y, value)
        else:
            glyphs[y, x] = value
    blstats = np.zeros(nethack.BLSTATS_SHAPE, dtype=np.int64)
    blstats[nethack.NLE_BL_X], blstats[nethack.NLE_BL_Y] = ax, ay
    tty = np.full((24, 80), ord(" "), dtype=np.uint8)
    tty[ay + 1, ax] = ord("@")
    msg = np.zeros(256, dtype=np.uint8)
    msg[: len(message)] = np.frombuffer(message.encode(), dtype=np.uint8)
    letters = np.zeros(55, dtype=np.uint8)
    strs = np.zeros((55, 80), dtype=np.uint8)
    for i, (letter, item) in enumerate(inventory):
        letters[i] = ord(letter)
        strs[i, : len(item)] = np.frombuffer(item.encode(), dtype=np.uint8)
    return {
        "glyphs": glyphs,
        "screen_descriptions": descriptions,
        "blstats": blstats,
        "tty_chars": tty,
        "message": msg,
        "inv_letters": letters,
        "inv_strs": strs,
    }


def around(offsets: dict[tuple[int, int], str | int]) -> Obs:
    """fake_obs with cells given as (dx, dy) offsets from the agent."""
    return fake_obs({(AX + dx, AY + dy): value for (dx, dy), value in offsets.items()})


def _with_text(obs: Obs, x: int, y: int, value: str) -> Obs:
    """``obs`` with the description of cell (x, y) replaced by ``value``."""
    obs["screen_descriptions"][y, x] = 0
    raw = value.encode()
    obs["screen_descriptions"][y, x, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return obs


#: One offset per compass word (dy grows southwards), all at Chebyshev distance 3.
COMPASS_OFFSETS = {
    "east": (3, 0),
    "eastnortheast": (3, -1),
    "northeast": (3, -3),
    "northnortheast": (1, -3),
    "north": (0, -3),
    "northnorthwest": (-1, -3),
    "northwest": (-3, -3),
    "westnorthwest": (-3, -1),
    "west": (-3, 0),
    "westsouthwest": (-3, 1),
    "southwest": (-3, 3),
    "southsouthwest": (-1, 3),
    "south": (0, 3),
    "southsoutheast": (1, 3),
    "southeast": (3, 3),
    "eastsoutheast": (3, 1),
}


@pytest.mark.parametrize(("word", "offset"), COMPASS_OFFSETS.items())
def test_compass_words(word: str, offset: tuple[int, int]) -> None:
    assert COMPASS_WORDS[compass_index(*offset)] == word
    assert language_lines(around({offset: "a boulder"})) == [f"boulder very near {word}"]


def test_compass_sectors_are_22_5_degrees_wide() -> None:
    # Sector boundaries lie at 11.25 + k * 22.5 degrees from east, counter-clockwise.
    assert COMPASS_WORDS[compass_index(6, -1)] == "east"  # 9.46 degrees
    assert COMPASS_WORDS[compass_index(5, -1)] == "eastnortheast"  # 11.31
    assert COMPASS_WORDS[compass_index(3, -2)] == "eastnortheast"  # 33.69
    assert COMPASS_WORDS[compass_index(2, -3)] == "northnortheast"  # 56.31
    assert COMPASS_WORDS[compass_index(-6, 1)] == "west"  # -170.54


def test_all_sixteen_directions_on_one_line_clockwise_from_east() -> None:
    lines = language_lines(around(dict.fromkeys(COMPASS_OFFSETS.values(), "boulder")))
    clockwise = [COMPASS_WORDS[(16 - k) % 16] for k in range(16)]
    assert clockwise[:5] == ["east", "eastsoutheast", "southeast", "southsoutheast", "south"]
    assert lines == ["boulder very near " + " and ".join(clockwise)]


@pytest.mark.parametrize(
    ("offset", "word"),
    [
        ((1, 0), "adjacent"),
        ((1, 1), "adjacent"),
        ((2, 0), "very near"),
        ((3, -2), "very near"),
        ((4, 0), "near"),
        ((7, 7), "near"),
        ((8, 0), "far"),
        ((-40, 0), "far"),
        ((0, 9), "far"),
    ],
)
def test_distance_words(offset: tuple[int, int], word: str) -> None:
    assert DISTANCE_WORDS[distance_index(*offset)] == word
    direction = COMPASS_WORDS[compass_index(*offset)]
    assert language_lines(around({offset: "fountain"})) == [f"fountain {word} {direction}"]


def test_lines_by_distance_then_name_and_one_line_per_distance_word() -> None:
    lines = language_lines(
        around(
            {
                (0, -1): "a boulder",
                (1, 0): "an apple",
                (-1, 0): "a boulder",
                (0, 5): "a boulder",
                (5, 0): "some gems",
                (20, 0): "jackal",
                (0, 2): "fountain",
            }
        )
    )
    assert lines == [
        "apple adjacent east",
        "boulder adjacent west and north",
        "fountain very near south",
        "boulder near south",
        "some gems near east",
        "jackal far east",
    ]


def test_skipped_cells() -> None:
    obs = around(
        {
            (1, 0): ROOM,
            (2, 0): DARKROOM,
            (3, 0): STONE,
            (0, 1): "floor of a room",
            (0, 2): "dark part of a room",
            (0, 3): "",  # a glyph with no description
        }
    )
    assert language_lines(obs) == []
    # The agent's own cell is never described, whatever its glyph says.
    assert language_lines(fake_obs()) == []


def test_walls_are_named_by_their_tty_symbol() -> None:
    cells: dict[tuple[int, int], str | int] = {
        (1, 0): GLYPH_CMAP_OFF + 1,  # S_vwall "|"
        (-1, 0): GLYPH_CMAP_OFF + 10,  # S_tlwall "|"
        (0, -1): GLYPH_CMAP_OFF + 2,  # S_hwall "-"
        (0, 1): GLYPH_CMAP_OFF + 3,  # S_tlcorn "-"
        (5, 5): GLYPH_CMAP_OFF + 7,  # S_crwall "-"
    }
    assert language_lines(around(cells)) == [
        "horizontal wall adjacent south and north",
        "vertical wall adjacent east and west",
        "horizontal wall near southeast",
    ]


FOUNTAIN = GLYPH_CMAP_OFF + 31  # S_fountain: its text is read once, then known by glyph
DOORWAY = GLYPH_CMAP_OFF + 12  # S_ndoor: "doorway" or "broken door", read every time


def test_feature_text_is_read_once_per_glyph_other_texts_every_time() -> None:
    first = _with_text(around({(2, 0): FOUNTAIN}), AX + 2, AY, "fountain")
    assert language_lines(first) == ["fountain very near east"]
    # Later cells of the same glyph are not read again (NetHack gives them the same text).
    later = _with_text(around({(0, 2): FOUNTAIN}), AX, AY + 2, "not read")
    assert language_lines(later) == ["fountain very near south"]
    for text_ in ("broken door", "doorway"):
        obs = _with_text(around({(1, 0): DOORWAY}), AX + 1, AY, text_)
        assert language_lines(obs) == [f"{text_} adjacent east"]


def test_a_kind_known_by_glyph_and_one_read_from_text_share_a_line() -> None:
    obs = _with_text(around({(2, 0): FOUNTAIN, (-2, 0): "fountain"}), AX + 2, AY, "fountain")
    assert language_lines(obs) == ["fountain very near east and west"]


@pytest.mark.parametrize("agent", [(0, 0), (78, 20), (0, 20), (78, 0)])
def test_agent_in_a_map_corner(agent: tuple[int, int]) -> None:
    x, y = agent
    other = (78 - x, 20 - y)
    lines = language_lines(fake_obs({other: "tree"}, agent=agent))
    dx, dy = other[0] - x, other[1] - y
    assert lines == [f"tree far {COMPASS_WORDS[compass_index(dx, dy)]}"]


def test_empty_inventory_and_message() -> None:
    obs = fake_obs()
    assert inventory_text(obs) == "inventory:\n"
    assert message_text(obs) == "message:\n"
    observation = observation_text(obs)
    assert observation.startswith("inventory:\n\n\nmessage:\n\n\nlanguage observation:\n\n\n")
    assert list(sections(observation)) == list(SECTION_HEADERS)
    x, y, lines = agent_from_text(observation)
    assert (x, y) == (AX, AY + 1)
    assert lines[y - 1][x] == "@"


def test_inventory_lines() -> None:
    obs = fake_obs(inventory=[("a", "a +0 short sword (weapon in hand)"), ("$", "5 gold pieces")])
    assert inventory_text(obs) == (
        "inventory:\na: a +0 short sword (weapon in hand)\n$: 5 gold pieces"
    )


@pytest.mark.parametrize(
    ("description", "role"),
    [
        ("human knight called Agent", "knight"),
        ("human priestess called Agent", "priestess"),
        ("dwarven valkyrie called Agent", "valkyrie"),
        ("invisible elven wizard called Agent", "wizard"),
        ("gnomish archeologist called Agent", "archeologist"),
        ("orcish barbarian called Agent", "barbarian"),
        ("newt called Agent", "newt"),  # polymorphed
        ("", text.UNKNOWN_SELF),
    ],
)
def test_self_description(description: str, role: str) -> None:
    obs = _with_text(fake_obs(), AX, AY, description)
    assert self_description(obs) == role
    assert cursor_text(obs) == f"cursor:\nYourself a {role}\n(x={AX}, y={AY + 1})"
