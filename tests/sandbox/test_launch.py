"""How design processes are started: environment, sandbox choice, bubblewrap's command line,
and what a design really sees from inside (bubblewrap against unsandboxed)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pytest_alma
from pytest_alma.contract.strategies import example_start
from pytest_alma.sandbox import launch
from pytest_alma.sandbox.launch import (
    HASH_SEED,
    Limits,
    SandboxUnavailable,
    bubblewrap_argv,
    choose_sandbox,
    design_environment,
    host_command,
)
from pytest_alma.sandbox.process import DesignProcess
from pytest_alma.sandbox.static_find import find_design

from .conftest import NO_BWRAP, drive, write_design

PACKAGE = Path(pytest_alma.__file__).resolve().parent
PROJECT = PACKAGE.parent
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason=NO_BWRAP)

# -- the environment -------------------------------------------------------------------------


def test_design_environment_is_built_from_nothing(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    caller = {
        "ALMA_TOP_K": "3",
        "ALMA_STYLE": "terse",
        "OPENAI_API_KEY": "sk-secret",
        "ALMA_API_KEY": "sk-alma",
        "ALMA_FOO_TOKEN": "tok",
        "ALMA_DB_PASSWORD": "pw",
        "ALMA_BASE_URL": "http://127.0.0.1:1/v1",
        "ALMA_SANDBOX": "off",
        "HOME": "/root",
        "PATH": "/opt/evil/bin",
        "TMPDIR": "/var/tmp",
        "PYTHONPATH": "/opt/evil",
        "LD_PRELOAD": "/opt/evil.so",
        "PYTHONHASHSEED": "random",
        "USER": "root",
    }
    env = design_environment(caller, scratch)
    assert env["ALMA_TOP_K"] == "3"
    assert env["ALMA_STYLE"] == "terse"
    for name in (
        "OPENAI_API_KEY",
        "ALMA_API_KEY",
        "ALMA_FOO_TOKEN",
        "ALMA_DB_PASSWORD",
        "ALMA_BASE_URL",
        "ALMA_SANDBOX",
        "PYTHONPATH",
        "LD_PRELOAD",
        "USER",
    ):
        assert name not in env, name
    assert env["HOME"] == env["TMPDIR"] == str(scratch)
    assert env["PATH"] != caller["PATH"] and "/opt/evil" not in env["PATH"]
    assert env["PYTHONHASHSEED"] == HASH_SEED
    assert not any(value in {"sk-secret", "sk-alma", "tok", "pw"} for value in env.values())


def test_host_command_carries_that_environment(tmp_path: Path) -> None:
    design = write_design(tmp_path / "d", "x = 1\n")
    scratch = tmp_path / "scratch"
    caller = {"ALMA_TOP_K": "3", "OPENAI_API_KEY": "sk-secret"}
    plain = host_command(choose_sandbox("off"), design, scratch, Limits(), caller)
    assert plain.env == design_environment(caller, scratch)
    assert plain.argv == [sys.executable, "-I", "-m", "pytest_alma.sandbox.host"]
    assert scratch.is_dir()

    fake = launch.Sandbox("bubblewrap", "bubblewrap 0.0", "/usr/bin/bwrap")
    boxed = host_command(fake, design, scratch, Limits(), caller)
    assert boxed.env == {}  # bubblewrap itself gets nothing; --clearenv then --setenv
    argv = boxed.argv
    cut = argv.index("--")
    assert argv[cut + 1 :] == [sys.executable, "-I", "-m", "pytest_alma.sandbox.host"]
    assert argv.index("--clearenv") < argv.index("--setenv")
    pairs = {argv[i + 1]: argv[i + 2] for i in range(cut) if argv[i] == "--setenv"}
    assert pairs == design_environment(caller, scratch)
    assert "sk-secret" not in argv


# -- choosing the sandbox --------------------------------------------------------------------


def test_off_is_unsandboxed_and_labelled_so() -> None:
    sandbox = choose_sandbox("off")
    assert not sandbox.sandboxed
    assert sandbox.bwrap is None
    assert "UNSANDBOXED" in sandbox.label()
    assert sandbox.to_json()["sandboxed"] is False


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match=r"choose one of auto, require, off"):
        choose_sandbox("maybe")


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A machine without bubblewrap: nothing on PATH, and shutil.which finds no bwrap."""
    real_which = shutil.which

    def which(name: str, *args: Any, **kwargs: Any) -> str | None:
        return None if name == "bwrap" else real_which(name, *args, **kwargs)

    monkeypatch.setattr(launch.shutil, "which", which)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    launch.probe_bubblewrap.cache_clear()
    yield
    launch.probe_bubblewrap.cache_clear()


