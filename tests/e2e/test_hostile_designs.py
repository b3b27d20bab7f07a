"""Hostile memory designs are contained: each attack fails its own items readably, or does nothing.

One xdist session (``-n 2``, ``--alma-sandbox=require``) runs the example design and the No
Memory baseline beside one design per attack (``hostile_designs/attack_*.py``: data files, never
collected as tests). Every line of design code runs in a design process in bubblewrap
(``pytest_alma.sandbox``). The test checks, per attack, the exact outcome recorded in
results.json (or, where the attack must simply have had no effect, what the attacker itself
reported as its memory), and then, for the whole session:

- the honest designs' episodes are identical to those of a session without the attackers (run
  first, with the same options, in a store and reports directory of its own so that neither
  session reuses the other's collection episodes, memory or LLM cache);
- the API key and a secret-looking ``ALMA_*`` variable, set in the session's environment, appear
  in no file of the project (reports, store, scratch directories) and in no output, and no
  gateway token does either;
- nothing was written outside a design's scratch directory;
- no process of the session outlives it (the attackers fork, double-fork, and start threads).

A second session runs the key reader with ``--alma-sandbox=off`` and checks that every output
labels the run UNSANDBOXED, and what the key reader can and cannot reach there.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import site
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import pytest_alma

HOSTILE = Path(__file__).parent / "hostile_designs"
ENV = "babaisai"
#: Seconds per design call (and per import) before the design process is killed.
TIMEOUT = 3
#: The design processes' address-space limit: small, so the memory attacks fail fast.
MEMORY_MB = 1024
#: 4 collection and 4 deployment tasks, 1 repeat; the example design and No Memory win two.
OPTIONS = [
    "--alma-split=all",
    "--alma-limit=8",
    "--alma-max-steps=10",
    "--alma-repeats=1",
    f"--alma-design-timeout={TIMEOUT}",
    f"--alma-design-memory-mb={MEMORY_MB}",
    "-p",
    "no:randomly",
    "-n",
    "2",
]
WORKERS = 2
DEPLOY_EPISODES = 4
HONEST = ("example_rules", "no_memory")

#: A gateway token (pytest_alma.llm.tokens): ``alma.<scope>.<HMAC-SHA256, hex>``.
TOKEN = re.compile(r"alma\.[A-Za-z0-9_-]+\.[0-9a-f]{64}")
#: Command lines of the processes attack_fork_sleep leaves behind.
LEFT_BEHIND = (b"sleep\x00987654\x00", b"sleep\x00987655\x00")
#: What attack_files tries to create outside its scratch directory (see that file).
PROJECT_WRITES = (
    "PWNED_root.txt",
    "designs/PWNED_design.py",
    "reports/PWNED_reports.txt",
    ".alma/PWNED_store.txt",
    ".alma/memory/PWNED.pkl",
    ".alma/scratch/PWNED_sibling.txt",
)
TMP_WRITE = Path("/tmp/alma-hostile-PWNED.txt")
#: What a refused file operation reports (the OSError subclasses).
REFUSED = re.compile(r"(FileNotFoundError|PermissionError|OSError|NotADirectoryError): ")


def _timed_out(what: str) -> str:
    return re.escape(
        f"{what} did not finish within {TIMEOUT} s (--alma-design-timeout); the design process "
        "was killed"
    )


def _build_failed(design: str) -> str:
    return re.escape(
        f"the memory build of {design} on {ENV} failed, so none of its episodes could be played: "
    )


def _over_memory(what: str) -> str:
    return re.escape(
        f"{what} exceeded the design process's memory limit of {MEMORY_MB} MB; raise "
        "--alma-design-memory-mb if the design really needs that much"
    )


def _ended(status: str, what: str) -> str:
    return rf"the design process ended \({status}\) during {re.escape(what)}"


def _not_json(cls: str, problem: str) -> str:
    return re.escape(f"{cls}.general_retrieve returned a dict that is not strict JSON: {problem}")


def _too_large(cls: str, problem: str) -> str:
    return re.escape(f"{cls}.general_retrieve returned a memory that is too large: {problem}")


#: Attackers whose every deployment episode fails, with ``error_kind`` "design" and an error
#: matching the pattern (``re.search``).
FAILS: dict[str, str] = {
    "attack_hang_retrieve": "design error: " + _timed_out("HangRetrieve.general_retrieve"),
    "attack_busy_update": _build_failed("attack_busy_update")
    + _timed_out("BusyUpdate.general_update"),
    "attack_busy_import": _build_failed("attack_busy_import")
    + _timed_out("importing attack_busy_import.py"),
    "attack_exit_retrieve": _ended("exit status 3", "ExitRetrieve.general_retrieve"),
    # Under bubblewrap the design process is bubblewrap's child, which exits with 128 + the
    # signal's number; the harness names the signal.
    "attack_segfault_retrieve": _ended("killed by SIGSEGV", "SegfaultRetrieve.general_retrieve"),
    "attack_kill_group": _ended("killed by SIGKILL", "KillGroup.general_retrieve"),
    "attack_memory_bomb": _build_failed("attack_memory_bomb")
    + _over_memory("MemoryBomb.general_update"),
    "attack_memory_grow": _build_failed("attack_memory_grow")
    + _over_memory("MemoryGrow.general_update"),
    "attack_junk_set": _not_json("JunkSet", "Object of type set is not JSON serializable"),
    "attack_junk_bytes": _not_json("JunkBytes", "Object of type bytes is not JSON serializable"),
    "attack_junk_object": _not_json("JunkObject", "Object of type object is not JSON serializable"),
    "attack_junk_nan": _not_json("JunkNan", "Out of range float values are not JSON compliant"),
    "attack_junk_cycle": _too_large(
        "JunkCycle", "it nests deeper than 200 levels (or contains itself: a reference cycle)"
    ),
    "attack_junk_huge": _too_large("JunkHuge", "it is more than 4,000,000 characters of JSON"),
    "attack_junk_not_dict": re.escape("JunkNotDict.general_retrieve returned set, expected a dict"),
}
#: Attackers that must have had no effect: every episode played, no error.
NO_EFFECT = (
    "attack_read_key",
    "attack_token_net",
    "attack_files",
    "attack_memory_rlimit",
    "attack_mutate_inputs",
    "attack_cheat_score",
    "attack_kill_parent",
    "attack_kill_all",
    "attack_fork_sleep",
    "attack_thread",
)
#: ... of which these retrieve nothing, so their episodes must be exactly No Memory's.
AS_NO_MEMORY = ("attack_mutate_inputs", "attack_cheat_score", "attack_thread")


# -- running a session and reading what it left ---------------------------------------------------


@dataclass
class Session:
    """One finished pytest-alma session of the throwaway project."""

    project: Path
    output: str
    ret: int
    elapsed_s: float
    data: dict[str, Any]
    run_dir: Path
    #: "<file stem>::<item>" (e.g. "no_memory::babaisai::deploy[...]") -> failure message, or
    #: None for an item that passed.
    items: dict[str, str | None]
    #: The same keys -> seconds the item took (JUnit's ``time``).
    durations: dict[str, float]

    def episodes(self, design: str) -> dict[tuple[str, int], dict[str, Any]]:
        return {
            (e["task"]["task_id"], e["repeat"]): e
            for e in self.data["episodes"]
            if e["design"] == design
        }

    def trajectories(self, design: str) -> dict[tuple[str, int], dict[str, Any]]:
        """The trajectory file of each of the design's episodes (what the agent was shown)."""
        out = {}
        for key, episode in self.episodes(design).items():
            assert episode["trajectory_path"], (design, episode)
            out[key] = json.loads(Path(episode["trajectory_path"]).read_text())
        return out

    def memories(self, design: str) -> list[dict[str, Any]]:
        """What the design's general_retrieve returned, episode by episode."""
        return [t["memory"] for t in self.trajectories(design).values()]

    def item(self, design: str, name: str) -> str | None:
        return self.items[f"{design}::{name}"]

    def deploy_items(self, design: str) -> dict[str, str | None]:
        prefix = f"{design}::{ENV}::deploy["
        return {k: v for k, v in self.items.items() if k.startswith(prefix)}


