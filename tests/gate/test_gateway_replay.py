"""The gateway's record and replay controls, in process, against the scripted model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_alma.gate import gateway_request
from pytest_alma.llm.cache import ResponseCache, suspend_direct_reads
from pytest_alma.llm.client import ChatReply, LLMClient
from pytest_alma.llm.errors import CacheMissError
from pytest_alma.llm.gateway import Gateway
from pytest_alma.llm.replay import read_replay, write_replay
from pytest_alma.llm.scripted import ScriptedServer
from pytest_alma.record import GateError

#: Nothing listens on port 9 of the loopback: a replaying gateway pointed here cannot call out.
UNREACHABLE = "http://127.0.0.1:9/v1"


def ask(gateway: Gateway, text: str, cache: ResponseCache | None = None) -> ChatReply:
    async def run() -> ChatReply:
        client = LLMClient(gateway.url, gateway.token, "scripted", cache=cache)
        async with client:
            return await client.chat([{"role": "user", "content": text}])

    return asyncio.run(run())


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def gateway(cache: ResponseCache, upstream: str) -> Gateway:
    return Gateway(
        upstream_base_url=upstream, upstream_api_key="k", cache=cache, max_retries=0, timeout_s=2.0
    )


def test_recorded_keys_make_a_replay_that_answers_without_the_model(
    tmp_path: Path, scripted: ScriptedServer
) -> None:
    cache_path = tmp_path / "cache.sqlite"
    with gateway(ResponseCache(cache_path, "rw"), scripted.base_url) as recording:
        ask(recording, "before recording")  # not part of the recorded run
        assert gateway_request(recording, "GET", "/alma/keys")["keys"] is None
        gateway_request(recording, "POST", "/alma/keys")
        first = ask(recording, "one")
        ask(recording, "two")
        ask(recording, "one")  # a repeat: one key
        # A call cached before recording, from a client whose direct reads are suspended: it
        # claims a miss, the gateway still looks it up (no second upstream call) and records it.
        reader = ResponseCache(cache_path, "ro")
        calls_before = scripted.stats().total
        suspend_direct_reads()
        try:
            again = ask(recording, "before recording", cache=reader)
        finally:
            suspend_direct_reads(False)
        assert again.cached and scripted.stats().total == calls_before
        keys = gateway_request(recording, "GET", "/alma/keys")["keys"]
    assert len(keys) == 3
    entries = ResponseCache(cache_path, "ro").export(keys)
    assert [e.key for e in entries] == sorted(keys)
    info = write_replay(tmp_path / "alma-replay.jsonl.gz", entries, {"run_id": "t"})

    # A clean store, and an upstream that does not exist: only the replay can answer.
    with gateway(ResponseCache(tmp_path / "empty.sqlite", "replay"), UNREACHABLE) as replaying:
        loaded = gateway_request(
            replaying,
            "POST",
            "/alma/replay",
            info.path.read_bytes(),
            {"x-alma-replay-source": str(info.path)},
        )
        assert loaded == {"calls": 3}
        replayed = ask(replaying, "one")
        assert replayed.cached and replayed.text == first.text and replayed.usage == first.usage
        ask(replaying, "before recording")
        with pytest.raises(CacheMissError) as miss:
            ask(replaying, "a prompt that changed")
        message = str(miss.value)
        assert f"not in the replay file {info.path}" in message
        assert "role agent" in message and "--alma-record" in message
        assert "No model was called" in message
        stats = replaying.stats()
        assert gateway_request(replaying, "GET", "/alma/keys")["replay_misses"] == 1
    totals = stats["accounting"]["totals"]
    assert totals["calls"] == totals["cache_hits"] == 2 and totals["errors"] == 1
    assert len(read_replay(info.path)) == 3


def test_a_replay_loads_only_in_replay_mode_and_only_once(
    tmp_path: Path, scripted: ScriptedServer
) -> None:
    info = write_replay(tmp_path / "r.jsonl.gz", [], {})
    data = info.path.read_bytes()
    with (
        gateway(ResponseCache(tmp_path / "c.sqlite", "rw"), scripted.base_url) as rw,
        pytest.raises(GateError, match="only be loaded in cache mode replay"),
    ):
        gateway_request(rw, "POST", "/alma/replay", data)
    with gateway(ResponseCache(tmp_path / "c.sqlite", "replay"), UNREACHABLE) as rp:
        gateway_request(rp, "POST", "/alma/replay", data)
        with pytest.raises(GateError, match="already loaded"):
            gateway_request(rp, "POST", "/alma/replay", data)
        with pytest.raises(GateError, match="not a pytest-alma replay file"):
            gateway_request(rp, "POST", "/alma/replay", b"junk")


def test_controls_need_the_session_token(tmp_path: Path, scripted: ScriptedServer) -> None:
    with gateway(ResponseCache(tmp_path / "c.sqlite", "rw"), scripted.base_url) as gw:

        class Stranger:
            url = gw.url
            token = "wrong"

        stranger: Any = Stranger()
        for method, path in (
            ("GET", "/alma/keys"),
            ("POST", "/alma/keys"),
            ("POST", "/alma/replay"),
        ):
            with pytest.raises(GateError, match="token"):
                gateway_request(stranger, method, path, b"" if method == "POST" else None)
        assert gw.served_keys() is None  # nobody started recording