@pytest.mark.usefixtures("no_bwrap")
def test_require_without_bubblewrap_raises_with_the_install_hint() -> None:
    with pytest.raises(SandboxUnavailable) as info:
        choose_sandbox("require")
    message = str(info.value)
    assert "bubblewrap is not installed" in message
    assert "apt-get install bubblewrap" in message
    assert "--alma-sandbox auto" in message


@pytest.mark.usefixtures("no_bwrap")
def test_auto_without_bubblewrap_is_unsandboxed_and_says_why() -> None:
    sandbox = choose_sandbox("auto")
    assert not sandbox.sandboxed
    assert sandbox.label().startswith("UNSANDBOXED (bubblewrap is not installed")


def test_require_with_a_bubblewrap_that_cannot_create_namespaces(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("bubblewrap is only probed on Linux")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "bwrap"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --version ]; then echo "bubblewrap 9.9"; exit 0; fi\n'
        'echo "bwrap: No permissions to create new namespace" >&2\n'
        "exit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")
    launch.probe_bubblewrap.cache_clear()
    with pytest.raises(SandboxUnavailable, match=r"cannot create namespaces here \(bwrap: No"):
        choose_sandbox("require")
    assert "cannot create namespaces" in choose_sandbox("auto").label()


@needs_bwrap
def test_require_with_bubblewrap_installed_is_sandboxed() -> None:
    sandbox = choose_sandbox("require")
    assert sandbox.sandboxed
    assert sandbox.label().startswith("bubblewrap")
    assert "UNSANDBOXED" not in sandbox.label()


# -- bubblewrap's command line ---------------------------------------------------------------

_BINDS = ("--bind", "--bind-try", "--ro-bind", "--ro-bind-try", "--dev-bind", "--dev-bind-try")


def _binds(argv: list[str]) -> list[tuple[str, str, str]]:
    """(option, source, destination) of every bind in a bubblewrap command line."""
    found = []
    i = 0
    while i < len(argv):
        if argv[i] in _BINDS:
            found.append((argv[i], argv[i + 1], argv[i + 2]))
            i += 3
        else:
            i += 1
    return found


def _within(path: str, directory: Path) -> bool:
    return Path(path) == directory or directory in Path(path).parents


