"""``python -m pytest_alma search status``: the archive as a table and a lineage tree."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from pytest_alma.search import archive as A
from pytest_alma.search.archive import Archive, Candidate


def _score(c: Candidate) -> str:
    if c.reward is None:
        return "-"
    if c.reward_low is None or c.reward_high is None:
        return f"{c.reward:.3f}"
    return f"{c.reward:.3f} [{c.reward_low:.3f}, {c.reward_high:.3f}] n={c.reward_n}"


def _note(c: Candidate) -> str:
    if c.status == A.DUPLICATE:
        return f"duplicate of {c.duplicate_of}"
    if c.status in (A.FAILED, A.BUDGET) or (c.reason and c.status not in A.TERMINAL):
        first = (c.reason or "").strip().splitlines()
        return f"{c.stage or ''}: {first[0][:70] if first else ''}".strip(": ")
    if c.status == A.WRITTEN and c.path:
        return Path(c.path).name
    return ""


def render_status(path: Path) -> str:
    """The archive at ``path``: a summary line, the candidates table and the lineage tree."""
    if not path.exists():
        raise FileNotFoundError(
            f"no search archive at {path}: run `pytest --alma-search` first, or pass --archive PATH"
        )
    archive = Archive(path)
    try:
        candidates = archive.candidates()
        generations = archive.generations()
        baseline = archive.get_meta("baseline")
    finally:
        archive.close()
    counts: dict[str, int] = defaultdict(int)
    for c in candidates:
        counts[c.status] += 1
    meta = sum(c.meta_cost_usd for c in candidates)
    evaluation = sum(c.eval_cost_usd for c in candidates)
    open_generations = [str(g.number) for g in generations if g.status != "done"]
    head = [
        f"archive: {path}",
        f"{len(candidates)} candidates ("
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + f"); {len(generations)} generation(s)"
        + (f", unfinished: {', '.join(open_generations)}" if open_generations else ""),
        f"No Memory reward: {baseline:.3f}" if baseline is not None else "No Memory reward: -",
        f"spent: ${meta:.4f} meta-agent, ${evaluation:.4f} evaluation",
    ]
    rows = [
        [
            c.id,
            c.generation,
            c.parent or "",
            c.status,
            c.name or "",
            _score(c),
            c.visits,
            c.attempts,
            f"{c.meta_tokens} / ${c.meta_cost_usd:.4f}",
            f"{c.eval_tokens} / ${c.eval_cost_usd:.4f}",
            _note(c),
        ]
        for c in candidates
    ]
    table = tabulate(
        rows,
        headers=[
            "id",
            "gen",
            "parent",
            "status",
            "design",
            "reward [95% CI]",
            "visits",
            "repairs",
            "meta tokens / $",
            "eval tokens / $",
            "note",
        ],
    )
    return "\n".join([*head, "", table, "", "lineage:", *lineage_tree(candidates)])


def lineage_tree(candidates: list[Candidate]) -> list[str]:
    """Each candidate under its parent, roots first, as indented text."""
    children: dict[str | None, list[Candidate]] = defaultdict(list)
    known = {c.id for c in candidates}
    for c in candidates:
        children[c.parent if c.parent in known else None].append(c)
    lines: list[str] = []

    def walk(node: Candidate, prefix: str, last: bool) -> None:
        branch = "`-- " if last else "|-- "
        score = f" {node.reward:.3f}" if node.reward is not None else ""
        lines.append(f"{prefix}{branch}{node.name or node.id} [{node.id}, {node.status}]{score}")
        kids = children.get(node.id, [])
        for i, kid in enumerate(kids):
            walk(kid, prefix + ("    " if last else "|   "), i == len(kids) - 1)

    roots = children.get(None, [])
    for i, root in enumerate(roots):
        walk(root, "", i == len(roots) - 1)
    return lines
