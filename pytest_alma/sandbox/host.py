"""The design process: the only process that runs a design's code.

Started by a worker (``python -m pytest_alma.sandbox.host``), inside bubblewrap where it works
(see :mod:`pytest_alma.sandbox.launch`). It serves the requests of
:mod:`pytest_alma.sandbox.protocol` on its standard input and output: import the design file,
construct instances, call ``general_update`` / ``general_retrieve``, snapshot and restore. The
design's ``ctx.llm`` sends its calls back over the same pipe; the worker makes them with a token
scoped to this design, so nothing in this process can reach the gateway, the cache or the store.

Before any design code runs, the protocol's file descriptors are moved out of the way and file
descriptors 0 and 1 are pointed at /dev/null and standard error: a design that prints cannot
corrupt the protocol by accident. (One that writes to the protocol's descriptor on purpose can
only answer its own requests wrongly, which the worker checks.)

This process has no time limit of its own: the worker kills it when a request runs past
``--alma-design-timeout``, and its hard limits (memory, CPU time) are set before it starts.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import os
import random
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from pytest_alma.sandbox.protocol import MAX_FRAME_BYTES, ProtocolError, decode, encode

#: Most characters of JSON a retrieve may return; rejected before anything serialises it.
MAX_RETRIEVE_CHARS = 4_000_000
#: Deepest nesting a retrieved memory may have.
MAX_RETRIEVE_DEPTH = 200


class CallFailed(Exception):
    """A request failed; ``kind`` is one of :data:`pytest_alma.sandbox.protocol.ERROR_KINDS`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class HostLLM:
    """The ``ctx.llm`` of a design in this process: each call is a frame to the worker.

    Usable from the host's event loop (async methods) and from the threads that run a design's
    plain methods (``asyncio.run`` in a thread works too: the call is handed to the host loop).
    """

    def __init__(self, host: Host) -> None:
        self._host = host

    async def chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_mode: bool = False,
        model: str | None = None,
    ) -> str:
        """One chat completion through the harness (cached, accounted to this design)."""
        args = {
            "messages": [dict(m) for m in messages],
            "temperature": temperature,
            "max_tokens": max_tokens,
            "json_mode": bool(json_mode),
            "model": model,
        }
        return str(await self._host.llm_call("chat", args))

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One embedding per text, through the harness."""
        result = await self._host.llm_call("embed", {"texts": [str(t) for t in texts]})
        return [[float(x) for x in row] for row in result]


class LLMCallFailed(Exception):
    """Stand-in raised in a design when the worker reports an LLM failure of another type."""


def _llm_exception(error: dict[str, Any]) -> Exception:
    """The exception a design sees for a failed LLM call: the harness's own error types."""
    from pytest_alma.llm import errors

    message = str(error.get("message", "LLM call failed"))
    kind = getattr(errors, str(error.get("type", "")), None)
    if isinstance(kind, type) and issubclass(kind, errors.LLMError):
        return kind(message)
    if error.get("type") == "ValueError":
        return ValueError(message)
    return errors.LLMUnavailableError(message)