def test_bubblewrap_argv_binds_the_design_and_scratch_and_nothing_private(
    tmp_path: Path,
) -> None:
    design = write_design(tmp_path / "project" / "designs", "x = 1\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    argv = bubblewrap_argv("/usr/bin/bwrap", design, scratch)
    binds = _binds(argv)

    assert argv[0] == "/usr/bin/bwrap"
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert argv[argv.index("--uid") + 1] != "0"
    assert ("--ro-bind", str(design), str(design)) in binds
    # The only writable place is scratch; the root is remounted read-only.
    assert [b for b in binds if not b[0].startswith("--ro-")] == [
        ("--bind", str(scratch), str(scratch))
    ]
    assert argv[argv.index("--chdir") + 1] == str(scratch)
    remounted = [argv[i + 1] for i, a in enumerate(argv) if a == "--remount-ro"]
    assert remounted == ["/dev", "/"]  # the tmpfs ones: files there would be untracked memory
    for _, source, destination in binds:
        assert source == destination
    sources = [source for _, source, _ in binds]

    # Nothing that contains the project, the store, other designs, homes or tmp_path is bound
    # (binding a directory makes everything under it visible).
    private = [
        PROJECT,
        PROJECT / ".alma",
        Path("/root"),
        Path("/home"),
        Path("/"),
        design.parent,
        tmp_path,
    ]
    for source in sources:
        for directory in private:
            assert not _within(str(directory), Path(source)), (source, directory)
    # Of the project, only the package itself (an editable install) may be visible.
    for source in sources:
        if _within(source, PROJECT):
            assert Path(source) == PACKAGE, source
    # Of tmp_path, only the design file and scratch.
    assert {s for s in sources if _within(s, tmp_path)} == {str(design), str(scratch)}


# -- what a design sees (real processes) -----------------------------------------------------

PROBE = """
import json
import os
import resource
import socket
import tempfile

from pytest_alma import MemoryDesign


def attempt(action):
    try:
        action()
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def write(path):
    with open(path, "a") as handle:
        handle.write("x")


def connect(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def raise_memory_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard + 1024 * 1024, hard + 1024 * 1024))


class Probe(MemoryDesign):
    async def general_update(self, trajectory):
        pass

    async def general_retrieve(self, task):
        watch = json.loads(os.environ["ALMA_PROBE_PATHS"])
        scratch = os.environ["TMPDIR"]
        return {
            "uid": os.getuid(),
            "root": sorted(os.listdir("/")),
            "etc": sorted(os.listdir("/etc")) if os.path.isdir("/etc") else [],
            "exists": {path: os.path.exists(path) for path in watch},
            "listings": {
                path: sorted(os.listdir(path)) if os.path.isdir(path) else None
                for path in json.loads(os.environ["ALMA_PROBE_LIST"])
            },
            "proc": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
            "signal worker": attempt(lambda: os.kill(int(os.environ["ALMA_PROBE_WORKER"]), 0)),
            "connect": attempt(lambda: connect(int(os.environ["ALMA_PROBE_PORT"]))),
            "interfaces": sorted(name for _, name in socket.if_nameindex()),
            "rlimit_as": list(resource.getrlimit(resource.RLIMIT_AS)),
            "rlimit_cpu": list(resource.getrlimit(resource.RLIMIT_CPU)),
            "raise limit": attempt(raise_memory_limit),
            # (only asked inside bubblewrap: unsandboxed, it would write to the real root)
            "write root": attempt(lambda: write(os.environ["ALMA_PROBE_ROOT_FILE"]))
            if "ALMA_PROBE_ROOT_FILE" in os.environ
            else "not tried",
            "write design": attempt(lambda: write(__file__)),
            # (also only inside bubblewrap: a tmpfs there is memory no limit counts)
            "write dev shm": attempt(lambda: write("/dev/shm/alma-probe"))
            if "ALMA_PROBE_ROOT_FILE" in os.environ
            else "not tried",
            "write dev": attempt(lambda: write("/dev/alma-probe"))
            if "ALMA_PROBE_ROOT_FILE" in os.environ
            else "not tried",
            "tempfile": attempt(lambda: tempfile.NamedTemporaryFile(delete=False).write(b"x")),
            "write scratch": attempt(lambda: write(os.path.join(scratch, "probe.txt"))),
            "write instance scratch": attempt(
                lambda: write(os.path.join(str(self.ctx.scratch_dir), "probe.txt"))
            ),
            "environ": dict(os.environ),
        }
"""

PROBE_LIMITS = Limits(memory_mb=768, cpu_s=45)


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections, for the length of the test."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def _observe(tmp_path: Path, mode: str, port: int) -> tuple[dict[str, Any], dict[str, Path]]:
    """Run the probe design under ``choose_sandbox(mode)``; what it saw, and the paths used."""
    design = write_design(tmp_path / "designs", PROBE, "probe.py")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for designs")
    scratch = tmp_path / "scratch"
    paths = {
        "project": PROJECT / "pyproject.toml",
        "designs": PROJECT / "designs",
        "reports": PROJECT / "reports",
        "secret": secret,
        "tmp": tmp_path,
        "package": PACKAGE / "design.py",
        "design": design,
        "home": Path.home(),
    }
    environ = {
        "ALMA_PROBE_PATHS": json.dumps([str(p) for p in paths.values()]),
        "ALMA_PROBE_LIST": json.dumps([str(PROJECT), str(tmp_path), str(design.parent)]),
        "ALMA_PROBE_PORT": str(port),
        "ALMA_PROBE_WORKER": str(os.getpid()),
        "OPENAI_API_KEY": "sk-must-not-leak",
        "ALMA_API_KEY": "sk-must-not-leak-either",
    }
    if mode != "off":
        environ["ALMA_PROBE_ROOT_FILE"] = f"/alma-probe-{os.getpid()}-{tmp_path.name}"
    process = DesignProcess(
        find_design(design),
        choose_sandbox(mode),
        scratch,
        PROBE_LIMITS,
        _NoLLM(),
        load_timeout_s=20,
        environ=environ,
    )

    async def scenario(process: DesignProcess) -> dict[str, Any]:
        remote = await process.new("probe", 0, 20)
        memory, _ = await remote.retrieve(example_start("textworld"), 20)
        return memory

    seen = drive(process, scenario)
    seen["exists"] = {name: seen["exists"][str(path)] for name, path in paths.items()}
    return seen, {"design": design, "scratch": scratch, "secret": secret}


class _NoLLM:
    async def chat(self, messages: Any, **kwargs: Any) -> str:
        raise AssertionError("the probe makes no LLM calls")

    async def embed(self, texts: Any) -> list[list[float]]:
        raise AssertionError("the probe makes no LLM calls")


@needs_bwrap
def test_inside_bubblewrap(tmp_path: Path, listening_port: int) -> None:
    seen, paths = _observe(tmp_path, "require", listening_port)

    assert seen["uid"] not in (0, os.getuid()) and seen["uid"] == 65534
    # The filesystem: system directories, Python, the package, the design file, scratch.
    assert "home" not in seen["root"] or not Path("/home").exists()
    assert not {"var", "opt", "srv", "mnt", "boot"} & set(seen["root"])
    assert set(seen["etc"]) <= {Path(p).name for p in launch._ETC_FILES}
    assert seen["exists"] == {
        "project": False,
        "designs": False,
        "reports": False,
        "secret": False,
        "tmp": True,  # as the parent of the design file and scratch, nothing else in it
        "package": True,
        "design": True,
        "home": Path.home() == Path("/root") and sys.prefix.startswith("/root/"),
    }
    # Directories that exist only as the way to what is bound hold nothing else.
    listings = seen["listings"]
    assert listings[str(PROJECT)] in (["pytest_alma"], None)  # an editable install, or none
    assert listings[str(tmp_path)] == ["designs", "scratch"]
    assert listings[str(paths["design"].parent)] == ["probe.py"]
    # Its own PID namespace: bubblewrap's init and the design process, nothing of ours.
    assert len(seen["proc"]) <= 3 and 1 in seen["proc"]
    assert os.getpid() not in seen["proc"] or seen["signal worker"] != "ok"
    assert seen["signal worker"].startswith("ProcessLookupError")
    # No network: a network namespace of its own, with nothing but its own loopback (our
    # 127.0.0.1, where the worker's services listen, is not its 127.0.0.1).
    assert seen["connect"] != "ok"
    assert seen["connect"].startswith(("ConnectionRefusedError", "OSError"))
    assert seen["interfaces"] == ["lo"]
    # Hard limits it cannot raise.
    size = PROBE_LIMITS.memory_mb * 1024 * 1024
    assert seen["rlimit_as"] == [size, size]
    assert seen["rlimit_cpu"] == [PROBE_LIMITS.cpu_s, PROBE_LIMITS.cpu_s + 1]
    assert seen["raise limit"].startswith("ValueError: not allowed to raise")
    # Read-only everywhere but scratch.
    assert seen["write root"].startswith(("OSError", "PermissionError")), seen["write root"]
    assert seen["write design"] != "ok"
    assert seen["write dev shm"].startswith("OSError: [Errno 30]"), seen["write dev shm"]
    assert seen["write dev"].startswith("OSError: [Errno 30]"), seen["write dev"]
    # tempfile writes in the scratch directory ($TMPDIR), on disk.
    assert seen["tempfile"] == "ok"
    assert [p.name for p in paths["scratch"].glob("tmp*")]
    assert seen["write scratch"] == "ok"
    assert seen["write instance scratch"] == "ok"
    assert (paths["scratch"] / "probe.txt").read_text() == "x"
    assert paths["design"].read_text() == textwrap.dedent(PROBE).lstrip()
    assert not list(Path("/").glob("alma-probe-*"))
    # The environment: options, no credentials.
    environ = seen["environ"]
    assert "OPENAI_API_KEY" not in environ and "ALMA_API_KEY" not in environ
    assert environ["ALMA_PROBE_PORT"] == str(listening_port)
    assert environ["HOME"] == environ["TMPDIR"] == str(paths["scratch"])
    assert "sk-must-not-leak" not in repr(environ)


def test_unsandboxed_contrast(tmp_path: Path, listening_port: int) -> None:
    """The same probe without bubblewrap sees the machine: this is what the sandbox removes."""
    seen, paths = _observe(tmp_path, "off", listening_port)

    assert seen["uid"] == os.getuid()
    assert seen["exists"]["project"] is True
    assert seen["exists"]["secret"] is True
    assert seen["exists"]["designs"] is True
    assert "secret.txt" in seen["listings"][str(tmp_path)]
    assert os.getpid() in seen["proc"] and len(seen["proc"]) > 3
    assert seen["signal worker"] == "ok"
    assert seen["connect"] == "ok"
    assert seen["interfaces"] == sorted(name for _, name in socket.if_nameindex())
    assert seen["write design"] == "ok"  # it can even change its own source
    assert seen["write scratch"] == "ok"
    # The same limits and the same environment apply (raising a hard limit needs
    # CAP_SYS_RESOURCE, which a design running as root has).
    size = PROBE_LIMITS.memory_mb * 1024 * 1024
    assert seen["rlimit_as"] == [size, size]
    if os.geteuid() != 0:
        assert seen["raise limit"].startswith("ValueError")
    environ = seen["environ"]
    assert "OPENAI_API_KEY" not in environ and "ALMA_API_KEY" not in environ
    assert environ["HOME"] == environ["TMPDIR"] == str(paths["scratch"])
    assert resource.getrlimit(resource.RLIMIT_AS)[1] != size  # the worker's own are untouched
