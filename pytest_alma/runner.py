"""The harness core of one process: play collection episodes, build memory, deploy designs.

This module knows nothing about pytest. A :class:`Harness` is created once per process (the
controller without xdist, each worker with it) from a :class:`HarnessConfig`, and the pytest
items call its three entry points: :meth:`Harness.collect` (a no-memory collection episode,
cached on disk and shared by every design), :meth:`Harness.deploy` (one batched deployment
episode on the frozen, snapshotted memory) and :meth:`Harness.stream` (one sequential-rollout
stream). Everything the outcome depends on is part of the keys under which work is cached.
"""

from __future__ import annotations

import asyncio
import copy
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock
from filelock import Timeout as FileLockTimeout

from pytest_alma import aio, deployment
from pytest_alma.agent import AgentSettings, EpisodeEnvironmentError, MemoryBlock, play
from pytest_alma.design import DesignCallError
from pytest_alma.design_processes import DesignLLMFacade, DesignProcesses
from pytest_alma.envs.base import Environment, Episode, instructions_for, load_environment
from pytest_alma.failures import MemoryBuildFailed, error_kind, error_message
from pytest_alma.llm.cache import ResponseCache
from pytest_alma.llm.client import LLMClient, UsageLog, agent_max_tokens
from pytest_alma.llm.pricing import PriceTable
from pytest_alma.protocol import (
    COLLECTION_REPEAT,
    SAMPLING_SEED_SCHEME,
    DeployEpisode,
    Plan,
    PlanSettings,
    derive_seed,
    make_plan,
    sampling_seed,
)
from pytest_alma.records import EpisodeResult, Task, TaskStart, TokenCount, Trajectory
from pytest_alma.sandbox.launch import Limits, Sandbox
from pytest_alma.sandbox.process import DesignProcess
from pytest_alma.sandbox.static_find import DesignSpec
from pytest_alma.settings import AlmaSettings
from pytest_alma.store import Store, atomic_write_bytes, atomic_write_json, read_json, stable_key


@dataclass(frozen=True)
class HarnessConfig:
    """What a process needs to run episodes (sent from the controller to every worker)."""

    settings: AlmaSettings
    rootdir: str
    run_id: str
    run_dir: str
    gateway_url: str
    gateway_token: str
    model: str
    test_double: bool
    prices: dict[str, Any] = field(default_factory=dict)
    #: A fingerprint of the upstream base URL (None: the provider's default), standing in for
    #: the URL in cache keys: workers must not learn where the real provider is.
    upstream: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings.to_json(),
            "rootdir": self.rootdir,
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "gateway_url": self.gateway_url,
            "gateway_token": self.gateway_token,
            "model": self.model,
            "test_double": self.test_double,
            "prices": self.prices,
            "upstream": self.upstream,
        }