class Host:
    """Serves one worker's requests for one design file (see the module docstring)."""

    def __init__(self, proto_in: IO[bytes], proto_out: IO[bytes]) -> None:
        self._in = proto_in
        self._out = proto_out
        self._write_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._requests: asyncio.Queue[dict[str, Any] | None] | None = None
        self._llm_waiting: dict[int, asyncio.Future[Any]] = {}
        self._llm_next = 0
        self._loaded: Any = None  # pytest_alma.design.LoadedDesign once loaded
        self._source = ""
        self._instances: dict[str, Any] = {}
        self._blobs: dict[str, bytes] = {}
        self.llm = HostLLM(self)

    # -- transport -----------------------------------------------------------------------------

    def send(self, frame: dict[str, Any]) -> None:
        data = encode(frame)
        with self._write_lock:
            self._out.write(data)
            self._out.flush()

    def _read_forever(self) -> None:
        """Reader thread: frames from the worker onto the loop (EOF ends the process)."""
        assert self._loop is not None
        while True:
            line = self._in.readline(MAX_FRAME_BYTES)
            if not line:
                break
            try:
                frame = decode(line)
            except ProtocolError:
                break
            self._loop.call_soon_threadsafe(self._dispatch, frame)
        self._loop.call_soon_threadsafe(self._dispatch, None)

    def _dispatch(self, frame: dict[str, Any] | None) -> None:
        assert self._requests is not None
        if frame is not None and "llm" in frame:
            waiter = self._llm_waiting.pop(int(frame["llm"]), None)
            if waiter is not None and not waiter.done():
                if frame.get("ok"):
                    waiter.set_result(frame.get("result"))
                else:
                    waiter.set_exception(_llm_exception(dict(frame.get("error") or {})))
            return
        self._requests.put_nowait(frame)

    async def llm_call(self, op: str, args: dict[str, Any]) -> Any:
        """Send an LLM call to the worker and wait for its answer (from any thread or loop)."""
        loop = self._loop
        assert loop is not None
        if asyncio.get_running_loop() is not loop:
            future = asyncio.run_coroutine_threadsafe(self.llm_call(op, args), loop)
            return await asyncio.wrap_future(future)
        self._llm_next += 1
        number = self._llm_next
        waiter: asyncio.Future[Any] = loop.create_future()
        self._llm_waiting[number] = waiter
        self.send({"llm": number, "op": op, "args": args})
        return await waiter

    # -- serving -------------------------------------------------------------------------------

    async def serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._requests = asyncio.Queue()
        threading.Thread(target=self._read_forever, name="alma-host-reader", daemon=True).start()
        while True:
            frame = await self._requests.get()
            if frame is None:
                return
            number = frame.get("id")
            try:
                result = await self._handle(frame)
            except CallFailed as exc:
                self.send(
                    {"id": number, "ok": False, "error": {"kind": exc.kind, "message": str(exc)}}
                )
                continue
            try:
                self.send({"id": number, "ok": True, "result": result})
            except (
                TypeError,
                ValueError,
                RecursionError,
            ) as exc:  # checked before; belt and braces
                message = f"the result cannot be sent as strict JSON: {exc}"
                self.send(
                    {"id": number, "ok": False, "error": {"kind": "junk", "message": message}}
                )

    async def _handle(self, frame: dict[str, Any]) -> Any:
        op = frame.get("op")
        if op == "hello":
            return {"pid": os.getpid(), "python": sys.version.split()[0]}
        if op == "load":
            return self._load(str(frame["path"]), str(frame["class"]))
        if self._loaded is None:
            raise CallFailed("protocol", f"request {op!r} before the design was loaded")
        if op == "new":
            self._instances[str(frame["instance"])] = self._construct(frame)
            return {}
        if op == "drop":
            self._instances.pop(str(frame["instance"]), None)
            return {}
        if op == "restore":
            self._instances[str(frame["instance"])] = self._restored(frame)
            return {}
        if op == "retrieve_once":
            # A batched deployment episode: restore the frozen memory, retrieve, forget it.
            design = self._restored(frame)
            return await self._retrieve(
                design, frame["start"], f"{type(design).__name__}.general_retrieve"
            )
        design = self._instances.get(str(frame.get("instance")))
        if design is None:
            raise CallFailed("protocol", f"no design instance {frame.get('instance')!r}")
        what = f"{type(design).__name__}.general_{op}"
        if op == "update":
            from pytest_alma.records import Trajectory

            trajectory = Trajectory.from_json(frame["trajectory"])
            before = trajectory.to_json()
            await self._call(design.general_update, trajectory, what)
            # The design got a copy; a changed copy breaks a contract rule, nothing else.
            return {"mutated": trajectory.to_json() != before}
        if op == "retrieve":
            return await self._retrieve(design, frame["start"], what)
        if op == "snapshot":
            return {"blob": base64.b64encode(self._snapshot(design)).decode("ascii")}
        if op == "config":
            return {"config": _json_config(design)}
        raise CallFailed("protocol", f"unknown request {op!r}")

    # -- design calls --------------------------------------------------------------------------

    def _load(self, path: str, class_name: str) -> dict[str, Any]:
        from pytest_alma.design import DesignError, load_design

        try:
            loaded = load_design(Path(path))
        except DesignError as exc:
            raise CallFailed("load", str(exc)) from None
        except MemoryError:
            raise CallFailed("memory", out_of_memory_message("importing the design")) from None
        except SystemExit as exc:
            raise CallFailed(
                "exit",
                f"importing the design called sys.exit({exc.code!r}); a design module "
                "must not exit the process",
            ) from None
        if loaded.cls.__name__ != class_name:
            raise CallFailed(
                "load",
                f"{path}: importing the module gives the design class {loaded.cls.__name__}, but "
                f"its source defines {class_name} at the top level; define the design class "
                "with a plain `class` statement (classes made at run time are not supported)",
            )
        self._loaded = loaded
        self._source = Path(path).read_text(encoding="utf-8")
        return {"class": loaded.cls.__name__, "source_hash": loaded.source_hash}

    def _context(self, frame: dict[str, Any]) -> Any:
        from pytest_alma.design import DesignContext

        seed = int(frame["seed"])
        scratch = Path(str(frame["scratch"]))
        scratch.mkdir(parents=True, exist_ok=True)
        return DesignContext(llm=self.llm, rng=random.Random(seed), scratch_dir=scratch, seed=seed)

    def _construct(self, frame: dict[str, Any]) -> Any:
        from pytest_alma.design import DesignError, instantiate

        try:
            return instantiate(self._loaded, self._context(frame))
        except DesignError as exc:
            raise CallFailed("load", str(exc)) from None
        except MemoryError:
            raise CallFailed("memory", out_of_memory_message("the constructor")) from None
        except SystemExit as exc:
            raise CallFailed("exit", f"the constructor called sys.exit({exc.code!r})") from None

    async def _call(self, fn: Callable[[Any], Any], arg: Any, what: str) -> Any:
        try:
            if inspect.iscoroutinefunction(fn):
                awaitable: Awaitable[Any] = fn(arg)
            else:
                # Plain methods run in a thread, so that the loop keeps serving their LLM calls.
                awaitable = _in_daemon_thread(fn, arg)
            return await awaitable
        except SystemExit as exc:
            raise CallFailed(
                "exit",
                f"{what} called sys.exit({exc.code!r}); a design must return or raise, never "
                "exit the process",
            ) from None
        except MemoryError:
            raise CallFailed("memory", out_of_memory_message(what)) from None
        except Exception as exc:
            from pytest_alma.llm.errors import LLMError

            kind = "llm" if _caused_by(exc, LLMError) else "raised"
            raise CallFailed(kind, f"{what} raised:\n{_short_traceback(exc)}") from None

    async def _retrieve(self, design: Any, raw: dict[str, Any], what: str) -> dict[str, Any]:
        from pytest_alma.records import TaskStart

        start = TaskStart.from_json(raw)
        before = start.to_json()
        result = await self._call(design.general_retrieve, start, what)
        mutated = start.to_json() != before
        if result is None:
            result = {}
        if not isinstance(result, dict):
            raise CallFailed("junk", f"{what} returned {type(result).__name__}, expected a dict")
        try:
            check_json_size(result)
        except ValueError as exc:
            raise CallFailed("junk", f"{what} returned a memory that is too large: {exc}") from None
        try:
            # Strict JSON, checked here: NaN, sets, bytes, objects and cycles never leave.
            text = json.dumps(result, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise CallFailed(
                "junk", f"{what} returned a dict that is not strict JSON: {exc}"
            ) from None
        return {"memory": json.loads(text), "mutated": mutated}

    def _snapshot(self, design: Any) -> bytes:
        from pytest_alma.design import DesignError, snapshot

        try:
            return snapshot(design)
        except DesignError as exc:
            raise CallFailed("snapshot", str(exc)) from None
        except MemoryError:
            raise CallFailed("memory", out_of_memory_message("the snapshot")) from None

    def _restored(self, frame: dict[str, Any]) -> Any:
        """A design instance restored from the snapshot the frame names (or carries)."""
        from pytest_alma.design import restore

        key = str(frame["blob_key"])
        if frame.get("blob") is not None:
            self._blobs[key] = base64.b64decode(str(frame["blob"]))
        blob = self._blobs.get(key) if frame.get("keep", True) else self._blobs.pop(key, None)
        if blob is None:
            raise CallFailed("protocol", f"no snapshot {key!r} in this process (send it)")
        if frame.get("fresh"):
            self._loaded = self._fresh_module()
        try:
            design = restore(self._loaded, self._context(frame), blob)
        except MemoryError:
            raise CallFailed("memory", out_of_memory_message("restoring the snapshot")) from None
        except SystemExit as exc:
            raise CallFailed(
                "exit", f"restoring the snapshot called sys.exit({exc.code!r})"
            ) from None
        except Exception as exc:
            raise CallFailed("restore", f"restoring the snapshot raised {_short(exc)}") from None
        return design

    def _fresh_module(self) -> Any:
        """The design module executed again into a new module object (for the contract's
        snapshot-restore rule: state kept in module globals is lost, as in a new process)."""
        from pytest_alma.design import LoadedDesign

        loaded = self._loaded
        name = loaded.module.__name__
        module = ModuleType(name)
        module.__file__ = str(loaded.path)
        sys.modules[name] = module  # before exec: pickle and dataclasses look it up by name
        try:
            exec(compile(self._source, str(loaded.path), "exec"), module.__dict__)
        except BaseException as exc:
            raise CallFailed(
                "restore", f"importing the design again raised {_short(exc)}"
            ) from None
        cls = getattr(module, loaded.cls.__name__)
        return LoadedDesign(
            path=loaded.path, cls=cls, module=module, source_hash=loaded.source_hash
        )


def _in_daemon_thread(fn: Callable[[Any], Any], arg: Any) -> Awaitable[Any]:
    """Run ``fn(arg)`` in a daemon thread (one that never returns cannot keep the process)."""
    future: Future[Any] = Future()

    def body() -> None:
        try:
            future.set_result(fn(arg))
        except BaseException as exc:  # SystemExit too: reported as the call's outcome
            future.set_exception(exc)

    threading.Thread(target=body, name="alma-design-call", daemon=True).start()
    return asyncio.wrap_future(future)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _json_config(design: Any) -> dict[str, Any] | None:
    config = getattr(design, "config", None)
    if not isinstance(config, dict):
        return None
    try:
        return dict(json.loads(json.dumps(config, default=str, allow_nan=False)))
    except (TypeError, ValueError, RecursionError):
        return None


def check_json_size(
    value: Any, limit: int = MAX_RETRIEVE_CHARS, max_depth: int = MAX_RETRIEVE_DEPTH
) -> None:
    """Raise ValueError when ``value`` would serialise to more than ``limit`` characters or
    nest deeper than ``max_depth``; a bounded walk, so a 100 MB string costs one ``len``.

    A value that contains itself never ends; it is stopped by the depth limit. A list used twice
    is walked twice, as ``json.dumps`` would write it twice.
    """
    budget = limit
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise ValueError(
                f"it nests deeper than {max_depth} levels (or contains itself: a reference cycle)"
            )
        if isinstance(item, str):
            budget -= len(item) + 2
        elif isinstance(item, dict):
            budget -= 2
            for k, v in item.items():
                budget -= (len(k) if isinstance(k, str) else 20) + 4
                stack.append((v, depth + 1))
        elif isinstance(item, list | tuple):
            budget -= 2
            stack.extend((v, depth + 1) for v in item)
        else:
            budget -= 24
        if budget < 0:
            raise ValueError(
                f"it is more than {limit:,} characters of JSON; the agent sees at most "
                "--alma-memory-cap characters, so return a bounded summary"
            )


def out_of_memory_message(what: str) -> str:
    """The failure message of a design call that raised MemoryError."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError):
        soft = -1
    if soft <= 0:
        return f"{what} ran out of memory (MemoryError)"
    return (
        f"{what} exceeded the design process's memory limit of {soft // (1024 * 1024)} MB; "
        "raise --alma-design-memory-mb if the design really needs that much"
    )


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _short_traceback(exc: BaseException, limit: int = 6) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-limit)
    return "".join(lines).rstrip()


def _take_protocol_streams() -> tuple[IO[bytes], IO[bytes]]:
    """Move the protocol off fds 0 and 1; point them at /dev/null and standard error."""
    # Buffered: only the reader thread reads it (unbuffered, readline costs a system call per
    # byte: 36 ms for a 209 kB trajectory instead of about 1 ms).
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb", buffering=1024 * 1024)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    sys.stdout = sys.stderr
    return proto_in, proto_out


def main() -> int:
    proto_in, proto_out = _take_protocol_streams()
    # The harness's own modules load before the worker's first request ("hello") is answered,
    # so that the design's import alone runs under the design's time limit.
    import pytest_alma.design
    import pytest_alma.llm.errors
    import pytest_alma.records  # noqa: F401

    try:
        asyncio.run(Host(proto_in, proto_out).serve())
    except KeyboardInterrupt:
        return 130
    # Daemon threads a design left running must not keep the process alive.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
