"""Controller-side services of one session: the LLM gateway, the scripted model, the run record.

Only the controller (the main pytest process) runs this. It starts the scripted model when
selected, starts the gateway that holds the real API key, the cache and the budget, and hands
workers nothing but the gateway URL and a per-session token. At the end it writes the run's
``results.json`` and ``summary.md`` and returns the lines of the terminal table.
"""

from __future__ import annotations

import hashlib
import os
import platform
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_alma.records import SCHEMA_VERSION
from pytest_alma.runner import HarnessConfig
from pytest_alma.settings import AlmaSettings, SettingsError

SCRIPTED_MODEL = "scripted"
TEST_DOUBLE_BANNER = (
    "pytest-alma: the agent is the SCRIPTED TEST DOUBLE, not an LLM. Its scores test the "
    "plumbing only; set --alma-model (and a key or --alma-base-url) for LLM results."
)


def new_run_id() -> str:
    """A sortable, unique run id, e.g. ``20261123-214501-3fa2``."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def plan_task_ids(plan: Any) -> set[str]:
    """The task ids of a plan's deployment episodes."""
    return {episode.task.task_id for episode in plan.deployment}


def upstream_fingerprint(base_url: str | None) -> str | None:
    """What cache keys record of the upstream URL: a digest, so that workers never see it."""
    if base_url is None:
        return None
    return "sha256:" + hashlib.sha256(base_url.encode("utf-8")).hexdigest()[:16]


def harness_config_from_json(data: dict[str, Any], settings: AlmaSettings) -> HarnessConfig:
    """Rebuild the harness config a worker received (settings are re-read locally)."""
    return HarnessConfig(
        settings=settings,
        rootdir=str(data["rootdir"]),
        run_id=str(data["run_id"]),
        run_dir=str(data["run_dir"]),
        gateway_url=str(data["gateway_url"]),
        gateway_token=str(data["gateway_token"]),
        model=str(data["model"]),
        test_double=bool(data["test_double"]),
        prices=dict(data.get("prices", {})),
        upstream=data.get("upstream"),
    )


