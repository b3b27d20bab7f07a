"""The worker's side of a design process: start it, send it requests, answer its LLM calls.

A :class:`DesignProcess` is one design file's process in this worker (started on first use, in
the sandbox of :mod:`pytest_alma.sandbox.launch`). Every request runs under a wall-clock limit;
a request over it, a process that dies, or one that breaks the protocol is killed (the whole
process group, and with bubblewrap its PID namespace) and the request fails with a
:class:`~pytest_alma.design.DesignCallError` that says what happened. The next request starts a
new process; instances that lived in the old one are gone, and using them says so.

A module that fails to import (an exception, ``sys.exit``, a hang or a crash at import) fails
every request of this design in this process with the same :class:`DesignLoadError`, without
trying again.

:class:`RemoteDesign` is an instance in a design process, used like a design:
``await d.update(trajectory)``, ``await d.retrieve(start)``, ``await d.snapshot()``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_alma.design import DesignCallError, DesignError, DesignLLM, DesignLoadError, JSONDict
from pytest_alma.llm.errors import LLMError, LLMUnavailableError
from pytest_alma.records import TaskStart, Trajectory
from pytest_alma.sandbox.launch import Limits, Sandbox, host_command
from pytest_alma.sandbox.protocol import MAX_FRAME_BYTES, ProtocolError, decode, encode
from pytest_alma.sandbox.static_find import DesignSpec

#: Seconds a new design process may take to start (the interpreter, bubblewrap and the harness's
#: own imports) before the design's import, which runs under the design's own time limit. Many
#: workers starting at once on a busy machine need several seconds.
START_TIMEOUT_S = 60.0

#: How much of a design process's standard error (its prints, its tracebacks) is kept for
#: messages.
STDERR_TAIL_BYTES = 4000


class RequestFailed(DesignCallError):
    """A request the design process answered with an error; ``kind`` says which."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _bad_llm_request(message: str) -> ValueError:
    return ValueError(f"ctx.llm was called with {message}")


def _chat_args(args: Any) -> dict[str, Any]:
    """The chat arguments a design sent, checked field by field (only these reach the LLM)."""
    if not isinstance(args, dict):
        raise _bad_llm_request("no arguments")
    messages = args.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad_llm_request("messages that are not a non-empty list")
    checked: list[dict[str, str]] = []
    for message in messages:
        if not isinstance(message, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in message.items()
        ):
            raise _bad_llm_request("a message that is not a dict of strings")
        checked.append({k: v for k, v in message.items() if k in ("role", "content", "name")})
    temperature = args.get("temperature")
    max_tokens = args.get("max_tokens")
    model = args.get("model")
    if temperature is not None and not isinstance(temperature, int | float):
        raise _bad_llm_request("a temperature that is not a number")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise _bad_llm_request("max_tokens that is not a positive integer")
    if model is not None and (not isinstance(model, str) or not model):
        raise _bad_llm_request("a model that is not a name")
    return {
        "messages": checked,
        "temperature": None if temperature is None else float(temperature),
        "max_tokens": max_tokens,
        "json_mode": bool(args.get("json_mode")),
        "model": model,
    }


def _embed_texts(args: Any) -> list[str]:
    texts = args.get("texts") if isinstance(args, dict) else None
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise _bad_llm_request("texts that are not a list of strings")
    return list(texts)


@dataclass
class _Running:
    """A started process of one generation."""

    proc: asyncio.subprocess.Process
    generation: int
    stderr_tail: collections.deque[bytes]
    stderr_task: asyncio.Task[None]
    blobs: set[str]


