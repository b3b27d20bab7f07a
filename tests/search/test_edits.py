import pickle

import pytest

from pytest_alma.search.edits import (
    Edit,
    EditAmbiguousError,
    EditFormatError,
    EditMismatchError,
    apply_edits,
    edit_reprompt,
    extract_code,
    parse_edits,
)

# ------------------------------------------------------------------------------- extract_code


def test_extract_code_takes_the_fenced_python_block() -> None:
    reply = "Here is the design:\n\n```python\nimport json\n\nX = 1\n```\n\nIt stores rules."
    assert extract_code(reply) == "import json\n\nX = 1"


def test_extract_code_without_a_fence_is_the_whole_reply_stripped() -> None:
    assert extract_code("\n\n  def f():\n      return 1\n\n") == "def f():\n    return 1"


def test_extract_code_of_an_empty_reply_is_empty() -> None:
    assert extract_code("") == ""
    assert extract_code("  \n\t\n") == ""


def test_extract_code_prefers_the_largest_block_that_parses() -> None:
    reply = (
        "First a sketch:\n```python\nx = 1\n```\n"
        "Broken draft:\n```python\ndef broken(:\n    pass\n    pass\n    pass\n```\n"
        "Final:\n```py\ndef f():\n    return 2\n```\n"
    )
    # The broken block is the largest, but it does not parse; of the two that parse, f wins.
    assert extract_code(reply) == "def f():\n    return 2"


def test_extract_code_prefers_a_larger_parsing_block_to_an_earlier_or_later_one() -> None:
    reply = "```python\ndef f():\n    return 1\n```\nand a usage example:\n```python\nf()\n```"
    assert extract_code(reply) == "def f():\n    return 1"


def test_extract_code_falls_back_to_the_largest_python_block_when_none_parses() -> None:
    reply = "```python\ndef a(:\n```\n```python\ndef bb(:\n    pass\n```"
    assert extract_code(reply) == "def bb(:\n    pass"


def test_extract_code_accepts_unlabelled_blocks_and_ignores_other_languages() -> None:
    reply = '```json\n{"a": 1, "b": [1, 2, 3, 4, 5, 6]}\n```\n```\ny = 2\n```'
    assert extract_code(reply) == "y = 2"


def test_extract_code_with_only_non_python_fences_returns_the_whole_reply() -> None:
    assert extract_code("```bash\nls\n```") == "```bash\nls\n```"


def test_extract_code_handles_crlf_and_fences_with_trailing_spaces() -> None:
    reply = "Code:\r\n```python  \r\ndef f():\r\n    return 1\r\n```   \r\nDone.\r\n"
    assert extract_code(reply) == "def f():\n    return 1"


def test_extract_code_handles_an_unclosed_fence() -> None:
    # A reply cut off at the token limit.
    assert extract_code("```python\nx = 1\ny = 2\n") == "x = 1\ny = 2"


def test_extract_code_keeps_fences_inside_string_literals() -> None:
    reply = (
        '```python\nPROMPT = """Answer in JSON:\n```json\n{}\n```\n"""\nX = 1\n```\nThat is all.'
    )
    assert extract_code(reply) == 'PROMPT = """Answer in JSON:\n```json\n{}\n```\n"""\nX = 1'


def test_extract_code_dedents_an_indented_block() -> None:
    reply = "1. The code:\n\n   ```python\n   def f():\n       return 1\n   ```\n"
    assert extract_code(reply) == "def f():\n    return 1"


# ------------------------------------------------------------------------------- parse_edits


def test_parse_edits_reads_several_blocks_with_fences_and_prose() -> None:
    reply = (
        "I will rename the constant.\n"
        "```python\n"
        "<<<<<<< SEARCH\n"
        "LIMIT = 5\n"
        "=======\n"
        "LIMIT = 10\n"
        ">>>>>>> REPLACE\n"
        "```\n"
        "And delete the helper:\n"
        "<<<<<<< SEARCH\n"
        "def helper():\n"
        "    pass\n"
        "=======\n"
        ">>>>>>> REPLACE\n"
    )
    assert parse_edits(reply) == [
        Edit(search="LIMIT = 5\n", replace="LIMIT = 10\n"),
        Edit(search="def helper():\n    pass\n", replace=""),
    ]


def test_parse_edits_handles_crlf() -> None:
    reply = "<<<<<<< SEARCH\r\na = 1\r\n=======\r\na = 2\r\n>>>>>>> REPLACE\r\n"
    assert parse_edits(reply) == [Edit("a = 1\n", "a = 2\n")]


def test_parse_edits_keeps_indentation_and_blank_lines_inside_blocks() -> None:
    reply = "<<<<<<< SEARCH\n    x = 1\n\n    y = 2\n=======\n    z = 3\n>>>>>>> REPLACE"
    assert parse_edits(reply) == [Edit("    x = 1\n\n    y = 2\n", "    z = 3\n")]


def test_parse_edits_with_no_blocks_is_empty() -> None:
    assert parse_edits("I have no changes to make.") == []


