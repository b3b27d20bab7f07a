"""The scripted MiniHack player (a test double): parsing, path finding, exploring, robustness,
and one walk through real NLE."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import openai
import pytest

from pytest_alma.llm.scripted import ScriptedServer, builtin_policies
from pytest_alma.llm.scripted_babaisai import BabaIsAIPolicy
from pytest_alma.llm.scripted_minihack import (
    DEFAULT_ACTIONS,
    DIRECTIONS,
    SEARCH_TURNS,
    MiniHackPolicy,
    Terrain,
    available_actions,
    choose_action,
    is_dead_end,
    parse_observation,
    read_history,
)

EIGHT = ("north", "east", "south", "west", "northeast", "southeast", "southwest", "northwest")
FOUR = ("north", "east", "south", "west")
CORRIDOR = (*EIGHT, "open", "kick", "search")
DELTAS = DIRECTIONS


def system_prompt(actions: Sequence[str] = EIGHT) -> str:
    listed = "\n".join(f"{name}: {name} (a description)" for name in actions)
    return (
        "You are an agent playing MiniHack. The following are the possible actions you can take"
        f" in the game, followed by a short description of each action:\n\nAvailable actions:\n"
        f"{listed}\n\nIn a moment I will present you an observation. PLAY!"
    )


def observation(map_lines: Sequence[str], message: str = "", *, prefix: bool = True) -> str:
    """The observation text for ``map_lines`` (map line i is tty row i + 1), cursor on ``@``."""
    row = next(i for i, line in enumerate(map_lines) if "@" in line)
    col = map_lines[row].index("@")
    body = (
        f"inventory:\na: a +0 short sword (weapon in hand)\n\nmessage:\n{message}\n\n"
        f"language observation:\nstairs down near east\n\ncursor:\nYourself a rogue\n"
        f"(x={col}, y={row + 1})\n\nmap:\n" + "\n".join(map_lines)
    )
    return ("Observation:\n" + body) if prefix else body


def conversation(
    *observations: str, actions: Sequence[str] = EIGHT, replies: Sequence[str] = ()
) -> list[dict[str, str]]:
    """System prompt, then observation / reply pairs, ending with the last observation."""
    messages = [{"role": "system", "content": system_prompt(actions)}]
    for index, text in enumerate(observations):
        messages.append({"role": "user", "content": text})
        if index < len(observations) - 1:
            reply = replies[index] if index < len(replies) else "wait"
            messages.append({"role": "assistant", "content": reply})
    return messages


def ask(map_lines: Sequence[str], actions: Sequence[str] = EIGHT, message: str = "") -> str:
    return MiniHackPolicy().reply(
        conversation(observation(map_lines, message), actions=actions), {}
    )


def place(map_lines: Sequence[str], cell: tuple[int, int]) -> list[str]:
    """``map_lines`` with the ``@`` moved to ``cell`` (the old cell becomes floor)."""
    lines = [line.replace("@", ".") for line in map_lines]
    row, col = cell
    lines[row] = lines[row][:col] + "@" + lines[row][col + 1 :]
    return lines


ROOM = [
    "",
    " -------",
    " |@....|",
    " |.....|",
    " |....>|",
    " -------",
]


def test_matches_minihack_prompts_only() -> None:
    policy = MiniHackPolicy()
    assert policy.matches(conversation(observation(ROOM)))
    baba = [
        {"role": "system", "content": "You are playing Baba Is You. Available actions: idle, up"},
        {"role": "user", "content": "Active rules:\nbaba is you"},
    ]
    assert not policy.matches(baba)
    assert not BabaIsAIPolicy().matches(conversation(observation(ROOM)))
    kinds = [type(p) for p in builtin_policies()]
    assert kinds.index(BabaIsAIPolicy) < kinds.index(MiniHackPolicy)


def test_action_list_parsing() -> None:
    assert available_actions(system_prompt(CORRIDOR)) == list(CORRIDOR)
    # The list ends at the first blank line after it; later "x: y" lines are not actions.
    prompt = "MiniHack\nAvailable actions:\nnorth: move north\nfar east: run\n\nnote: no action"
    assert available_actions(prompt) == ["north", "far east"]
    assert available_actions("garbage") == list(DEFAULT_ACTIONS)


def test_parses_sections_with_or_without_prefix() -> None:
    for prefix in (True, False):
        parsed = parse_observation(observation(ROOM, "Hello  Agent", prefix=prefix))
        assert parsed is not None
        assert parsed.agent == (2, 2)
        assert parsed.message == "Hello  Agent"
        assert parsed.grid[4] == " |....>|"


def test_status_lines_are_not_map() -> None:
    status = [
        "Agent the Footpad   St:15 Dx:18 Co:16 In:11 Wi:9 Ch:6 Chaotic S:0",
        "Dlvl:1 $:0 HP:12(12) Pw:2(2) AC:7 Xp:1/0",
    ]
    parsed = parse_observation(observation([*ROOM, *status]))
    assert parsed is not None
    assert len(parsed.grid) == len(ROOM)


def test_cursor_wins_over_another_at_sign_and_missing_cursor_falls_back() -> None:
    lines = [" @...", " ..@.>"]
    text = "cursor:\nYourself a rogue\n(x=3, y=2)\n\nmap:\n" + "\n".join(lines)
    parsed = parse_observation(text)
    assert parsed is not None and parsed.agent == (1, 3)
    parsed = parse_observation("map:\n" + "\n".join(lines))
    assert parsed is not None and parsed.agent == (0, 1)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([" @..>"], "east"),
        ([" >..@"], "west"),
        (["   >", "   .", "   .", "   @"], "north"),
        ([" @...", " .....", " ....>"], "southeast"),
        ([" ....>", " .....", " @...."], "northeast"),
    ],
)
def test_walks_toward_visible_stairs(lines: list[str], expected: str) -> None:
    assert ask(lines) == expected


def walk(
    map_lines: Sequence[str],
    actions: Sequence[str],
    limit: int,
    decide: Callable[[list[dict[str, str]]], str] | None = None,
) -> list[str]:
    """Play the policy on a static map (moves into ``|`` ``-`` ``' '`` fail) until ``>``."""
    policy = MiniHackPolicy()
    decide = decide or (lambda messages: policy.reply(messages, {}))
    lines = list(map_lines)
    row, col = next((r, line.index("@")) for r, line in enumerate(lines) if "@" in line)
    goal = next((r, line.index(">")) for r, line in enumerate(lines) if ">" in line)
    texts, replies = [observation(lines)], []
    while (row, col) != goal and len(replies) < limit:
        action = decide(conversation(*texts, actions=actions, replies=replies))
        assert action in actions
        replies.append(action)
        dr, dc = DELTAS.get(action, (0, 0))
        r, c = row + dr, col + dc
        target = lines[r][c] if 0 <= r < len(lines) and 0 <= c < len(lines[r]) else " "
        if target not in "|- ":
            row, col = row + dr, col + dc
        texts.append(observation(place(map_lines, (row, col))))
    return replies


def test_reaches_the_stairs_on_a_static_map() -> None:
    # 8 moves: Chebyshev distance; 4 moves: Manhattan distance.
    assert len(walk(ROOM, EIGHT, 20)) == 4
    four = walk(ROOM, FOUR, 20)
    assert len(four) == 6
    assert set(four) <= set(FOUR)


def test_respects_a_four_move_action_list() -> None:
    assert ask([" @...", " .....", " ....>"], FOUR) in ("east", "south")
    # The far variants count when the single steps are not offered.
    assert ask([" @..>"], ("far east", "far west")) == "far east"


def test_no_diagonal_step_into_a_doorway() -> None:
    # The open door "-" (NetHack draws it across its wall line) is north-west of the agent: the
    # diagonal would be refused, so the way in is north, then west.
    lines = [
        "",
        "      -------",
        "      |..>...-#",
        "      |.....  @##",
        "      |...      #",
    ]
    assert ask(lines) == "north"
    assert Terrain(tuple(lines)).is_door((2, 13))
    # A wall piece between two doorways, the agent beside it, is not taken for a door.
    wall = Terrain((" .", " |@", " ."))
    assert not wall.is_door((1, 1))
    assert not wall.passable((1, 1), avoid=False)


def test_avoids_traps_when_it_can() -> None:
    lines = [" .....", " @^..>", " ....."]
    assert ask(lines) in ("northeast", "southeast")
    assert ask([" @^>"]) == "east"  # no other way


def test_explores_toward_unexplored_space() -> None:
    # No stairs in sight: the doorway on the east wall is the only cell next to unexplored space.
    lines = [
        "",
        " -----",
        " |@..|",
        " |....",
        " |...|",
        " -----",
    ]
    assert ask(lines) == "southeast"
    # A corridor leading west out of sight.
    assert ask(["  ####@"]) == "west"


def test_prefers_frontier_cells_it_has_not_stood_on() -> None:
    # Corridor ends east and west of the agent, both next to unexplored space: the tie-break
    # picks east, unless the agent has stood on the east end already.
    lines = ["  #@#"]
    assert ask(lines) == "east"
    texts = [observation(place(lines, (0, 4))), observation(lines)]
    assert MiniHackPolicy().reply(conversation(*texts, replies=["west"]), {}) == "west"


def test_learns_blocked_cells_from_refused_moves() -> None:
    lines = [" @.>"]
    bumped = observation(lines, "It's solid stone.")
    history = read_history(conversation(observation(lines), bumped, replies=["east"]))
    assert history.blocked == {(0, 2)}
    diagonal = observation(lines, "You can't move diagonally out of an intact doorway.")
    history = read_history(conversation(observation(lines), diagonal, replies=["northeast"]))
    assert history.doors == {(0, 1), (-1, 2)}
    assert history.positions == ((0, 1),)


def test_searches_at_a_dead_end_once_everything_is_visited() -> None:
    lines = ["   ###@", "   #", " ###"]
    cells = [(0, 6), (0, 5), (0, 4), (0, 3), (1, 3), (2, 3), (2, 2), (2, 1), (2, 2), (2, 3)]
    cells += [(1, 3), (0, 3), (0, 4), (0, 5), (0, 6)]
    texts = [observation(place(lines, cell)) for cell in cells]
    terrain = Terrain(tuple(lines))
    assert is_dead_end(terrain, (0, 6)) and not is_dead_end(terrain, (0, 5))
    messages = conversation(*texts, actions=CORRIDOR, replies=["move"] * len(texts))
    assert MiniHackPolicy().reply(messages, {}) == "search"
    # After SEARCH_TURNS fruitless searches it tours the other dead end.
    texts += [texts[-1]] * SEARCH_TURNS
    replies = ["move"] * (len(cells) - 1) + ["search"] * SEARCH_TURNS
    messages = conversation(*texts, actions=CORRIDOR, replies=replies)
    assert MiniHackPolicy().reply(messages, {}) == "west"


def test_answers_prompts() -> None:
    more = observation(ROOM, "You see here a scroll.--More--")
    assert MiniHackPolicy().reply(conversation(more, actions=(*EIGHT, "more")), {}) == "more"
    door = ["  |.|", "  |@+", "  ---"]
    assert ask(door, CORRIDOR, "This door is locked.") == "kick"
    assert ask(door, CORRIDOR, "In what direction?") == "east"
    assert ask(door, EIGHT, "This door is locked.") in EIGHT  # no kick: keep moving


GARBAGE = {
    "empty": "",
    "prefix only": "Observation:",
    "empty map": "map:",
    "cursor off the map": "cursor:\n(x=999, y=-5)\n\nmap:\n",
    "cursor on a wall": "cursor:\n(x=3, y=1)\n\nmap:\n|||||\n-----",
    "control bytes": "map:\n" + "\x00\x01\x02" * 50,
    "huge map without agent": "map:\n" + "\n".join(["#" * 300] * 40),
    "no map, more prompt": "inventory:\n\nmessage:\n--More--\n",
    "prose": "random words with @ and > in them",
    "walled in": "map:\n   @\n   `\n   }",
}


@pytest.mark.parametrize("text", GARBAGE.values(), ids=GARBAGE.keys())
def test_always_answers_a_listed_action(text: str) -> None:
    for actions in (EIGHT, FOUR, CORRIDOR, ("wait", "pickup")):
        messages = conversation(text, actions=actions)
        assert MiniHackPolicy().reply(messages, {}) in actions
    # No readable action list at all: a compass move.
    bare = [{"role": "system", "content": "MiniHack"}, {"role": "user", "content": text}]
    assert MiniHackPolicy().reply(bare, {}) in DEFAULT_ACTIONS


def test_is_deterministic() -> None:
    text = observation(["  ` ` @ ` `"])
    first = choose_action(text, EIGHT, step=3)
    assert all(choose_action(text, EIGHT, step=3) == first for _ in range(5))


def test_through_the_openai_sdk(scripted: ScriptedServer) -> None:
    client = openai.OpenAI(base_url=scripted.base_url, api_key="x", max_retries=0)
    messages: Any = conversation(observation(ROOM))
    reply = client.chat.completions.create(model="scripted", messages=messages)
    assert reply.choices[0].message.content == "southeast"


# -- one walk through real NLE ------------------------------------------------------------------


def _renderer() -> tuple[tuple[str, ...], Callable[[Any], str]]:
    """The project's observation builder when it imports; else a minimal one in its format."""
    try:
        from pytest_alma.envs.minihack.text import OBSERVATION_KEYS, observation_text
    except ImportError:
        keys = ("tty_chars", "tty_cursor", "glyphs", "blstats", "message", "inv_strs")

        def render(obs: Any) -> str:
            rows = [bytes(r).decode("latin-1").rstrip() for r in obs["tty_chars"]]
            message = bytes(obs["message"]).partition(b"\0")[0].decode("latin-1").strip()
            row, col = (int(v) for v in obs["tty_cursor"])  # (row, col) on the tty
            return (
                f"inventory:\n\nmessage:\n{message}\n\nlanguage observation:\n\n"
                f"cursor:\nYourself a rogue\n(x={col}, y={row})\n\nmap:\n" + "\n".join(rows[1:24])
            )

        return keys, render
    return OBSERVATION_KEYS, observation_text


