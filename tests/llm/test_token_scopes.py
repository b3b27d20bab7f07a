"""Scoped gateway tokens: admin (the controller), worker, and design:<name>.

Minting and verifying (pytest_alma.llm.tokens), what each scope may do at a real gateway, and
how a design token's calls are booked to the design whatever its headers claim.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_alma.llm.client import LLMClient
from pytest_alma.llm.gateway import Gateway
from pytest_alma.llm.gateway_process import GatewayProcess
from pytest_alma.llm.scripted import ScriptedServer
from pytest_alma.llm.tokens import (
    TokenAuthority,
    TokenError,
    check_scope,
    design_scope,
    may_mint,
    mint_token,
)

Stack = Callable[..., tuple[ScriptedServer, Gateway]]
USER = [{"role": "user", "content": "Where is the key?"}]


def request(
    gateway: Any, method: str, path: str, token: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    """``method path`` at the gateway with ``token``: (HTTP status, JSON body)."""
    base = str(gateway.url).removesuffix("/v1")
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        base + path, data=data, method=method, headers={"Authorization": f"Bearer {token}"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def chat(gateway: Any, token: str, **kw: Any) -> Any:
    async def run() -> Any:
        async with LLMClient(gateway.url, token, "scripted", **kw) as client:
            return await client.chat(USER)

    return asyncio.run(run())


# -- minting and verifying --------------------------------------------------------------------


def test_a_token_carries_its_scope_readably_and_verifies() -> None:
    authority = TokenAuthority()
    for scope in ["admin", "worker", "design:my_memory-v2.1@home"]:
        token = authority.mint(scope)
        prefix, encoded, signature = token.split(".")
        assert prefix == "alma" and len(signature) == 64 and int(signature, 16) >= 0
        assert base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode() == scope
        assert authority.verify(token) == scope


def test_a_forged_or_foreign_token_does_not_verify() -> None:
    authority = TokenAuthority()
    worker = authority.mint("worker")
    _, _, signature = worker.split(".")
    # The scope is readable, so it can be rewritten; the signature then no longer matches.
    admin_claim = base64.urlsafe_b64encode(b"admin").rstrip(b"=").decode()
    forged = ["alma", admin_claim, signature]
    assert authority.verify(".".join(forged)) is None
    assert TokenAuthority().verify(worker) is None  # another gateway's secret
    for junk in ["", "worker", "alma..", "alma.d29ya2Vy", "alma.!!!." + signature, "x" * 5000]:
        assert authority.verify(junk) is None
    assert authority.verify(worker[:-1] + ("0" if worker[-1] != "0" else "1")) is None


def test_scopes_are_checked() -> None:
    assert design_scope("a.b@c-d_1") == "design:a.b@c-d_1"
    assert check_scope("design:" + "x" * 128)
    for bad in ["", "root", "design:", "design:a/b", "design:a b", "design:" + "x" * 129]:
        with pytest.raises(TokenError, match="not a gateway token scope"):
            check_scope(bad)
    with pytest.raises(TokenError):
        TokenAuthority().mint("design:../other")


def test_who_may_mint_what() -> None:
    assert may_mint("admin", "worker") and may_mint("admin", "design:d")
    assert may_mint("worker", "design:d") and not may_mint("worker", "worker")
    assert not may_mint("design:d", "design:d") and not may_mint("design:d", "worker")
    assert not any(may_mint(holder, "admin") for holder in ["admin", "worker", "design:d"])


# -- at a gateway -----------------------------------------------------------------------------

ADMIN_ENDPOINTS = [
    ("GET", "/alma/stats", None),
    ("GET", "/alma/keys", None),
    ("POST", "/alma/keys", {}),
    ("POST", "/alma/replay", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ENDPOINTS)
def test_admin_endpoints_need_the_admin_token(
    stack: Stack, method: str, path: str, body: Any
) -> None:
    _, gateway = stack()
    for scope in ["worker", "design:d1"]:
        status, reply = request(gateway, method, path, gateway.mint(scope), body)
        assert status == 403, (scope, reply)
        error = reply["error"]
        assert error["type"] == "permission_error"
        assert "admin" in error["message"] and repr(scope) in error["message"]
    status, reply = request(gateway, method, path, "alma.d29ya2Vy." + "0" * 64, body)
    assert status == 401 and reply["error"]["type"] == "authentication_error"
    if path != "/alma/replay":  # (replay needs a replay-mode cache and a real file)
        assert request(gateway, method, path, gateway.token, body)[0] == 200


def test_what_each_scope_may_mint(stack: Stack) -> None:
    _, gateway = stack()
    worker = gateway.mint("worker")
    design = gateway.mint("design:d1")

    def mint(token: str, scope: Any) -> tuple[int, dict[str, Any]]:
        return request(gateway, "POST", "/alma/tokens", token, {"scope": scope})

    status, reply = mint(gateway.token, "worker")
    assert status == 200 and reply["scope"] == "worker"
    assert chat(gateway, reply["token"]).text  # a minted token opens the model endpoints
    assert mint(gateway.token, "design:d2")[0] == 200
    status, reply = mint(worker, "design:d2")
    assert status == 200 and reply["token"] == gateway.mint("design:d2")

    status, reply = mint(worker, "worker")
    assert status == 403 and reply["error"]["type"] == "permission_error"
    assert "needs the admin token" in reply["error"]["message"]
    for holder in [gateway.token, worker]:
        status, reply = mint(holder, "admin")
        assert status == 403 and "no token may mint an admin token" in reply["error"]["message"]
    for scope in ["design:d1", "design:d2", "worker"]:
        status, reply = mint(design, scope)
        assert status == 403 and "cannot mint tokens" in reply["error"]["message"]
    for bad in ["design:a/b", 7, None]:
        status, reply = mint(worker, bad)
        assert status == 400 and reply["error"]["type"] == "invalid_request_error"
    assert mint("nope", "design:d1")[0] == 401


def test_mint_token_from_a_worker(stack: Stack) -> None:
    _, gateway = stack()
    worker = gateway.mint("worker")
    token = mint_token(gateway.url, worker, design_scope("my_design"))
    assert token == gateway.mint("design:my_design")
    with pytest.raises(PermissionError, match=r"HTTP 403.*cannot mint tokens"):
        mint_token(gateway.url, token, "design:other")
    with pytest.raises(PermissionError, match=r"HTTP 401"):
        mint_token(gateway.url, "not-a-token", "design:other")
    with pytest.raises(TokenError):
        mint_token(gateway.url, worker, "design:no/slashes")


def test_a_design_token_books_every_call_to_its_design(stack: Stack) -> None:
    _, gateway = stack()
    token = gateway.mint("design:mine")
    # It claims to be the agent, in another design's scope: both are overridden.
    client = LLMClient(gateway.url, token, "scripted", tag="agent", scope="theirs")

    async def calls() -> None:
        await client.chat(USER)
        await client.chat([{"role": "user", "content": "update"}], tag="design.update")
        await client.embed(["x"], tag="designer")
        await client.aclose()

    asyncio.run(calls())
    # The worker token's calls keep their own headers (the worker runs the agent).
    chat(gateway, gateway.mint("worker"), tag="agent", scope="theirs")
    keys = {(e["tag"], e["scope"]) for e in gateway.stats()["accounting"]["entries"]}
    assert keys == {("design", "mine"), ("design.update", "mine"), ("agent", "theirs")}


# -- in a session -----------------------------------------------------------------------------


def test_gateway_process_mints_worker_tokens(
    scripted: ScriptedServer, make_gateway_process: Callable[..., GatewayProcess]
) -> None:
    gateway = make_gateway_process(scripted.base_url, "scripted-test-double")
    with pytest.raises(RuntimeError, match="not running"):
        gateway.mint("worker")
    gateway.start()
    try:
        worker = gateway.mint("worker")
        assert worker.startswith("alma.") and worker != gateway.token
        assert chat(gateway, worker).text
        assert request(gateway, "GET", "/alma/stats", worker)[0] == 403
        design = mint_token(gateway.url, worker, "design:d")
        assert chat(gateway, design).text
        with pytest.raises(PermissionError, match="no token may mint an admin token"):
            gateway.mint("admin")
        assert gateway.stats()["accounting"]["totals"]["calls"] == 2
    finally:
        gateway.stop()


def test_workers_get_a_worker_token_and_sub_sessions_the_admin_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_alma.session import ATTACH_ENV, ControllerServices
    from pytest_alma.settings import resolve

    monkeypatch.delenv(ATTACH_ENV, raising=False)
    cli = {"env": "babaisai", "store": str(tmp_path / "s"), "reports": str(tmp_path / "r")}
    settings = resolve(cli, {}, environ={})
    config = SimpleNamespace(rootpath=tmp_path, option=SimpleNamespace())
    services = ControllerServices.start(config, settings)  # type: ignore[arg-type]
    try:
        gateway = services.gateway
        worker = services.harness_config_json()["gateway_token"]
        assert worker == services.harness_config_json()["gateway_token"]  # minted once
        assert worker != gateway.token and chat(gateway, worker).text
        status, reply = request(gateway, "GET", "/alma/stats", worker)
        assert status == 403 and reply["error"]["type"] == "permission_error"
        admin = services.attach_document()["gateway_token"]
        assert admin == gateway.token and request(gateway, "GET", "/alma/stats", admin)[0] == 200

        # A search sub-session attaches with the admin token; its workers get a worker token.
        monkeypatch.setenv(ATTACH_ENV, json.dumps(services.attach_document()))
        sub = ControllerServices.start(config, settings)  # type: ignore[arg-type]
        sub_worker = sub.harness_config_json()["gateway_token"]
        assert sub_worker == worker and sub.gateway.token == admin
        sub.stop()
    finally:
        services.stop()