class DesignProcess:
    """One design file's process in this worker (see the module docstring).

    Args:
        spec: the design file, as found statically.
        sandbox: how to start it (bubblewrap or plain).
        scratch: the design's writable directory (instances get subdirectories of it).
        limits: hard memory and CPU limits.
        llm: answers the design's LLM calls.
        load_timeout_s: wall-clock limit of importing the module (None: none).
        environ: the environment the design's ``ALMA_*`` options are taken from.
    """

    def __init__(
        self,
        spec: DesignSpec,
        sandbox: Sandbox,
        scratch: Path,
        limits: Limits,
        llm: DesignLLM,
        *,
        load_timeout_s: float | None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.sandbox = sandbox
        self.scratch = scratch
        self.limits = limits
        self.llm = llm
        self.load_timeout_s = load_timeout_s
        self._environ = dict(os.environ if environ is None else environ)
        self._running: _Running | None = None
        self._generation = 0
        self._next_id = 0
        self._lock = asyncio.Lock()
        self._load_error: DesignLoadError | None = None
        self._instances = 0
        #: Processes started so far (a benchmark and the tests read it).
        self.starts = 0

    # -- life cycle ----------------------------------------------------------------------------

    @property
    def load_error(self) -> DesignLoadError | None:
        """Why the design cannot be imported (sticky: never retried in this process)."""
        return self._load_error

    @property
    def pid(self) -> int | None:
        """The pid of the running process (bubblewrap's, when sandboxed), or None."""
        return self._running.proc.pid if self._running is not None else None

    async def _ensure_started(self) -> _Running:
        if self._load_error is not None:
            raise self._load_error
        if self._running is not None and self._running.proc.returncode is None:
            return self._running
        if self._running is not None:
            await self._reap()
        command = host_command(
            self.sandbox, self.spec.path, self.scratch, self.limits, self._environ
        )
        proc = await asyncio.create_subprocess_exec(
            *command.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=command.env,
            cwd=str(self.scratch),
            preexec_fn=command.preexec,
            start_new_session=True,
            limit=MAX_FRAME_BYTES,
        )
        self._generation += 1
        self.starts += 1
        tail: collections.deque[bytes] = collections.deque()
        assert proc.stderr is not None
        running = _Running(
            proc,
            self._generation,
            tail,
            asyncio.ensure_future(_drain(proc.stderr, tail)),
            set(),
        )
        self._running = running
        what = f"importing {self.spec.path.name}"
        try:
            await self._exchange_timed(
                running, {"op": "hello"}, "starting the design process", START_TIMEOUT_S
            )
            await self._exchange_timed(
                running,
                {"op": "load", "path": str(self.spec.path), "class": self.spec.class_name},
                what,
                self.load_timeout_s,
            )
        except DesignError as exc:
            self._load_error = (
                exc if isinstance(exc, DesignLoadError) else DesignLoadError(str(exc))
            )
            await self.kill()
            raise self._load_error from None
        return running

    async def kill(self) -> None:
        """End the process (and everything it started) now; idempotent."""
        running, self._running = self._running, None
        if running is not None:
            await _terminate(running)

    async def _reap(self) -> None:
        await self.kill()

    # -- requests ------------------------------------------------------------------------------

    async def request(
        self,
        op: str,
        fields: dict[str, Any],
        what: str,
        timeout_s: float | None,
        *,
        generation: int | None = None,
    ) -> tuple[dict[str, Any], int]:
        """Send one request; its result and the generation of the process that served it.

        ``generation``: the request is for an instance of that process; when the process is
        gone (killed, or ended by itself since the last request) the instance is lost, and the
        error says how the process ended.
        """
        async with self._lock:
            if generation is not None:
                await self._check_alive(generation, what)
            running = await self._ensure_started()
            result = await self._exchange_timed(running, {"op": op, **fields}, what, timeout_s)
            return result, running.generation

    async def _check_alive(self, generation: int, what: str) -> None:
        running = self._running
        if running is not None and running.generation == generation:
            if running.proc.returncode is None:
                return
            # It ended by itself between two requests (a thread of the design, the OOM killer).
            self._running = None
            code = running.proc.returncode
            await _terminate(running)
            raise DesignCallError(
                f"{what}: this instance of {self.spec.class_name} was lost: its design process "
                f"ended {_status(code, self.sandbox.sandboxed)} after an earlier call"
            )
        raise DesignCallError(
            f"{what}: this instance of {self.spec.class_name} was lost when its design process "
            "was killed after an earlier failure (a time-out, a crash or broken output)"
        )

    async def _exchange_timed(
        self, running: _Running, frame: dict[str, Any], what: str, timeout_s: float | None
    ) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(self._exchange(running, frame, what), timeout_s)
        except TimeoutError:
            await self.kill()
            raise DesignCallError(
                f"{what} did not finish within {timeout_s:g} s (--alma-design-timeout); the "
                "design process was killed"
            ) from None

    async def _exchange(
        self, running: _Running, frame: dict[str, Any], what: str
    ) -> dict[str, Any]:
        proc = running.proc
        assert proc.stdin is not None and proc.stdout is not None
        self._next_id += 1
        number = self._next_id
        llm_tasks: set[asyncio.Task[None]] = set()
        try:
            try:
                proc.stdin.write(encode({"id": number, **frame}))
                await proc.stdin.drain()
            except (ConnectionError, BrokenPipeError):
                raise await self._ended(running, what) from None
            while True:
                try:
                    line = await proc.stdout.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    await self.kill()
                    raise DesignCallError(
                        f"{what}: the design process sent more than {MAX_FRAME_BYTES:,} bytes "
                        "in one answer; it was killed"
                    ) from None
                if not line:
                    raise await self._ended(running, what)
                try:
                    reply = decode(line)
                except ProtocolError as exc:
                    await self.kill()
                    raise DesignCallError(
                        f"{what}: the design process broke the protocol ({exc}); it was killed"
                    ) from None
                if "llm" in reply:
                    task = asyncio.ensure_future(self._serve_llm(running, reply))
                    llm_tasks.add(task)
                    task.add_done_callback(llm_tasks.discard)
                    continue
                if reply.get("id") != number:
                    await self.kill()
                    raise DesignCallError(
                        f"{what}: the design process answered request {reply.get('id')!r} while "
                        f"{number} was running; it was killed"
                    )
                if reply.get("ok"):
                    result = reply.get("result")
                    return result if isinstance(result, dict) else {}
                raise _failure(reply.get("error"), what)
        finally:
            # A design's call ends when it returns: LLM calls it left running are dropped.
            for task in llm_tasks:
                task.cancel()

    async def _ended(self, running: _Running, what: str) -> DesignCallError:
        """The error for a process that ended while ``what`` ran (and forget the process)."""
        if self._running is running:
            self._running = None
        # Its output closed: it ended, or is ending. Whatever it started goes with it.
        code = await _terminate(running)
        tail = b"".join(running.stderr_tail).decode("utf-8", "replace").strip()
        last = "\n".join(tail.splitlines()[-12:])
        output = f"; its last output:\n{last}" if last else ""
        status = _status(code, self.sandbox.sandboxed)
        return DesignCallError(f"the design process ended {status} during {what}{output}")

    async def _serve_llm(self, running: _Running, frame: dict[str, Any]) -> None:
        number = frame.get("llm")
        answer: dict[str, Any]
        try:
            if frame.get("op") == "chat":
                args = _chat_args(frame.get("args"))
                text = await self.llm.chat(
                    args["messages"],
                    temperature=args["temperature"],
                    max_tokens=args["max_tokens"],
                    json_mode=args["json_mode"],
                    model=args["model"],
                )
                answer = {"llm": number, "ok": True, "result": str(text)}
            elif frame.get("op") == "embed":
                vectors = await self.llm.embed(_embed_texts(frame.get("args")))
                answer = {"llm": number, "ok": True, "result": vectors}
            else:
                raise _bad_llm_request(f"an unknown operation {frame.get('op')!r}")
        except LLMError as exc:
            answer = {"llm": number, "ok": False, "error": _error_of(exc)}
        except ValueError as exc:
            answer = {
                "llm": number,
                "ok": False,
                "error": {"type": "ValueError", "message": str(exc)},
            }
        stdin = running.proc.stdin
        if stdin is None or running.proc.returncode is not None:
            return
        with contextlib.suppress(ConnectionError, BrokenPipeError, RuntimeError):
            stdin.write(encode(answer))
            await stdin.drain()

    # -- instances -----------------------------------------------------------------------------

    def _instance_fields(self, label: str, seed: int) -> dict[str, Any]:
        self._instances += 1
        scratch = self.scratch / "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
        return {
            "instance": f"i{self._instances}",
            "seed": int(seed),
            "scratch": str(scratch),
        }

    async def new(self, label: str, seed: int, timeout_s: float | None) -> RemoteDesign:
        """A freshly constructed design instance (its constructor runs under the limit)."""
        fields = self._instance_fields(label, seed)
        what = f"constructing {self.spec.class_name}"
        _, generation = await self.request("new", fields, what, timeout_s)
        return RemoteDesign(self, str(fields["instance"]), generation)

    async def restore(
        self,
        blob_key: str,
        blob: bytes,
        label: str,
        seed: int,
        timeout_s: float | None,
        *,
        fresh_module: bool = False,
        keep: bool = True,
    ) -> RemoteDesign:
        """An instance restored from a snapshot (sent once per process, then named by key;
        ``keep=False``: used once, not kept in the design process)."""
        fields = self._instance_fields(label, seed)
        what = f"restoring {self.spec.class_name} from its snapshot"
        async with self._lock:
            running = await self._ensure_started()
            fields["blob_key"] = blob_key
            fields["fresh"] = fresh_module
            fields["keep"] = keep
            if blob_key not in running.blobs:
                fields["blob"] = base64.b64encode(blob).decode("ascii")
            await self._exchange_timed(running, {"op": "restore", **fields}, what, timeout_s)
            if keep:
                running.blobs.add(blob_key)
            return RemoteDesign(self, str(fields["instance"]), running.generation)

    async def retrieve_once(
        self,
        blob_key: str,
        blob: bytes,
        label: str,
        seed: int,
        start: TaskStart,
        timeout_s: float | None,
    ) -> tuple[JSONDict, bool]:
        """``general_retrieve`` on a fresh instance restored from a snapshot, in one round trip
        (a batched deployment episode): the memory, and whether the design changed its input."""
        fields = self._instance_fields(label, seed)
        what = f"{self.spec.class_name}.general_retrieve"
        async with self._lock:
            running = await self._ensure_started()
            fields["blob_key"] = blob_key
            fields["start"] = start.to_json()
            if blob_key not in running.blobs:
                fields["blob"] = base64.b64encode(blob).decode("ascii")
            result = await self._exchange_timed(
                running, {"op": "retrieve_once", **fields}, what, timeout_s
            )
            running.blobs.add(blob_key)
        return _memory_of(result, what)

    def alive_generation(self) -> int | None:
        """The generation of the running process (None when none runs)."""
        return self._running.generation if self._running is not None else None


class RemoteDesign:
    """One design instance living in a :class:`DesignProcess`."""

    def __init__(self, process: DesignProcess, instance: str, generation: int) -> None:
        self.process = process
        self.instance = instance
        self.generation = generation
        self.class_name = process.spec.class_name

    async def _request(
        self, op: str, fields: dict[str, Any], what: str, timeout_s: float | None
    ) -> dict[str, Any]:
        result, _ = await self.process.request(
            op, {"instance": self.instance, **fields}, what, timeout_s, generation=self.generation
        )
        return result

    async def update(self, trajectory: Trajectory, timeout_s: float | None) -> bool:
        """``general_update``; True when the design changed the trajectory it was given."""
        what = f"{self.class_name}.general_update"
        result = await self._request(
            "update", {"trajectory": trajectory.to_json()}, what, timeout_s
        )
        return bool(result.get("mutated"))

    async def retrieve(self, start: TaskStart, timeout_s: float | None) -> tuple[JSONDict, bool]:
        """``general_retrieve``: the memory (strict JSON, checked in the design process and
        again here) and whether the design changed the task start it was given."""
        what = f"{self.class_name}.general_retrieve"
        result = await self._request("retrieve", {"start": start.to_json()}, what, timeout_s)
        return _memory_of(result, what)

    async def snapshot(self, timeout_s: float | None) -> bytes:
        """The instance's memory as snapshot bytes (opaque to the worker)."""
        what = f"snapshotting {self.class_name}"
        result = await self._request("snapshot", {}, what, timeout_s)
        try:
            return base64.b64decode(str(result["blob"]), validate=True)
        except (KeyError, ValueError) as exc:
            raise DesignCallError(f"{what}: the design process sent no snapshot ({exc})") from None

    async def config(self, timeout_s: float | None) -> JSONDict | None:
        """The design's ``config`` attribute when it is JSON (a baseline's settings)."""
        result = await self._request("config", {}, f"{self.class_name}.config", timeout_s)
        config = result.get("config")
        return config if isinstance(config, dict) else None

    async def drop(self) -> None:
        """Forget the instance in the design process (nothing happens if it is gone)."""
        if self.process.alive_generation() != self.generation:
            return
        with contextlib.suppress(DesignError):
            await self.process.request(
                "drop", {"instance": self.instance}, "drop", 30.0, generation=self.generation
            )


def _memory_of(result: dict[str, Any], what: str) -> tuple[JSONDict, bool]:
    memory = result.get("memory")
    if not isinstance(memory, dict):
        raise DesignCallError(f"{what} returned {type(memory).__name__}, expected a dict")
    return memory, bool(result.get("mutated"))


def _failure(error: Any, what: str) -> DesignError:
    """The exception for an error answer of the design process."""
    error = error if isinstance(error, dict) else {}
    kind = str(error.get("kind", "raised"))
    message = str(error.get("message", f"{what} failed"))
    if kind == "load":
        return DesignLoadError(message)
    failure = RequestFailed(message, kind)
    if kind == "llm":
        # The LLM failed under the design's call: counted as an LLM error, not the design's.
        failure.__cause__ = LLMUnavailableError(message)
    return failure


def _error_of(exc: LLMError) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc)}


