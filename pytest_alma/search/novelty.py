"""Is a new memory design new? Digests and similarity of normalised source code.

The meta-agent often re-proposes a design it has already written, reworded: new comments, a new
docstring, different formatting. Normalising the code (parse, drop docstrings, unparse) makes
those identical, so a digest catches exact re-proposals; a token-level similarity catches near
ones (a renamed constant, one changed line) so the search does not spend evaluations on them.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import io
import math
import re
import tokenize
import warnings
from collections.abc import Mapping, Sequence
from functools import lru_cache

__all__ = ["find_near_duplicate", "normalised_source", "similarity", "source_digest"]

_WITH_DOCSTRING = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _drop_docstrings(tree: ast.Module) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, _WITH_DOCSTRING) or not node.body:
            continue
        first = node.body[0]
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            del node.body[0]
            if not node.body and not isinstance(node, ast.Module):
                # A body that was only a docstring needs a statement to stay valid code.
                node.body.append(ast.Pass())


def _fallback_normalised(source: str) -> str:
    lines = (re.sub(r"\s+", " ", line).strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("#"))


@lru_cache(maxsize=512)
def normalised_source(source: str) -> str:
    """The code without comments, docstrings or formatting differences.

    Parsed and unparsed with :mod:`ast` (which drops comments and fixes the formatting) after
    removing module, class and function docstrings. Code that does not parse falls back to its
    text without blank or comment-only lines, with whitespace runs collapsed to one space.
    """
    with warnings.catch_warnings():
        # Invalid escape sequences warn at parse time; under `-W error` that would be an error.
        warnings.simplefilter("ignore")
        try:
            tree = ast.parse(source)
            _drop_docstrings(tree)
            return ast.unparse(tree)
        except (SyntaxError, ValueError, RecursionError):
            return _fallback_normalised(source)


def source_digest(source: str) -> str:
    """The sha256 hex digest of :func:`normalised_source`: equal for reworded but equal code."""
    return hashlib.sha256(normalised_source(source).encode("utf-8", "surrogatepass")).hexdigest()


_SKIPPED = {tokenize.ENCODING, tokenize.ENDMARKER, tokenize.NL, tokenize.COMMENT}
_MARKERS = {tokenize.NEWLINE: "<NEWLINE>", tokenize.INDENT: "<INDENT>", tokenize.DEDENT: "<DEDENT>"}
_WORD_OR_PUNCT = re.compile(r"\w+|[^\w\s]")


@lru_cache(maxsize=512)
def _token_lines(source: str) -> tuple[tuple[str, ...], ...]:
    """The tokens of the normalised source, grouped by logical line."""
    normalised = normalised_source(source)
    lines: list[tuple[str, ...]] = []
    line: list[str] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(normalised).readline):
            if token.type in _SKIPPED:
                continue
            # Indentation is structure in Python: keep it as markers, not as whitespace text.
            line.append(_MARKERS.get(token.type, token.string))
            if token.type == tokenize.NEWLINE:
                lines.append(tuple(line))
                line = []
    except (tokenize.TokenError, SyntaxError):
        # Only the fallback text of code that does not parse gets here.
        return tuple(tuple(_WORD_OR_PUNCT.findall(text)) for text in normalised.splitlines())
    if line:
        lines.append(tuple(line))
    return tuple(lines)


def _flat(lines: Sequence[tuple[str, ...]]) -> list[str]:
    return [token for line in lines for token in line]


def _ratio(
    a: tuple[tuple[str, ...], ...], b: tuple[tuple[str, ...], ...], at_least: float = 0.0
) -> float:
    """The share of tokens that match, or 0.0 once an upper bound shows it is below at_least.

    Lines are aligned first and the tokens compared only inside the regions that differ. On
    the whole token sequences, SequenceMatcher is slow for code (its few common tokens, like
    brackets and commas, recur hundreds of times: 1 s for two 500-line files), while most
    designs compared are near-copies of each other, whose differing regions are small.
    """
    if a > b:
        # SequenceMatcher's greedy matching is not symmetric; a fixed order makes this so.
        a, b = b, a
    total = sum(map(len, a)) + sum(map(len, b))
    if total == 0:
        return 1.0
    # The bounds are compared with a little slack so float rounding cannot drop a ratio that
    # equals at_least exactly.
    at_least -= 1e-9
    if at_least > 0.0:
        whole = difflib.SequenceMatcher(None, _flat(a), _flat(b), autojunk=False)
        if whole.real_quick_ratio() < at_least or whole.quick_ratio() < at_least:
            return 0.0
    lines = difflib.SequenceMatcher(None, a, b, autojunk=False)
    matched = 0
    gaps: list[tuple[difflib.SequenceMatcher[str], int]] = []
    for tag, a_lo, a_hi, b_lo, b_hi in lines.get_opcodes():
        if tag == "equal":
            matched += sum(map(len, a[a_lo:a_hi]))
        elif tag == "replace":
            old, new = _flat(a[a_lo:a_hi]), _flat(b[b_lo:b_hi])
            gaps.append(
                (difflib.SequenceMatcher(None, old, new, autojunk=False), len(old) + len(new))
            )
    if at_least > 0.0:
        # quick_ratio() * (len + len) / 2 is the multiset intersection: at most the matches.
        bound = sum(gap.quick_ratio() * size / 2 for gap, size in gaps)
        if 2 * (matched + bound) / total < at_least:
            return 0.0
    for gap, _ in gaps:
        matched += sum(block.size for block in gap.get_matching_blocks())
    return 2 * matched / total


def similarity(a: str, b: str) -> float:
    """How similar two designs are, from 0.0 to 1.0 (identical once normalised).

    Twice the number of matching tokens over the total number of tokens of the normalised
    sources (:class:`difflib.SequenceMatcher`'s ratio), so comments, docstrings and formatting
    do not count. Lines are aligned first and tokens matched within the regions that differ.
    """
    if normalised_source(a) == normalised_source(b):
        return 1.0
    return _ratio(_token_lines(a), _token_lines(b))


def find_near_duplicate(
    source: str, others: Mapping[str, str], threshold: float
) -> tuple[str, float] | None:
    """The archived design most similar to ``source``, if at least ``threshold`` similar.

    An archived source with the same digest counts first, as 1.0. Otherwise the key and
    similarity of the first of the most similar sources at or above the threshold, or None.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"the similarity threshold must be in [0, 1], not {threshold}")
    digest = source_digest(source)
    for key, other in others.items():
        if source_digest(other) == digest:
            return key, 1.0
    lines = _token_lines(source)
    best: tuple[str, float] | None = None
    for key, other in others.items():
        # Below the best so far is as useless as below the threshold; a tie keeps the first.
        floor = threshold if best is None else math.nextafter(best[1], math.inf)
        score = _ratio(lines, _token_lines(other), at_least=floor)
        if score >= floor:
            best = key, score
    return best
