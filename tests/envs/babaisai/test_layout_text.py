"""The hand-written layout text format: parsing, formatting, round trips and error messages."""

from __future__ import annotations

import pytest

from pytest_alma.envs.babaisai.layout import Layout, Placement
from pytest_alma.envs.babaisai.layout_text import LayoutSyntaxError, format_layout, parse_layout

EXAMPLE = """
    #      #    #     #    #
    #    [ball] [is] [win] #
    #     baba   .   ball  #
    #    [baba] [is] [you] #
    #      #    #     #    #
"""


def test_parse_example() -> None:
    layout = parse_layout(EXAMPLE)
    assert (layout.width, layout.height) == (5, 5)
    assert layout.placements == (
        Placement(1, 1, "word", "ball"),
        Placement(2, 1, "word", "is"),
        Placement(3, 1, "word", "win"),
        Placement(1, 2, "object", "baba"),
        Placement(3, 2, "object", "ball"),
        Placement(1, 3, "word", "baba"),
        Placement(2, 3, "word", "is"),
        Placement(3, 3, "word", "you"),
    )


def test_stacks_colours_and_blocks() -> None:
    layout = parse_layout("""
        # #              #     #     #
        # key+baba:red   #     [red] #
        # ball:blue+[is] .     .     #
        # #              #     #     #
    """)
    assert layout.placements == (
        Placement(1, 1, "object", "key"),
        Placement(1, 1, "object", "baba", "red"),
        Placement(2, 1, "block", "block"),
        Placement(3, 1, "word", "red"),
        Placement(1, 2, "object", "ball", "blue"),
        Placement(1, 2, "word", "is"),
    )


def test_round_trip() -> None:
    layout = parse_layout(EXAMPLE)
    text = format_layout(layout)
    assert parse_layout(text) == layout
    assert format_layout(parse_layout(text)) == text
    # explicit default colours are kept distinct from implicit ones
    explicit = Layout(4, 3, (Placement(1, 1, "object", "ball", "green"),))
    assert parse_layout(format_layout(explicit)) == explicit
    assert format_layout(explicit).split("\n")[1].split() == ["#", "ball:green", ".", "#"]


def test_format_aligns_columns() -> None:
    text = format_layout(parse_layout(EXAMPLE))
    assert text.split("\n") == [
        "# #      #    #     #",
        "# [ball] [is] [win] #",
        "# baba   .    ball  #",
        "# [baba] [is] [you] #",
        "# #      #    #     #",
    ]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("# # #\n# rock #\n# # #", ["row 1, column 1", "'rock'", "allowed tokens"]),
        ("# # #\n# [rock] #\n# # #", ["row 1, column 1", "'[rock]'", "unknown rule word"]),
        ("# # #\n# ball:pink #\n# # #", ["row 1, column 1", "'ball:pink'", "colour"]),
        ("# # #\n# [ball #\n# # #", ["row 1, column 1", "unbalanced"]),
        ("# # #\n# key++baba #\n# # #", ["row 1, column 1", "'key++baba'"]),
        ("# # #\n# . baba #\n# # #", ["row 1 has 4 cells", "same number"]),
        ("# # #\n. . #\n# # #", ["row 1, column 0", "border"]),
        ("", ["empty"]),
        ("# #\n# #", ["3x3"]),
    ],
)
def test_errors_name_position_and_token(text: str, fragments: list[str]) -> None:
    with pytest.raises(LayoutSyntaxError) as exc:
        parse_layout(text)
    for fragment in fragments:
        assert fragment in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_format_rejects_placements_on_the_border() -> None:
    with pytest.raises(ValueError, match="outside the interior"):
        format_layout(Layout(3, 3, (Placement(0, 0, "object", "baba"),)))
