"""A loopback service run in a child process (used for the gateway and the scripted model).

The child prints one line (its address, and anything else the parent needs) when it is ready,
then serves until its standard input closes. Closing stdin is how the parent stops it, and a
killed parent closes it too, so a child never outlives its session.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import IO


class ChildService:
    """Start ``python -m <module> <args>``, read its ready line, and stop it on request."""

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
        self.env = dict(env) if env is not None else None
        self._proc: subprocess.Popen[str] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None

    def start(self) -> list[str]:
        """Spawn the child and return the fields of its ready line (the first is a URL)."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        assert self._proc.stdout is not None
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