@pytest.mark.parametrize(
    ("reply", "block", "problem"),
    [
        ("<<<<<<< SEARCH\na\n>>>>>>> REPLACE\n", 1, "no ======= line"),
        ("<<<<<<< SEARCH\na\n=======\nb\n", 1, "no >>>>>>> REPLACE line"),
        (
            "<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n"
            "<<<<<<< SEARCH\nc\n=======\nd\n"
            "<<<<<<< SEARCH\ne\n=======\nf\n>>>>>>> REPLACE\n",
            2,
            "no >>>>>>> REPLACE line",
        ),
        (
            "<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n"
            "<<<<<<< SEARCH\nc\n<<<<<<< SEARCH\nd\n=======\ne\n>>>>>>> REPLACE\n",
            2,
            "no ======= line",
        ),
        ("a\n=======\nb\n>>>>>>> REPLACE\n", 1, "no <<<<<<< SEARCH line"),
    ],
)
def test_parse_edits_names_the_malformed_block(reply: str, block: int, problem: str) -> None:
    with pytest.raises(EditFormatError) as caught:
        parse_edits(reply)
    assert caught.value.block == block
    message = str(caught.value)
    assert f"block {block} is malformed" in message
    assert problem in message
    # It shows the expected format.
    assert "<<<<<<< SEARCH\n" in message and "\n=======\n" in message
    assert message.endswith(">>>>>>> REPLACE")


# ------------------------------------------------------------------------------- apply_edits

SOURCE = """\
import json


class Memory:
    def __init__(self) -> None:
        self.rules = []

    def add(self, rule: str) -> None:
        self.rules.append(rule)

    def dump(self) -> str:
        return json.dumps(self.rules)
"""


def test_exact_match_replaces_only_that_text() -> None:
    edit = Edit("        self.rules.append(rule)\n", "        self.rules.insert(0, rule)\n")
    result = apply_edits(SOURCE, [edit])
    assert result == SOURCE.replace("self.rules.append(rule)", "self.rules.insert(0, rule)")


def test_exact_match_is_of_whole_lines() -> None:
    # `x = 1` also occurs inside `max = 1`; as a SEARCH of whole lines it matches one place.
    source = "max = 1\nx = 1\n"
    assert apply_edits(source, [Edit("x = 1\n", "x = 2\n")]) == "max = 1\nx = 2\n"


def test_a_search_without_a_newline_may_match_inside_a_line() -> None:
    assert apply_edits("f(a, b)\n", [Edit("a, b", "b, a")]) == "f(b, a)\n"


def test_match_ignoring_trailing_whitespace() -> None:
    source = "def f():   \n    return 1  \n\nx = 2\n"
    edit = Edit("def f():\n    return 1\n", "def f():\n    return 3\n")
    assert apply_edits(source, [edit]) == "def f():\n    return 3\n\nx = 2\n"


def test_trailing_whitespace_is_tried_before_indentation() -> None:
    # Ignoring trailing whitespace it matches once; ignoring indentation it would match twice.
    source = "if a:\n    go()  \nif b:\n        go()\n"
    result = apply_edits(source, [Edit("    go()\n", "    stop()\n")])
    assert result == "if a:\n    stop()\nif b:\n        go()\n"


def test_match_of_the_last_line_without_a_final_newline() -> None:
    assert apply_edits("a = 1\nb = 2", [Edit("b = 2\n", "b = 3\n")]) == "a = 1\nb = 3"


def test_match_ignoring_indentation_reindents_the_replacement_deeper() -> None:
    # The LLM dropped the 8 spaces of indentation of the method body.
    edit = Edit(
        "self.rules.append(rule)\n",
        "if rule not in self.rules:\n    self.rules.append(rule)\n",
    )
    result = apply_edits(SOURCE, [edit])
    assert result == SOURCE.replace(
        "        self.rules.append(rule)\n",
        "        if rule not in self.rules:\n            self.rules.append(rule)\n",
    )


def test_match_ignoring_indentation_reindents_the_replacement_shallower() -> None:
    source = "def f(x):\n    if x:\n        return 1\n    return 0\n"
    # Searched with 8 spaces where the file has 4; the replacement uses the same 8.
    edit = Edit(
        "        if x:\n            return 1\n",
        "        if x > 0:\n            return 1\n        if x < 0:\n            return -1\n",
    )
    assert apply_edits(source, [edit]) == (
        "def f(x):\n    if x > 0:\n        return 1\n    if x < 0:\n        return -1\n"
        "    return 0\n"
    )


def test_an_ambiguous_exact_match_raises() -> None:
    source = "def a():\n    return 0\n\ndef b():\n    return 0\n"
    with pytest.raises(EditAmbiguousError) as caught:
        apply_edits(source, [Edit("    return 0\n", "    return 1\n")])
    assert caught.value.block == 1 and caught.value.matches == 2
    assert "matches 2 places" in str(caught.value)
    # It is a mismatch to the caller: one except clause handles both.
    assert isinstance(caught.value, EditMismatchError)


