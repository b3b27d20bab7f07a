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
import subprocess
import sys
from typing import IO

from pytest_alma.llm.faults import FaultPlan


class ScriptedServerProcess:
    """Start, address and stop a scripted model running in a child process."""

    def __init__(self, *, latency_s: float = 0.0, faults: str | None = None) -> None:
        if faults:
            FaultPlan.parse(faults)  # a bad plan is reported here, not in the child
        self.latency_s = latency_s
        self.faults = faults
        self._proc: subprocess.Popen[str] | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (only while running)."""
        if self._base_url is None:
            raise RuntimeError("the scripted model process is not running")
        return self._base_url

    def start(self) -> ScriptedServerProcess:
        """Spawn the child and wait for its address."""
        args = [sys.executable, "-m", __name__, "--latency-ms", str(self.latency_s * 1000)]
        if self.faults:
            args += ["--faults", self.faults]
        self._proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("http://127.0.0.1:"):
            self._proc.kill()
            _, err = self._proc.communicate(timeout=10)
            raise RuntimeError(f"the scripted model process failed to start:\n{line}\n{err}")
        self._base_url = line
        return self

    def stop(self) -> None:
        """Stop the child (idempotent)."""
        proc, self._proc = self._proc, None
        self._base_url = None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the child exits when its stdin closes
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _serve(latency_ms: float, faults: str | None, stdin: IO[str]) -> None:
    from pytest_alma.llm.scripted import ScriptedServer

    plan = FaultPlan.parse(faults) if faults else None
    server = ScriptedServer(latency_s=latency_ms / 1000.0, faults=plan).start()
    try:
        print(server.base_url, flush=True)
        for _ in stdin:  # block until the parent closes our stdin (or dies)
            pass
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
