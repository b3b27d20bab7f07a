"""Controller-side services of one session: the LLM gateway, the scripted model, the run record.

Only the controller (the main pytest process) runs this. It starts the scripted model when
selected, starts the gateway that holds the real API key, the cache and the budget, and hands
workers nothing but the gateway URL and a worker-scoped token (never the admin token, which
opens the gateway's statistics and record/replay controls; see :mod:`pytest_alma.llm.tokens`).
At the end it writes the run's ``results.json`` and ``summary.md`` and returns the lines of the
terminal table.
"""

from __future__ import annotations

import hashlib
import json
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


def upstream_fingerprint(base_url: str | None, name: str | None = None) -> str | None:
    """What cache keys record of the upstream: the name the user gave it
    (``--alma-upstream-name``), else a digest of its URL, so that workers never see the URL;
    ``None`` for the provider's default. It is the LLM cache's namespace: another server that
    serves the same model name never replays this one's replies."""
    if name:
        return "name:" + name
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
    #: The upstream fingerprint of the cache keys (set when attached to another session's
    #: gateway, whose upstream this process does not know).
    upstream: str | None = None
    #: Each environment's episode plan (the controller maps failed items to their episodes).
    plans: dict[str, Any] = field(default_factory=dict)
    #: Where design code runs (``--alma-sandbox``): bubblewrap, or unsandboxed and labelled so.
    sandbox: Any = None
    #: The worker-scoped gateway token, minted on first use (see :meth:`worker_token`).
    _worker_token: str | None = field(default=None, init=False, repr=False)

    @classmethod
    def start(cls, config: pytest.Config, settings: AlmaSettings) -> ControllerServices:
        """Check the environments, then start the scripted model and the gateway (or attach to
        the gateway of the session that started this one as a search sub-session)."""
        from pytest_alma.envs.base import load_environment
        from pytest_alma.llm.gateway_process import GatewayProcess
        from pytest_alma.llm.scripted_process import ScriptedServerProcess
        from pytest_alma.runner import plan_for
        from pytest_alma.store import Store

        environments: dict[str, dict[str, Any]] = {}
        plans: dict[str, Any] = {}
        for env_name in settings.envs:
            # Fail fast, before any worker starts: an unknown environment lists the known
            # ones; a bad split or limit names the option to fix; a missing extra or dataset
            # says how to get it (as a usage error, not a traceback).
            try:
                env = load_environment(env_name)
            except (OSError, ImportError, RuntimeError) as exc:
                raise ValueError(f"cannot use the {env_name} environment: {exc}") from exc
            plan = plans[env_name] = plan_for(env, env_name, settings)
            check_tasks = getattr(env, "check_tasks", None)
            if callable(check_tasks):  # optional: data a task needs, checked before any episode
                check_tasks(sorted({t.task_id for t in plan.collection} | plan_task_ids(plan)))
            environments[env_name] = env.settings()  # presets etc., recorded with the results
        from pytest_alma.sandbox.launch import SandboxUnavailable, choose_sandbox

        try:
            choose_sandbox(settings.sandbox)  # a usage error now, not in every worker
        except SandboxUnavailable as exc:
            raise SettingsError(str(exc)) from None
        rootdir = Path(config.rootpath)
        store_root = Path(settings.store)
        store = Store(store_root if store_root.is_absolute() else rootdir / store_root)
        store.root.mkdir(parents=True, exist_ok=True)
        model = settings.model or SCRIPTED_MODEL
        test_double = model == SCRIPTED_MODEL
        attached = attached_gateway()
        if attached is not None:
            # A search sub-session: same gateway (cache, budget, key) as the session that
            # started it; nothing to start, nothing to stop.
            return cls._new(
                config,
                settings,
                rootdir,
                environments,
                attached,
                None,
                {},
                model=attached.model,
                test_double=attached.test_double,
                upstream=attached.upstream,
                plans=plans,
            )
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
            if not api_key and settings.cache == "replay":
                # Replay-only never calls the model (CI re-plays a record without a key): the
                # SDK in the gateway only needs some key to construct its client.
                api_key = "replay-only-no-key"
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
        prices_path = _checked_price_file(settings.prices, rootdir)
        if settings.budget_usd is not None and not test_double:
            _check_priced_under_budget(settings, model, prices_path)
        gateway = GatewayProcess(
            upstream_base_url=upstream_url,
            upstream_api_key=api_key,
            cache_path=str(store.cache_path),
            cache_mode=settings.cache,
            budget_usd=settings.budget_usd,
            max_concurrency=settings.concurrency,
            max_retries=settings.llm_retries,
            timeout_s=settings.llm_timeout,
            prices_path=prices_path,
            cache_namespace=upstream_fingerprint(settings.base_url, settings.upstream_name) or "",
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
        from pytest_alma.llm.key_handoff import wipe_initial_environment

        scrubbed = scrub_controller_environment(settings.api_key_env)
        # Popping a variable leaves its value in the environment block the kernel shows as
        # /proc/<pid>/environ, which any process of this user can read: overwrite it there too.
        wipe_initial_environment([settings.api_key_env, *scrubbed])
        return cls._new(
            config,
            settings,
            rootdir,
            environments,
            gateway,
            scripted,
            scrubbed,
            model=model,
            test_double=test_double,
            upstream=None,
            plans=plans,
        )

    @classmethod
    def _new(
        cls,
        config: pytest.Config,
        settings: AlmaSettings,
        rootdir: Path,
        environments: dict[str, dict[str, Any]],
        gateway: Any,
        scripted: Any,
        scrubbed: dict[str, str],
        *,
        model: str,
        test_double: bool,
        upstream: str | None,
        plans: dict[str, Any],
    ) -> ControllerServices:
        from pytest_alma.sandbox.launch import choose_sandbox

        run_id = new_run_id()
        reports = Path(settings.reports)
        return cls(
            settings=settings,
            rootdir=rootdir,
            run_id=run_id,
            run_dir=(reports if reports.is_absolute() else rootdir / reports) / run_id,
            model=model,
            test_double=test_double,
            gateway=gateway,
            scripted=scripted,
            started=time.time(),
            workers=_xdist_workers(config),
            environments=environments,
            scrubbed_environment=scrubbed,
            upstream=upstream,
            plans=plans,
            sandbox=choose_sandbox(settings.sandbox),
        )

    def worker_token(self) -> str:
        """The worker-scoped gateway token (model calls, minting design tokens; minted once)."""
        if self._worker_token is None:
            from pytest_alma.llm.tokens import WORKER

            self._worker_token = str(self.gateway.mint(WORKER))
        return self._worker_token

    def harness_config_json(self) -> dict[str, Any]:
        """What every worker receives: the gateway URL and a worker token, never the admin one."""
        return {
            "rootdir": str(self.rootdir),
            "run_id": self.run_id,
            "run_dir": str(self.run_dir),
            "gateway_url": self.gateway.url,
            "gateway_token": self.worker_token(),
            "model": self.model,
            "test_double": self.test_double,
            # --alma-prices, so that workers price calls as the gateway does.
            "prices": price_overrides(self.settings.prices, self.rootdir),
            "upstream": self.upstream_fingerprint(),
        }

    def upstream_fingerprint(self) -> str | None:
        """What the cache keys record of the upstream (never the URL itself)."""
        if self.upstream is not None:
            return self.upstream
        return upstream_fingerprint(self.settings.base_url, self.settings.upstream_name)

    def attach_document(self) -> dict[str, Any]:
        """What a search sub-session needs to use this session's gateway.

        The admin token: a sub-session's controller reads ``/alma/stats`` and mints the worker
        token of its own workers.
        """
        return {
            "gateway_url": self.gateway.url,
            "gateway_token": self.gateway.token,
            "model": self.model,
            "test_double": self.test_double,
            "upstream": self.upstream_fingerprint(),
        }

    def header_lines(self) -> list[str]:
        lines = [
            f"alma: model={self.model} envs={','.join(self.settings.envs)} "
            f"rollout={self.settings.rollout} seed={self.settings.seed} "
            f"cache={self.settings.cache} run={self.run_id}"
        ]
        if self.test_double:
            lines.append(TEST_DOUBLE_BANNER)
        if self.sandbox is not None:
            lines.append(sandbox_line(self.sandbox))
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
        *,
        partial_reason: str | None = None,
    ) -> list[str]:
        """Write results.json, then the reports (summary.md, the charts, report.html); return
        the terminal summary lines. ``partial_reason``: why the run did not finish (its results
        are then marked ``"partial": true``)."""
        from pytest_alma.report import (
            HTML_FILE,
            SUMMARY_FILE,
            aggregate,
            terminal_lines,
            write_reports,
        )
        from pytest_alma.store import atomic_write_json, atomic_write_text

        results = self.results_document(episodes, builds, collection, partial_reason=partial_reason)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # results.json first and on its own: every report can be rendered again from it with
        # `python -m pytest_alma report`, so a rendering failure below loses nothing.
        atomic_write_json(self.run_dir / "results.json", results)
        atomic_write_text(self.run_dir.parent / "LATEST", self.run_id + "\n")
        try:
            rows = aggregate(results)  # the statistics, once for the table and every report
            lines = terminal_lines(results, rows)
            rendered = write_reports(results, self.run_dir, rows=rows)
        except Exception as exc:  # never fail the session over a report
            return [
                f"reports not rendered ({type(exc).__name__}: {exc}); results are in "
                f"{self.run_dir / 'results.json'}: `python -m pytest_alma report "
                f"{self.run_dir}` renders them again"
            ]
        lines.extend(rendered.notes)
        lines.append(f"report: {self.run_dir / SUMMARY_FILE} and {self.run_dir / HTML_FILE}")
        return lines

    def render_reports(self, results: dict[str, Any]) -> None:
        """Render the run's reports again from ``results`` (after the search added its part)."""
        from pytest_alma.report import write_reports

        write_reports(results, self.run_dir)

    def header(self) -> dict[str, Any]:
        """What results.json says besides its records (also the journal's first line)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "model": self.model,
            "test_double": self.test_double,
            "settings": {**self.settings.to_json(), "environments": self.environments},
            "machine": {**machine_info(), "xdist_workers": self.workers},
            # Where design code ran: {"kind": "bubblewrap" | "none", "sandboxed", "detail"}.
            "isolation": None if self.sandbox is None else self.sandbox.to_json(),
            "commit": commit_info(self.rootdir),
        }

    def results_document(
        self,
        episodes: list[dict[str, Any]],
        builds: dict[str, dict[str, Any]],
        collection: list[dict[str, Any]],
        *,
        partial_reason: str | None = None,
    ) -> dict[str, Any]:
        """The results.json document. ``designs`` holds the memory-build records keyed
        ``"<design>@<env>"`` (each names its ``design`` and ``env``)."""
        from pytest_alma.runlog import order_episodes

        accounting = None
        if self.gateway is not None:
            try:
                accounting = self.gateway.accounting().to_json()
            except Exception:
                # The gateway is gone (a SIGTERM to the process group ends it too): the
                # episodes, which carry their own token counts, are still written.
                if partial_reason is None:
                    raise
        return {
            **self.header(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "partial": partial_reason is not None,
            "partial_reason": partial_reason,
            "designs": builds,
            "llm": accounting,
            "collection": sorted(collection, key=lambda c: c["task"]["task_id"]),
            "episodes": order_episodes(episodes),
        }


def sandbox_line(sandbox: Any) -> str:
    """The header line that says where design code runs (loud when it is not sandboxed)."""
    if sandbox.sandboxed:
        return f"alma: design code runs sandboxed ({sandbox.detail}: no network, no key, no files)"
    advice = (
        "drop --alma-sandbox off"
        if "--alma-sandbox off" in sandbox.detail
        else "install bubblewrap (apt-get install bubblewrap)"
    )
    return (
        f"pytest-alma: design code runs UNSANDBOXED ({sandbox.detail}): in its own process, but "
        f"able to read your files and reach the network; {advice} to sandbox it."
    )


def _check_priced_under_budget(settings: AlmaSettings, model: str, prices: str | None) -> None:
    """Under a budget, the agent's and the meta-agent's models must have a price: otherwise every
    call would be refused by the gateway (it prices each call before sending it), so say so now,
    as a usage error, instead of failing every episode. Models a design names are checked per
    call by the gateway."""
    from pytest_alma.llm.budget import unknown_price_message
    from pytest_alma.llm.models import parse_model
    from pytest_alma.llm.pricing import PriceTable

    table = PriceTable.default() if prices is None else PriceTable.default().with_overrides(prices)
    wanted = [model]
    if settings.search.enabled and settings.search.meta_model:
        wanted.append(settings.search.meta_model)
    for spec in wanted:
        name = parse_model(spec).name
        if name not in table:
            raise SettingsError(f"no episode was started: {unknown_price_message(name)}")


def _checked_price_file(path: str | None, rootdir: Path) -> str | None:
    """The absolute path of ``--alma-prices``, read once here so that a bad file is a usage
    error now rather than a gateway that fails to start."""
    if path is None:
        return None
    from pytest_alma.llm.pricing import PriceTable, load_price_file

    resolved = Path(path) if Path(path).is_absolute() else rootdir / path
    try:
        PriceTable.default().with_overrides(load_price_file(resolved))
    except (OSError, ValueError) as exc:
        raise SettingsError(
            f"--alma-prices {path}: cannot use this price file ({exc}); it must map model "
            "names to {input, cached_input, output} in USD per million tokens"
        ) from None
    return str(resolved)


def price_overrides(path: str | None, rootdir: Path) -> dict[str, Any]:
    """The ``--alma-prices`` file's entries (``{}`` without one), as workers receive them."""
    checked = _checked_price_file(path, rootdir)
    if checked is None:
        return {}
    from pytest_alma.llm.pricing import load_price_file

    return load_price_file(checked)


