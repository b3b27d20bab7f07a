"""How a design process is started: in bubblewrap where it works, else as a plain subprocess.

With bubblewrap (``bwrap``, Debian's package ``bubblewrap``, the sandbox Flatpak uses) the
design process gets:

- new user, PID, network, IPC, UTS and cgroup namespaces (``--unshare-all``): it sees only its
  own processes, has no network interface but a loopback of its own (nothing listens there),
  and holds no capability;
- a filesystem of its own, read-only: ``/usr`` and the system's library links, a few files of
  ``/etc`` the dynamic loader and Python read, the Python installation (its prefixes and
  site-packages), the ``pytest_alma`` package, and the design file itself, each at its own
  path (so the directories leading to them exist, holding only them). The project's other
  files, the store (episodes, memory snapshots, the LLM cache), the reports, other designs and
  everything else do not exist in it. One directory, the design's scratch directory, is
  writable (it is also ``$HOME`` and ``$TMPDIR``; ``tempfile`` uses it);
  ``/dev`` (and ``/dev/shm``) are read-only, since files on a tmpfs are memory that the memory
  limit does not count;
- an environment built from nothing: ``PATH``, ``HOME`` and ``TMPDIR`` (the scratch directory),
  ``LANG``, a fixed ``PYTHONHASHSEED``, and the ``ALMA_*`` variables designs read as options,
  minus anything that looks like a credential;
- hard limits set before it starts, which it cannot raise (no ``CAP_SYS_RESOURCE``):
  address space (``--alma-design-memory-mb``) and CPU seconds (``--alma-design-cpu-s``);
- ``--die-with-parent`` and ``--new-session``: it ends with the worker, and cannot push
  keystrokes into the worker's terminal. Every process it forks lives in its PID namespace and
  ends when it ends.

Without bubblewrap (macOS, kernels without unprivileged user namespaces, or
``--alma-sandbox off``), the same process boundary, environment and limits apply, but the
design process can read what the user can read, reach the network, and (run as root) raise its
own hard limits: every output says "unsandboxed".
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

#: ``--alma-sandbox`` values.
SANDBOX_MODES = ("auto", "require", "off")

#: Names of variables that never enter a design process, whatever their prefix.
_CREDENTIAL = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
#: ``ALMA_*`` variables that are the harness's, not a design's option.
_HARNESS_VARS = ("ALMA_BASE_URL", "ALMA_SANDBOX")

#: Files of /etc the dynamic loader, libc and Python may read. Nothing else of /etc is visible.
_ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
)

#: The hash seed of every design process: sets and dicts of strings iterate the same way in every
#: worker, so a design's memory does not depend on which worker built it.
HASH_SEED = "0"


class SandboxUnavailable(Exception):
    """``--alma-sandbox require`` and bubblewrap does not work here; the message says why."""


@dataclass(frozen=True)
class Limits:
    """Hard limits of a design process (0: none)."""

    memory_mb: int = 4096
    cpu_s: int = 3600


@dataclass(frozen=True)
class Sandbox:
    """How design processes are started in this session: ``kind`` is ``"bubblewrap"`` or
    ``"none"``; ``detail`` says which bubblewrap, or why there is none."""

    kind: str
    detail: str
    bwrap: str | None = None

    @property
    def sandboxed(self) -> bool:
        return self.kind == "bubblewrap"

    def label(self) -> str:
        """How outputs name it: ``bubblewrap 0.8.0`` or ``UNSANDBOXED (why)``."""
        return self.detail if self.sandboxed else f"UNSANDBOXED ({self.detail})"

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "sandboxed": self.sandboxed, "detail": self.detail}


@functools.cache
def probe_bubblewrap() -> tuple[str | None, str]:
    """``(path, "bubblewrap X.Y.Z")`` when ``bwrap`` runs a process with every namespace here,
    else ``(None, why not)``. Cached for the life of the process."""
    if not sys.platform.startswith("linux"):
        return None, f"bubblewrap is Linux-only (this is {sys.platform})"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        version = subprocess.run(
            [bwrap, "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        done = subprocess.run(
            [bwrap, *_namespace_args(), "--ro-bind", "/", "/", "--", "/bin/true"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"bubblewrap does not run here: {exc}"
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no message"
        return None, f"bubblewrap cannot create namespaces here ({why})"
    return bwrap, version or "bubblewrap"


def choose_sandbox(mode: str) -> Sandbox:
    """The sandbox of ``--alma-sandbox mode``; raises :class:`SandboxUnavailable` for
    ``require`` where bubblewrap does not work."""
    if mode not in SANDBOX_MODES:
        raise ValueError(f"--alma-sandbox {mode!r}: choose one of {', '.join(SANDBOX_MODES)}")
    if mode == "off":
        return Sandbox("none", "--alma-sandbox off")
    bwrap, detail = probe_bubblewrap()
    if bwrap is None:
        if mode == "require":
            raise SandboxUnavailable(
                f"--alma-sandbox require: {detail}. Install bubblewrap, or run with "
                "--alma-sandbox auto to run designs unsandboxed (labelled so in every output)"
            )
        return Sandbox("none", detail)
    return Sandbox("bubblewrap", detail, bwrap)


def _namespace_args() -> list[str]:
    return [
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        # An unprivileged uid inside the user namespace: no capability, even as root outside.
        "--uid",
        "65534",
        "--gid",
        "65534",
    ]


def design_environment(environ: Mapping[str, str], scratch: Path) -> dict[str, str]:
    """The whole environment of a design process (see the module docstring)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": HASH_SEED,
        "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    for name, value in environ.items():
        if name.startswith("ALMA_") and name not in _HARNESS_VARS and not _CREDENTIAL.search(name):
            env[name] = value
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # machine quirks numpy needs
        if name in environ:
            env[name] = environ[name]
    return env


