"""Turning the meta-agent's replies into code: fenced code blocks and SEARCH/REPLACE edits.

The meta-agent either writes a whole new memory design (a Python module in a fenced block) or
edits an existing one with SEARCH/REPLACE blocks in the widely used format::

    <<<<<<< SEARCH
    lines copied from the current file
    =======
    the lines to put in their place
    >>>>>>> REPLACE

LLMs copy lines imperfectly, so matching is tolerant, from strictest to loosest: the exact
text, then lines ignoring trailing whitespace, then lines ignoring indentation (the replacement
is re-indented to where the match was found). A SEARCH that matches nowhere, or in more than
one place, raises an error whose message is written to be sent back to the LLM as a re-prompt.
"""

from __future__ import annotations

import ast
import difflib
import re
import textwrap
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "Edit",
    "EditAmbiguousError",
    "EditFormatError",
    "EditMismatchError",
    "apply_edits",
    "edit_reprompt",
    "extract_code",
    "parse_edits",
]

# ---------------------------------------------------------------------------------------------
# Code blocks
# ---------------------------------------------------------------------------------------------

# An opening fence: three or more backticks or tildes, then an optional info string whose first
# word is the language. Any indentation is accepted because LLMs nest fences in list items.
_FENCE_OPEN = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
_PYTHON_LABEL = re.compile(r"(?:python3?|py3?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class _Block:
    info: str
    code: str

    @property
    def is_python(self) -> bool:
        # An unlabelled block counts: LLMs often leave the language off.
        return self.info == "" or _PYTHON_LABEL.match(self.info) is not None


def _parses(code: str) -> bool:
    with warnings.catch_warnings():
        # Invalid escape sequences warn at parse time; under `-W error` that would be an error.
        warnings.simplefilter("ignore")
        try:
            ast.parse(code)
        except (SyntaxError, ValueError, RecursionError):
            return False
    return True


def _tidy(code: str) -> str:
    """Dedent and drop surrounding blank lines and trailing whitespace."""
    lines = textwrap.dedent(code).split("\n")
    while lines and not lines[0].strip():
        del lines[0]
    return "\n".join(lines).rstrip()


def _is_close(line: str, char: str, length: int) -> bool:
    stripped = line.strip()
    # A closing fence has no info string and is at least as long as the opening one.
    return len(stripped) >= length and stripped == char * len(stripped)


def _fenced_blocks(text: str) -> list[_Block]:
    lines = text.split("\n")
    blocks: list[_Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE_OPEN.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence = opening["fence"]
        info = opening["info"]
        closes = [j for j in range(i + 1, len(lines)) if _is_close(lines[j], fence[0], len(fence))]
        # An unclosed fence (a reply cut off at the token limit) runs to the end of the reply.
        end = closes[0] if closes else len(lines)
        block = _Block(info, "\n".join(lines[i + 1 : end]))
        if block.is_python and not _parses(block.code):
            # A design's prompt strings may contain fences of their own (asking its LLM for a
            # ```json reply): the first bare fence then closes the block inside a string. A
            # later fence that makes the block parse is the real end.
            for j in closes[1:]:
                candidate = _Block(info, "\n".join(lines[i + 1 : j]))
                if _parses(candidate.code):
                    block, end = candidate, j
                    break
        blocks.append(block)
        i = end + 1
    return blocks


def extract_code(reply: str) -> str:
    """The Python source in an LLM reply.

    The largest fenced block labelled python/py (or unlabelled) that parses; when none parses,
    the largest such block; when the reply has no such block, the whole reply. The result is
    dedented, without surrounding blank lines or a trailing newline. Never raises: an empty
    reply gives "".
    """
    text = reply.replace("\r\n", "\n").replace("\r", "\n")
    candidates = [_tidy(block.code) for block in _fenced_blocks(text) if block.is_python]
    candidates = [code for code in candidates if code]
    if not candidates:
        return _tidy(text)
    parsing = [code for code in candidates if _parses(code)]
    # max() keeps the first of equally large blocks.
    return max(parsing or candidates, key=len)


# ---------------------------------------------------------------------------------------------
# SEARCH/REPLACE edits
# ---------------------------------------------------------------------------------------------

_SEARCH_MARK = re.compile(r"^[ \t]*<{5,9}[ \t]*SEARCH\b.*$", re.IGNORECASE)
_DIVIDER = re.compile(r"^[ \t]*={5,9}[ \t]*$")
_REPLACE_MARK = re.compile(r"^[ \t]*>{5,9}[ \t]*REPLACE\b.*$", re.IGNORECASE)

EDIT_FORMAT = (
    "<<<<<<< SEARCH\n"
    "(lines copied exactly from the current file)\n"
    "=======\n"
    "(the lines to put in their place)\n"
    ">>>>>>> REPLACE"
)


@dataclass(frozen=True, slots=True)
class Edit:
    """One SEARCH/REPLACE block: whole lines, each ending in a newline ("" when empty)."""

    search: str
    replace: str


class EditFormatError(ValueError):
    """A SEARCH/REPLACE block is malformed; the message is written for the LLM."""

    def __init__(self, block: int, problem: str) -> None:
        self.block = block
        self.problem = problem
        super().__init__(
            f"SEARCH/REPLACE block {block} is malformed: {problem}.\n"
            f"Each block must look exactly like this:\n{EDIT_FORMAT}"
        )

    def __reduce__(self) -> tuple[type[EditFormatError], tuple[int, str]]:
        # Custom __init__ arguments: without this the error cannot cross a process boundary.
        return (type(self), (self.block, self.problem))


class EditMismatchError(ValueError):
    """A SEARCH section matched nowhere in the file; the message is written for the LLM.

    ``block`` is the 1-based number of the block; ``closest`` the region of the file (as the
    blocks before it left it) most similar to its SEARCH section.
    """

    def __init__(self, block: int, search: str, closest: str) -> None:
        self.block = block
        self.search = search
        self.closest = closest
        super().__init__(self._message())

    def _message(self) -> str:
        earlier = (
            f" Blocks 1 to {self.block - 1} apply before it, so it must match the file as "
            "they leave it; the region below is from that file."
            if self.block > 1
            else ""
        )
        return (
            f"SEARCH/REPLACE block {self.block} did not match the current file.{earlier}\n"
            f"Its SEARCH section was:\n{_fence(self.search)}\n"
            f"The most similar region of the current file is:\n{_fence(self.closest)}\n"
            "The SEARCH section must copy the lines exactly from the current file: the same "
            "text, indentation and comments."
        )

    def __reduce__(self) -> tuple[type[EditMismatchError], tuple[int, str, str]]:
        return (type(self), (self.block, self.search, self.closest))


class EditAmbiguousError(EditMismatchError):
    """A SEARCH section matched more than one place; ``closest`` is the first of them."""

    def __init__(self, block: int, search: str, closest: str, matches: int) -> None:
        self.matches = matches
        super().__init__(block, search, closest)

    def _message(self) -> str:
        return (
            f"SEARCH/REPLACE block {self.block} is ambiguous: its SEARCH section matches "
            f"{self.matches} places in the current file.\n"
            f"Its SEARCH section was:\n{_fence(self.search)}\n"
            "Add lines before or after it, copied exactly from the current file, so that it "
            "matches exactly one place."
        )

    def __reduce__(  # type: ignore[override]
        self,
    ) -> tuple[type[EditAmbiguousError], tuple[int, str, str, int]]:
        return (type(self), (self.block, self.search, self.closest, self.matches))


def _fence(text: str) -> str:
    body = text.rstrip("\n")
    # A longer fence than any run of backticks inside, so the quoted text cannot close it.
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{body}\n{fence}"


def _join_lines(lines: Sequence[str]) -> str:
    return "".join(line + "\n" for line in lines)


def parse_edits(reply: str) -> list[Edit]:
    """The SEARCH/REPLACE blocks in an LLM reply, in order.

    Prose and code fences around and between the blocks are ignored. A block missing its
    ``=======`` or ``>>>>>>> REPLACE`` line raises :class:`EditFormatError` naming the block.
    """
    edits: list[Edit] = []
    search: list[str] = []
    replace: list[str] = []
    state = "prose"
    block = 0
    for line in reply.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if state == "prose":
            if _SEARCH_MARK.match(line):
                block += 1
                state, search = "search", []
            elif _REPLACE_MARK.match(line):
                raise EditFormatError(
                    block + 1, "it has a >>>>>>> REPLACE line but no <<<<<<< SEARCH line"
                )
            # A stray ======= in prose is left alone: markdown uses it to underline headings.
        elif state == "search":
            if _DIVIDER.match(line):
                state, replace = "replace", []
            elif _SEARCH_MARK.match(line) or _REPLACE_MARK.match(line):
                raise EditFormatError(block, "it has no ======= line after its SEARCH lines")
            else:
                search.append(line)
        elif _REPLACE_MARK.match(line):
            edits.append(Edit(_join_lines(search), _join_lines(replace)))
            state = "prose"
        elif _SEARCH_MARK.match(line):
            raise EditFormatError(block, "it has no >>>>>>> REPLACE line")
        else:
            replace.append(line)
    if state == "search":
        raise EditFormatError(block, "it has no ======= line after its SEARCH lines")
    if state == "replace":
        raise EditFormatError(block, "it has no >>>>>>> REPLACE line")
    return edits


def _split(text: str) -> tuple[list[str], bool]:
    """Lines (without their newlines) and whether the text ended with one.

    Not str.splitlines: it also splits on form feeds and other separators Python allows in code.
    """
    if not text:
        return [], False
    if text.endswith("\n"):
        return text[:-1].split("\n"), True
    return text.split("\n"), False


def _unsplit(lines: Sequence[str], final_newline: bool) -> str:
    if not lines:
        return ""
    return "\n".join(lines) + ("\n" if final_newline else "")


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _reindent(lines: Sequence[str], have: str, want: str) -> list[str]:
    """Move lines written at indentation ``have`` to indentation ``want``."""
    if have == want:
        return list(lines)
    if want.startswith(have):
        extra = want[len(have) :]
        return [extra + line if line.strip() else line for line in lines]
    if have.startswith(want):
        cut = len(have) - len(want)
        return [line[min(cut, len(_indent(line))) :] for line in lines]
    # Tabs against spaces: swap the prefix where a line has it, leave the rest alone.
    return [want + line[len(have) :] if line.startswith(have) else line for line in lines]


def _exact_matches(text: str, search: str) -> list[int]:
    # A SEARCH of whole lines must match whole lines: `x = 1` inside `max = 1` is not what the
    # LLM meant, and counting it would make the edit falsely ambiguous.
    whole_lines = search.endswith("\n")
    starts: list[int] = []
    at = text.find(search)
    while at != -1:
        if not whole_lines or at == 0 or text[at - 1] == "\n":
            starts.append(at)
        at = text.find(search, at + 1)
    return starts


def _line_matches(
    lines: Sequence[str], search_lines: Sequence[str], key: Callable[[str], str]
) -> list[int]:
    wanted = [key(line) for line in search_lines]
    keys = [key(line) for line in lines]
    size = len(wanted)
    return [i for i in range(len(keys) - size + 1) if keys[i : i + size] == wanted]


_WORD = re.compile(r"\w+|[^\w\s]")


def _closest_region(lines: Sequence[str], search_lines: Sequence[str]) -> str:
    """The window of ``len(search_lines)`` lines of the file most like the SEARCH lines."""
    size = len(search_lines)
    if size >= len(lines):
        return "\n".join(lines)
    # Words and punctuation of the stripped lines: indentation should not decide the region,
    # and words keep the sequences short enough to compare every window of a long file.
    words = [[*_WORD.findall(line), "\n"] for line in lines]
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2([w for line in search_lines for w in [*_WORD.findall(line), "\n"]])
    best, best_start = -1.0, 0
    for start in range(len(lines) - size + 1):
        matcher.set_seq1([w for line in words[start : start + size] for w in line])
        # The cheap upper bounds skip most windows once a good one is known.
        if matcher.real_quick_ratio() <= best or matcher.quick_ratio() <= best:
            continue
        ratio = matcher.ratio()
        if ratio > best:
            best, best_start = ratio, start
    return "\n".join(lines[best_start : best_start + size])


def _apply_one(text: str, edit: Edit, block: int) -> str:
    search = edit.search.replace("\r\n", "\n")
    replace = edit.replace.replace("\r\n", "\n")
    if not search.strip():
        # An empty SEARCH appends: the way to add a new function at the end of the file.
        if text and not text.endswith("\n"):
            text += "\n"
        return text + replace

    starts = _exact_matches(text, search)
    if len(starts) == 1:
        return text[: starts[0]] + replace + text[starts[0] + len(search) :]
    if starts:
        raise EditAmbiguousError(block, search, search, len(starts))

    lines, final_newline = _split(text)
    search_lines, _ = _split(search)
    replace_lines, _ = _split(replace)
    for key, reindent in ((str.rstrip, False), (str.strip, True)):
        found = _line_matches(lines, search_lines, key)
        if len(found) > 1:
            first = "\n".join(lines[found[0] : found[0] + len(search_lines)])
            raise EditAmbiguousError(block, search, first, len(found))
        if found:
            start = found[0]
            new = replace_lines
            if reindent:
                # The indentation difference at the first non-blank SEARCH line.
                k = next(k for k, line in enumerate(search_lines) if line.strip())
                new = _reindent(new, _indent(search_lines[k]), _indent(lines[start + k]))
            return _unsplit(
                [*lines[:start], *new, *lines[start + len(search_lines) :]], final_newline
            )
    raise EditMismatchError(block, search, _closest_region(lines, search_lines))


def apply_edits(source: str, edits: Sequence[Edit]) -> str:
    """The source with the edits applied in order, each to the result of the previous.

    Each SEARCH matches, trying in order: the exact text (whole lines), lines ignoring trailing
    whitespace, lines ignoring indentation (the replacement is then re-indented by the
    difference); a blank SEARCH appends the replacement at the end. A SEARCH that matches more
    than once at the first level that finds it raises :class:`EditAmbiguousError`; one that
    matches nowhere raises :class:`EditMismatchError`. Line endings become ``\\n``.
    """
    text = source.replace("\r\n", "\n")
    for block, edit in enumerate(edits, start=1):
        text = _apply_one(text, edit, block)
    return text


def edit_reprompt(error: EditMismatchError | EditFormatError) -> str:
    """The user message that re-prompts the meta-agent after its edits failed."""
    again = (
        "None of your edits were applied. Reply again with all of your SEARCH/REPLACE blocks, "
        "corrected"
    )
    if isinstance(error, EditFormatError):
        # Its message already shows the format.
        return f"{error}\n\n{again}."
    return f"{error}\n\n{again}, in this format:\n{EDIT_FORMAT}"