#: Set by the search for its sub-sessions: JSON of :meth:`ControllerServices.attach_document`.
ATTACH_ENV = "PYTEST_ALMA_ATTACH"
#: What :data:`ATTACH_ENV` holds once the sub-session's controller has read the document.
SUBSESSION_MARK = "attached"


@dataclass
class AttachedGateway:
    """Another session's running gateway, used by a search sub-session (never stopped here)."""

    url: str
    token: str
    model: str
    test_double: bool
    upstream: str | None

    def stats(self) -> dict[str, Any]:
        from pytest_alma.llm.gateway_process import gateway_stats

        return gateway_stats(self.url, self.token)

    def mint(self, scope: str) -> str:
        """A token of ``scope`` from that gateway (``token`` is its admin token)."""
        from pytest_alma.llm.tokens import mint_token

        return mint_token(self.url, self.token, scope)

    def accounting(self) -> Any:
        from pytest_alma.llm.accounting import Accounting

        return Accounting.from_json(self.stats()["accounting"])

    def stop(self) -> None:
        """The gateway belongs to the session that started this one."""


def attached_gateway() -> AttachedGateway | None:
    """The gateway to attach to, when this session is a search sub-session.

    The document holds the admin token of the session's gateway: it is taken out of this
    process's environment (and overwritten in the block ``/proc/<pid>/environ`` shows) before
    any worker starts, so the sub-session's workers, and their design processes, never see it.
    """
    raw = os.environ.get(ATTACH_ENV)
    if not raw or raw == SUBSESSION_MARK:
        return None
    from pytest_alma.llm.key_handoff import wipe_initial_environment

    # What stays says only "this is a sub-session" (it never searches or gates itself).
    os.environ[ATTACH_ENV] = SUBSESSION_MARK
    wipe_initial_environment([ATTACH_ENV])
    data = json.loads(raw)
    return AttachedGateway(
        url=str(data["gateway_url"]),
        token=str(data["gateway_token"]),
        model=str(data["model"]),
        test_double=bool(data["test_double"]),
        upstream=data.get("upstream"),
    )


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
