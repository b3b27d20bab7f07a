"""The memory-design API: the base class, the context a design gets, loading and snapshots.

A memory design is a Python module holding exactly one subclass of :class:`MemoryDesign`. The
harness calls ``general_update(trajectory)`` after collection episodes (and after deployment
episodes in sequential mode) and ``general_retrieve(task_start)`` before each deployment episode.
Both may be coroutines or plain methods (plain ones run in a worker thread so that they cannot
block the event loop the LLM client lives on).

Example::

    from pytest_alma import MemoryDesign

    class LastSuccess(MemoryDesign):
        def __init__(self, ctx):
            super().__init__(ctx)
            self.actions: list[str] = []

        async def general_update(self, trajectory):
            if trajectory.success:
                self.actions = [s.action for s in trajectory.steps]

        async def general_retrieve(self, task):
            return {"last_successful_actions": self.actions} if self.actions else {}
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import pickle
import random
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from pytest_alma.records import TaskStart, Trajectory

if TYPE_CHECKING:
    from pytest_alma.memory.vector_index import VectorIndex

JSONDict = dict[str, Any]


class DesignLLM(Protocol):
    """The LLM access a design gets: chat and embeddings through the harness gateway.

    Calls are cached, rate-limited and accounted by the harness; the design never sees an API
    key.
    """

    async def chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_mode: bool = False,
        model: str | None = None,
    ) -> str: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


@dataclass
class DesignContext:
    """What a design may use: the harness ``llm``, ``embed``, a seeded ``rng``, a scratch dir."""

    llm: DesignLLM
    rng: random.Random
    scratch_dir: Path
    seed: int
    extra: JSONDict = field(default_factory=dict)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed ``texts`` through the harness (same as ``ctx.llm.embed``)."""
        return await self.llm.embed(texts)

    def vector_index(self, dim: int | None = None) -> VectorIndex:
        """A new exact cosine index (see :class:`pytest_alma.memory.VectorIndex`)."""
        from pytest_alma.memory.vector_index import VectorIndex

        return VectorIndex(dim)


class MemoryDesign:
    """Base class of every memory design. Subclass it once per design module.

    Override :meth:`general_update` and :meth:`general_retrieve`. State kept on ``self`` must
    survive :mod:`pickle` (the built memory is snapshotted and loaded by every xdist worker);
    otherwise implement :meth:`state_dict` and :meth:`load_state_dict`.
    """

    #: Set to True on an intermediate base class that is not itself a design.
    abstract: bool = False

    def __init__(self, ctx: DesignContext | None = None) -> None:
        self.ctx: DesignContext = ctx  # type: ignore[assignment]

    async def general_update(self, trajectory: Trajectory) -> None:
        """Learn from one finished episode."""
        raise NotImplementedError(f"{type(self).__name__} does not implement general_update")

    async def general_retrieve(self, task: TaskStart) -> JSONDict:
        """Return the memory (a JSON-serialisable dict) to show the agent for ``task``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement general_retrieve")

    def __getstate__(self) -> JSONDict:
        # The context holds live clients and an event loop: never part of the memory state.
        state = dict(self.__dict__)
        state.pop("ctx", None)
        return state

    def __setstate__(self, state: JSONDict) -> None:
        self.__dict__.update(state)


class DesignError(Exception):
    """A design file or a design call failed; the message says what and how to fix it."""


class DesignLoadError(DesignError):
    """The design file cannot be turned into a design class or instance."""


class DesignCallError(DesignError):
    """``general_update`` or ``general_retrieve`` raised, timed out or returned junk."""


@dataclass(frozen=True)
class LoadedDesign:
    """A design class with where it came from."""

    path: Path
    cls: type[MemoryDesign]
    module: ModuleType
    source_hash: str

    @property
    def name(self) -> str:
        return self.path.stem


def source_hash(path: Path) -> str:
    """Content hash of a design file (identical code gives the identical hash)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _module_name(path: Path, digest: str) -> str:
    # A stable, importable-looking name: pickle records it, and every process that restores a
    # snapshot has loaded the same file under the same name first.
    stem = "".join(ch if ch.isalnum() else "_" for ch in path.stem)
    return f"pytest_alma_design_{stem}_{digest}"


