"""Keeping untrusted memory designs from hurting the run (see ``docs/isolation.md``).

A design is arbitrary Python code run inside the harness's own processes. This module holds the
guards the harness puts around it:

- :func:`scrub_controller_environment` / :func:`restore_controller_environment`: the API key
  (and anything that looks like a credential) leaves the controller's environment once the
  gateway child holds it, so xdist workers, which are spawned later, never receive it.
- :func:`scrub_worker_environment`: in a worker, the settings are resolved first, then the
  variables designs must not read (credentials, the upstream base URL) are removed.
- :func:`limit_worker_memory`: ``RLIMIT_AS`` in each worker, so that a design that allocates
  too much gets a MemoryError instead of taking the machine (and every other worker) down.
- :func:`design_call_guard` with an audit hook (:func:`install_write_guard`): while a design
  call runs, writes outside its scratch directory raise PermissionError. An audit hook is a
  tripwire for honest mistakes, NOT a sandbox: ctypes, C extensions, subprocesses and threads
  started by the design get past it.
- :func:`run_sync_in_daemon_thread`: plain (sync) design methods run in daemon threads, so that
  one that hangs can be abandoned without keeping the process from exiting.
- :class:`LoopWatchdog`: an async design that blocks the event loop (a busy loop) cannot be
  reached by ``asyncio.wait_for``; the watchdog raises :class:`DesignInterrupted` in the loop's
  thread after the timeout, and in an xdist worker ends the worker if that does not help.
- :func:`check_json_size`: a retrieved memory is measured with a bounded walk before anything
  serialises it, so a 100 MB string is rejected in microseconds rather than rendered.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ctypes
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Environment variable names that look like credentials; removed from what designs can read.
CREDENTIAL_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)

#: Variables designs must not read although their names look harmless: the upstream server.
# PYTEST_ALMA_ATTACH holds a search sub-session's gateway token: its workers get what they need
# through xdist's workerinput, so designs do not find it in the environment.
UPSTREAM_VARS = ("ALMA_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_BASE", "PYTEST_ALMA_ATTACH")

#: Most characters of JSON a retrieve may return. The prompt shows ``--alma-memory-cap``
#: characters (16 000 by default); anything far beyond that is a bug, and writing it into every
#: trajectory file would fill the disk.
MAX_RETRIEVE_CHARS = 4_000_000

#: Deepest nesting a retrieved memory may have (json.dumps would hit the recursion limit).
MAX_RETRIEVE_DEPTH = 200


# -- environment ----------------------------------------------------------------------------


def secret_names(environ: MutableMapping[str, str], api_key_env: str) -> list[str]:
    """The variables of ``environ`` that hold or look like credentials (``api_key_env`` first)."""
    names = [api_key_env] if api_key_env in environ else []
    key = environ.get(api_key_env)
    for name, value in environ.items():
        if name == api_key_env:
            continue
        # A copy of the key under another name is as secret as the key itself.
        if CREDENTIAL_NAME.search(name) or (key and value == key):
            names.append(name)
    return names


def scrub_controller_environment(api_key_env: str) -> dict[str, str]:
    """Remove credentials and the upstream URL from ``os.environ``; return them for restoring.

    Called once the gateway child has started with the key in its own environment. xdist
    spawns its workers after ``pytest_configure``, from the controller's environment at that
    moment, so the workers never receive the key, not even in ``/proc/self/environ``.
    """
    removed: dict[str, str] = {}
    names = secret_names(os.environ, api_key_env) + [v for v in UPSTREAM_VARS if v in os.environ]
    for name in names:
        removed[name] = os.environ.pop(name)
    return removed


def restore_controller_environment(removed: dict[str, str]) -> None:
    """Put back what :func:`scrub_controller_environment` removed (the user's shell is not ours).

    A variable set again meanwhile is left as it is.
    """
    for name, value in removed.items():
        os.environ.setdefault(name, value)


def scrub_worker_environment(api_key_env: str) -> list[str]:
    """In a worker (settings already resolved): remove credentials and the upstream URL.

    The controller already withheld the key; this also removes variables that only look like
    credentials and the base URL, which a worker has no use for once its settings are read.
    Returns the names removed.
    """
    names = secret_names(os.environ, api_key_env) + [v for v in UPSTREAM_VARS if v in os.environ]
    for name in names:
        os.environ.pop(name, None)
    return names


# -- memory ---------------------------------------------------------------------------------


def limit_worker_memory(megabytes: int) -> bool:
    """Cap this process's address space at ``megabytes`` (0 = no cap); True when applied.

    RLIMIT_AS counts reserved address space, not resident memory, so the cap must leave room
    for thread stacks and mapped libraries; an allocation beyond it raises MemoryError in the
    allocating code only. Platforms without ``resource`` (Windows) get no cap.
    """
    if megabytes <= 0:
        return False
    try:
        import resource
    except ImportError:
        return False
    limit = megabytes * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):
        return False
    return True


def memory_limit_mb() -> int | None:
    """This process's address-space cap in MB, or None when there is none."""
    try:
        import resource
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    return int(soft // (1024 * 1024))


def out_of_memory_message(what: str) -> str:
    """The failure message of a design call that raised MemoryError."""
    limit = memory_limit_mb()
    if limit is None:
        return f"{what} ran out of memory (MemoryError)"
    return (
        f"{what} exceeded the worker memory limit of {limit} MB; raise --alma-worker-memory-mb "
        "(0 = no limit) if the design really needs that much"
    )


# -- writes outside the scratch directory ---------------------------------------------------


@dataclass(frozen=True)
class WritePolicy:
    """Where a running design call may write."""

    scratch: str
    denied: tuple[str, ...]
    allowed: tuple[str, ...]

    def refuses(self, path: str) -> bool:
        """True when a write to ``path`` (absolute, resolved) is not allowed."""
        if _inside(path, self.scratch):
            return False
        if any(_inside(path, d) for d in self.denied):
            return True
        return not any(_inside(path, a) for a in self.allowed)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


_policy: contextvars.ContextVar[WritePolicy | None] = contextvars.ContextVar(
    "alma_design_write_policy", default=None
)
_hook_installed = False
_hook_lock = threading.Lock()

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# Audit events that modify the file system, and which of their arguments are target paths.
_PATH_EVENTS: dict[str, tuple[int, ...]] = {
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.replace": (0, 1),
    "os.link": (1,),
    "os.symlink": (1,),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "os.setxattr": (0,),
    "os.removexattr": (0,),
    "shutil.rmtree": (0,),
    "shutil.move": (0, 1),
    "shutil.copyfile": (1,),
    "shutil.copytree": (1,),
    "shutil.make_archive": (0,),
}


def _resolved(path: Any) -> str | None:
    if isinstance(path, int):
        return None  # an already open descriptor: its open was checked
    try:
        return os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Runs on every audited event of the process: return at once when no design call is active.
    policy = _policy.get()
    if policy is None:
        return
    if event == "open":
        path, mode, flags = args
        if isinstance(mode, str):
            writes = any(c in mode for c in "wax+")
        else:
            writes = bool((flags or 0) & _WRITE_FLAGS)
        targets = [path] if writes else []
    elif event in _PATH_EVENTS:
        targets = [args[i] for i in _PATH_EVENTS[event] if i < len(args)]
    else:
        return
    for target in targets:
        resolved = _resolved(target)
        if resolved is not None and policy.refuses(resolved):
            raise PermissionError(
                f"design wrote outside its scratch directory: {event} {resolved!r} is not "
                f"allowed (write under ctx.scratch_dir = {policy.scratch!r})"
            )


def install_write_guard() -> None:
    """Install the audit hook once per process (audit hooks cannot be removed)."""
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed = True


def write_policy(scratch: Path, denied: list[Path]) -> WritePolicy:
    """A policy for a design whose scratch dir is ``scratch``.

    Allowed: the scratch dir, the system temp dir (libraries such as joblib spill there) and
    ``/dev/null``. Denied even inside the temp dir: ``denied`` (the project, its store and its
    reports, which a test project often has under the temp dir).
    """
    return WritePolicy(
        scratch=os.path.realpath(scratch),
        denied=tuple(os.path.realpath(d) for d in denied),
        allowed=(os.path.realpath(tempfile.gettempdir()), os.devnull),
    )


@contextlib.contextmanager
def design_call_guard(policy: WritePolicy | None) -> Iterator[None]:
    """Apply ``policy`` to the code run inside (and to tasks and threads copying the context)."""
    if policy is None:
        yield
        return
    install_write_guard()
    token = _policy.set(policy)
    try:
        yield
    finally:
        _policy.reset(token)


# -- hangs ----------------------------------------------------------------------------------


def run_sync_in_daemon_thread(fn: Callable[[Any], Any], arg: Any) -> asyncio.Future[Any]:
    """Run ``fn(arg)`` in a new daemon thread; its result or exception lands in a future.

    ``asyncio.to_thread`` uses the loop's executor, whose threads are joined when the loop
    closes and when the interpreter exits: one design method that never returns would keep the
    worker from ever finishing. A daemon thread that is abandoned after a timeout does not.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()  # carries the write policy into the thread

    def settle(ok: bool, value: Any) -> None:
        if future.done():  # cancelled by the timeout: nobody wants the result any more
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def body() -> None:
        try:
            result = context.run(fn, arg)
        except BaseException as exc:  # delivered to the awaiting caller, SystemExit too
            outcome: tuple[bool, Any] = (False, exc)
        else:
            outcome = (True, result)
        with contextlib.suppress(RuntimeError):  # the loop may be closed by now
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=body, name="alma-design-call", daemon=True).start()
    return future


class DesignInterrupted(Exception):
    """Raised inside a design call that blocked the event loop past its timeout."""


class LoopWatchdog:
    """Interrupt a design call that blocks its event loop thread beyond the timeout.

    ``asyncio.wait_for`` needs the loop to run to notice a timeout; an ``async`` method stuck
    in a busy loop never lets it. After ``timeout + grace`` seconds the watchdog raises
    :class:`DesignInterrupted` in the loop's thread (delivered at the next Python bytecode).
    If the call still has not returned ``hard_exit_after`` seconds later (blocked in C code)
    and ``hard_exit`` is set (xdist workers only), it ends the process: xdist then reports the
    item as crashed and starts a new worker, which beats hanging the whole session.
    """

    def __init__(
        self, what: str, timeout_s: float | None, *, grace_s: float = 1.0, hard_exit: bool = False
    ) -> None:
        self.what = what
        self.timeout_s = timeout_s
        self.grace_s = grace_s
        self.hard_exit = hard_exit
        self.hard_exit_after = 10.0
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._target = threading.get_ident()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LoopWatchdog:
        if self.timeout_s:
            self._thread = threading.Thread(target=self._watch, name="alma-watchdog", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:  # no interrupt can be injected after this point
            self._done.set()

    def _watch(self) -> None:
        assert self.timeout_s is not None
        if self._done.wait(self.timeout_s + self.grace_s):
            return
        # Re-raised every half second: a design may swallow one with `except Exception`.
        deadline = self.hard_exit_after / 0.5
        for _ in range(int(deadline)):
            with self._lock:
                if self._done.is_set():
                    return
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self._target), ctypes.py_object(DesignInterrupted)
                )
            if self._done.wait(0.5):
                return
        if self.hard_exit and not self._done.is_set():
            sys.stderr.write(
                f"pytest-alma: {self.what} blocked its worker for more than "
                f"{self.timeout_s:g} s and could not be interrupted; ending the worker\n"
            )
            sys.stderr.flush()
            os._exit(70)


# -- junk returns ---------------------------------------------------------------------------


class OversizedMemory(ValueError):
    """A retrieved memory is too large or too deeply nested to be shown to the agent."""


def check_json_size(
    value: Any, limit: int = MAX_RETRIEVE_CHARS, max_depth: int = MAX_RETRIEVE_DEPTH
) -> int:
    """A lower bound of ``value``'s JSON length, raising :class:`OversizedMemory` beyond ``limit``.

    The walk stops as soon as the bound passes ``limit``, so a 100 MB string costs one ``len``.
    Types json cannot encode are left to ``json.dumps``, which names them.
    """
    total = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise OversizedMemory(f"it is nested more than {max_depth} levels deep")
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, dict):
            total += 2
            for key, child in item.items():
                total += (len(key) if isinstance(key, str) else 8) + 4
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple):
            total += 2 + len(item)
            if total <= limit:  # checked before pushing: a list of 10**8 items stops here
                stack.extend((child, depth + 1) for child in item)
        else:
            total += 4
        if total > limit:
            raise OversizedMemory(
                f"it is more than {limit:,} characters of JSON (a memory this large cannot be "
                f"shown to the agent; --alma-memory-cap shows the first characters only)"
            )
    return total


# -- per-process configuration ----------------------------------------------------------------

_protected: tuple[Path, ...] = ()
_in_worker = False


def protect(paths: list[Path]) -> None:
    """Turn the write guard on for this process: designs may not write under ``paths``.

    Called by the harness with the project root, the store and the reports directory; until
    then (design code run outside a harness, e.g. in unit tests) no write policy applies.
    """
    global _protected
    _protected = tuple(Path(p) for p in paths)


def mark_worker() -> None:
    """Record that this process is an xdist worker (the watchdog may end it as a last resort)."""
    global _in_worker
    _in_worker = True


def in_worker() -> bool:
    """True in an xdist worker (see :func:`mark_worker`)."""
    return _in_worker


def policy_for(scratch: Path | None) -> WritePolicy | None:
    """The write policy of a design whose scratch dir is ``scratch`` (None: no guard)."""
    if scratch is None or not _protected:
        return None
    return write_policy(scratch, list(_protected))
