"""Learned design files: a provenance docstring on top of the generated code.

Every design the search writes to the designs directory starts with a docstring that says where
it came from (parent, generation, meta-model, date), how it scored (with the interval, the
parent's and No Memory's scores), and the analysis that motivated it, so that a reader of
``designs/`` (or of a diff in review) knows what the file is without opening the archive.
"""

from __future__ import annotations

import ast
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_alma.store import atomic_write_text


@dataclass(frozen=True)
class Provenance:
    """What the header says."""

    name: str
    candidate_id: str
    parent: str | None
    generation: int
    meta_model: str
    test_double: bool
    reward: float | None
    reward_low: float | None
    reward_high: float | None
    reward_n: int | None
    parent_reward: float | None
    baseline_reward: float | None
    heldout: bool
    changes: list[str]
    repairs: int


def design_name(generation: int, source_hash: str) -> str:
    """The file stem of a learned design: its generation and a prefix of its content hash."""
    return f"alma_g{generation}_{source_hash[:8]}"


def split_docstring(source: str) -> tuple[str | None, str]:
    """The module docstring of ``source`` and the source without it."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None, source
    if not tree.body:
        return None, source
    first = tree.body[0]
    if not (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return None, source
    lines = source.splitlines(keepends=True)
    end = first.end_lineno or first.lineno
    rest = "".join(lines[end:]).lstrip("\n")
    return first.value.value, rest


def header(p: Provenance, original_doc: str | None) -> str:
    """The provenance docstring (without quotes)."""
    date = time.strftime("%Y-%m-%d", time.gmtime())
    lines = [f"Learned memory design {p.name} (written by the pytest-alma search).", ""]
    parent = f"parent {p.parent}" if p.parent else "written from scratch (no parent)"
    lines.append(
        f"Origin: candidate {p.candidate_id}, generation {p.generation}, {parent}; meta-model "
        f"{p.meta_model}{' (the scripted TEST DOUBLE, not an LLM)' if p.test_double else ''}; "
        f"{date}; {p.repairs} repair round(s)."
    )
    if p.reward is not None:
        interval = (
            f" [95% interval {p.reward_low:.3f}, {p.reward_high:.3f}], n={p.reward_n}"
            if p.reward_low is not None and p.reward_high is not None
            else ""
        )
        where = "held-out tasks" if p.heldout else "the session's deployment tasks"
        lines.append(f"Search reward: {p.reward:.3f}{interval} on {where}.")
        context = []
        if p.parent_reward is not None:
            context.append(f"parent {p.parent_reward:.3f}")
        if p.baseline_reward is not None:
            context.append(f"No Memory {p.baseline_reward:.3f}")
        if context:
            lines.append("Compared with: " + ", ".join(context) + ".")
        if p.test_double:
            lines.append("These scores come from the scripted test double: plumbing, not an LLM.")
    if p.changes:
        lines += ["", "The analysis that motivated it (suggested changes):"]
        lines += [f"- {c}" for c in p.changes]
    if original_doc and original_doc.strip():
        lines += [
            "",
            "The meta-agent's own description:",
            "",
            textwrap.dedent(original_doc).strip(),
        ]
    return "\n".join(lines).replace('"""', "'''").replace("\\", "\\\\")


def with_header(source: str, p: Provenance) -> str:
    """``source`` with its module docstring replaced by the provenance docstring."""
    original, rest = split_docstring(source)
    return f'"""{header(p, original)}\n"""\n\n{rest}'


def write_design(directory: Path, source: str, p: Provenance) -> Path:
    """Write the design file atomically (idempotent: the same content gives the same file)."""
    path = directory / f"{p.name}.py"
    atomic_write_text(path, with_header(source, p))
    return path
