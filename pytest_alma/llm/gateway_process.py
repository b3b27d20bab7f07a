"""The gateway in a process of its own, as a session runs it.

In the controller, the gateway's thread shares the GIL with xdist's event loop: measured at 16
workers, calls waited for the GIL several times each (about 10 to 15 ms added per call even with
a 0.5 ms switch interval). A child process gives the gateway its own interpreter.

The real API key reaches the child over its standard input, as the first line (see
:mod:`pytest_alma.llm.key_handoff`): never on its command line or in its environment, which
other processes (designs' among them) can read in ``/proc``. The child starts with the parent's
environment minus every credential-looking variable and the upstream URL variables. It serves
until its standard input closes, so it also ends when the session is killed. Its first line of
output is ``URL TOKEN`` (the admin token); :meth:`GatewayProcess.mint` gets worker and design
tokens, and :meth:`GatewayProcess.accounting` reads the usage counters back over
``GET /alma/stats``.
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
from pytest_alma.llm.key_handoff import child_environment, receive_key, send_key
from pytest_alma.llm.tokens import mint_token


class GatewayProcess:
    """Start, address, query and stop a gateway running in a child process.

    ``upstream_base_url`` and ``upstream_api_key`` default (``None``) to ``OPENAI_BASE_URL`` and
    ``OPENAI_API_KEY`` of this process, as the SDK would read them: the child does not inherit
    those variables. :attr:`token` is the admin token; :meth:`mint` makes the others.
    """

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
        # Resolved here, as the SDK would resolve them in the child, whose environment no longer
        # has these variables (see child_environment).
        if upstream_base_url is None:
            upstream_base_url = os.environ.get("OPENAI_BASE_URL") or None
        if upstream_api_key is None:
            upstream_api_key = os.environ.get("OPENAI_API_KEY")
        if upstream_base_url:
            args += ["--upstream-url", upstream_base_url]
        if budget_usd is not None:
            args += ["--budget-usd", str(budget_usd)]
        if prices_path is not None:
            args += ["--prices", prices_path]
        if cache_namespace:
            args += ["--cache-namespace", cache_namespace]
        env = child_environment(os.environ, upstream_api_key)
        self._child = ChildService(__name__, args, "LLM gateway", env=env)
        self._key = upstream_api_key  # kept only until the child has it
        self.url = ""
        #: The admin token (the controller's): every endpoint. Workers get :meth:`mint` tokens.
        self.token = ""

    def start(self) -> GatewayProcess:
        """Spawn the child, hand it the key over its stdin, wait for its address and token."""
        key, self._key = self._key, None
        fields = self._child.start(lambda stdin: send_key(stdin, key))
        if len(fields) != 2:
            self._child.stop()
            raise RuntimeError(f"the LLM gateway process printed {fields!r}, expected URL TOKEN")
        self.url, self.token = fields
        return self

    @property
    def pid(self) -> int | None:
        """The gateway child's process id while it runs (``None`` otherwise)."""
        return self._child.pid

    def mint(self, scope: str) -> str:
        """A token of ``scope`` (``"worker"`` or ``"design:<name>"``), minted by the child with
        the admin token (see :mod:`pytest_alma.llm.tokens`).

        Raises:
            TokenError: ``scope`` is not a valid scope.
            PermissionError: the gateway refused (``"admin"`` cannot be minted).
            RuntimeError: the gateway is not running.
        """
        if not self.url:
            raise RuntimeError("the LLM gateway process is not running; call start() first")
        return mint_token(self.url, self.token, scope)

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
    # No proxies: an http_proxy variable must never route loopback traffic (and the admin token)
    # elsewhere.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


def _serve(args: argparse.Namespace, key: str | None, stdin: IO[str]) -> None:
    from pytest_alma.llm.cache import ResponseCache
    from pytest_alma.llm.gateway import Gateway
    from pytest_alma.llm.pricing import PriceTable

    prices = PriceTable.default()
    if args.prices:
        prices = prices.with_overrides(args.prices)
    gateway = Gateway(
        upstream_base_url=args.upstream_url,
        upstream_api_key=key,
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
    """Run the gateway child: the first line of stdin is the key (JSON: a string or ``null``),
    then serve until stdin closes. By hand: ``python -m pytest_alma.llm.gateway_process
    --cache-path /tmp/c.sqlite``, type ``"sk-..."`` and Enter; Ctrl-D stops it."""
    # Before anything else: the key is the first thing on stdin, whatever follows.
    key = receive_key(sys.stdin)
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
    _serve(args, key, sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
