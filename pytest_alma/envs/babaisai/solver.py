"""Breadth-first search for shortest winning action sequences of a :class:`BabaGame`.

Used to check that generated levels are solvable and to measure their optimal length. Idle is
never tried: it changes nothing but the step counter (it does not even re-read the rules), so
it can never shorten a solution. States are deduplicated with :meth:`BabaGame.state_key`.
"""

from __future__ import annotations

from collections import deque

from pytest_alma.envs.babaisai.engine import DOWN, LEFT, RIGHT, UP, BabaGame, StateKey

#: Actions the search expands, in a fixed order (so results are deterministic).
SEARCH_ACTIONS: tuple[int, ...] = (UP, RIGHT, DOWN, LEFT)


def solve(
    game: BabaGame, max_states: int = 50_000, max_depth: int | None = None
) -> list[int] | None:
    """A shortest list of actions (1 up, 2 right, 3 down, 4 left) that wins from ``game``.

    ``game`` itself is not modified. Returns None when no win was found within ``max_states``
    distinct states, ``max_depth`` actions, or the game's own step cap (a win on the last
    allowed step counts). Losing states are dead ends. Among equally short solutions, the
    first in the order up, right, down, left is returned.
    """
    if game.done:
        return None
    depth_cap = game.max_steps - game.step_count
    if max_depth is not None:
        depth_cap = min(depth_cap, max_depth)
    if depth_cap <= 0:
        return None
    start_key = game.state_key()
    # key -> (parent key, action that led here); the start has no parent.
    parents: dict[StateKey, tuple[StateKey, int] | None] = {start_key: None}
    frontier: deque[tuple[BabaGame, StateKey, int]] = deque([(game, start_key, 0)])
    while frontier:
        state, key, depth = frontier.popleft()
        for action in SEARCH_ACTIONS:
            child = state.copy()
            out = child.step(action)
            if out.won:
                path = [action]
                k: StateKey | None = key
                while k is not None:
                    link = parents[k]
                    if link is None:
                        break
                    k, a = link
                    path.append(a)
                path.reverse()
                return path
            if out.done:
                continue
            ckey = child.state_key()
            if ckey in parents:
                continue
            if len(parents) >= max_states:
                return None
            parents[ckey] = (key, action)
            if depth + 1 < depth_cap:
                frontier.append((child, ckey, depth + 1))
    return None
