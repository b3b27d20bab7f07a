"""Run an aiohttp application on 127.0.0.1 in a background thread with its own event loop.

Shared by the scripted model and the gateway: both must serve while the calling thread does
blocking work (pytest, a benchmark loop, the SDK's sync client), so they get a private loop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web

from pytest_alma.aio import new_event_loop

T = TypeVar("T")

#: The only address these servers ever bind to.
LOOPBACK = "127.0.0.1"


class LoopbackServer:
    """One aiohttp app served on ``127.0.0.1:<ephemeral port>`` from a daemon thread.

    ``app_factory`` runs inside the server's loop, so anything bound to a loop (an
    ``AsyncOpenAI`` client, semaphores) can be created there.
    """

    def __init__(
        self,
        app_factory: Callable[[], Awaitable[web.Application]],
        *,
        name: str,
        shutdown_timeout_s: float = 0.5,
    ):
        self._app_factory = app_factory
        self._name = name
        self._shutdown_timeout_s = shutdown_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (only while running)."""
        if self._port is None:
            raise RuntimeError(f"{self._name} is not running; call start() first")
        return self._port

    @property
    def running(self) -> bool:
        """Whether the server thread is up."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The server's event loop (only while running)."""
        if self._loop is None:
            raise RuntimeError(f"{self._name} is not running; call start() first")
        return self._loop

    def start(self) -> None:
        """Bind, start serving and return once requests can be answered."""
        if self.running:
            return
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name=self._name, daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._setup())
        except BaseException as err:
            failure.append(err)
            ready.set()
            loop.close()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._teardown())
            loop.close()
            self._loop = None

    async def _setup(self) -> None:
        app = await self._app_factory()
        # handler_cancellation: a client that gives up (timeout fault) cancels its handler, so
        # hanging handlers do not pile up or delay shutdown.
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=self._shutdown_timeout_s,
        )
        await runner.setup()
        # Bind the socket ourselves: port 0 gives an ephemeral port that we can read back.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, 0))
        self._port = int(sock.getsockname()[1])
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def _teardown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._port = None

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run ``coro`` on the server's loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = None


class LoopbackService:
    """Lifecycle shared by the servers built on :class:`LoopbackServer`.

    Subclasses set ``self._server`` in their constructor; this gives them ``base_url``,
    ``start``/``stop`` and the context-manager protocol.
    """

    _server: LoopbackServer

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (only while running)."""
        return f"http://{LOOPBACK}:{self._server.port}/v1"

    def start(self) -> Self:
        """Start serving; returns ``self``."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
