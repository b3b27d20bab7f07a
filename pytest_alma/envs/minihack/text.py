"""BALROG's "hybrid" text observation of MiniHack, built from nle 1.3's observations.

BALROG splits it into a long-term context (message, language observation, cursor, map) and a
short-term context (inventory); ALMA's user turn is the inventory followed by the long-term
context. :func:`observation_text` returns exactly that, the five sections separated by blank
lines::

    inventory:
    a: a +0 short sword (weapon in hand)

    message:
    Hello Agent, welcome to NetHack!  You are a neutral male human Knight.

    language observation:
    horizontal wall adjacent north and northeast
    ...

    cursor:
    Yourself a knight
    (x=36, y=10)

    map:
    <tty rows 1..23: the 21 map rows and the two status lines>

Contract for parsers (a scripted policy reads the cursor and the map): every section is its
header line (:data:`INVENTORY_HEADER`, ...) and then its body; the cursor body's second line is
``(x=<column>, y=<tty row>)`` of the agent, and map line ``i`` is tty row ``i + 1``, so the
agent's ``@`` is at map line ``y - 1``, column ``x``.

The position is the agent's (``blstats``), not NLE's ``tty_cursor``: the two are the same cell
whenever the terminal cursor is on the map, but while NetHack asks something ("In what
direction?", "What do you want to wield?") the cursor sits on the message line, and the contract
above would break. An empty section (no message, nothing carried, nothing in sight) keeps its
header and has an empty body line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy.typing as npt

from pytest_alma.envs.minihack.language import language_observation

#: The NLE observation keys the text needs; pass them as ``gym.make(..., observation_keys=...)``.
OBSERVATION_KEYS: Final[tuple[str, ...]] = (
    "glyphs",
    "blstats",
    "screen_descriptions",
    "tty_chars",
    "message",
    "inv_strs",
    "inv_letters",
)

INVENTORY_HEADER: Final = "inventory:"
MESSAGE_HEADER: Final = "message:"
LANGUAGE_HEADER: Final = "language observation:"
CURSOR_HEADER: Final = "cursor:"
MAP_HEADER: Final = "map:"
#: The section headers in the order :func:`observation_text` writes them.
SECTION_HEADERS: Final = (
    INVENTORY_HEADER,
    MESSAGE_HEADER,
    LANGUAGE_HEADER,
    CURSOR_HEADER,
    MAP_HEADER,
)

#: The race adjectives NetHack puts before the role when describing the hero.
_RACE_ADJECTIVES: Final = frozenset({"human", "elven", "dwarven", "dwarvish", "gnomish", "orcish"})
#: Said of the agent when NLE has no description of its cell (not seen in practice).
UNKNOWN_SELF: Final = "hero"

Observation = Mapping[str, npt.NDArray[Any]]


def _c_string(row: npt.NDArray[Any]) -> str:
    # NLE's strings are NUL-terminated byte arrays; latin-1 never fails on a stray byte.
    return row.tobytes().partition(b"\0")[0].decode("latin-1")


def message_text(obs: Observation) -> str:
    """``"message:\\n<the message line>"`` from ``message`` (an empty line when there is none)."""
    return f"{MESSAGE_HEADER}\n{_c_string(obs['message']).strip()}"


def inventory_text(obs: Observation) -> str:
    """``"inventory:\\n"`` and one ``"<letter>: <item>"`` line per item, from ``inv_letters``
    and ``inv_strs`` in NetHack's order; an empty inventory gives ``"inventory:\\n"``."""
    letters = obs["inv_letters"].tobytes()
    used = len(letters.rstrip(b"\0"))  # NLE fills the slots from the first; the rest are 0
    strs = obs["inv_strs"]
    width = strs.shape[-1]
    # One tobytes() and plain slicing beat per-row numpy indexing for ~10 short rows.
    raw = strs[:used].tobytes()
    lines = [
        chr(letter) + ": " + raw[i * width : (i + 1) * width].partition(b"\0")[0].decode("latin-1")
        for i, letter in enumerate(letters[:used])
        if letter
    ]
    return INVENTORY_HEADER + "\n" + "\n".join(lines)


def agent_position(obs: Observation) -> tuple[int, int]:
    """The agent's map cell ``(x, y)``: ``blstats[NLE_BL_X]``, ``blstats[NLE_BL_Y]``."""
    blstats = obs["blstats"]
    return int(blstats[0]), int(blstats[1])


def self_description(obs: Observation) -> str:
    """What the agent is, e.g. "knight": the ``screen_descriptions`` text of the agent's cell
    ("human knight called Agent") without the name, an "invisible" and the race."""
    x, y = agent_position(obs)
    text = _c_string(obs["screen_descriptions"][y, x])
    words = text.split(" called ", 1)[0].split()
    if words and words[0] == "invisible":
        words = words[1:]
    if len(words) > 1 and words[0] in _RACE_ADJECTIVES:
        words = words[1:]
    return " ".join(words) or UNKNOWN_SELF


def cursor_text(obs: Observation) -> str:
    """``"cursor:\\nYourself a <role>\\n(x=<column>, y=<tty row>)"`` at the agent.

    ``y`` is the tty row, one more than the map row, because the tty's first row is the message.
    """
    x, y = agent_position(obs)
    return f"{CURSOR_HEADER}\nYourself a {self_description(obs)}\n(x={x}, y={y + 1})"


def _map_body(obs: Observation) -> str:
    chars = obs["tty_chars"]
    # An S<width> view gives one bytes object per row; strip and join them before one decode.
    rows = chars[1:].view(f"S{chars.shape[1]}").ravel().tolist()
    return b"\n".join([row.rstrip() for row in rows]).decode("latin-1")


def map_lines(obs: Observation) -> list[str]:
    """Rows 1..23 of ``tty_chars`` (the map and the two status lines), trailing spaces removed."""
    return _map_body(obs).split("\n")


def map_text(obs: Observation) -> str:
    """``"map:\\n"`` and :func:`map_lines` (23 lines; map line ``i`` is tty row ``i + 1``)."""
    return MAP_HEADER + "\n" + _map_body(obs)


def language_text(obs: Observation) -> str:
    """``"language observation:\\n"`` and :func:`~.language.language_observation`."""
    return f"{LANGUAGE_HEADER}\n{language_observation(obs)}"


def long_term_context(obs: Observation) -> str:
    """BALROG's long-term context: message, language observation, cursor and map sections."""
    return "\n\n".join((message_text(obs), language_text(obs), cursor_text(obs), map_text(obs)))


def observation_text(obs: Observation) -> str:
    """The whole text: inventory, message, language observation, cursor and map sections, in
    that order, separated by blank lines (ALMA's user turn: short-term then long-term context).

    ``obs`` must hold every key in :data:`OBSERVATION_KEYS`.
    """
    return inventory_text(obs) + "\n\n" + long_term_context(obs)