@pytest.mark.parametrize("task", ["MiniHack-Room-5x5-v0", "MiniHack-Room-Random-5x5-v0"])
def test_reaches_the_stairs_in_nle(task: str) -> None:
    gymnasium = pytest.importorskip("gymnasium")
    pytest.importorskip("minihack")
    nethack = pytest.importorskip("nle.nethack")
    names = {
        nethack.CompassDirection.N: "north",
        nethack.CompassDirection.E: "east",
        nethack.CompassDirection.S: "south",
        nethack.CompassDirection.W: "west",
        nethack.CompassDirection.NE: "northeast",
        nethack.CompassDirection.SE: "southeast",
        nethack.CompassDirection.SW: "southwest",
        nethack.CompassDirection.NW: "northwest",
    }
    keys, render = _renderer()
    env = gymnasium.make(task, observation_keys=keys)
    try:
        actions = [names[a] for a in env.unwrapped.actions]
        policy = MiniHackPolicy()
        successes = 0
        for seed in range(5):
            # reset(seed=...) alone does not make NLE's level reproducible; seed its RNGs.
            env.unwrapped.seed(seed, seed, reseed=False)
            obs, _ = env.reset(seed=seed)
            messages: list[dict[str, str]] = [{"role": "system", "content": system_prompt(actions)}]
            for _ in range(50):
                messages.append({"role": "user", "content": "Observation:\n" + render(obs)})
                action = policy.reply(messages, {})
                assert action in actions
                messages.append({"role": "assistant", "content": action})
                obs, reward, terminated, truncated, _ = env.step(actions.index(action))
                if terminated or truncated:
                    break
            successes += bool(terminated and reward > 0)
            # A lit 5x5 room shows the stairs, at most 4 king's moves away.
            steps = (len(messages) - 1) // 2
            assert steps <= 4, f"seed {seed} took {steps} steps"
        assert successes == 5
    finally:
        env.close()
