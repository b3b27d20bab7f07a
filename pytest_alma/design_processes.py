"""This process's design processes: one per design file, each with its scoped door to the LLM.

The harness (:class:`pytest_alma.runner.Harness`) never runs design code. It asks
:class:`DesignProcesses` for a design's :class:`~pytest_alma.sandbox.process.DesignProcess`
(started on first use, in the session's sandbox, with the design's scratch directory and hard
limits), and every LLM call that design makes is answered here by its
:class:`DesignLLMFacade`, through a client whose gateway token is scoped to that design.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from pytest_alma.llm.cache import ResponseCache
from pytest_alma.llm.client import LLMClient
from pytest_alma.llm.errors import LLMError
from pytest_alma.llm.tokens import DESIGN_NAME, design_scope, mint_token
from pytest_alma.sandbox.launch import Limits, Sandbox, choose_sandbox
from pytest_alma.sandbox.process import DesignProcess
from pytest_alma.sandbox.static_find import DesignSpec
from pytest_alma.settings import AlmaSettings


class DesignLLMFacade:
    """Answers a design process's LLM calls in the worker: text in, text out, through a client
    whose gateway token is scoped to that design, accounted under the current role."""

    def __init__(self, client: LLMClient, embed_model: str) -> None:
        self._client = client
        self._embed_model = embed_model
        self.role = "design.update"
        #: LLM errors the design's calls met (a design may catch them and go on): a memory
        #: built while the LLM failed is not stored for later sessions.
        self.llm_failures = 0

    @property
    def client(self) -> LLMClient:
        """The client the calls go through (its usage log is the design's)."""
        return self._client

    async def chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_mode: bool = False,
        model: str | None = None,
    ) -> str:
        try:
            reply = await self._client.chat(
                list(messages),
                temperature=temperature,
                max_tokens=max_tokens,
                response_format={"type": "json_object"} if json_mode else None,
                tag=self.role,
                model=model,
            )
        except LLMError:
            self.llm_failures += 1
            raise
        return str(reply.text)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        try:
            return await self._client.embed(list(texts), model=self._embed_model, tag=self.role)
        except LLMError:
            self.llm_failures += 1
            raise


def token_name(design: str) -> str:
    """The name a design's gateway token and accounting carry: the design's own name when the
    token format allows it, else that name with other characters replaced and a short digest of
    the real name (a file may be called ``désign v2.py``; two such names never collide)."""
    if DESIGN_NAME.fullmatch(design):
        return design
    digest = hashlib.sha256(design.encode("utf-8")).hexdigest()[:8]
    safe = re.sub(r"[^A-Za-z0-9_.@-]", "_", design)[:100]
    return f"{safe}-{digest}"


class DesignProcesses:
    """The design processes of this process (a worker, or the controller without xdist).

    Args:
        settings: the session's settings (sandbox, limits, time limit, sampling).
        scratch_root: under it, each design gets ``<name>-<source hash>/``, its one writable
            directory.
        gateway_url / worker_token: the gateway, and this process's worker-scoped token, with
            which a design-scoped token is minted for each design.
        model / embed_model: the default chat and embedding models of design calls.
        cache / cache_namespace: the read-only view of the response cache, and its namespace.
    """

    def __init__(
        self,
        settings: AlmaSettings,
        *,
        scratch_root: Path,
        gateway_url: str,
        worker_token: str,
        model: str,
        embed_model: str,
        cache: ResponseCache | None,
        cache_namespace: str,
    ) -> None:
        self.settings = settings
        self.scratch_root = scratch_root
        self._gateway_url = gateway_url
        self._worker_token = worker_token
        self._model = model
        self._embed_model = embed_model
        self._cache = cache
        self._cache_namespace = cache_namespace
        self._sandbox: Sandbox | None = None
        self._processes: dict[tuple[str, str], DesignProcess] = {}
        self._facades: dict[str, DesignLLMFacade] = {}

    @property
    def sandbox(self) -> Sandbox:
        """How design processes are started (``--alma-sandbox``; probed once)."""
        if self._sandbox is None:
            self._sandbox = choose_sandbox(self.settings.sandbox)
        return self._sandbox

    @property
    def limits(self) -> Limits:
        """The hard limits of every design process."""
        return Limits(memory_mb=self.settings.design_memory_mb, cpu_s=self.settings.design_cpu_s)

    @property
    def call_timeout_s(self) -> float | None:
        """Wall-clock seconds per design call (``--alma-design-timeout``; 0: none)."""
        return self.settings.design_timeout or None

    def scratch(self, spec: DesignSpec) -> Path:
        """The design's one writable directory (its instances get subdirectories)."""
        path = self.scratch_root / f"{spec.name}-{spec.source_hash}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def facade(self, spec: DesignSpec) -> DesignLLMFacade:
        """What answers ``spec``'s LLM calls: a client whose token is scoped to the design."""
        facade = self._facades.get(spec.name)
        if facade is None:
            name = token_name(spec.name)
            token = mint_token(self._gateway_url, self._worker_token, design_scope(name))
            client = LLMClient(
                base_url=self._gateway_url,
                token=token,
                model=self._model,
                temperature=self.settings.temperature,
                seed=self.settings.seed,
                tag="design",
                scope=name,
                cache=self._cache,
                cache_namespace=self._cache_namespace,
            )
            facade = self._facades[spec.name] = DesignLLMFacade(client, self._embed_model)
        return facade

    def process(self, spec: DesignSpec) -> DesignProcess:
        """The design process of ``spec`` (started on its first request)."""
        key = (str(spec.path), spec.source_hash)
        process = self._processes.get(key)
        if process is None:
            process = DesignProcess(
                spec,
                self.sandbox,
                self.scratch(spec),
                self.limits,
                self.facade(spec),
                load_timeout_s=self.call_timeout_s,
            )
            self._processes[key] = process
        return process

    async def close(self) -> None:
        """End every design process and close the design clients' connections."""
        for process in self._processes.values():
            await process.kill()
        self._processes.clear()
        for facade in self._facades.values():
            await facade.client.aclose()
        self._facades.clear()