def test_an_ambiguous_line_match_raises_at_the_level_that_found_it() -> None:
    source = "if a:\n    go()\nif b:\n        go()\n"
    # Not exact anywhere, matches twice ignoring indentation.
    with pytest.raises(EditAmbiguousError) as caught:
        apply_edits(source, [Edit("  go()\n", "  stop()\n")])
    assert caught.value.matches == 2
    assert caught.value.closest == "    go()"


def test_the_first_level_that_matches_wins_over_looser_ones() -> None:
    # Exact once, but twice ignoring indentation: the exact match is not ambiguous.
    source = "go()\nif b:\n    go()\n"
    assert apply_edits(source, [Edit("go()\n", "stop()\n")]) == "stop()\nif b:\n    go()\n"


def test_a_mismatch_names_the_block_and_shows_the_closest_region() -> None:
    edits = [
        Edit("import json\n", "import json\nimport os\n"),
        Edit(
            "    def add(self, rule: str) -> None:\n        self.rules.append(rules)\n",
            "",
        ),
    ]
    with pytest.raises(EditMismatchError) as caught:
        apply_edits(SOURCE, edits)
    error = caught.value
    assert not isinstance(error, EditAmbiguousError)
    assert error.block == 2
    assert error.closest == "    def add(self, rule: str) -> None:\n        self.rules.append(rule)"
    message = str(error)
    assert "block 2 did not match" in message
    assert "self.rules.append(rules)" in message  # the search text
    assert error.closest in message
    assert "copy the lines exactly from the current file" in message


def test_a_mismatch_against_a_short_file_shows_the_whole_file() -> None:
    with pytest.raises(EditMismatchError) as caught:
        apply_edits("a = 1\n", [Edit("b = 1\nc = 2\n", "")])
    assert caught.value.closest == "a = 1"
    assert caught.value.block == 1


def test_an_empty_search_appends_at_the_end() -> None:
    assert apply_edits("a = 1", [Edit("", "b = 2\n")]) == "a = 1\nb = 2\n"
    assert apply_edits("a = 1\n", [Edit("", "b = 2\n")]) == "a = 1\nb = 2\n"
    assert apply_edits("", [Edit("", "b = 2\n")]) == "b = 2\n"


def test_edits_apply_in_sequence() -> None:
    edits = [
        Edit("LIMIT = 1\n", "LIMIT = 2\n"),
        # Matches only the text the first edit wrote.
        Edit("LIMIT = 2\n", "LIMIT = 3\n"),
        Edit("", "def f():\n    return LIMIT\n"),
    ]
    assert apply_edits("LIMIT = 1\n", edits) == "LIMIT = 3\ndef f():\n    return LIMIT\n"


def test_an_edit_can_delete_lines_and_crlf_sources_are_normalised() -> None:
    source = "a = 1\r\nb = 2\r\nc = 3\r\n"
    assert apply_edits(source, [Edit("b = 2\n", "")]) == "a = 1\nc = 3\n"


def test_parsed_edits_apply_end_to_end() -> None:
    reply = (
        "```\n"
        "<<<<<<< SEARCH\n"
        "def dump(self) -> str:\n"
        "    return json.dumps(self.rules)\n"
        "=======\n"
        "def dump(self) -> str:\n"
        "    return json.dumps(self.rules, indent=2)\n"
        ">>>>>>> REPLACE\n"
        "```\n"
    )
    assert apply_edits(SOURCE, parse_edits(reply)) == SOURCE.replace(
        "json.dumps(self.rules)", "json.dumps(self.rules, indent=2)"
    )


def test_no_edits_leave_the_source_unchanged() -> None:
    assert apply_edits(SOURCE, []) == SOURCE


# ------------------------------------------------------------------------------- re-prompts


def test_reprompt_for_a_mismatch_carries_the_error_and_asks_for_all_blocks() -> None:
    with pytest.raises(EditMismatchError) as caught:
        apply_edits(SOURCE, [Edit("nothing like this\n", "")])
    text = edit_reprompt(caught.value)
    assert text.startswith("SEARCH/REPLACE block 1 did not match the current file.")
    assert "None of your edits were applied" in text
    assert text.endswith(">>>>>>> REPLACE")


def test_reprompt_for_a_format_error_shows_the_format_once() -> None:
    with pytest.raises(EditFormatError) as caught:
        parse_edits("<<<<<<< SEARCH\na\n")
    text = edit_reprompt(caught.value)
    assert text.startswith("SEARCH/REPLACE block 1 is malformed")
    assert text.count("<<<<<<< SEARCH") == 1


def test_errors_survive_pickling() -> None:
    # Errors cross process boundaries when the search runs in workers.
    errors: list[ValueError] = [
        EditFormatError(2, "it has no ======= line"),
        EditMismatchError(3, "a\n", "b"),
        EditAmbiguousError(1, "a\n", "a", 4),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
    assert pickle.loads(pickle.dumps(errors[2])).matches == 4
