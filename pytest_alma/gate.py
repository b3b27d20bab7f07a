"""The committed record, the regression gate and deterministic replay for CI (docs/ci.md).

* ``pytest --alma-record`` writes the record (``reports/alma-record.json``): per design and
  environment the mean, 95% interval, n and every episode's score by task, seed and repeat,
  the design's source hash, the model and the outcome settings. Beside it, the replay file
  (:mod:`pytest_alma.llm.replay`): the LLM replies of every call the run made.
* ``pytest --alma-regression`` compares the run with the record: a design that is worse beyond
  its threshold (:mod:`pytest_alma.compare`) fails the session with exit code
  :data:`REGRESSION_EXIT_CODE`; a run under other outcome settings is refused.
* ``pytest --alma-cache=replay-only`` makes the gateway answer from the replay file only.

To know every call a recorded run made, the session routes all calls through the gateway (the
processes stop reading the cache file directly) and the gateway records their keys. Collection
episodes and memory builds stored by earlier sessions would hide their calls, so a recording
session moves the store's ``collection/`` and ``memory/`` aside and plays them again (from the
response cache: nothing is paid twice), then puts back what it did not remake. A session that
replays a replay file does the same, so that it re-plays the recorded run whatever the store
holds.

The pytest glue (``plugin.py``) calls :meth:`GateSession.start` in ``pytest_sessionstart`` and
:meth:`GateSession.finish` in ``pytest_sessionfinish``, on the controller and on xdist workers.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_alma.compare import (
    ThresholdError,
    design_scores,
    outcome_differences,
    parse_thresholds,
)
from pytest_alma.llm.cache import PendingStore, ResponseCache, suspend_direct_reads
from pytest_alma.llm.replay import (
    RERECORD_HINT,
    Replay,
    ReplayError,
    decode_replay,
    sha256_of,
    write_replay,
)
from pytest_alma.record import (
    DEFAULT_RECORD_FILE,
    GATE_USAGE_EXIT_CODE,
    REGRESSION_EXIT_CODE,
    GateError,
    build_record,
    evaluate,
    read_record,
    replay_file_name,
    settings_refusal,
    write_record,
)
from pytest_alma.settings import AlmaSettings
from pytest_alma.store import read_json

#: Store directories a recording session plays again (their calls must be in the replay file).
REPLAYED_STORE_DIRS = ("collection", "memory")
_ASIDE_PREFIX = ".record-aside-"


# -- the store during a recording session ----------------------------------------------------


def move_store_aside(store_root: Path, run_id: str) -> Path | None:
    """Move ``collection/`` and ``memory/`` out of the way, so this session plays them again."""
    aside = store_root / f"{_ASIDE_PREFIX}{run_id}-{os.getpid()}"
    moved = False
    for name in REPLAYED_STORE_DIRS:
        source = store_root / name
        if source.exists():
            aside.mkdir(parents=True, exist_ok=True)
            os.replace(source, aside / name)
            moved = True
    return aside if moved else None


def merge_back(aside: Path, store_root: Path) -> None:
    """Put back every file moved aside that this session did not remake, then drop the rest."""
    for name in REPLAYED_STORE_DIRS:
        source_root = aside / name
        if not source_root.exists():
            continue
        for path in sorted(source_root.rglob("*")):
            if not path.is_file():
                continue
            target = store_root / name / path.relative_to(source_root)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
    shutil.rmtree(aside, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def merge_leftovers(store_root: Path) -> None:
    """Merge back what recording sessions that were killed left aside (their process is gone)."""
    if not store_root.exists():
        return
    for aside in sorted(store_root.glob(f"{_ASIDE_PREFIX}*")):
        pid_text = aside.name.rpartition("-")[2]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _alive(int(pid_text)):
            merge_back(aside, store_root)


# -- talking to the session's gateway --------------------------------------------------------


def gateway_request(
    gateway: Any,
    method: str,
    path: str,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A JSON request to the session gateway's control endpoints (loopback, session token)."""
    base = str(gateway.url).removesuffix("/v1")
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {gateway.token}", **dict(headers or {})},
    )
    # No proxies: an http_proxy variable must never route loopback traffic elsewhere.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=300) as response:
            reply: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            message = json.loads(body)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = body[:300].decode("utf-8", "replace")
        raise GateError(f"the LLM gateway refused {method} {path}: {message}") from None
    except (OSError, ValueError) as err:
        raise GateError(f"cannot reach the session's LLM gateway for {path}: {err}") from None
    return reply


# -- the session -----------------------------------------------------------------------------