def _run(
    pytester: pytest.Pytester, *args: str, reports: str = "reports", timeout: float = 300
) -> Session:
    junit = pytester.path / f"junit-{reports}.xml"
    started = time.perf_counter()
    result = pytester.runpytest_subprocess(
        *OPTIONS, f"--alma-reports={reports}", f"--junitxml={junit}", *args, timeout=timeout
    )
    elapsed = time.perf_counter() - started
    output = result.stdout.str() + "\n" + result.stderr.str()
    reports_dir = pytester.path / reports
    assert (reports_dir / "LATEST").exists(), output[-3000:]
    run_dir = reports_dir / (reports_dir / "LATEST").read_text().strip()
    items: dict[str, str | None] = {}
    durations: dict[str, float] = {}
    for case in ET.parse(junit).iter("testcase"):
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        # classname "designs.<stem>" or "designs.<stem>.<env>": the file's directory first.
        parts = case.get("classname", "").split(".")[1:]
        message = None if failure is None else failure.get("message", "") + (failure.text or "")
        key = "::".join([*parts, case.get("name", "")])
        items[key] = message
        durations[key] = float(case.get("time", "0"))
    return Session(
        project=pytester.path,
        output=output,
        ret=int(result.ret),
        elapsed_s=elapsed,
        data=json.loads((run_dir / "results.json").read_text()),
        run_dir=run_dir,
        items=items,
        durations=durations,
    )


