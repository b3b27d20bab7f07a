"""The session wires its upstream into the real gateway child's cache keys.

``ControllerServices.start`` fingerprints ``--alma-base-url`` (or takes ``--alma-upstream-name``)
and passes it to the gateway process as ``--cache-namespace``. These tests start real sessions
(gateway child process, shared cache file) against two scripted servers on 127.0.0.1 that serve
the same model name with different answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_alma.llm.client import ChatReply, LLMClient
from pytest_alma.llm.scripted import ScriptedServer
from pytest_alma.llm.scripted_policies import Message
from pytest_alma.session import ATTACH_ENV, ControllerServices
from pytest_alma.settings import resolve

MODEL = "served-model"  # not the scripted name: the session treats the servers as real ones
USER = [{"role": "user", "content": "Which way is the flag?"}]


class Says:
    """A policy that always answers ``text`` (so replies tell the servers apart)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def matches(self, messages: Sequence[Message]) -> bool:
        return True

    def reply(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        return self.text


@pytest.fixture
def servers() -> Iterator[tuple[str, str]]:
    """The base URLs of two servers serving MODEL: one answers "one", the other "two"."""
    with (
        ScriptedServer(policies=[Says("one")]) as one,
        ScriptedServer(policies=[Says("two")]) as two,
    ):
        yield one.base_url, two.base_url


def ask_session(tmp_path: Path, base_url: str, upstream_name: str | None = None) -> ChatReply:
    """Start a session on ``base_url`` (store and cache under ``tmp_path``), ask once, stop."""
    cli = {
        "env": "babaisai",
        "model": MODEL,
        "base-url": base_url,
        "upstream-name": upstream_name,
        "store": str(tmp_path / "store"),
        "reports": str(tmp_path / "reports"),
    }
    settings = resolve(cli, {}, environ={})
    config = SimpleNamespace(rootpath=tmp_path, option=SimpleNamespace())
    services = ControllerServices.start(config, settings)  # type: ignore[arg-type]
    try:

        async def run() -> ChatReply:
            async with LLMClient(services.gateway.url, services.gateway.token, MODEL) as client:
                return await client.chat(USER)

        return asyncio.run(run())
    finally:
        services.stop()  # stops the gateway child, which commits its queued cache stores


@pytest.fixture(autouse=True)
def _not_a_sub_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ATTACH_ENV, raising=False)


def test_a_session_on_another_upstream_does_not_replay_the_first_ones_cache(
    tmp_path: Path, servers: tuple[str, str]
) -> None:
    url_one, url_two = servers
    first = ask_session(tmp_path, url_one)
    assert first.text == "one" and not first.cached
    # The same store (so the same cache file), --alma-base-url pointed at the other server.
    second = ask_session(tmp_path, url_two)
    assert second.text == "two" and not second.cached
    # The first server's replies are still in the cache, under its own key.
    again = ask_session(tmp_path, url_one)
    assert again.text == "one" and again.cached


def test_an_upstream_name_keeps_the_cache_when_the_url_changes(
    tmp_path: Path, servers: tuple[str, str]
) -> None:
    url_one, url_two = servers
    first = ask_session(tmp_path, url_one, "lab-vllm")
    assert first.text == "one" and not first.cached
    # The same server, moved to another URL (here: another port) under the same name.
    moved = ask_session(tmp_path, url_two, "lab-vllm")
    assert moved.text == "one" and moved.cached
    # The name, not the URL, is the key: without it the moved URL is a new upstream.
    unnamed = ask_session(tmp_path, url_two)
    assert unnamed.text == "two" and not unnamed.cached