def design_environment() -> dict[str, str]:
    """The ``ALMA_*`` environment variables, which designs may read as options."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith("ALMA_")}


def plan_for(env: Environment, env_name: str, settings: AlmaSettings) -> Plan:
    """The episode plan of one environment under the session's settings.

    Raises ValueError with the option to fix (an unknown split, too few tasks, a bad limit).
    """
    split = settings.split or env.default_split()
    if split not in env.splits():
        raise ValueError(
            f"--alma-split {split!r} is not a split of {env_name}; "
            f"choose one of {', '.join(env.splits())}"
        )
    plan_settings = PlanSettings(
        env=env_name,
        split=split,
        seed=settings.seed,
        train_size=settings.train_size,
        repeats=settings.repeats,
        limit=settings.limit,
        rollout="sequential" if settings.rollout == "sequential" else "batched",
    )
    return make_plan(env.tasks(split), plan_settings)


class Harness:
    """Runs the protocol's episodes for one process. See the module docstring."""

    def __init__(self, config: HarnessConfig) -> None:
        self.config = config
        self.settings = config.settings
        self.root = Path(config.rootdir)
        self.store = Store(self._resolve(self.settings.store))
        self.run_dir = Path(config.run_dir)
        prices = PriceTable.default()
        self.prices = prices.with_overrides(config.prices) if config.prices else prices
        self._envs: dict[str, Environment] = {}
        self._plans: dict[str, Plan] = {}
        self._blobs: dict[str, bytes] = {}
        self._clients: dict[str, LLMClient] = {}
        # Cache hits are read in this process; the gateway answers misses (and replay errors).
        self._cache_reader = (
            None
            if self.settings.cache == "off"
            else ResponseCache(self.store.cache_path, mode="ro")
        )
        # Keys depend only on the settings, the task and the design's source hash, all fixed
        # for the life of a harness, so they are computed once. Recomputing memory_key for
        # every deployment item hashed the canonical JSON of every collection task (measured:
        # ~2.5 ms of worker CPU per item at the "all" split, 10% of a cached -n 16 item).
        self._run_keys: dict[str, dict[str, Any]] = {}
        self._collection_keys: dict[Task, str] = {}
        self._memory_keys: dict[tuple[str, str], str] = {}
        self._build_infos: dict[str, dict[str, Any]] = {}
        self._build_errors: dict[str, MemoryBuildFailed] = {}
        # Design code never runs here: each design file gets a design process of its own (in
        # bubblewrap where it works), which sees nothing of this process, the store or the
        # gateway token (see pytest_alma.sandbox).
        self.designs = DesignProcesses(
            self.settings,
            scratch_root=self.store.root / "scratch",
            gateway_url=config.gateway_url,
            worker_token=config.gateway_token,
            model=config.model,
            embed_model=self._embed_model(),
            cache=self._cache_reader,
            cache_namespace=config.upstream or "",
        )

    # -- plumbing -----------------------------------------------------------------------------

    def _resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    def env(self, name: str) -> Environment:
        if name not in self._envs:
            self._envs[name] = load_environment(name)
        return self._envs[name]

    def plan(self, env_name: str) -> Plan:
        if env_name not in self._plans:
            self._plans[env_name] = plan_for(self.env(env_name), env_name, self.settings)
        return self._plans[env_name]

    def agent_settings(self, env_name: str) -> AgentSettings:
        env = self.env(env_name)
        return AgentSettings(
            max_steps=self.settings.max_steps or env.default_max_steps(),
            history_window=self.settings.history,
            memory_char_cap=self.settings.memory_cap,
        )

    def client(self, role: str) -> LLMClient:
        """One client per role per process (clients bind to the process's event loop)."""
        if role not in self._clients:
            self._clients[role] = self._new_client(role)
        return self._clients[role]

    def _new_client(self, role: str) -> LLMClient:
        # Agent calls carry --alma-max-tokens (it also sizes their budget reservation); design
        # calls set their own caps. The namespace keeps cache keys apart per upstream server.
        max_tokens = (
            agent_max_tokens(self.settings.max_tokens, self.config.model)
            if role == "agent"
            else None
        )
        return LLMClient(
            base_url=self.config.gateway_url,
            token=self.config.gateway_token,
            model=self.config.model,
            temperature=self.settings.temperature,
            seed=self.settings.seed,
            max_tokens=max_tokens,
            tag=role,
            cache=self._cache_reader,
            cache_namespace=self.config.upstream or "",
        )

    def close(self) -> None:
        """End the design processes, close the LLM clients and this process's event loop."""
        aio.run(self.designs.close())
        for client in self._clients.values():
            aio.run(client.aclose())
        self._clients.clear()
        aio.close()

    # -- design processes (pytest_alma.design_processes) ------------------------------------

    @property
    def sandbox(self) -> Sandbox:
        """How this process starts design processes (``--alma-sandbox``)."""
        return self.designs.sandbox

    @property
    def limits(self) -> Limits:
        """The hard limits of every design process."""
        return self.designs.limits

    @property
    def call_timeout_s(self) -> float | None:
        """Wall-clock seconds per design call (``--alma-design-timeout``; 0: none)."""
        return self.designs.call_timeout_s

    def facade(self, spec: DesignSpec) -> DesignLLMFacade:
        """What answers ``spec``'s LLM calls (its ``role`` names them)."""
        return self.designs.facade(spec)

    def design_process(self, spec: DesignSpec) -> DesignProcess:
        """This process's design process of ``spec`` (started on its first request)."""
        return self.designs.process(spec)

    def take_design_usage(self, spec: DesignSpec) -> TokenCount:
        """What ``spec``'s LLM calls used since the last call, with its cost."""
        return self._usage_of(self.designs.facade(spec).client.take_usage())

    def instance_seed(self, spec: DesignSpec, label: str) -> int:
        """The seed of ``ctx.rng`` of the design instance ``label``."""
        return derive_seed(self.settings.seed, spec.source_hash, label)

    def _take_usage(self, role: str) -> TokenCount:
        """What the role's client used since the last call, with its cost (None = unknown)."""
        return self._usage_of(self.client(role).take_usage())

    def take_usage(self, role: str) -> TokenCount:
        """Public name of :meth:`_take_usage` (for :mod:`pytest_alma.deployment`)."""
        return self._take_usage(role)

    def _usage_of(self, log: UsageLog) -> TokenCount:
        """A client usage log as token counts with the money spent and saved (None = unknown).

        Priced as the gateway prices: by the requested model name, cached input tokens at the
        cached rate; a call answered from the response cache spent nothing and saved its cost.
        """
        cost: float | None = 0.0
        saved: float | None = 0.0
        chat_calls = embed_calls = 0
        for record in log.records:
            if record.kind == "embed":
                embed_calls += 1
                usage: dict[str, Any] = {"prompt_tokens": record.embedding_tokens}
            else:
                chat_calls += 1
                usage = record.usage.to_openai()
            call_cost = self.prices.cost(record.requested_model or record.model, usage)
            if record.cached:
                saved = None if saved is None or call_cost is None else saved + call_cost
            else:
                cost = None if cost is None or call_cost is None else cost + call_cost
        return TokenCount(
            calls=chat_calls,
            cached_calls=sum(1 for r in log.records if r.cached and r.kind == "chat"),
            prompt_tokens=log.tokens.prompt,
            cached_prompt_tokens=log.tokens.cached_prompt,
            completion_tokens=log.tokens.completion,
            reasoning_tokens=log.tokens.reasoning,
            embedding_calls=embed_calls,
            embedding_tokens=log.embedding_tokens,
            cost_usd=cost,
            saved_usd=saved,
        )

    def run_key(self, env_name: str) -> dict[str, Any]:
        """Everything besides the task that changes an episode's outcome."""
        cached = self._run_keys.get(env_name)
        if cached is None:
            cached = self._run_keys[env_name] = self._compute_run_key(env_name)
        return copy.deepcopy(cached)  # callers may keep or change it; the memo stays intact

    def _compute_run_key(self, env_name: str) -> dict[str, Any]:
        env = self.env(env_name)
        return {
            "env": env_name,
            "env_settings": env.settings(),
            "agent": self.agent_settings(env_name).to_json(),
            "model": self.config.model,
            "base_url": self.config.upstream,
            "temperature": self.settings.temperature,
            "max_tokens": agent_max_tokens(self.settings.max_tokens, self.config.model),
            "llm_seed": self.settings.seed,
            # How each episode's sampling seed is derived (protocol.sampling_seed).
            "sampling_seed": SAMPLING_SEED_SCHEME,
        }

    # -- collection ---------------------------------------------------------------------------

    def collection_key(self, task: Task) -> str:
        key = self._collection_keys.get(task)
        if key is None:
            key = stable_key({"task": task.to_json(), **self.run_key(task.env)})
            self._collection_keys[task] = key
        return key

    def _failed_collection_path(self, task: Task) -> Path:
        """Where this run keeps a collection episode that the LLM cut short (see below)."""
        path = self.store.collection_path(task.env, self.collection_key(task))
        return path.with_name(f"{path.stem}.failed-{self.config.run_id}.json")

    def collection_file(self, task: Task) -> Path | None:
        """The stored collection episode of ``task`` this process may use, or None.

        A valid one (any session's), else one this run played that ended on an LLM failure:
        shared within the run, so that every worker builds the same memory from the same
        episodes, but never seen by a later session, which plays it again.
        """
        path = self.store.collection_path(task.env, self.collection_key(task))
        if path.exists():
            return path
        failed = self._failed_collection_path(task)
        return failed if failed.exists() else None

    def collect(self, task: Task) -> tuple[Trajectory, bool]:
        """The no-memory trajectory of a collection task, and whether it was played just now.

        Shared by every design and every session with the same settings: the first process to
        need it plays it under a lock; everyone else reads the file.
        """
        path = self.collection_file(task)
        if path is not None:
            return Trajectory.from_json(read_json(path)["trajectory"]), False
        with self.store.lock(f"collect-{self.collection_key(task)}"):
            path = self.collection_file(task)
            if path is not None:
                return Trajectory.from_json(read_json(path)["trajectory"]), False
            started = time.perf_counter()
            trajectory, _ = self._play(task, memory={})
            self._store_collection(task, trajectory, self._take_usage("agent"), started)
            return trajectory, True

    def ensure_collected(self, tasks: Sequence[Task]) -> None:
        """Play every collection episode of ``tasks`` that nobody has played or started yet.

        They run concurrently in this process (each under its own lock), so that a memory build
        that finds the collection phase unfinished waits about one episode instead of playing
        the rest one after another while every other worker waits for the memory. Episodes that
        another process is playing are left to it (:meth:`collect` then waits for their file).
        """
        held: list[tuple[Task, FileLock]] = []
        try:
            for task in tasks:
                key = self.collection_key(task)
                if self.collection_file(task) is not None:
                    continue
                lock = self.store.file_lock(f"collect-{key}")
                try:
                    lock.acquire(timeout=0)
                except FileLockTimeout:
                    continue  # another process is playing it
                held.append((task, lock))
            # Re-checked under the locks: a file may have appeared before we took its lock.
            todo = [t for t, _ in held if self.collection_file(t) is None]
            if todo:
                aio.run(self._collect_concurrently(todo))
        finally:
            for _, lock in held:
                lock.release()

    async def _collect_concurrently(self, tasks: Sequence[Task]) -> None:
        limit = asyncio.Semaphore(self.settings.concurrency)

        async def one(task: Task) -> None:
            async with limit:
                # A client of its own, so that its usage log is this episode's alone.
                client = self._new_client("agent")
                started = time.perf_counter()
                try:
                    trajectory, _ = await self._play_async(
                        task, {}, client, sampling_seed(self.settings.seed, task, COLLECTION_REPEAT)
                    )
                    usage = self._usage_of(client.take_usage())
                finally:
                    await client.aclose()
                self._store_collection(task, trajectory, usage, started)

        outcomes = await asyncio.gather(*(one(t) for t in tasks), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    def _store_collection(
        self, task: Task, trajectory: Trajectory, usage: TokenCount, started: float
    ) -> None:
        # A trajectory the LLM cut short (unavailable after the retries, a timeout) is no data:
        # kept for this run only (collection_file), so that the next session plays it again and
        # no memory built from it outlives this run (the build is tainted, see _build_memory).
        infra_failure = trajectory.error
        path = (
            self.store.collection_path(task.env, self.collection_key(task))
            if infra_failure is None
            else self._failed_collection_path(task)
        )
        atomic_write_json(
            path,
            {
                "infra_failure": infra_failure,
                "sampling_seed": sampling_seed(self.settings.seed, task, COLLECTION_REPEAT),
                "trajectory": trajectory.to_json(),
                "tokens": usage.to_json(),
                "duration_s": time.perf_counter() - started,
                # Wall-clock end, so that a run's timeline (benchmarks, reports) can be drawn,
                # and the run that played it (a memory build may play it for the collect item).
                "ended_at": time.time(),
                "run_id": self.config.run_id,
                "key": self.run_key(task.env),
            },
        )

    def collection_record(self, task: Task) -> dict[str, Any]:
        """A small JSON record of a stored collection episode (for results.json)."""
        path = self.collection_file(task)
        if path is None:
            raise FileNotFoundError(f"no stored collection episode of {task.label}")
        data = read_json(path)
        trajectory = data["trajectory"]
        return {
            "task": task.to_json(),
            "score": trajectory["score"],
            "success": trajectory["success"],
            "steps": len(trajectory["steps"]),
            "error": trajectory.get("error"),
            # An episode the LLM cut short is kept for this run only: the next one replays it.
            "error_kind": "llm" if data.get("infra_failure") else None,
            "stored": data.get("infra_failure") is None,
            "sampling_seed": data.get("sampling_seed"),
            "trajectory_digest": Trajectory.from_json(trajectory).digest(),
            "tokens": data["tokens"],
            "duration_s": data["duration_s"],
            "ended_at": data.get("ended_at"),
            "played_now": data.get("run_id") == self.config.run_id,
        }

    def _play(self, task: Task, memory: dict[str, Any]) -> tuple[Trajectory, MemoryBlock]:
        seed = sampling_seed(self.settings.seed, task, COLLECTION_REPEAT)
        return aio.run(self._play_async(task, memory, self.client("agent"), seed))

    async def _play_async(
        self, task: Task, memory: dict[str, Any], client: LLMClient, seed: int
    ) -> tuple[Trajectory, MemoryBlock]:
        env = self.env(task.env)
        agent = self.agent_settings(task.env)
        episode, start = self.open_episode(env, task, agent)
        try:
            return await play(
                episode,
                start,
                client,
                instructions_for(env, episode),
                memory,
                agent,
                env.default_action(),
                seed=seed,
            )
        finally:
            episode.close()

    def open_episode(
        self, env: Environment, task: Task, agent: AgentSettings
    ) -> tuple[Episode, TaskStart]:
        """Open and reset an episode; the environment's exceptions become environment errors."""
        try:
            episode = env.open(task, agent.max_steps)
        except Exception as exc:
            raise EpisodeEnvironmentError(
                f"the environment raised opening {task.label}: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            return episode, episode.reset()
        except Exception as exc:
            episode.close()
            raise EpisodeEnvironmentError(
                f"the environment raised resetting {task.label}: {type(exc).__name__}: {exc}"
            ) from exc

    # -- memory -------------------------------------------------------------------------------

    def _embed_model(self) -> str:
        return "scripted-embed" if self.config.test_double else "text-embedding-3-small"

    def memory_key(self, loaded: DesignSpec, env_name: str) -> str:
        memo = (f"{loaded.name}:{loaded.source_hash}", env_name)
        key = self._memory_keys.get(memo)
        if key is None:
            plan = self.plan(env_name)
            key = stable_key(
                {
                    "design": loaded.source_hash,
                    # A snapshot pickles the design's classes under its module's name, which
                    # holds the file's name: two files with the same code each get their own
                    # (the other's design process could not unpickle it).
                    "design_name": loaded.name,
                    # Designs read their own options from ALMA_* variables (a baseline's model or
                    # variant): a memory built under other values must not be reused.
                    "design_env": design_environment(),
                    "collection": [self.collection_key(t) for t in plan.collection],
                    "plan": plan.settings.to_json(),
                    **self.run_key(env_name),
                }
            )
            self._memory_keys[memo] = key
        return key

    def _memory_file(self, key: str) -> Path | None:
        """The snapshot this process may use: a reusable one, else one this run built on
        inputs that an LLM failure cut short (kept for this run only, like such collection
        episodes: a later session builds it again)."""
        path = self.store.memory_path(key)
        if path.exists():
            return path
        tainted = self._tainted_memory_path(key)
        return tainted if tainted.exists() else None

    def _tainted_memory_path(self, key: str) -> Path:
        return self.store.memory_path(key).with_name(f"{key}.failed-{self.config.run_id}.pkl")

    def built_memory(self, loaded: DesignSpec, env_name: str) -> bytes:
        """The snapshot of the design's memory after the collection phase (built once).

        Raises :class:`MemoryBuildFailed` (every time, without building again in this process)
        when the build failed.
        """
        key = self.memory_key(loaded, env_name)
        if key in self._blobs:
            return self._blobs[key]
        if key in self._build_errors:
            raise self._build_errors[key]
        path = self._memory_file(key)
        if path is None:
            try:
                with self.store.lock(f"memory-{key}"):
                    path = self._memory_file(key)
                    if path is None:
                        path = self._build_guarded(loaded, env_name, key)
            except Exception as exc:
                failure = MemoryBuildFailed(
                    f"the memory build of {loaded.name} on {env_name} failed, so none of its "
                    f"episodes could be played: {error_message(exc)}",
                    error_kind(exc),
                )
                self._build_errors[key] = failure
                raise failure from exc
        blob = path.read_bytes()
        self._blobs[key] = blob
        return blob

    def _build_guarded(self, loaded: DesignSpec, env_name: str, key: str) -> Path:
        """Build under a marker file, so that a build that killed its process is not retried.

        A design calling ``os._exit`` (or crashing the interpreter) in ``general_update``
        kills the xdist worker; the lock dies with it, but the marker stays. Every other item of
        the design would otherwise rebuild and kill another worker, until xdist's restart limit
        stops the whole session.
        """
        marker = self.store.memory_path(key).with_suffix(".building")
        if marker.exists() and read_json(marker).get("run_id") == self.config.run_id:
            # A marker of an earlier session is stale: each session gets one fresh attempt.
            raise DesignCallError(
                f"an earlier attempt in this run to build the memory of {loaded.name} ended its "
                "process (os._exit, a crash, or the operating system killing it); see the first "
                f"failing item of {loaded.name}"
            )
        atomic_write_json(marker, {"pid": os.getpid(), "run_id": self.config.run_id})
        try:
            return self._build_memory(loaded, env_name, key)
        finally:
            # Reached on every exception as well: only a dead process leaves the marker.
            marker.unlink(missing_ok=True)

    def _build_memory(self, loaded: DesignSpec, env_name: str, key: str) -> Path:
        """Build the memory from the collection episodes; the path of the snapshot written.

        The design's instance lives in its design process; this process sends it the
        trajectories and stores the snapshot bytes it sends back. A build any of whose inputs an
        LLM failure cut short (a collection episode, or a call of the design's own) is written
        where only this run looks (``_memory_file``).
        """
        started = time.perf_counter()
        facade = self.facade(loaded)
        facade.role = "design.update"
        self.take_design_usage(loaded)
        failures_before = facade.llm_failures
        infra_failures: list[str] = []
        self.ensure_collected(self.plan(env_name).collection)
        trajectories: list[Trajectory] = []
        for task in self.plan(env_name).collection:
            trajectory, _ = self.collect(task)
            if trajectory.error:
                infra_failures.append(f"collection episode {task.label}: {trajectory.error}")
            trajectories.append(trajectory)
        blob, config = aio.run(self._build_async(loaded, env_name, trajectories))
        usage = self.take_design_usage(loaded)
        if facade.llm_failures > failures_before:
            failed = facade.llm_failures - failures_before
            infra_failures.append(f"{failed} LLM call(s) of the design failed")
        path = self._tainted_memory_path(key) if infra_failures else self.store.memory_path(key)
        # The side file first: whoever sees the snapshot can read what it cost.
        atomic_write_json(
            path.with_suffix(".json"),
            {
                "design": loaded.name,
                "env": env_name,
                "infra_failures": infra_failures,
                "source_hash": loaded.source_hash,
                "updates": len(trajectories),
                "update_tokens": usage.to_json(),
                "duration_s": time.perf_counter() - started,
                "snapshot_bytes": len(blob),
                # A design's own settings (a baseline's k, thresholds, internal model), when it
                # exposes them as a JSON-able `config` attribute.
                "config": config,
            },
        )
        atomic_write_bytes(path, blob)
        return path

    async def _build_async(
        self, spec: DesignSpec, env_name: str, trajectories: Sequence[Trajectory]
    ) -> tuple[bytes, dict[str, Any] | None]:
        label = f"{env_name}-build"
        timeout = self.call_timeout_s
        design = await self.design_process(spec).new(
            label, self.instance_seed(spec, label), timeout
        )
        try:
            for trajectory in trajectories:
                await design.update(trajectory, timeout)
            blob = await design.snapshot(timeout)
            config = await design.config(timeout)
        finally:
            await design.drop()
        return blob, config

    def build_info(self, loaded: DesignSpec, env_name: str) -> dict[str, Any]:
        """What building the memory cost (read from the snapshot's side file), or why it failed
        (``error``, ``error_kind``)."""
        key = self.memory_key(loaded, env_name)
        if key in self._build_infos:
            return copy.deepcopy(self._build_infos[key])
        failure = self._build_errors.get(key)
        if failure is not None:
            return {
                "design": loaded.name,
                "env": env_name,
                "source_hash": loaded.source_hash,
                "error": str(failure),
                "error_kind": failure.kind,
            }
        blob_path = self._memory_file(key)
        if blob_path is None:
            return {}
        path = blob_path.with_suffix(".json")
        if not path.exists():
            return {}
        data: dict[str, Any] = read_json(path)
        data.setdefault("env", env_name)  # (side files of older sessions do not name it)
        # The side file is written once, right after the snapshot it describes, and never
        # changes: read it once per process instead of once per deployment item (a missing
        # one, while another process is still writing it, is not memoised).
        self._build_infos[key] = data
        return copy.deepcopy(data)

    # -- deployment (pytest_alma.deployment) -------------------------------------------------

    def deploy(self, loaded: DesignSpec, episode: DeployEpisode) -> EpisodeResult:
        """One batched deployment episode (always a record: a failure is one, see
        :mod:`pytest_alma.deployment`)."""
        return deployment.deploy(self, loaded, episode)

    def stream(self, loaded: DesignSpec, env_name: str, repeat: int) -> list[EpisodeResult]:
        """One sequential-rollout stream: a record per episode of the stream."""
        return deployment.stream(self, loaded, env_name, repeat)
