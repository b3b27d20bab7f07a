"""Find a design module's one design class without executing the module.

Collection must not run design code: a module that loops, exits or crashes at import would hang
or end the process that collects it (the controller and every xdist worker). So the class is
found from the syntax tree: a class counts as a design when one of its bases is
``MemoryDesign`` (imported by name or under an alias, or reached as an attribute such as
``pytest_alma.MemoryDesign``) or another class of the same module that counts, and its body does
not set ``abstract = True``.
The import itself happens later, in the design process, under the time limit; there the class
found by importing must be the class found here (a module that makes its design class
dynamically is refused with that explanation).
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path

#: The base class's name: ``class X(MemoryDesign)`` or ``class X(pytest_alma.MemoryDesign)``.
BASE_NAME = "MemoryDesign"


class StaticFindError(Exception):
    """The file cannot be read or parsed, or does not hold exactly one design class."""


@dataclass(frozen=True)
class DesignSpec:
    """A design file as the harness knows it before any of its code runs.

    ``class_name`` was found statically (see the module docstring); ``source_hash`` is the
    content hash that keys its memory snapshots and results.
    """

    path: Path
    class_name: str
    source_hash: str

    @property
    def name(self) -> str:
        """The design's name in results: the file's stem."""
        return self.path.stem


def _aliases(tree: ast.Module) -> set[str]:
    """Names the module binds to the base class: ``MemoryDesign`` and any ``import ... as``."""
    names = {BASE_NAME}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == BASE_NAME:
                    names.add(alias.asname or alias.name)
    return names


def _base_names(node: ast.ClassDef) -> list[str]:
    names: list[str] = []
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.append(base.id)
        elif isinstance(base, ast.Attribute):
            names.append(base.attr)
    return names


def _is_abstract(node: ast.ClassDef) -> bool:
    for statement in node.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        for target in targets:
            if (
                isinstance(target, ast.Name)
                and target.id == "abstract"
                and isinstance(value, ast.Constant)
                and value.value is True
            ):
                return True
    return False


def design_class_name(source: str, path: Path) -> str:
    """The name of the one design class defined at the top level of ``source``.

    Raises :class:`StaticFindError` with the same advice as an import-time check would give:
    the line of a syntax error, the classes found when none or several qualify.
    """
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise StaticFindError(
            f"{path}:{exc.lineno}: syntax error: {exc.msg}\n    {(exc.text or '').rstrip()}"
        ) from None
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    bases = _aliases(tree)
    designs: set[str] = set()
    changed = True
    while changed:  # a class counts once any of its bases counts (bases may come later)
        changed = False
        for node in classes:
            if node.name in designs:
                continue
            if any(b in bases or b in designs for b in _base_names(node)):
                designs.add(node.name)
                changed = True
    concrete = sorted(n.name for n in classes if n.name in designs and not _is_abstract(n))
    if not concrete:
        found = ", ".join(n.name for n in classes) or "no classes at all"
        raise StaticFindError(
            f"{path}: no memory design class found (classes defined: {found}). A design module "
            "must define, at its top level, exactly one class that subclasses "
            "pytest_alma.MemoryDesign."
        )
    if len(concrete) > 1:
        raise StaticFindError(
            f"{path}: several memory design classes found ({', '.join(concrete)}). A design "
            "module must define exactly one; move the others to their own files, or mark "
            "shared base classes with `abstract = True`."
        )
    return concrete[0]


def find_design(path: Path) -> DesignSpec:
    """Read ``path`` and find its design class without running it (see the module docstring)."""
    path = Path(path).resolve()
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StaticFindError(f"cannot read design file {path}: {exc}") from exc
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]
    return DesignSpec(path=path, class_name=design_class_name(source, path), source_hash=digest)