def load_design(path: Path) -> LoadedDesign:
    """Import a design file and find its one design class.

    Raises :class:`DesignLoadError` with the line of a syntax error, the classes found when none
    or several subclass :class:`MemoryDesign`, or the traceback of an import failure.
    """
    path = Path(path).resolve()
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DesignLoadError(f"cannot read design file {path}: {exc}") from exc
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise DesignLoadError(
            f"{path}:{exc.lineno}: syntax error: {exc.msg}\n    {(exc.text or '').rstrip()}"
        ) from None
    name = _module_name(path, digest)
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_loader(name, loader=None, origin=str(path))
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        module.__file__ = str(path)
        sys.modules[name] = module
        try:
            exec(code, module.__dict__)
        except BaseException as exc:
            del sys.modules[name]
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise DesignLoadError(
                f"importing design file {path} failed:\n{_short_traceback(exc)}"
            ) from None
    cls = _find_design_class(module, path)
    return LoadedDesign(path=path, cls=cls, module=module, source_hash=digest)


def _find_design_class(module: ModuleType, path: Path) -> type[MemoryDesign]:
    candidates = [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, MemoryDesign)
        and obj is not MemoryDesign
        and obj.__module__ == module.__name__
        and not obj.__dict__.get("abstract", False)
    ]
    if not candidates:
        classes = [
            n
            for n, o in inspect.getmembers(module, inspect.isclass)
            if o.__module__ == module.__name__
        ]
        found = ", ".join(classes) if classes else "no classes at all"
        raise DesignLoadError(
            f"{path}: no memory design class found (classes defined: {found}). A design module "
            "must define exactly one class that subclasses pytest_alma.MemoryDesign."
        )
    if len(candidates) > 1:
        names = ", ".join(sorted(c.__name__ for c in candidates))
        raise DesignLoadError(
            f"{path}: several memory design classes found ({names}). A design module must "
            "define exactly one; move the others to their own files, or mark shared base "
            "classes with `abstract = True`."
        )
    return candidates[0]


def instantiate(loaded: LoadedDesign, ctx: DesignContext) -> MemoryDesign:
    """Construct the design with its context; a failing constructor is a DesignLoadError."""
    try:
        params = inspect.signature(loaded.cls.__init__).parameters
        takes_ctx = len(params) > 1
        design = loaded.cls(ctx) if takes_ctx else loaded.cls()
    except Exception as exc:
        raise DesignLoadError(
            f"constructing {loaded.cls.__name__} from {loaded.path} failed:\n"
            f"{_short_traceback(exc)}"
        ) from None
    design.ctx = ctx
    return design


def snapshot(design: MemoryDesign) -> bytes:
    """Serialise a design's memory state (``state_dict()`` if defined, else the object)."""
    try:
        state_dict = getattr(design, "state_dict", None)
        if callable(state_dict):
            return pickle.dumps(("state_dict", state_dict()), protocol=pickle.HIGHEST_PROTOCOL)
        return pickle.dumps(("object", design), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise DesignCallError(
            f"the memory of {type(design).__name__} cannot be snapshotted: {exc!r}. Keep design "
            "state picklable (no open files, clients or locks on self), or implement "
            "state_dict()/load_state_dict()."
        ) from exc


def restore(loaded: LoadedDesign, ctx: DesignContext, blob: bytes) -> MemoryDesign:
    """Rebuild a design instance from :func:`snapshot` output."""
    kind, payload = pickle.loads(blob)
    if kind == "state_dict":
        design = instantiate(loaded, ctx)
        design.load_state_dict(payload)  # type: ignore[attr-defined]
        return design
    if not isinstance(payload, loaded.cls):
        raise DesignCallError(
            f"snapshot holds a {type(payload).__name__}, expected {loaded.cls.__name__}"
        )
    payload.ctx = ctx
    return payload


def _short_traceback(exc: BaseException, limit: int = 6) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-limit)
    return "".join(lines).rstrip()
