"""Files on disk: shared collection episodes, memory snapshots, run directories.

Everything is written atomically (a temporary file in the same directory, fsync, then
``os.replace``), so a run killed at any moment leaves either the old file or the new one,
never half of one. Work shared between xdist workers is guarded by :mod:`filelock` locks (the
pattern the xdist documentation recommends for run-once work), one lock per item of work.

Layout under the store directory (``--alma-store``, default ``.alma``)::

    collection/<env>/<key>.json   no-memory collection episodes, shared by every design
    memory/<key>.pkl              built-memory snapshots, one per design/plan/model
    locks/                        lock files
    llm_cache.sqlite              the LLM response cache
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock


def _file_mode() -> int:
    """0666 minus the process umask, as ``open()`` would create a file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


#: Read once at import (os.umask can only be read by setting it, which is not thread-safe).
_FILE_MODE = _file_mode()


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a part.

    ``durable=False`` skips the fsync: the write is still atomic for readers and survives the
    process being killed, and only an OS crash can lose it. For per-episode artefacts, where an
    fsync each costs more than the rest of a cached episode.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); reports, records and designs are ordinary
        # files that other users and CI artefact uploads must be able to read.
        os.chmod(tmp, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, *, durable: bool = True) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


def atomic_write_json(
    path: Path, data: Any, *, durable: bool = True, indent: int | None = 2
) -> None:
    """Write JSON atomically, indented for humans unless ``indent=None``.

    ``durable`` is as in :func:`atomic_write_bytes`. ``indent=None`` writes one compact line,
    several times faster (the C encoder), for files written once per episode.
    """
    text = json.dumps(data, indent=indent, ensure_ascii=False, sort_keys=False) + "\n"
    atomic_write_text(path, text, durable=durable)


def read_json(path: Path) -> Any:
    """Read a JSON file."""
    return json.loads(path.read_text(encoding="utf-8"))


def stable_key(data: Any) -> str:
    """A content key for anything JSON-able (canonical JSON, sha256, 24 hex chars)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


class Store:
    """The shared on-disk state of the harness (see the module docstring for the layout)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def collection_path(self, env: str, key: str) -> Path:
        return self.root / "collection" / env / f"{key}.json"

    def memory_path(self, key: str) -> Path:
        return self.root / "memory" / f"{key}.pkl"

    @property
    def cache_path(self) -> Path:
        return self.root / "llm_cache.sqlite"

    def file_lock(self, name: str) -> FileLock:
        """The named inter-process lock, to acquire and release by hand."""
        path = self.root / "locks" / f"{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(path))

    @contextmanager
    def lock(self, name: str, timeout_s: float = -1) -> Iterator[None]:
        """Hold the named inter-process lock (waits forever by default)."""
        path = self.root / "locks" / f"{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path), timeout=timeout_s):
            yield
