"""The scripted model in a process of its own, as a session runs it.

In-process, the scripted server's thread shares the controller's GIL with the gateway's thread,
and every call hands the GIL back and forth between the two (measured: at 16 xdist workers the
two threads spent about 5 ms of CPU per call together, against 2 ms apart). A child process
gives it its own interpreter. The child prints its base URL on its first line of output and
serves until its standard input closes, so it also ends when the session is killed.

Run by hand: ``python -m pytest_alma.llm.scripted_process --latency-ms 50 --faults 429@3``.
"""

from __future__ import annotations

import argparse
import sys
from typing import IO

from pytest_alma.llm._child import ChildService, announce_and_wait
from pytest_alma.llm.faults import FaultPlan


class ScriptedServerProcess:
    """Start, address and stop a scripted model running in a child process."""

    def __init__(self, *, latency_s: float = 0.0, faults: str | None = None) -> None:
        if faults:
            FaultPlan.parse(faults)  # a bad plan is reported here, not in the child
        self.latency_s = latency_s
        self.faults = faults
        args = ["--latency-ms", str(latency_s * 1000)]
        if faults:
            args += ["--faults", faults]
        self._child = ChildService(__name__, args, "scripted model")
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (only while running)."""
        if self._base_url is None:
            raise RuntimeError("the scripted model process is not running")
        return self._base_url

    def start(self) -> ScriptedServerProcess:
        """Spawn the child and wait for its address."""
        self._base_url = self._child.start()[0]
        return self

    def stop(self) -> None:
        """Stop the child (idempotent)."""
        self._base_url = None
        self._child.stop()


def _serve(latency_ms: float, faults: str | None, stdin: IO[str]) -> None:
    from pytest_alma.llm.scripted import ScriptedServer

    plan = FaultPlan.parse(faults) if faults else None
    server = ScriptedServer(latency_s=latency_ms / 1000.0, faults=plan).start()
    try:
        announce_and_wait(server.base_url, stdin)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--faults", default=None)
    args = parser.parse_args(argv)
    _serve(args.latency_ms, args.faults, sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
