"""Untrusted designs cannot hurt the run: each misbehaving design fails its own items, readably.

One xdist session runs a good design (no_memory), a design that snoops the environment for
credentials, and one design per kind of misbehaviour (see ``docs/isolation.md``), each in its
sandboxed design process. The session must finish, the good designs must get all their results,
and the report must be written. (The full kit of attacks is tests/e2e/test_hostile_designs.py.)
"""

from __future__ import annotations

import json
import re
import time

import pytest

from .conftest import QUICK, results_of

FAKE_KEY = "sk-FAKE-isolation-0123456789"
FAKE_TOKEN = "tok-FAKE-isolation-9876"
FAKE_URL = "http://upstream.invalid:9/v1"

HEAD = "import os, sys, time\nfrom pytest_alma import MemoryDesign\n\nclass D(MemoryDesign):\n"
NOOP_UPDATE = "    async def general_update(self, t):\n        pass\n"


def _design(retrieve_body: str, update: str = NOOP_UPDATE, sync: bool = False) -> str:
    prefix = "def" if sync else "async def"
    return f"{HEAD}{update}    {prefix} general_retrieve(self, task):\n{retrieve_body}"


DESIGNS = {
    # Returns every environment value that looks like a credential or an upstream URL, and
    # the process's initial environment block (what /proc shows, beyond os.environ).
    "env_snoop.py": _design(
        "        pat = ('KEY', 'TOKEN', 'SECRET', 'BASE_URL')\n"
        "        found = {k: v for k, v in os.environ.items() if any(p in k for p in pat)}\n"
        "        try:\n"
        "            raw = open('/proc/self/environ', 'rb').read().decode(errors='replace')\n"
        "        except OSError:\n"
        "            raw = ''\n"
        "        return {'found': found, 'proc_environ': raw}\n"
    ),
    "memory_hog.py": _design(
        "        blob = bytearray(3 * 1024 ** 3)\n        return {'n': len(blob)}\n"
    ),
    "junk_huge.py": _design("        return {'x': 'a' * 100_000_000}\n"),
    "junk_type.py": _design("        return {'x': {1, 2, 3}}\n"),
    "writer.py": _design(
        "        open(os.environ['ALMA_TEST_TARGET'], 'w').write('x')\n        return {}\n",
        update=(
            "    async def general_update(self, t):\n"
            "        (self.ctx.scratch_dir / 'notes.txt').write_text('allowed')\n"
        ),
    ),
    "sys_exit.py": _design("        sys.exit(3)\n"),
    "os_exit.py": _design("        os._exit(1)\n"),
    "os_exit_update.py": _design(
        "        return {}\n",
        update="    async def general_update(self, t):\n        os._exit(1)\n",
    ),
    "hang_sync.py": _design("        time.sleep(3600)\n", sync=True),
    "hang_busy.py": _design("        while True:\n            pass\n"),
}

TIMEOUT = 2


def _failed(out: str, design: str, kind: str = "deploy") -> list[str]:
    return re.findall(rf"^FAILED designs/{design}\.py::babaisai::{kind}\[[^\]]+\]", out, re.M)


def _passed(out: str, design: str, kind: str = "deploy") -> list[str]:
    path = f"(?:designs|baselines)/{design}\\.py"
    return re.findall(rf"^PASSED {path}::babaisai::{kind}\[[^\]]+\]", out, re.M)


def test_misbehaving_designs_fail_alone(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project.path / "designs" / "example_rules.py").unlink()  # not needed: keep the run short
    for name, source in DESIGNS.items():
        (project.path / "designs" / name).write_text(source)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("MY_SERVICE_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("ALMA_BASE_URL", FAKE_URL)
    # An ALMA_* option reaches designs: here, the absolute path of a file it must not create.
    monkeypatch.setenv("ALMA_TEST_TARGET", str(project.path / "reports" / "pwned.txt"))
    started = time.perf_counter()
    result = project.runpytest_subprocess(
        *QUICK,
        "-n",
        "2",
        "-rA",
        f"--alma-design-timeout={TIMEOUT}",
        "--alma-design-memory-mb=2048",
        "--alma-sandbox=require",
        timeout=150,
    )
    elapsed = time.perf_counter() - started
    out = result.stdout.str()

    # The session finished and wrote its report; the good designs have all their results.
    assert result.ret == 1, out[-3000:]
    data = results_of(project)
    run_dir = project.path / "reports" / data["run_id"]
    assert (run_dir / "summary.md").exists()
    for good in ("no_memory", "env_snoop"):
        assert len(_passed(out, good)) == 2, out[-3000:]
        episodes = [e for e in data["episodes"] if e["design"] == good]
        assert len(episodes) == 2 and all(e["error"] is None for e in episodes)

    # 1. No credential reaches a design: neither os.environ nor the initial environment block.
    snooped = list((run_dir / "trajectories" / "env_snoop").rglob("*.json"))
    assert snooped
    for path in snooped:
        text = path.read_text()
        memory = json.loads(text)["memory"]
        assert "proc_environ" in memory and "found" in memory
        for secret in (FAKE_KEY, FAKE_TOKEN, FAKE_URL):
            assert secret not in text, f"{secret} leaked into {path}"
    assert FAKE_KEY not in (run_dir / "results.json").read_text()

    # 2. Too much memory.
    assert len(_failed(out, "memory_hog")) == 2
    assert (
        "D.general_retrieve exceeded the design process's memory limit of 2048 MB; "
        "raise --alma-design-memory-mb" in out
    )
    # 3. Junk returns.
    assert len(_failed(out, "junk_huge")) == 2
    assert "returned a memory that is too large: it is more than 4,000,000 characters" in out
    assert len(_failed(out, "junk_type")) == 2
    assert "returned a dict that is not strict JSON" in out
    # 4. The project does not exist in the sandbox; the scratch directory is writable.
    assert len(_failed(out, "writer")) == 2
    assert "FileNotFoundError" in out and "pwned.txt" in out
    assert not (project.path / "reports" / "pwned.txt").exists()
    assert list((project.path / ".alma" / "scratch").glob("writer-*/*/notes.txt"))
    # 5. Exits, crashes and hangs end the design process, never the worker.
    assert len(_failed(out, "sys_exit")) == 2
    assert "D.general_retrieve called sys.exit(3)" in out
    assert len(_failed(out, "os_exit")) == 2
    assert "the design process ended (exit status 1) during D.general_retrieve" in out
    assert "crashed while running" not in out  # no xdist worker died
    assert len(_failed(out, "os_exit_update")) == 2
    assert "the design process ended (exit status 1) during D.general_update" in out
    assert len(_failed(out, "hang_sync")) == 2
    assert len(_failed(out, "hang_busy")) == 2
    killed = f"D.general_retrieve did not finish within {TIMEOUT} s (--alma-design-timeout); "
    assert out.count(killed + "the design process was killed") >= 4
    print(f"isolation session: {elapsed:.1f} s")
    assert elapsed < 90