def _python_paths() -> list[str]:
    """Directories the design process's Python needs, read-only."""
    import pytest_alma

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths.add(str(Path(pytest_alma.__file__).resolve().parent))
    try:
        import site

        paths.update(site.getsitepackages())
    except AttributeError:  # (virtualenv's old site module)
        pass
    return sorted(p for p in paths if p and Path(p).exists())


def bubblewrap_argv(bwrap: str, design_file: Path, scratch: Path) -> list[str]:
    """The ``bwrap`` command line for a design process (before the Python command)."""
    argv = [bwrap, *_namespace_args()]
    # The root is bubblewrap's own empty tmpfs; only what is bound below exists.
    for top in ("/bin", "/lib", "/lib64", "/lib32", "/libx32", "/sbin"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    argv += ["--ro-bind", "/usr", "/usr"]
    for name in _ETC_FILES:
        argv += ["--ro-bind-try", name, name]
    for path in _python_paths():
        argv += ["--ro-bind", path, path]
    argv += ["--ro-bind", str(design_file), str(design_file)]
    argv += ["--dev", "/dev", "--proc", "/proc"]
    argv += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch)]
    # bubblewrap's tmpfs root and its /dev (with /dev/shm) read-only: a file written to a tmpfs
    # is memory that no RLIMIT_AS counts, so a writable one would bypass the memory limit.
    argv += ["--remount-ro", "/dev", "--remount-ro", "/"]
    argv += ["--clearenv"]
    return argv


def set_limits(limits: Limits) -> Callable[[], None]:
    """A ``preexec_fn`` that sets ``limits`` as hard limits in the child before it execs."""

    def apply() -> None:
        import resource

        if limits.memory_mb > 0:
            size = limits.memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        if limits.cpu_s > 0:
            # The soft limit sends SIGXCPU, the hard one SIGKILL a second later.
            resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core files of a crashing design
        _die_with_parent()

    return apply


def _die_with_parent() -> None:
    """Linux: the child gets SIGKILL when the worker that started it dies (bubblewrap then takes
    its whole PID namespace down; unsandboxed, the design process itself ends)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass


@dataclass(frozen=True)
class Command:
    """A ready-to-spawn design process: argv, environment, and its limits."""

    argv: list[str]
    env: dict[str, str]
    preexec: Callable[[], None]


def host_command(
    sandbox: Sandbox, design_file: Path, scratch: Path, limits: Limits, environ: Mapping[str, str]
) -> Command:
    """The command that starts a design process for ``design_file`` under ``sandbox``."""
    scratch.mkdir(parents=True, exist_ok=True)
    env = design_environment(environ, scratch)
    python = [sys.executable, "-I", "-m", "pytest_alma.sandbox.host"]
    if sandbox.sandboxed:
        assert sandbox.bwrap is not None
        argv = bubblewrap_argv(sandbox.bwrap, design_file, scratch)
        for name, value in env.items():
            argv += ["--setenv", name, value]
        return Command([*argv, "--", *python], {}, set_limits(limits))
    return Command(python, env, set_limits(limits))