def _status(code: int, sandboxed: bool) -> str:
    """How a design process ended. Under bubblewrap the design is its child: a design killed
    by a signal N makes bubblewrap exit with 128 + N."""
    number = -code if code < 0 else code - 128 if sandboxed and 128 < code < 160 else None
    if number is None:
        return f"(exit status {code})"
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    return f"(killed by {name})"


async def _drain(stream: asyncio.StreamReader, tail: collections.deque[bytes]) -> None:
    """Read a process's standard error to its end, keeping the last few kilobytes."""
    size = 0
    while True:
        try:
            chunk = await stream.read(65536)
        except (ValueError, ConnectionError):
            return
        if not chunk:
            return
        tail.append(chunk)
        size += len(chunk)
        while size > STDERR_TAIL_BYTES and len(tail) > 1:
            size -= len(tail.popleft())


async def _terminate(running: _Running) -> int:
    """Kill a design process's group (bubblewrap: its PID namespace goes with it), close its
    pipes and reap it; its exit status.

    The pipes are closed before waiting: asyncio's ``Process.wait`` also waits for the pipes,
    which a leftover child of an unsandboxed design (in a session of its own, beyond the group)
    could hold open for as long as it lives. Only the pipes: closing the subprocess transport,
    or ``Process.kill``, polls the child and may reap it before asyncio's child watcher does,
    which then reports exit status 255 instead of the real one.
    """
    proc = running.proc
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    # Its last output first (a crash's traceback), for at most half a second.
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(asyncio.shield(running.stderr_task), 0.5)
    running.stderr_task.cancel()
    transport = getattr(proc, "_transport", None)  # (asyncio exposes no public accessor)
    if transport is not None:
        for fd in (0, 1, 2):
            pipe = transport.get_pipe_transport(fd)
            if pipe is not None:
                pipe.close()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await running.stderr_task
    return await proc.wait()