@dataclass
class ControllerServices:
    """The running scripted model (if any) and gateway, and where this run is written."""

    settings: AlmaSettings
    rootdir: Path
    run_id: str
    run_dir: Path
    model: str
    test_double: bool
    gateway: Any
    scripted: Any
    started: float
    workers: int | None = None
    #: Each environment's outcome-relevant settings (``Environment.settings()``).
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Credentials removed from ``os.environ`` while the session runs (restored by stop()).
    scrubbed_environment: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def start(cls, config: pytest.Config, settings: AlmaSettings) -> ControllerServices:
        from pytest_alma.envs.base import load_environment
        from pytest_alma.llm.gateway_process import GatewayProcess
        from pytest_alma.llm.scripted_process import ScriptedServerProcess
        from pytest_alma.runner import plan_for
        from pytest_alma.store import Store

        environments: dict[str, dict[str, Any]] = {}
        for env_name in settings.envs:
            # Fail fast, before any worker starts: an unknown environment lists the known
            # ones; a bad split or limit names the option to fix; a missing extra or dataset
            # says how to get it (as a usage error, not a traceback).
            try:
                env = load_environment(env_name)
            except (OSError, ImportError, RuntimeError) as exc:
                raise ValueError(f"cannot use the {env_name} environment: {exc}") from exc
            plan = plan_for(env, env_name, settings)
            check_tasks = getattr(env, "check_tasks", None)
            if callable(check_tasks):  # optional: data a task needs, checked before any episode
                check_tasks(sorted({t.task_id for t in plan.collection} | plan_task_ids(plan)))
            environments[env_name] = env.settings()  # presets etc., recorded with the results
        rootdir = Path(config.rootpath)
        store_root = Path(settings.store)
        store = Store(store_root if store_root.is_absolute() else rootdir / store_root)
        store.root.mkdir(parents=True, exist_ok=True)
        model = settings.model or SCRIPTED_MODEL
        test_double = model == SCRIPTED_MODEL
        scripted = None
        if test_double:
            scripted = ScriptedServerProcess(
                latency_s=settings.scripted_latency / 1000.0, faults=settings.faults
            )
            scripted.start()
            upstream_url: str | None = scripted.base_url
            api_key: str | None = "scripted-test-double"
        else:
            upstream_url = settings.base_url
            api_key = os.environ.get(settings.api_key_env)
            if not api_key:
                if upstream_url is None:
                    raise SettingsError(
                        f"--alma-model {model!r} needs an API key: set ${settings.api_key_env} "
                        "(or --alma-api-key-env NAME), or point --alma-base-url at an "
                        "OpenAI-compatible server"
                    )
                api_key = "not-needed"  # local servers (Ollama, vLLM) accept any key
        if settings.faults and not test_double:
            raise SettingsError("--alma-faults only applies to the scripted model")
        gateway = GatewayProcess(
            upstream_base_url=upstream_url,
            upstream_api_key=api_key,
            cache_path=str(store.cache_path),
            cache_mode=settings.cache,
            budget_usd=settings.budget_usd,
            max_concurrency=settings.concurrency,
            max_retries=settings.llm_retries,
            timeout_s=settings.llm_timeout,
        )
        try:
            gateway.start()
        except BaseException:
            if scripted is not None:
                scripted.stop()
            raise
        # The gateway child holds the key now. Take it (and anything else that looks like a
        # credential) out of this process's environment before xdist spawns the workers, which
        # inherit it; put back at the end of the session (see stop()).
        from pytest_alma.isolation import scrub_controller_environment

        scrubbed = scrub_controller_environment(settings.api_key_env)
        run_id = new_run_id()
        reports = Path(settings.reports)
        run_dir = (reports if reports.is_absolute() else rootdir / reports) / run_id
        return cls(
            settings=settings,
            rootdir=rootdir,
            run_id=run_id,
            run_dir=run_dir,
            model=model,
            test_double=test_double,
            gateway=gateway,
            scripted=scripted,
            started=time.time(),
            workers=_xdist_workers(config),
            environments=environments,
            scrubbed_environment=scrubbed,
        )

    def harness_config_json(self) -> dict[str, Any]:
        return {
            "rootdir": str(self.rootdir),
            "run_id": self.run_id,
            "run_dir": str(self.run_dir),
            "gateway_url": self.gateway.url,
            "gateway_token": self.gateway.token,
            "model": self.model,
            "test_double": self.test_double,
            "prices": {},
            "upstream": upstream_fingerprint(self.settings.base_url),
        }

    def header_lines(self) -> list[str]:
        lines = [
            f"alma: model={self.model} envs={','.join(self.settings.envs)} "
            f"rollout={self.settings.rollout} seed={self.settings.seed} "
            f"cache={self.settings.cache} run={self.run_id}"
        ]
        if self.test_double:
            lines.append(TEST_DOUBLE_BANNER)
        return lines

    def stop(self) -> None:
        from pytest_alma.isolation import restore_controller_environment

        restore_controller_environment(self.scrubbed_environment)
        self.scrubbed_environment = {}
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        if self.scripted is not None:
            self.scripted.stop()
            self.scripted = None

    def finish(
        self,
        episodes: list[dict[str, Any]],
        builds: dict[str, dict[str, Any]],
        collection: list[dict[str, Any]],
    ) -> list[str]:
        """Write results.json and summary.md; return the terminal summary lines."""
        from pytest_alma.report import render_summary, terminal_lines
        from pytest_alma.store import atomic_write_json, atomic_write_text

        results = self.results_document(episodes, builds, collection)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.run_dir / "results.json", results)
        atomic_write_text(self.run_dir / "summary.md", render_summary(results))
        atomic_write_text(self.run_dir.parent / "LATEST", self.run_id + "\n")
        lines = terminal_lines(results)
        lines.append(f"report: {self.run_dir / 'summary.md'}")
        return lines

    def results_document(
        self,
        episodes: list[dict[str, Any]],
        builds: dict[str, dict[str, Any]],
        collection: list[dict[str, Any]],
    ) -> dict[str, Any]:
        ordered = sorted(
            episodes,
            key=lambda e: (e["design"], e["task"]["env"], e["repeat"], e["task"]["task_id"]),
        )
        accounting = self.gateway.accounting().to_json() if self.gateway is not None else None
        return {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": self.model,
            "test_double": self.test_double,
            "settings": {**self.settings.to_json(), "environments": self.environments},
            "machine": {**machine_info(), "xdist_workers": self.workers},
            "commit": commit_info(self.rootdir),
            "designs": builds,
            "llm": accounting,
            "collection": sorted(collection, key=lambda c: c["task"]["task_id"]),
            "episodes": ordered,
        }


def machine_info() -> dict[str, Any]:
    """Where the run happened."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def _xdist_workers(config: pytest.Config) -> int | None:
    """How many xdist workers this session runs (None without xdist)."""
    value = getattr(config.option, "numprocesses", None)
    dist = getattr(config.option, "dist", "no")
    if not value or dist == "no":
        return None
    return int(value) if str(value).isdigit() else None


def commit_info(root: Path) -> dict[str, Any]:
    """The git commit of the project, and whether the tree had uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    commit = head.stdout.strip() if head.returncode == 0 else None
    return {"commit": commit, "dirty": bool(dirty.stdout.strip()) if commit else None}
