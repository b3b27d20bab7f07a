"""The API key reaches the gateway child over its stdin, never its environment or command line,
and the controller can overwrite it in its own /proc/<pid>/environ."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

from pytest_alma.llm import key_handoff
from pytest_alma.llm.client import LLMClient
from pytest_alma.llm.gateway_process import GatewayProcess
from pytest_alma.llm.key_handoff import (
    child_environment,
    credential_names,
    receive_key,
    send_key,
    wipe_initial_environment,
)
from pytest_alma.llm.scripted import ScriptedServer

KEY = "sk-handoff-test-4f9a7c31"

linux_proc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not Path("/proc/self/environ").exists(),
    reason="reads /proc/<pid>/environ (Linux)",
)


def proc_file(pid: int, name: str) -> bytes:
    return Path(f"/proc/{pid}/{name}").read_bytes()


# -- the environment a child gets --------------------------------------------------------------


def test_the_child_environment_withholds_credentials_and_upstream_urls() -> None:
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "MY_PROVIDER_API_KEY": KEY,
        "ALIAS": KEY,  # a copy of the key under a harmless name
        "GITHUB_TOKEN": "t",
        "db_password": "p",
        "AWS_SECRET_ACCESS_KEY": "s",
        "GOOGLE_APPLICATION_CREDENTIALS": "/c.json",
        "OPENAI_BASE_URL": "http://user:pw@host/v1",
        "ALMA_BASE_URL": "http://host/v1",
        "OPENAI_API_BASE": "http://host/v1",
        "PYTEST_ALMA_ATTACH": "{}",
    }
    assert child_environment(environ, KEY) == {"PATH": "/usr/bin", "HOME": "/home/u"}
    assert "ALIAS" in credential_names(environ, KEY) and "ALIAS" not in credential_names(environ)
    assert "MY_PROVIDER_API_KEY" in environ  # the input is not changed


def test_the_key_line_round_trips_and_a_bad_one_is_refused_without_echoing_it() -> None:
    for key in [KEY, None, 'with "quotes"\nand a newline']:
        stream = io.StringIO()
        send_key(stream, key)
        assert stream.getvalue().count("\n") == 1  # one line, whatever the key holds
        stream.write("what follows stays for the child's stdin loop\n")
        stream.seek(0)
        assert receive_key(stream) == key
        assert stream.readline() == "what follows stays for the child's stdin loop\n"
    with pytest.raises(ValueError, match="no API key line"):
        receive_key(io.StringIO(""))
    for bad in [KEY + "\n", "42\n", '["sk"]\n']:
        with pytest.raises(ValueError, match="must be the upstream API key as JSON") as info:
            receive_key(io.StringIO(bad))
        assert KEY not in str(info.value)


# -- the gateway child --------------------------------------------------------------------------


class RecordingUpstream(ScriptedServer):
    """The scripted model, remembering the Authorization header of every chat call."""

    def __init__(self) -> None:
        super().__init__()
        self.authorizations: list[str | None] = []

    async def _chat(self, request: web.Request) -> web.Response:
        self.authorizations.append(request.headers.get("Authorization"))
        return await super()._chat(request)


@linux_proc
def test_the_gateway_child_gets_the_key_over_stdin_only(
    monkeypatch: pytest.MonkeyPatch, make_gateway_process: Callable[..., GatewayProcess]
) -> None:
    monkeypatch.setenv("MY_PROVIDER_API_KEY", KEY)
    monkeypatch.setenv("ALIAS_OF_THE_KEY", KEY)
    monkeypatch.setenv("HARMLESS_SETTING", "kept")
    with RecordingUpstream() as upstream:
        gateway = make_gateway_process(upstream.base_url, KEY).start()
        try:
            pid = gateway.pid
            assert pid is not None
            environ, cmdline = proc_file(pid, "environ"), proc_file(pid, "cmdline")
            assert KEY.encode() not in environ and KEY.encode() not in cmdline
            names = {entry.partition(b"=")[0] for entry in environ.split(b"\0")}
            assert b"HARMLESS_SETTING" in names and b"PATH" in names
            assert not names & {b"MY_PROVIDER_API_KEY", b"ALIAS_OF_THE_KEY", b"OPENAI_BASE_URL"}

            async def ask() -> str:
                async with LLMClient(gateway.url, gateway.token, "scripted") as client:
                    return (await client.chat([{"role": "user", "content": "hi"}])).text

            assert asyncio.run(ask())
            assert upstream.authorizations == [f"Bearer {KEY}"]
        finally:
            started = time.monotonic()
            gateway.stop()
        # Closing its stdin still stops it (stop() would otherwise wait 10 s, then kill it).
        assert time.monotonic() - started < 8 and not Path(f"/proc/{pid}").exists()


@linux_proc
def test_other_children_do_not_inherit_credentials_either(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_alma.llm.scripted_process import ScriptedServerProcess

    monkeypatch.setenv("OPENAI_API_KEY", KEY)  # e.g. the user's key, in a test-double run
    monkeypatch.setenv("HARMLESS_SETTING", "kept")
    scripted = ScriptedServerProcess()
    scripted.start()
    try:
        pid = scripted._child.pid
        assert pid is not None
        environ = proc_file(pid, "environ")
        assert KEY.encode() not in environ and b"HARMLESS_SETTING=kept" in environ
    finally:
        scripted.stop()


# -- the controller's own /proc/<pid>/environ ---------------------------------------------------

_SHOW_AND_WAIT = """
import sys, time
from pytest_alma.llm.key_handoff import wipe_initial_environment
print(",".join(wipe_initial_environment(sys.argv[1:])), flush=True)
time.sleep(60)
"""


def environ_after(names: list[str]) -> tuple[str, bytes]:
    """Start a python with FAKE_OPENAI_KEY=sk-secret123 that wipes ``names``: what it reports
    as wiped, and its /proc/<pid>/environ once it has."""
    env = {**os.environ, "FAKE_OPENAI_KEY": "sk-secret123", "NEIGHBOUR": "stays"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SHOW_AND_WAIT, *names],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        wiped = proc.stdout.readline().strip()
        return wiped, proc_file(proc.pid, "environ")
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _mem_writable() -> bool:
    try:
        with open("/proc/self/mem", "r+b", buffering=0):
            return True
    except OSError:
        return False


@linux_proc
@pytest.mark.skipif(not _mem_writable(), reason="this kernel refuses writes to /proc/self/mem")
def test_wiping_the_initial_environment_hides_the_value_in_proc() -> None:
    wiped, environ = environ_after(["FAKE_OPENAI_KEY", "NOT_SET_ANYWHERE"])
    assert wiped == "FAKE_OPENAI_KEY"
    assert b"sk-secret123" not in environ
    assert b"\0FAKE_OPENAI_KEY=************\0" in b"\0" + environ  # same length, name kept
    assert b"NEIGHBOUR=stays\0" in environ
    # The control: without the wipe (os.environ.pop would not help either) the key is there.
    wiped, environ = environ_after([])
    assert wiped == "" and b"FAKE_OPENAI_KEY=sk-secret123\0" in environ


def test_wiping_never_raises_where_it_cannot_work(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_proc() -> tuple[int, int]:
        raise PermissionError("no /proc here")

    monkeypatch.setattr(key_handoff, "_environment_block", no_proc)
    assert wipe_initial_environment(["PATH"]) == []
    monkeypatch.setattr(sys, "platform", "darwin")
    assert wipe_initial_environment(["PATH"]) == []
    assert wipe_initial_environment([]) == []


def test_the_controller_wipes_what_it_scrubs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from pytest_alma.session import ATTACH_ENV, ControllerServices
    from pytest_alma.settings import resolve

    wiped: list[list[str]] = []

    def record(names: list[str]) -> list[str]:
        wiped.append(list(names))
        return []

    monkeypatch.setattr(key_handoff, "wipe_initial_environment", record)
    monkeypatch.delenv(ATTACH_ENV, raising=False)
    monkeypatch.setenv("LAB_API_KEY", KEY)
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "t")
    cli = {
        "env": "babaisai",
        "api-key-env": "LAB_API_KEY",
        "store": str(tmp_path / "s"),
        "reports": str(tmp_path / "r"),
    }
    settings = resolve(cli, {}, environ={})
    config = SimpleNamespace(rootpath=tmp_path, option=SimpleNamespace())
    services = ControllerServices.start(config, settings)  # type: ignore[arg-type]
    try:
        assert len(wiped) == 1 and wiped[0][0] == "LAB_API_KEY"
        assert "SOME_SERVICE_TOKEN" in wiped[0] and "LAB_API_KEY" not in os.environ
    finally:
        services.stop()
    assert os.environ["LAB_API_KEY"] == KEY  # the session puts back what it scrubbed