def _outcomes(session: Session, design: str) -> dict[tuple[str, int], tuple[Any, ...]]:
    """What an episode's outcome is made of (not its timing or its token accounting)."""
    return {
        key: (
            e["score"],
            e["success"],
            e["steps"],
            e["invalid_actions"],
            e["trajectory_digest"],
            e["memory_chars"],
            e["error"],
        )
        for key, e in session.episodes(design).items()
    }


def _files_holding(root: Path, needles: list[str], *, tokens: bool = True) -> list[str]:
    """Every file under ``root`` whose bytes contain one of ``needles`` (or a gateway token)."""
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        hits = [n for n in needles if n.encode() in data]
        if tokens and TOKEN.search(data.decode("utf-8", "replace")):
            hits.append("a gateway token")
        if hits:
            found.append(f"{path.relative_to(root)}: {', '.join(hits)}")
    return found


def _processes_of(marker: str) -> dict[int, str]:
    """Processes (other than this one) whose command line or environment holds ``marker``, or
    that are the ``sleep`` processes attack_fork_sleep starts: pid -> command line."""
    needle = marker.encode()
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:  # ended meanwhile
            continue
        if needle in cmdline or needle in environ or any(s in cmdline for s in LEFT_BEHIND):
            found[int(proc.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")[:300]
    return found


def _left_behind(project: Path) -> dict[int, str]:
    """The processes of the session still alive after it (its children get a few seconds to
    see their standard input close). They are killed by pid, so that a failure leaks none."""
    deadline = time.monotonic() + 10
    left = _processes_of(str(project))
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _processes_of(str(project))
    for pid in left:
        with contextlib.suppress(OSError):  # (ended meanwhile)
            os.kill(pid, signal.SIGKILL)
    return left


def _listed(outcome: str) -> set[str]:
    """The names of an attacker's ``os.listdir`` outcome ("ok: [...]"; refused: none)."""
    if outcome.startswith("ok: "):
        return set(ast.literal_eval(outcome[len("ok: ") :]))
    assert REFUSED.match(outcome), outcome
    return set()


def _sandbox_skeleton(folder: str) -> set[str]:
    """What bubblewrap may show in ``folder``: the first step of every path it binds below it
    (the Python installation and pytest_alma; see pytest_alma.sandbox.launch)."""
    bound = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages()}
    bound.add(str(Path(pytest_alma.__file__).resolve().parent))
    parent = Path(folder)
    return {
        Path(p).relative_to(parent).parts[0]
        for p in bound
        if Path(p).is_relative_to(parent) and Path(p) != parent
    }


def _canaries(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Put a fake API key and a secret-looking ALMA_ variable into the session's environment."""
    key = f"sk-test-canary-{secrets.token_hex(12)}"
    other = f"canary2-{secrets.token_hex(12)}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("ALMA_SECRET_TOKEN", other)
    # Few, derandomized contract examples without shrinking: the same verdict on every run.
    monkeypatch.setenv("ALMA_CONTRACT_PROFILE", "ci")
    return key, other


# -- the sandboxed session ----------------------------------------------------------------------


def test_hostile_designs_are_contained(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, subtests: Any
) -> None:
    key, other = _canaries(monkeypatch)
    TMP_WRITE.unlink(missing_ok=True)
    sandbox = "--alma-sandbox=require"
    try:
        baseline = _run(
            project,
            sandbox,
            "--alma-store=.alma-baseline",
            "designs/example_rules.py",
            "baselines/no_memory.py",
            reports="reports-baseline",
        )
        attackers = sorted(HOSTILE.glob("attack_*.py"))
        assert {p.stem for p in attackers} == set(FAILS) | set(NO_EFFECT)
        for path in attackers:
            shutil.copy(path, project.path / "designs")
        session = _run(project, sandbox)
    finally:
        left = _left_behind(project.path)
        tmp_written = TMP_WRITE.exists()
        TMP_WRITE.unlink(missing_ok=True)

    print(f"sessions: baseline {baseline.elapsed_s:.1f} s, attackers {session.elapsed_s:.1f} s")
    with subtests.test(msg="the session completed, sandboxed, with every episode recorded"):
        assert session.ret == 1, session.output[-3000:]  # the attackers' items failed
        assert session.data["isolation"]["sandboxed"] is True, session.data["isolation"]
        assert session.data["partial"] is False, session.data["partial_reason"]
        assert session.elapsed_s < 240
        for design in (*HONEST, *FAILS, *NO_EFFECT):
            assert len(session.episodes(design)) == DEPLOY_EPISODES, design

    with subtests.test(msg="honest designs are unaffected"):
        for design in HONEST:
            assert all(e["error"] is None for e in session.episodes(design).values())
            assert _outcomes(session, design) == _outcomes(baseline, design), design
            assert all(
                message is None
                for item, message in session.items.items()
                if item.startswith(f"{design}::")
            )
        # The plan has won and lost episodes, so that "identical" says something.
        assert {e["success"] for e in session.episodes("no_memory").values()} == {True, False}

    for design, pattern in FAILS.items():
        with subtests.test(msg=design):
            for e in session.episodes(design).values():
                assert e["score"] == 0.0 and e["success"] is False, e
                assert e["error_kind"] == "design", e
                assert re.search(pattern, e["error"]), e["error"]
            # Its items fail with the same message.
            failures = session.deploy_items(design)
            assert len(failures) == DEPLOY_EPISODES, failures
            for item, failure in failures.items():
                assert failure is not None and re.search(pattern, failure), (item, failure)

    with subtests.test(msg="hangs at import and in update fail once per worker, not per item"):
        for design in ("attack_busy_import", "attack_busy_update"):
            # The time limit is paid by the contract item and by the first item of the design
            # that builds its memory on each worker (an import that hangs is remembered by the
            # worker's design process from the contract on); the rest fail at once.
            taken = {k: t for k, t in session.durations.items() if k.startswith(f"{design}::")}
            slow = [k for k, t in taken.items() if t >= TIMEOUT]
            assert 1 <= len(slow) <= WORKERS + 1, taken
            deploys = [k for k in taken if "::deploy[" in k]
            assert len(deploys) == DEPLOY_EPISODES, taken
            assert len([k for k in deploys if k not in slow]) >= DEPLOY_EPISODES - WORKERS, taken

    for design in NO_EFFECT:
        with subtests.test(msg=f"{design} has no effect on its episodes"):
            for e in session.episodes(design).values():
                assert e["error"] is None and e["error_kind"] is None, e
            items = session.deploy_items(design)
            assert len(items) == DEPLOY_EPISODES, items
            assert all(message is None for message in items.values()), items

    for design in AS_NO_MEMORY:
        with subtests.test(msg=f"{design} plays exactly as No Memory"):
            assert _outcomes(session, design) == _outcomes(session, "no_memory")
            assert all(m == {} for m in session.memories(design))

    with subtests.test(msg="input mutation"):
        # The episodes saw the untouched task start; the contract names the broken rule.
        reference = session.trajectories("no_memory")
        for key_, trajectory in session.trajectories("attack_mutate_inputs").items():
            assert trajectory["trajectory"]["start"] == reference[key_]["trajectory"]["start"]
            assert "PWNED" not in json.dumps(trajectory)
        contract = session.item("attack_mutate_inputs", "contract")
        assert contract is not None
        assert "contract rule 'no-input-mutation' broken" in contract, contract

    with subtests.test(msg="memory limit cannot be raised"):
        limit = MEMORY_MB * 1024 * 1024
        for memory in session.memories("attack_memory_rlimit"):
            assert memory["limits_before"] == [limit, limit], memory
            assert memory["limits_after"] == [limit, limit], memory
            for attempt in ("raise_to_infinity", "raise_soft_to_infinity", "raise_hard"):
                assert re.match(r"(ValueError|PermissionError): ", memory[attempt]), memory
            assert re.match(r"(ValueError|PermissionError): ", memory["raise_cpu"]), memory
            assert memory["allocate_3_gb"].startswith("MemoryError"), memory

    with subtests.test(msg="the key is nowhere a design can read"):
        for memory in session.memories("attack_read_key"):
            # The attack ran, in a PID namespace of its own (only bubblewrap and itself).
            assert "PYTHONHASHSEED=0" in memory["/proc/self/environ"], memory
            assert memory["pids"] and max(memory["pids"]) < 10, memory["pids"]
            for name in ("OPENAI_API_KEY", "ALMA_SECRET_TOKEN"):
                assert name not in memory["os.environ"], memory["os.environ"]
            assert key not in json.dumps(memory) and other not in json.dumps(memory)

    with subtests.test(msg="no token, no network"):
        for memory in session.memories("attack_token_net"):
            assert memory["tokens"] == [], memory
            assert memory["llm"] == "HostLLM: ['_host']", memory  # ctx.llm holds no token
            assert memory["listening"] == [], memory  # the gateway's port is not in its world
            assert memory["interfaces"] == ["lo"], memory
            assert memory["connect"], memory
            for target, outcome in memory["connect"].items():
                assert re.match(r"\w*(Error|error): ", outcome), (target, outcome)

    with subtests.test(msg="no file outside the scratch directory"):
        assert not tmp_written, f"a design wrote {TMP_WRITE}"
        for name in PROJECT_WRITES:
            assert not (project.path / name).exists(), name
        assert not list(project.path.rglob("*PWNED*"))
        for memory in session.memories("attack_files"):
            assert memory["project"] == str(project.path), memory  # it knew where to look
            for name, outcome in memory["write"].items():
                assert REFUSED.match(outcome), (name, outcome)
            for name, outcome in memory["read"].items():
                assert REFUSED.match(outcome), (name, outcome)
            listed = memory["list"]
            # Only the way to its own file and its own scratch directory exists.
            assert _listed(listed["."]) <= {".alma", "designs"}, listed
            assert _listed(listed["designs"]) == {"attack_files.py"}, listed
            assert _listed(listed[".alma"]) == {"scratch"}, listed
            assert [n.split("-")[0] for n in _listed(listed[".alma/scratch"])] == [
                "attack_files"
            ], listed
            for name in ("reports", ".alma/memory"):
                assert _listed(listed[name]) == set(), listed
            assert _listed(listed["root_home"]) <= _sandbox_skeleton("/root"), listed
            assert _listed(listed["home"]) <= _sandbox_skeleton("/home"), listed

    with subtests.test(msg="killing other processes"):
        for memory in session.memories("attack_kill_parent"):
            # Its parent is the sandbox's init, which ignores the signal; the worker is out of
            # reach.
            assert memory["parent"] == 1 and memory["parent_now"] == 1, memory
        for memory in session.memories("attack_kill_all"):
            assert memory["kill"] in ("sent", "ProcessLookupError: [Errno 3] No such process")

    with subtests.test(msg="no process outlives the session"):
        assert not left, f"processes outlived the session: {left}"
        for memory in session.memories("attack_fork_sleep"):
            assert len(memory["children"]) == 2, memory  # it did fork

    with subtests.test(msg="no secret in any file or output"):
        assert key not in session.output and other not in session.output
        assert key not in baseline.output and other not in baseline.output
        assert not TOKEN.search(session.output + baseline.output)
        assert _files_holding(project.path, [key, other]) == []


# -- the unsandboxed session -------------------------------------------------------------------


def test_an_unsandboxed_run_says_so_everywhere(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, other = _canaries(monkeypatch)
    shutil.copy(HOSTILE / "attack_read_key.py", project.path / "designs")
    try:
        session = _run(project, "--alma-sandbox=off", "-k", "not contract")
    finally:
        left = _left_behind(project.path)
    assert not left, f"processes outlived the session: {left}"
    assert session.ret == 0, session.output[-3000:]
    assert "design code runs UNSANDBOXED (--alma-sandbox off)" in session.output
    isolation = session.data["isolation"]
    assert isolation == {"kind": "none", "sandboxed": False, "detail": "--alma-sandbox off"}

    # The harness itself writes the key nowhere, and prints it nowhere.
    assert key not in session.output and other not in session.output
    for path in session.run_dir.glob("*.*"):
        text = path.read_text(errors="replace") if path.is_file() else ""
        assert key not in text and other not in text, path

    # What the design could read, unsandboxed: every process of the machine, but neither secret
    # in its own environment, its parents' or any other process's of the session (the
    # controller overwrote the key in the environment block the kernel shows of it,
    # /proc/<pid>/environ, and started its children without it).
    memories = session.memories("attack_read_key")
    assert memories
    for memory in memories:
        assert max(memory["pids"]) > 10  # it sees the machine's processes
        assert key not in memory["os.environ"] and other not in memory["os.environ"]
        assert key not in memory["/proc/self/environ"]
        environs = {p: t for p, t in memory.items() if p.endswith("/environ")}
        wiped = f"OPENAI_API_KEY={'*' * len(key)}"
        assert any(wiped in text for text in environs.values()), "the controller was not read"
        leaking = {
            memory.get(p.replace("/environ", "/cmdline"), "?")
            for p, text in environs.items()
            if key in text or other in text
        }
        assert not leaking, leaking
    # (Not gateway tokens: unsandboxed, the attacker may find other sessions' on the machine.)
    assert _files_holding(project.path, [key, other], tokens=False) == []

    # Last, the report: it must say so too.
    assert "UNSANDBOXED" in (session.run_dir / "summary.md").read_text()
