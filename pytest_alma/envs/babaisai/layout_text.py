"""A small text grid format for writing Baba Is AI layouts by hand.

The text lists the **whole grid, border included**: one line per row (top row first), cells
separated by whitespace (any amount, so columns can be aligned). The token in column ``x`` of
row ``y`` (both counted from 0) is cell ``(x, y)``, the same coordinates the engine uses. Every
cell of the outer ring must be ``#`` (the border walls are implicit in a :class:`Layout`, the
ring is written only so that positions can be read off the picture). Blank lines are ignored.

Cell tokens:

* ``.``: empty cell;
* ``#``: an immovable block (inside the ring; on the ring it is the border);
* ``baba``, ``ball``, ``key``, ``door``, ``wall``: a rule-controlled object with its default
  colour; ``ball:red`` gives it a colour (red, green, blue, purple, yellow, grey, white);
* ``[word]``: a rule tile: ``[ball]`` (object word), ``[is]``, ``[win]`` (property word:
  you, win, stop, push, lose, pull, move, open, shut) or ``[red]`` (colour word);
* ``a+b+c``: a stack of the above, bottom first, e.g. ``key+baba`` (baba standing on a key).

Example, a 6x5 level where baba (at x=1, y=2) walks right twice onto the win ball::

    #      #    #     #    #
    #    [ball] [is] [win] #
    #     baba   .   ball  #
    #    [baba] [is] [you] #
    #      #    #     #    #

:func:`format_layout` writes this format back (columns aligned). The round trip
``parse_layout(format_layout(layout)) == layout`` is exact when the layout's placements are in
row-major order with each stack bottom first, which is what :func:`parse_layout` produces; any
layout round-trips to the same cells and stacks. Colours are written only when given explicitly,
so ``ball`` and ``ball:green`` stay distinct. Rule tiles carry no colour in this format.
"""

from __future__ import annotations

from pytest_alma.envs.babaisai.layout import (
    COLOR_NAMES,
    OBJECT_NAMES,
    PROPERTY_WORDS,
    Layout,
    Placement,
)

#: Every word a rule tile may carry.
RULE_WORDS: tuple[str, ...] = (*OBJECT_NAMES, "is", *PROPERTY_WORDS, *COLOR_NAMES)

_ALLOWED = (
    "allowed tokens: '.' (empty), '#' (block), an object "
    f"({', '.join(OBJECT_NAMES)}) optionally with ':colour' ({', '.join(COLOR_NAMES)}), "
    "a rule tile '[word]' (object, 'is', property or colour word: "
    f"{', '.join(RULE_WORDS)}), or a bottom-to-top stack of these joined with '+'"
)


class LayoutSyntaxError(ValueError):
    """A layout text that cannot be parsed; the message names the row, column and token."""


def _parse_item(item: str, x: int, y: int, token: str) -> Placement:
    """One element of a (possibly stacked) cell token."""

    def bad(reason: str) -> LayoutSyntaxError:
        return LayoutSyntaxError(f"row {y}, column {x}: bad token {token!r} ({reason}); {_ALLOWED}")

    if item == "#":
        return Placement(x, y, "block", "block")
    if item.startswith("[") or item.endswith("]"):
        if not (item.startswith("[") and item.endswith("]")):
            raise bad(f"unbalanced brackets in {item!r}")
        word = item[1:-1]
        if word not in RULE_WORDS:
            raise bad(f"unknown rule word {word!r}")
        return Placement(x, y, "word", word)
    name, sep, color = item.partition(":")
    if name not in OBJECT_NAMES:
        raise bad(f"unknown object {name!r}")
    if sep and color not in COLOR_NAMES:
        raise bad(f"unknown colour {color!r}")
    return Placement(x, y, "object", name, color if sep else None)


def parse_layout(text: str) -> Layout:
    """Parse the text grid format described in the module docstring into a :class:`Layout`."""
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if not rows:
        raise LayoutSyntaxError("empty layout text: expected one line per grid row")
    width = len(rows[0])
    height = len(rows)
    for y, row in enumerate(rows):
        if len(row) != width:
            raise LayoutSyntaxError(
                f"row {y} has {len(row)} cells but row 0 has {width}: every row needs the "
                "same number of whitespace-separated cells"
            )
    if width < 3 or height < 3:
        raise LayoutSyntaxError(
            f"grid is {width}x{height}; it must be at least 3x3 including the '#' border ring"
        )
    placements: list[Placement] = []
    for y, row in enumerate(rows):
        for x, token in enumerate(row):
            on_ring = x in (0, width - 1) or y in (0, height - 1)
            if on_ring:
                if token != "#":
                    raise LayoutSyntaxError(
                        f"row {y}, column {x}: bad token {token!r}; the outer ring is the "
                        "border and every cell on it must be '#'"
                    )
                continue
            if token == ".":
                continue
            items = token.split("+")
            if any(not it for it in items) or "." in items:
                raise LayoutSyntaxError(
                    f"row {y}, column {x}: bad token {token!r} (empty or '.' element in a "
                    f"'+' stack); {_ALLOWED}"
                )
            placements.extend(_parse_item(it, x, y, token) for it in items)
    return Layout(width, height, tuple(placements))


def _format_placement(p: Placement) -> str:
    if p.kind == "block":
        return "#"
    if p.kind == "word":
        return f"[{p.name}]"
    return p.name if p.color is None else f"{p.name}:{p.color}"


def format_layout(layout: Layout) -> str:
    """Write ``layout`` in the text grid format (border ring included, columns aligned)."""
    w, h = layout.width, layout.height
    cells: list[list[list[str]]] = [[[] for _ in range(w)] for _ in range(h)]
    for p in layout.placements:
        if not (1 <= p.x <= w - 2 and 1 <= p.y <= h - 2):
            raise ValueError(f"placement {p} is outside the interior x 1..{w - 2}, y 1..{h - 2}")
        cells[p.y][p.x].append(_format_placement(p))
    tokens = [
        [
            "#"
            if x in (0, w - 1) or y in (0, h - 1)
            else ("+".join(cells[y][x]) if cells[y][x] else ".")
            for x in range(w)
        ]
        for y in range(h)
    ]
    widths = [max(len(tokens[y][x]) for y in range(h)) for x in range(w)]
    return "\n".join(
        " ".join(tok.ljust(widths[x]) for x, tok in enumerate(row)).rstrip() for row in tokens
    )
