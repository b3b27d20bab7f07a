"""Fixtures for the LLM-layer tests: a scripted model and a gateway, both on 127.0.0.1 only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from pytest_alma.llm.cache import CacheMode, ResponseCache
from pytest_alma.llm.faults import FaultPlan
from pytest_alma.llm.gateway import Gateway
from pytest_alma.llm.gateway_process import GatewayProcess
from pytest_alma.llm.pricing import PriceTable
from pytest_alma.llm.scripted import ScriptedServer

# Short timeouts and backoff keep fault tests fast; see Gateway(initial_backoff_s=...).
FAST = {"timeout_s": 0.5, "initial_backoff_s": 0.005, "max_backoff_s": 0.02}

Stack = Callable[..., tuple[ScriptedServer, Gateway]]
MakeGatewayProcess = Callable[..., GatewayProcess]


@pytest.fixture
def make_gateway_process(tmp_path: Path) -> MakeGatewayProcess:
    """``make_gateway_process(upstream_url, api_key, **options)``: a gateway child process (not
    started) with its cache in ``tmp_path`` and small limits unless ``options`` say otherwise."""

    def make(upstream_url: str | None, api_key: str | None, **options: Any) -> GatewayProcess:
        settings: dict[str, Any] = {
            "cache_mode": "rw",
            "budget_usd": None,
            "max_concurrency": 2,
            "max_retries": 0,
            "timeout_s": 5,
            **options,
        }
        return GatewayProcess(
            upstream_base_url=upstream_url,
            upstream_api_key=api_key,
            cache_path=str(tmp_path / "cache.sqlite"),
            **settings,
        )

    return make


@pytest.fixture(autouse=True)
def _no_real_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure nothing here can reach api.openai.com, even by a bug: no key, no base URL."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    """A fault-free scripted model."""
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """A factory for (scripted model, gateway) pairs, all stopped at the end of the test."""
    with ExitStack() as exits:

        def make(
            *,
            faults: FaultPlan | str | None = None,
            latency_s: float = 0.0,
            cache_mode: CacheMode = "rw",
            cache_path: Path | None = None,
            budget_usd: float | None = None,
            max_retries: int = 3,
            prices: PriceTable | None = None,
            server: ScriptedServer | None = None,
            **gateway_options: Any,
        ) -> tuple[ScriptedServer, Gateway]:
            if isinstance(faults, str):
                faults = FaultPlan.parse(faults)
            if server is None:
                server = exits.enter_context(ScriptedServer(faults=faults, latency_s=latency_s))
            options = {**FAST, **gateway_options}
            gateway = exits.enter_context(
                Gateway(
                    upstream_base_url=server.base_url,
                    upstream_api_key="scripted-key",
                    cache=ResponseCache(cache_path or tmp_path / "cache.sqlite", cache_mode),
                    prices=prices,
                    budget_usd=budget_usd,
                    max_retries=max_retries,
                    **options,
                )
            )
            return server, gateway

        yield make
