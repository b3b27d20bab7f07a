"""The gateway's scoped session tokens: who may do what through the LLM gateway.

Three scopes, from most to least trusted:

* ``"admin"``: the controller. Everything: model calls, ``/alma/stats``, ``/alma/keys``,
  ``/alma/replay``, and minting worker and design tokens (``POST /alma/tokens``).
* ``"worker"``: an xdist worker (it runs designs in sandboxes and forwards their calls). Model
  calls, and minting design tokens for the designs it runs.
* ``"design:<name>"``: one design's code. Model calls only, and the gateway books every one of
  them to the design ``<name>`` (tag ``design`` or ``design.*``), whatever the headers say, so a
  design cannot charge its calls to the agent or to another design.

A token is ``alma.<scope, base64url without padding>.<HMAC-SHA256 of the scope, hex>``: its
scope is readable (for error messages and logs) but only the holder of the secret, the gateway,
can make one. Tokens are stateless (nothing is stored per token), so a worker can mint as many
design tokens as it likes without the gateway keeping a list, and they all die with the gateway,
whose secret is random per process.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import urllib.error
import urllib.request
from typing import Final

ADMIN: Final = "admin"
WORKER: Final = "worker"
DESIGN_PREFIX: Final = "design:"

#: What a design name in a token scope may contain (it ends up in accounting records and logs).
DESIGN_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,128}")

_PREFIX = "alma"
# Longest token we bother to parse: the longest scope is 135 characters (180 in base64), the
# signature 64; anything much longer is not a token and is refused before any decoding.
_MAX_TOKEN_CHARS = 512


class TokenError(ValueError):
    """A scope that is not one of ``admin``, ``worker`` or ``design:<name>``."""


def design_scope(name: str) -> str:
    """The token scope of the design ``name``, e.g. ``"design:my_memory"``.

    Raises:
        TokenError: ``name`` is not 1 to 128 of ``A-Z a-z 0-9 _ . @ -``.
    """
    return check_scope(DESIGN_PREFIX + name)


def design_name(scope: str) -> str | None:
    """The design name of a ``design:<name>`` scope; ``None`` for the other scopes."""
    return scope[len(DESIGN_PREFIX) :] if scope.startswith(DESIGN_PREFIX) else None


def check_scope(scope: str) -> str:
    """Return ``scope`` if it is a valid token scope.

    Raises:
        TokenError: it is none of ``admin``, ``worker``, ``design:<name>``.
    """
    if scope in (ADMIN, WORKER):
        return scope
    name = design_name(scope)
    if name is not None and DESIGN_NAME.fullmatch(name):
        return scope
    raise TokenError(
        f"{scope!r} is not a gateway token scope: use 'admin', 'worker' or 'design:<name>' "
        "with a name of 1 to 128 characters among A-Z a-z 0-9 _ . @ -"
    )


def may_mint(holder: str, scope: str) -> bool:
    """Whether a token of scope ``holder`` may mint a token of scope ``scope`` (both valid).

    An admin token mints worker and design tokens, a worker token design tokens, and a design
    token nothing. Nobody mints an admin token: the gateway makes the only one.
    """
    if scope == ADMIN:
        return False
    if holder == ADMIN:
        return True
    return holder == WORKER and design_name(scope) is not None


class TokenAuthority:
    """Mints and verifies scoped tokens with a secret that never leaves this object.

    Args:
        secret: the HMAC key; random (32 bytes) by default. Tests may pass a fixed one.
    """

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    def _signature(self, scope: str) -> str:
        return hmac.new(self._secret, scope.encode("utf-8"), hashlib.sha256).hexdigest()

    def mint(self, scope: str) -> str:
        """A token for ``scope`` (see the module docstring for the format).

        Raises:
            TokenError: ``scope`` is not a valid scope.
        """
        check_scope(scope)
        encoded = base64.urlsafe_b64encode(scope.encode("utf-8")).rstrip(b"=").decode("ascii")
        return f"{_PREFIX}.{encoded}.{self._signature(scope)}"

    def verify(self, token: str) -> str | None:
        """The scope of ``token`` if this authority minted it, else ``None`` (never raises)."""
        if len(token) > _MAX_TOKEN_CHARS:
            return None
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _PREFIX:
            return None
        encoded, signature = parts[1], parts[2]
        try:
            padded = encoded + "=" * (-len(encoded) % 4)
            scope = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
            check_scope(scope)
        except (binascii.Error, UnicodeError, ValueError):
            return None
        # Constant time: a timing difference must not reveal how much of a guess was right.
        expected = self._signature(scope).encode("ascii")
        if not hmac.compare_digest(signature.encode("utf-8"), expected):
            return None
        return scope


def mint_token(url: str, token: str, scope: str, *, timeout_s: float = 30.0) -> str:
    """Ask the gateway at ``url`` (its ``.../v1`` address) for a token of ``scope``.

    ``token`` must be allowed to mint it (see :func:`may_mint`): a worker passes its worker
    token and ``design_scope(name)`` to get the token of a design it is about to run.

    Raises:
        TokenError: ``scope`` is not a valid scope (checked before any request).
        PermissionError: the gateway refused (wrong token, or a scope this token cannot mint).
        OSError: the gateway cannot be reached.
    """
    check_scope(scope)
    base = url.rstrip("/").removesuffix("/v1")
    request = urllib.request.Request(  # loopback only: the session gateway's own address
        f"{base}/alma/tokens",
        data=json.dumps({"scope": scope}).encode("utf-8"),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    # No proxies: an http_proxy variable must never route loopback traffic (and tokens) away.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout_s) as response:
            reply = json.loads(response.read())
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            message = str(json.loads(body)["error"]["message"])
        except (ValueError, KeyError, TypeError):
            message = body[:300].decode("utf-8", "replace")
        raise PermissionError(
            f"the LLM gateway at {url} refused a {scope!r} token (HTTP {err.code}): {message}"
        ) from None
    minted = reply.get("token") if isinstance(reply, dict) else None
    if not isinstance(minted, str):
        raise OSError(f"the LLM gateway at {url} answered POST /alma/tokens without a token")
    return minted