def _resolve(rootdir: Path, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else rootdir / p


@dataclass
class GateSession:
    """The record/gate/replay state of one pytest process (controller or xdist worker)."""

    settings: AlmaSettings
    worker: bool
    rootdir: Path = Path()
    record_path: Path = Path()
    store_root: Path = Path()
    services: Any = None
    record: dict[str, Any] | None = None
    replay: Replay | None = None
    replay_path: Path | None = None
    aside: Path | None = None
    title: str = "pytest-alma regression gate"
    lines: list[str] = field(default_factory=list)
    #: Design/environment pairs that failed the gate (1 when it could not compare at all), for
    #: pytest's last line ("38 passed, 1 failed the gate").
    failures: int = 0

    @classmethod
    def start(
        cls, settings: AlmaSettings, *, worker: bool, rootdir: Path, services: Any = None
    ) -> GateSession | None:
        """Set up recording, replaying or gating for this session (``None``: nothing to do).

        Raises:
            GateError: the options cannot work together, the record is missing, or its
                settings differ from this session's (checked before any episode runs).
        """
        gate = settings.gate
        store_root = _resolve(rootdir, settings.store)
        if not worker:
            merge_leftovers(store_root)
        replaying = settings.cache == "replay"
        if not (gate.record or gate.regression or replaying):
            return None
        session = cls(settings=settings, worker=worker, rootdir=rootdir, store_root=store_root)
        if worker:
            # Every call must reach the gateway (it records keys / serves the replay file).
            suspend_direct_reads()
            return session
        session.services = services
        session.record_path = _resolve(rootdir, gate.record_file or DEFAULT_RECORD_FILE)
        try:
            session._check_and_prepare()
        except BaseException:
            session._restore()
            raise
        return session

    def _check_and_prepare(self) -> None:
        gate = self.settings.gate
        replaying = self.settings.cache == "replay"
        if gate.record and gate.regression:
            raise GateError(
                "--alma-record and --alma-regression exclude each other: gate the run against "
                "the committed record first, and re-record in a separate run"
            )
        if gate.record and self.settings.cache not in ("rw", "replay"):
            raise GateError(
                f"--alma-record needs the response cache to keep every reply (--alma-cache rw, "
                f"or replay-only to re-record from the replay file); it is "
                f"{self.settings.cache!r}"
            )
        if gate.regression:
            try:
                parse_thresholds(gate.threshold)
            except ThresholdError as err:
                raise GateError(str(err)) from None
            self.record = read_record(self.record_path)
            now = {
                "settings": {
                    **self.settings.to_json(),
                    "environments": self.services.environments,
                },
                "model": self.services.model,
                "test_double": self.services.test_double,
            }
            differences = outcome_differences(self.record, now)
            if differences:
                raise GateError(settings_refusal(differences, self.record_path))
        if replaying:
            self._load_replay()
        if gate.record:
            self.title = "pytest-alma record"
            gateway_request(self.services.gateway, "POST", "/alma/keys")
        elif not gate.regression:
            self.title = "pytest-alma replay"
        suspend_direct_reads()
        if gate.record or self.replay is not None:
            # Recording: stored collection episodes and memory builds would hide their calls.
            # Replaying a file: they may come from other replies than the record's (a live run
            # after the cache was cleared); played again, the run is the recorded one whatever
            # the store holds. Last: nothing above can fail once the store is rearranged.
            self.aside = move_store_aside(self.store_root, str(self.services.run_id))

    def _load_replay(self) -> None:
        record = self.record
        if record is None and self.record_path.exists():
            record = read_record(self.record_path)
        info = dict((record or {}).get("replay") or {})
        if not info.get("file"):
            if self.settings.gate.regression:
                raise GateError(
                    f"--alma-cache=replay-only with --alma-regression replays the record's replay "
                    f"file, but the record {self.record_path} names none; {RERECORD_HINT}"
                )
            self.lines.append(
                f"replay-only from the store's cache (no replay file: no record at "
                f"{self.record_path})"
            )
            return
        path = self.record_path.parent / str(info["file"])
        try:
            data = path.read_bytes()
        except OSError as err:
            raise GateError(
                f"the replay file {path} named by {self.record_path} cannot be read ({err}); "
                f"commit it with the record, or {RERECORD_HINT}"
            ) from None
        if info.get("sha256") and sha256_of(data) != info["sha256"]:
            raise GateError(
                f"the replay file {path} is not the one recorded with {self.record_path} "
                f"(sha256 differs); {RERECORD_HINT}"
            )
        try:
            self.replay = decode_replay(data, str(path))
        except ReplayError as err:
            raise GateError(str(err)) from None
        gateway_request(
            self.services.gateway,
            "POST",
            "/alma/replay",
            data,
            {"Content-Type": "application/octet-stream", "x-alma-replay-source": str(path)},
        )
        self.replay_path = path
        self.lines.append(f"replay-only: {len(self.replay)} recorded LLM calls from {path}")

    def _restore(self) -> None:
        suspend_direct_reads(False)
        if self.aside is not None:
            merge_back(self.aside, self.store_root)
            self.aside = None

    def finish(self, results_path: Path | None, exitstatus: int) -> int | None:
        """Write the record or run the gate; returns the exit status to set (``None``: keep).

        Always puts the store back and resumes direct cache reads, whatever happens.
        """
        if self.worker:
            suspend_direct_reads(False)
            return None
        try:
            results = read_json(results_path) if results_path and results_path.exists() else None
            status: int | None = None
            if self.settings.cache == "replay" and results is not None:
                self.lines.extend(self._replay_lines(results))
            if self.settings.gate.record:
                status = self._record(results, exitstatus)
            elif self.settings.gate.regression and self.record is not None:
                status = self._gate(results)
            return status
        except GateError as err:
            self.lines.append(str(err))
            self.failures = max(self.failures, 1)
            return GATE_USAGE_EXIT_CODE
        finally:
            self._restore()

    def _replay_lines(self, results: Mapping[str, Any]) -> list[str]:
        totals = dict(dict(results.get("llm") or {}).get("totals") or {})
        calls, hits = int(totals.get("calls", 0)), int(totals.get("cache_hits", 0))
        lines = [
            f"LLM calls: {calls}, answered from the replay: {hits}, model calls: {calls - hits}"
        ]
        misses = int(
            gateway_request(self.services.gateway, "GET", "/alma/keys").get("replay_misses", 0)
        )
        if misses:
            affected: dict[str, int] = {}
            for e in results.get("episodes", []):
                if "CacheMissError" in str(e.get("error") or ""):
                    affected[str(e["design"])] = affected.get(str(e["design"]), 0) + 1
            where = ", ".join(f"{d} ({n} episodes)" for d, n in sorted(affected.items()))
            lines.append(
                f"{misses} call(s) were missing from the replay file and failed their items"
                f"{f' (deployment: {where})' if where else ''}: a design or a prompt changed "
                f"since the record; {RERECORD_HINT}"
            )
        return lines

    def _record(self, results: Mapping[str, Any] | None, exitstatus: int) -> int | None:
        if results is None or not design_scores(results):
            raise GateError(
                "nothing recorded: no deployment episode finished in this run (were the deploy "
                "items deselected?)"
            )
        if exitstatus != 0:
            self.lines.append(
                f"nothing recorded: the session failed (exit status {exitstatus}); a record "
                "must come from a run without failures (deselect a broken design with -k)"
            )
            return None
        keys = gateway_request(self.services.gateway, "GET", "/alma/keys").get("keys")
        if not isinstance(keys, list):
            raise GateError("the LLM gateway did not record this session's calls; re-run")
        entries = self._replies(sorted(str(k) for k in keys))
        replay_path = self.record_path.parent / replay_file_name(self.record_path)
        info = write_replay(
            replay_path,
            entries,
            {"run_id": results.get("run_id"), "model": results.get("model")},
        )
        old = read_record(self.record_path) if self.record_path.exists() else None
        record = build_record(results, info)
        write_record(self.record_path, record)
        pairs = sum(len(d["environments"]) for d in record["designs"].values())
        self.lines += [
            f"recorded {pairs} design/environment score(s) of run {results.get('run_id')} to "
            f"{self.record_path}",
            f"replay file: {replay_path} ({info.calls} LLM calls, {info.bytes} bytes)",
            "commit both; CI gates with `pytest --alma-regression --alma-cache=replay-only` and "
            "the same options (docs/ci.md)",
        ]
        if old is not None:
            dropped = sorted(set(old.get("designs") or {}) - set(record["designs"]))
            if dropped:
                self.lines.append(
                    f"no longer in the record (not in this run): {', '.join(dropped)}"
                )
        return None

    def _replies(self, keys: list[str]) -> list[PendingStore]:
        """The stored reply of every key: from the replay file loaded, else the cache file."""
        found: dict[str, PendingStore] = {}
        if self.replay is not None:
            found = {k: self.replay.entries[k] for k in keys if k in self.replay.entries}
        rest = [k for k in keys if k not in found]
        if rest:
            cache = ResponseCache(self.store_root / "llm_cache.sqlite", mode="ro")
            try:
                found.update((e.key, e) for e in cache.export(rest))
            finally:
                cache.close()
        missing = [k for k in keys if k not in found]
        if missing:
            raise GateError(
                f"nothing recorded: {len(missing)} of the run's {len(keys)} LLM calls are in "
                "neither the response cache nor the replay file (the cache keeps replies only "
                "in mode rw); re-run with --alma-record --alma-cache=rw"
            )
        return [found[k] for k in keys]

    def _gate(self, results: Mapping[str, Any] | None) -> int | None:
        assert self.record is not None
        if results is None:
            raise GateError(
                "the regression gate compared nothing: no deployment episode finished in this run"
            )
        outcome = evaluate(
            self.record,
            results,
            threshold=self.settings.gate.threshold,
            fail_on_improvement=self.settings.gate.fail_on_improvement,
            record_path=self.record_path,
        )
        self.lines.extend(outcome.lines)
        self.failures = outcome.failures
        return REGRESSION_EXIT_CODE if outcome.failing else None


def combine_exit_status(current: int, gate_status: int | None) -> int:
    """The session's exit status after the gate: a failure that was already there wins."""
    if gate_status is None or current != 0:
        return current
    return gate_status
