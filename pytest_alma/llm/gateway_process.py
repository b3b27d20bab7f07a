"""The gateway in a process of its own, as a session runs it.

In the controller, the gateway's thread shares the GIL with xdist's event loop: measured at 16
workers, calls waited for the GIL several times each (about 10 to 15 ms added per call even with
a 0.5 ms switch interval). A child process gives the gateway its own interpreter. The real API
key reaches the child through its environment (never its command line, which other users of the
machine can read), and the child serves until its standard input closes, so it also ends when the
session is killed. Its first line of output is ``URL TOKEN``; :meth:`GatewayProcess.accounting`
reads the usage counters back over ``GET /alma/stats``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from typing import IO, Any

from pytest_alma.llm._child import ChildService, announce_and_wait
from pytest_alma.llm.accounting import Accounting

KEY_ENV = "ALMA_GATEWAY_UPSTREAM_KEY"


class GatewayProcess:
    """Start, address, query and stop a gateway running in a child process."""

    def __init__(
        self,
        *,
        upstream_base_url: str | None,
        upstream_api_key: str | None,
        cache_path: str,
        cache_mode: str,
        budget_usd: float | None,
        max_concurrency: int,
        max_retries: int,
        timeout_s: float,
        prices_path: str | None = None,
        cache_namespace: str = "",
    ) -> None:
        args = [
            "--cache-path",
            cache_path,
            "--cache-mode",
            cache_mode,
            "--concurrency",
            str(max_concurrency),
            "--retries",
            str(max_retries),
            "--timeout",
            str(timeout_s),
        ]
        if upstream_base_url:
            args += ["--upstream-url", upstream_base_url]
        if budget_usd is not None:
            args += ["--budget-usd", str(budget_usd)]
        if prices_path is not None:
            args += ["--prices", prices_path]
        if cache_namespace:
            args += ["--cache-namespace", cache_namespace]
        env = dict(os.environ)
        if upstream_api_key is not None:
            env[KEY_ENV] = upstream_api_key
        self._child = ChildService(__name__, args, "LLM gateway", env=env)
        self.url = ""
        self.token = ""

    def start(self) -> GatewayProcess:
        """Spawn the child and wait for its address and token."""
        fields = self._child.start()
        if len(fields) != 2:
            self._child.stop()
            raise RuntimeError(f"the LLM gateway process printed {fields!r}, expected URL TOKEN")
        self.url, self.token = fields
        return self

    def stats(self) -> dict[str, Any]:
        """The gateway's ``/alma/stats`` document (accounting, cache counters, spend)."""
        return gateway_stats(self.url, self.token)

    def accounting(self) -> Accounting:
        """The usage counters so far."""
        return Accounting.from_json(self.stats()["accounting"])

    def stop(self) -> None:
        """Stop the child (idempotent)."""
        self._child.stop()


def gateway_stats(url: str, token: str) -> dict[str, Any]:
    """The ``/alma/stats`` document of the gateway at ``url`` (its ``.../v1`` address)."""
    base = url.removesuffix("/v1")
    request = urllib.request.Request(  # loopback only: a URL a gateway child printed
        f"{base}/alma/stats", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


def _serve(args: argparse.Namespace, stdin: IO[str]) -> None:
    from pytest_alma.llm.cache import ResponseCache
    from pytest_alma.llm.gateway import Gateway
    from pytest_alma.llm.pricing import PriceTable

    prices = PriceTable.default()
    if args.prices:
        prices = prices.with_overrides(args.prices)
    gateway = Gateway(
        upstream_base_url=args.upstream_url,
        upstream_api_key=os.environ.get(KEY_ENV),
        cache=ResponseCache(args.cache_path, mode=args.cache_mode),
        budget_usd=args.budget_usd,
        max_concurrency=args.concurrency,
        max_retries=args.retries,
        timeout_s=args.timeout,
        prices=prices,
        cache_namespace=args.cache_namespace,
    ).start()
    try:
        announce_and_wait(f"{gateway.url} {gateway.token}", stdin)
    finally:
        gateway.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream-url", default=None)
    parser.add_argument("--cache-path", required=True)
    parser.add_argument("--cache-mode", default="rw", choices=["rw", "ro", "replay", "off"])
    parser.add_argument("--budget-usd", type=float, default=None)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--prices", default=None)
    parser.add_argument("--cache-namespace", default="")
    args = parser.parse_args(argv)
    _serve(args, sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
