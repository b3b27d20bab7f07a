"""Evaluate a candidate in a sub-session: a real pytest run of the same harness.

A sub-session is ``python -m pytest <candidate dir>`` in a child process, attached to the
running session's gateway (same cache, same budget, same accounting; the key stays in the
gateway), with the session's outcome-relevant settings on its command line, the same store (so
collection episodes are shared) and xdist workers (so the candidate's code runs in isolated
workers with no key and a memory cap, exactly like a design in a normal session). Its items are
the candidate's contract item and episodes; its outcome is read from the JUnit XML (which items
failed and why) and its ``results.json`` (the scores).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_alma.session import ATTACH_ENV
from pytest_alma.settings import OPTIONS, AlmaSettings

#: Options a sub-session must not inherit: the gateway (cache, budget, prices, faults, upstream)
#: is the parent's; paths are set per sub-session; search and gate belong to the parent.
_NOT_PASSED = frozenset(
    {
        "base-url",
        "api-key-env",
        "cache",
        "budget-usd",
        "concurrency",
        "llm-timeout",
        "llm-retries",
        "store",
        "reports",
        "designs",
        "faults",
        "scripted-latency",
        "prices",
        "record",
        "regression",
        "record-file",
        "regression-threshold",
        "fail-on-improvement",
        "meta-model",
        "meta-max-tokens",
    }
)
_ATTRIBUTE = {"env": "envs"}

#: A sub-session that runs longer than this is stopped and counted as failed.
DEFAULT_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class ItemFailure:
    """A failed item of a sub-session and pytest's report of it."""

    nodeid: str
    message: str
    text: str


@dataclass
class SubsessionResult:
    """The outcome of one sub-session."""

    returncode: int
    results: dict[str, Any] | None
    run_dir: Path | None
    failures: list[ItemFailure] = field(default_factory=list)
    output_tail: str = ""
    timed_out: bool = False

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and not self.failures and self.results is not None


def settings_arguments(settings: AlmaSettings) -> list[str]:
    """The session's outcome-relevant settings as command-line options of a sub-session."""
    args: list[str] = []
    for option in OPTIONS:
        if option.name in _NOT_PASSED or option.switch or option.name.startswith("search"):
            continue
        value = getattr(settings, _ATTRIBUTE.get(option.name, option.name.replace("-", "_")))
        if value is None:
            continue
        text = ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
        args.append(f"{option.flag}={text}")
    return args


def xdist_available() -> bool:
    return importlib.util.find_spec("xdist") is not None


def run_subsession(
    design_dir: Path,
    *,
    rootdir: Path,
    store: Path,
    reports: Path,
    attach: dict[str, Any],
    settings: AlmaSettings,
    workers: int,
    overrides: dict[str, str] | None = None,
    deselect_contract: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> SubsessionResult:
    """Run the designs in ``design_dir`` as a sub-session and read back what happened.

    ``overrides`` replace settings (e.g. ``{"limit": "2", "repeats": "1"}`` for a smoke run).
    """
    reports.mkdir(parents=True, exist_ok=True)
    junit = reports / "junit.xml"
    junit.unlink(missing_ok=True)
    args = settings_arguments(settings)
    for name, value in (overrides or {}).items():
        flag = f"--alma-{name}="
        args = [a for a in args if not a.startswith(flag)] + [flag + value]
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(design_dir),
        f"--rootdir={rootdir}",
        f"--alma-designs={design_dir}",
        f"--alma-store={store}",
        f"--alma-reports={reports}",
        *args,
        "-p",
        "no:cacheprovider",
        "-q",
        "--no-header",
        "-rN",
        f"--junitxml={junit}",
    ]
    if deselect_contract:
        command += ["-k", "not contract"]
    if xdist_available():
        # Always at least one worker: the candidate's code then runs in an isolated worker
        # (no key, memory cap, write guard), never in the sub-session's controller.
        command += ["-n", str(max(1, workers))]
    env = dict(os.environ)
    env[ATTACH_ENV] = json.dumps(attach)
    env.pop("PYTEST_CURRENT_TEST", None)
    env.pop("PYTEST_ADDOPTS", None)  # the parent's extra options (e.g. -x, -k) are not ours
    proc = subprocess.Popen(
        command,
        cwd=rootdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a timeout kills workers too
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    timed_out = False
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
    run_dir = _latest_run(reports)
    results = None
    if run_dir is not None and (run_dir / "results.json").exists():
        results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    failures = read_junit_failures(junit)
    if timed_out:
        failures.append(ItemFailure("sub-session", "timed out", f"stopped after {timeout_s:g} s"))
    return SubsessionResult(
        returncode=proc.returncode,
        results=results,
        run_dir=run_dir,
        failures=failures,
        output_tail="\n".join((output or "").splitlines()[-40:]),
        timed_out=timed_out,
    )


def _die_with_parent() -> None:
    """In the sub-session's process (Linux): be killed when the search's process dies.

    A search killed with SIGKILL cannot stop its sub-session; without this the sub-session
    would keep playing episodes for nobody. (Its xdist workers end when it does.)
    """
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def _latest_run(reports: Path) -> Path | None:
    latest = reports / "LATEST"
    if not latest.exists():
        return None
    return reports / latest.read_text(encoding="utf-8").strip()


def read_junit_failures(path: Path) -> list[ItemFailure]:
    """Failed and erroring test cases of a JUnit XML report, contract items first."""
    if not path.exists():
        return []
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return []
    failures: list[ItemFailure] = []
    for case in root.iter("testcase"):
        for kind in ("failure", "error"):
            element = case.find(kind)
            if element is None:
                continue
            nodeid = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
            failures.append(
                ItemFailure(nodeid, element.get("message", "") or "", element.text or "")
            )
    failures.sort(key=lambda f: (not f.nodeid.endswith("contract"), f.nodeid))
    return failures


def failure_text(result: SubsessionResult, limit: int = 4000) -> str:
    """The first failure in full (its traceback or counterexample), the others by name only.

    This is what the repair call sees: the actual failure, not the whole log (the reference
    handed over the entire test JSON).
    """
    if not result.failures:
        tail = result.output_tail or f"exit status {result.returncode}"
        return f"the sub-session failed without a failing item:\n{tail}"[-limit:]
    first = result.failures[0]
    body = first.text.strip() or first.message
    if len(body) > limit:
        body = body[: limit // 4] + "\n[...]\n" + body[-(limit * 3 // 4) :]
    others = [f.nodeid for f in result.failures[1:]]
    more = f"\n\n{len(others)} other failing items: " + ", ".join(others[:8]) if others else ""
    return f"{first.nodeid}: {first.message}\n{body}{more}"
