"""A loopback service run in a child process (used for the gateway and the scripted model).

The child prints one line (its address, and anything else the parent needs) when it is ready,
then serves until its standard input closes. Closing stdin is how the parent stops it, and a
killed parent closes it too, so a child never outlives its session. Before that, the parent may
write the child something private on its stdin (the gateway's API key: see
:mod:`pytest_alma.llm.key_handoff`), which, unlike the command line and the environment, no
other process can read.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import IO

from pytest_alma.llm.key_handoff import child_environment


class ChildService:
    """Start ``python -m <module> <args>``, read its ready line, and stop it on request.

    ``env``: the child's environment; by default this process's environment without anything
    that holds or looks like a credential (``child_environment`` in
    :mod:`pytest_alma.llm.key_handoff`), so that no child shows a key in ``/proc/<pid>/environ``.
    """

    def __init__(
        self,
        module: str,
        args: Sequence[str],
        what: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.module = module
        self.args = list(args)
        self.what = what
        self.env = dict(env) if env is not None else child_environment(os.environ)
        self._proc: subprocess.Popen[str] | None = None

    @property
    def running(self) -> bool:
        """Whether the child was started and not stopped."""
        return self._proc is not None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (``None`` otherwise)."""
        return self._proc.pid if self._proc is not None else None

    def start(self, handoff: Callable[[IO[str]], None] | None = None) -> list[str]:
        """Spawn the child and return the fields of its ready line (the first is a URL).

        ``handoff``, if given, writes to the child's stdin first (the child reads it before it
        announces itself); stdin stays open afterwards, since closing it stops the child.
        """
        self._proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        assert self._proc.stdout is not None and self._proc.stdin is not None
        if handoff is not None:
            # A child that died before reading it breaks the pipe: its stderr (below) says why.
            with contextlib.suppress(BrokenPipeError):
                handoff(self._proc.stdin)
        fields = self._proc.stdout.readline().split()
        if not fields or not fields[0].startswith("http://127.0.0.1:"):
            self._proc.kill()
            _, err = self._proc.communicate(timeout=10)
            self._proc = None
            raise RuntimeError(f"the {self.what} process failed to start:\n{err}")
        return fields

    def stop(self) -> None:
        """Stop the child (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the child exits when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def announce_and_wait(ready_line: str, stdin: IO[str]) -> None:
    """In the child: tell the parent we are ready, then block until our stdin closes."""
    print(ready_line, flush=True)
    for _ in stdin:
        pass
