"""The first, free stage of verification: what can be told from the source alone.

The code must parse, define exactly one design class with both ``general_*`` methods, and
import nothing from the forbidden list (``--alma-search-forbidden-imports``). None of this is the
security boundary (the sandboxed design process is, see ``docs/isolation.md``); it rejects code
that has no business running before anything runs, and gives the repair call a precise message.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

#: Built-ins a design has no use for that would bypass the import check.
FORBIDDEN_CALLS = frozenset({"__import__", "eval", "exec", "compile", "breakpoint"})
REQUIRED_METHODS = ("general_update", "general_retrieve")


@dataclass(frozen=True)
class StaticProblem:
    """Why the code was rejected, with the line when there is one."""

    message: str
    line: int | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def _is_design_base(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "MemoryDesign"
    if isinstance(node, ast.Attribute):
        return node.attr == "MemoryDesign"
    return False


def _is_abstract(cls: ast.ClassDef) -> bool:
    for statement in cls.body:
        if (
            isinstance(statement, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "abstract" for t in statement.targets)
            and isinstance(statement.value, ast.Constant)
            and statement.value.value is True
        ):
            return True
    return False


def _forbidden(module: str, forbidden: Iterable[str]) -> str | None:
    for name in forbidden:
        if module == name or module.startswith(name + "."):
            return name
    return None


def check_source(source: str, forbidden_imports: Iterable[str]) -> list[StaticProblem]:
    """Every static problem of ``source`` (empty when it passes)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [StaticProblem(f"syntax error: {exc.msg}: {(exc.text or '').strip()}", exc.lineno)]
    forbidden = list(forbidden_imports)
    problems: list[StaticProblem] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                hit = _forbidden(alias.name, forbidden)
                if hit:
                    problems.append(
                        StaticProblem(f"imports {alias.name} ({hit} is forbidden)", node.lineno)
                    )
        elif isinstance(node, ast.ImportFrom) and node.module:
            hit = _forbidden(node.module, forbidden)
            if hit:
                problems.append(
                    StaticProblem(f"imports from {node.module} ({hit} is forbidden)", node.lineno)
                )
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FORBIDDEN_CALLS
        ):
            problems.append(
                StaticProblem(f"calls {node.func.id}() (not allowed in a design)", node.lineno)
            )
    designs = [
        n
        for n in tree.body
        if isinstance(n, ast.ClassDef)
        and any(_is_design_base(b) for b in n.bases)
        and not _is_abstract(n)
    ]
    if not designs:
        problems.append(
            StaticProblem(
                "no class subclasses MemoryDesign: define exactly one design class "
                "(class MyMemory(MemoryDesign): ...)"
            )
        )
    elif len(designs) > 1:
        names = ", ".join(d.name for d in designs)
        problems.append(
            StaticProblem(
                f"several design classes ({names}): a module holds exactly one; merge them or mark "
                "shared bases with `abstract = True`"
            )
        )
    else:
        defined = _methods_in_hierarchy(tree, designs[0])
        for method in REQUIRED_METHODS:
            if method not in defined:
                problems.append(
                    StaticProblem(f"{designs[0].name} does not define {method}", designs[0].lineno)
                )
    return problems


def _methods_in_hierarchy(tree: ast.Module, cls: ast.ClassDef) -> set[str]:
    """Methods of ``cls`` and of its bases defined in the same module."""
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    seen: set[str] = set()
    methods: set[str] = set()
    stack = [cls]
    while stack:
        current = stack.pop()
        if current.name in seen:
            continue
        seen.add(current.name)
        methods |= {
            n.name for n in current.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        stack.extend(
            classes[b.id] for b in current.bases if isinstance(b, ast.Name) and b.id in classes
        )
    return methods
