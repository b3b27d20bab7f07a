"""Handing the real API key to the gateway child without leaving it where others can read it.

A process's environment and command line are readable by every process of the same user (and
the command line by every user): ``/proc/<pid>/environ`` and ``/proc/<pid>/cmdline``. Design
code runs as the same user. So the key must be in neither, in the gateway child nor, after the
hand-over, in the controller:

* :func:`child_environment`: the environment the gateway child starts with, which is the
  parent's minus everything that holds or looks like a credential (and the upstream URL
  variables).
* :func:`send_key` / :func:`receive_key`: the key travels over the child's standard input, as
  its first line (JSON: a string or ``null``). The pipe is private to the two processes.
* :func:`wipe_initial_environment`: ``os.environ.pop`` changes what this process hands its
  children, not what ``/proc/<pid>/environ`` shows, which is the environment block the kernel
  copied in at ``exec``. This overwrites values in that block.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from typing import IO

#: Names that look like credentials (the same rule as the harness's isolation of designs).
CREDENTIAL_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)

#: Harmless-looking variables a child must not inherit either: the upstream server (which can
#: carry credentials in its URL) and a search sub-session's gateway admin token.
UPSTREAM_VARS = ("ALMA_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_BASE", "PYTEST_ALMA_ATTACH")


def credential_names(environ: Mapping[str, str], key: str | None = None) -> list[str]:
    """The names of ``environ`` that must not reach a child: credential-looking names, every
    variable whose value is ``key`` (a copy of the key under any name is as secret), and
    :data:`UPSTREAM_VARS`. In ``environ``'s order."""
    return [
        name
        for name, value in environ.items()
        if CREDENTIAL_NAME.search(name) or name in UPSTREAM_VARS or (key and value == key)
    ]


def child_environment(environ: Mapping[str, str], key: str | None = None) -> dict[str, str]:
    """``environ`` without :func:`credential_names` (a new dict; ``environ`` is unchanged)."""
    withheld = set(credential_names(environ, key))
    return {name: value for name, value in environ.items() if name not in withheld}


def send_key(stream: IO[str], key: str | None) -> None:
    """Write ``key`` as the first line of a child's standard input (JSON), and flush."""
    stream.write(json.dumps(key) + "\n")
    stream.flush()


def receive_key(stream: IO[str]) -> str | None:
    """In the child: read the key :func:`send_key` wrote (the first line of ``stream``).

    Raises:
        ValueError: the line is missing or is not a JSON string or ``null``.
    """
    line = stream.readline()
    if not line:
        raise ValueError(
            "no API key line on standard input: the gateway process expects the upstream key "
            "as its first line (JSON: a string or null), as GatewayProcess sends it"
        )
    # The messages never echo the line: it may well be a key.
    wrong = (
        "the first line of standard input must be the upstream API key as JSON (a string or "
        "null), as GatewayProcess sends it; got something else"
    )
    try:
        key = json.loads(line)
    except json.JSONDecodeError:
        raise ValueError(wrong) from None
    if key is not None and not isinstance(key, str):
        raise ValueError(wrong)
    return key


def _environment_block() -> tuple[int, int] | None:
    """Where the kernel put this process's initial environment (``env_start``, ``env_end``)."""
    with open("/proc/self/stat", "rb") as stat:
        text = stat.read()
    # Field 2 (the command name) is in parentheses and may contain spaces: split after it.
    fields = text[text.rindex(b")") + 2 :].split()
    # Fields are numbered from 1 and the split starts at field 3: env_start is field 50.
    start, end = int(fields[50 - 3]), int(fields[51 - 3])
    return (start, end) if 0 < start < end else None


def wipe_initial_environment(names: Iterable[str]) -> list[str]:
    """Overwrite the values of ``names`` in this process's initial environment block with
    asterisks (same length), so that ``/proc/<pid>/environ`` no longer shows them.

    Linux only, through ``/proc/self/mem``; elsewhere, or where that is not allowed, it does
    nothing. Never raises. Returns the names whose values were overwritten.

    The C library's ``getenv`` reads the same strings, so it sees the asterisks too, and so do
    children started with this process's inherited environment: remove the names from
    ``os.environ`` as well (which the controller does), so that children do not inherit them.
    ``os.environ`` itself (a copy made at startup) is not changed.
    """
    wanted = {name.encode("utf-8", "surrogateescape") for name in names}
    if not sys.platform.startswith("linux") or not wanted:
        return []
    try:
        block = _environment_block()
        if block is None:
            return []
        start, end = block
        wiped: list[str] = []
        # buffering=0: each read and write goes straight to the process's memory at the offset.
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            data = mem.read(end - start)
            offset = 0
            for entry in data.split(b"\0"):
                name, sep, value = entry.partition(b"=")
                if sep and value and name in wanted and value.strip(b"*"):
                    mem.seek(start + offset + len(name) + 1)
                    mem.write(b"*" * len(value))
                    wiped.append(name.decode("utf-8", "surrogateescape"))
                offset += len(entry) + 1
        # A name can occur twice in the block: each occurrence is wiped, each name listed once.
        return list(dict.fromkeys(wiped))
    except (OSError, ValueError, IndexError):
        # No /proc, a kernel that refuses writes to /proc/self/mem, an unexpected stat line:
        # the key stays visible there, as it would without this function; nothing else breaks.
        return []
