"""The worker's and the controller's own hygiene (design code is confined by pytest_alma.sandbox).

Every line of design code runs in a design process of its own (:mod:`pytest_alma.sandbox`), in
bubblewrap where it works; ``docs/isolation.md`` says what is enforced and by what. This module
keeps the harness's processes clean of what they do not need:

- :func:`scrub_controller_environment` / :func:`restore_controller_environment`: the API key
  (and anything that looks like a credential) leaves the controller's environment once the
  gateway child holds it, so xdist workers, which are spawned later, never receive it.
- :func:`scrub_worker_environment`: in a worker, the settings are resolved first, then the
  variables it has no use for (credentials, the upstream base URL) are removed.
- :func:`limit_worker_memory`: ``RLIMIT_AS`` in each worker, so that a runaway environment or
  harness bug cannot take the machine down.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping

#: Environment variable names that look like credentials; removed from what designs can read.
CREDENTIAL_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)

#: Variables designs must not read although their names look harmless: the upstream server.
# PYTEST_ALMA_ATTACH holds a search sub-session's gateway token: its workers get what they need
# through xdist's workerinput, so designs do not find it in the environment.
UPSTREAM_VARS = ("ALMA_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_BASE", "PYTEST_ALMA_ATTACH")

# -- environment ----------------------------------------------------------------------------


def secret_names(environ: MutableMapping[str, str], api_key_env: str) -> list[str]:
    """The variables of ``environ`` that hold or look like credentials (``api_key_env`` first)."""
    names = [api_key_env] if api_key_env in environ else []
    key = environ.get(api_key_env)
    for name, value in environ.items():
        if name == api_key_env:
            continue
        # A copy of the key under another name is as secret as the key itself.
        if CREDENTIAL_NAME.search(name) or (key and value == key):
            names.append(name)
    return names


def scrub_controller_environment(api_key_env: str) -> dict[str, str]:
    """Remove credentials and the upstream URL from ``os.environ``; return them for restoring.

    Called once the gateway child has started with the key in its own environment. xdist
    spawns its workers after ``pytest_configure``, from the controller's environment at that
    moment, so the workers never receive the key, not even in ``/proc/self/environ``.
    """
    removed: dict[str, str] = {}
    names = secret_names(os.environ, api_key_env) + [v for v in UPSTREAM_VARS if v in os.environ]
    for name in names:
        removed[name] = os.environ.pop(name)
    return removed


def restore_controller_environment(removed: dict[str, str]) -> None:
    """Put back what :func:`scrub_controller_environment` removed (the user's shell is not ours).

    A variable set again meanwhile is left as it is.
    """
    for name, value in removed.items():
        os.environ.setdefault(name, value)


def scrub_worker_environment(api_key_env: str) -> list[str]:
    """In a worker (settings already resolved): remove credentials and the upstream URL.

    The controller already withheld the key; this also removes variables that only look like
    credentials and the base URL, which a worker has no use for once its settings are read.
    Returns the names removed.
    """
    names = secret_names(os.environ, api_key_env) + [v for v in UPSTREAM_VARS if v in os.environ]
    for name in names:
        os.environ.pop(name, None)
    return names


# -- memory ---------------------------------------------------------------------------------


def limit_worker_memory(megabytes: int) -> bool:
    """Cap this process's address space at ``megabytes`` (0 = no cap); True when applied.

    RLIMIT_AS counts reserved address space, not resident memory, so the cap must leave room
    for thread stacks and mapped libraries; an allocation beyond it raises MemoryError in the
    allocating code only. Platforms without ``resource`` (Windows) get no cap.
    """
    if megabytes <= 0:
        return False
    try:
        import resource
    except ImportError:
        return False
    limit = megabytes * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):
        return False
    return True
