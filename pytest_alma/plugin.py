"""The pytest plugin (entry point ``pytest11: alma``). Thin glue; the work lives elsewhere.

Import-light on purpose: pytest imports this module in every run of every project where
pytest-alma is installed, so it imports only pytest and the standard library at module level and
does nothing unless design files are in the session's scope.

Hooks, in the order they fire:
- ``pytest_addoption``: the ``--alma-*`` options (group ``alma``), each with an ini twin.
- ``pytest_configure``: resolve settings; on the controller, when design directories are in
  scope, start the LLM services (scripted model if selected, the gateway) for the session.
- ``pytest_configure_node`` (xdist): hand the gateway URL, token and run id to each worker.
- ``pytest_collect_file``: design files become :class:`~pytest_alma.collect.DesignFile`.
- ``pytest_runtest_logreport`` (controller): gather episode results from reports, appending
  each to the run's journal (``episodes.jsonl``, see :mod:`pytest_alma.runlog`) as it arrives.
- ``pytest_sessionfinish`` (controller): give every failed deployment item that brought no
  episode (a crashed worker, a design file that does not load) its episodes as failures, then
  write ``results.json`` and ``summary.md`` (marked partial when the session was interrupted:
  SIGTERM is turned into KeyboardInterrupt so that this hook still runs).
- ``pytest_terminal_summary``: print the comparison table.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_alma.settings import OPTIONS, AlmaSettings, SettingsError, resolve

if TYPE_CHECKING:
    from pytest_alma.gate import GateSession
    from pytest_alma.runlog import RunLog
    from pytest_alma.runner import Harness
    from pytest_alma.session import ControllerServices

WORKERINPUT_KEY = "alma_harness_config"

#: A user property of an item that failed before it could play its episodes (a design file
#: that does not load): ``{"error": ..., "error_kind": ...}`` for the controller's records.
FAILURE_PROPERTY = "alma_failure"


@dataclass(frozen=True)
class ItemFailure:
    """Why a failed item failed, as the controller saw it (for the episodes it never sent)."""

    error: str
    kind: str


class SessionState:
    """Per-session plugin state, kept in ``config.stash``."""

    def __init__(self, config: pytest.Config, settings: AlmaSettings) -> None:
        self.config = config
        self.settings = settings
        self.active = False
        self.services: ControllerServices | None = None
        self.harness_config: dict[str, Any] | None = None
        self._harness: Harness | None = None
        self.episodes: list[dict[str, Any]] = []
        self.builds: dict[str, dict[str, Any]] = {}
        self.collections: dict[str, dict[str, Any]] = {}
        #: Node ids of the items that failed (any phase), in the order they failed.
        self.failed_items: list[str] = []
        #: Why each failed item failed (its report's text, or what the item attached).
        self.failure_details: dict[str, ItemFailure] = {}
        #: Items whose reports carried episode records (the others get failure records).
        self.items_with_episodes: set[str] = set()
        #: Node ids of the selected items (from the workers' collections under xdist) and of
        #: the items that reported: a selected item that never reported never ran.
        self.selected_items: set[str] = set()
        self.reported_items: set[str] = set()
        self.summary_lines: list[str] = []
        self.run_log: RunLog | None = None
        #: Set when SIGTERM stopped the session (results are then partial).
        self.terminated = False
        self.previous_sigterm: Any = None

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    def harness(self) -> Harness:
        """This process's harness (created on first use)."""
        if self._harness is None:
            from pytest_alma.runner import Harness
            from pytest_alma.session import harness_config_from_json

            if self.harness_config is None:
                raise pytest.UsageError(
                    "pytest-alma was not started for this session: design files are collected "
                    "only when a design directory (--alma-designs) is among the paths pytest runs"
                )
            self._harness = Harness(harness_config_from_json(self.harness_config, self.settings))
        return self._harness

    def close(self) -> None:
        if self.previous_sigterm is not None:
            with contextlib.suppress(ValueError):  # (not the main thread)
                signal.signal(signal.SIGTERM, self.previous_sigterm)
            self.previous_sigterm = None
        if self.run_log is not None:
            self.run_log.close()
            self.run_log = None
        if self._harness is not None:
            self._harness.close()
            self._harness = None
        if self.services is not None:
            self.services.stop()
            self.services = None


STATE_KEY = pytest.StashKey[SessionState]()


def get_session_state(config: pytest.Config) -> SessionState:
    """The plugin state of ``config``'s session."""
    return config.stash[STATE_KEY]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("alma", "pytest-alma: memory designs for LLM agents")
    for option in OPTIONS:
        extra = f" [choices: {', '.join(option.choices)}]" if option.choices else ""
        help_text = f"{option.help}{extra} (env {option.env_var}, ini {option.ini})"
        # argparse %-formats option help ("%(default)s"): a bare % ("mean:5%") would crash
        # `pytest --help` in every project of a virtualenv where the plugin is installed.
        help_text = help_text.replace("%", "%%")
        if option.switch:
            group.addoption(
                option.flag,
                dest=option.dest,
                default=None,
                action="store_const",
                const="1",
                help=help_text,
            )
        else:
            group.addoption(option.flag, dest=option.dest, default=None, help=help_text)
        parser.addini(option.ini, help=option.help, default=None)


def _read_settings(config: pytest.Config) -> AlmaSettings:
    cli = {o.name: config.getoption(o.dest) for o in OPTIONS}
    ini = {o.name: config.getini(o.ini) for o in OPTIONS}
    try:
        settings = resolve(cli, ini)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    if os.environ.get("PYTEST_ALMA_ATTACH"):
        # A search sub-session evaluates one candidate: it never searches or gates itself,
        # whatever the project's ini or environment says.
        import dataclasses

        from pytest_alma.settings import GateSettings, SearchSettings

        settings = dataclasses.replace(settings, search=SearchSettings(), gate=GateSettings())
    return settings


def _design_dirs(config: pytest.Config, settings: AlmaSettings) -> list[Path]:
    root = Path(config.rootpath)
    return [(root / d).resolve() for d in settings.designs]


def _in_scope(config: pytest.Config, settings: AlmaSettings) -> bool:
    """True when the session's paths include a design directory or a file inside one."""
    dirs = _design_dirs(config, settings)
    for arg in config.args:
        target = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        for d in dirs:
            related = target == d or d in target.parents or target in d.parents
            if related and d.exists():
                return True
    return False


def _lower_worker_priority(niceness: int) -> None:
    """Give this xdist worker a lower CPU priority than the controller's LLM gateway.

    Every LLM call of every worker passes through the one gateway process (and, offline, the one
    scripted-model process). When the workers outnumber the cores, a gateway that has to queue
    for a core delays all of them at once; measured at -n 16 on 2 cores, workers at niceness 10
    finish the same episodes about 10 % sooner. Workers spend most of their time waiting on the
    model, so they lose little by yielding.
    """
    if niceness and hasattr(os, "nice"):  # os.nice does not exist on Windows
        # Some containers forbid changing priority: then the workers run at the same priority.
        with contextlib.suppress(OSError):
            os.nice(niceness)


def _isolate_worker(settings: AlmaSettings) -> None:
    """Worker-only guards against designs (see ``docs/isolation.md``).

    Runs after this worker resolved its settings (they may come from ``ALMA_*`` variables that
    are removed here): credentials and the upstream URL leave the environment, and the address
    space is capped so that a design that allocates too much fails alone.
    """
    from pytest_alma import isolation

    isolation.scrub_worker_environment(settings.api_key_env)
    isolation.limit_worker_memory(settings.worker_memory_mb)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "alma: an episode or contract item generated by pytest-alma")
    from pytest_alma import baseline_fixtures  # light: pytest and pathlib only

    if not config.pluginmanager.is_registered(baseline_fixtures):
        config.pluginmanager.register(baseline_fixtures, "alma-baseline-fixtures")
    settings = _read_settings(config)
    state = SessionState(config, settings)
    config.stash[STATE_KEY] = state
    if state.is_worker:
        workerinput: dict[str, Any] = config.workerinput  # type: ignore[attr-defined]
        state.harness_config = workerinput.get(WORKERINPUT_KEY)
        state.active = state.harness_config is not None
        if state.active:
            _lower_worker_priority(settings.worker_nice)
            _isolate_worker(settings)
        return
    if not _in_scope(config, settings):
        return
    from pytest_alma.envs.base import UnknownEnvironmentError
    from pytest_alma.session import ControllerServices

    try:
        state.services = ControllerServices.start(config, settings)
    except (SettingsError, ValueError, UnknownEnvironmentError) as exc:
        raise pytest.UsageError(str(exc)) from None
    state.harness_config = state.services.harness_config_json()
    state.active = True
    from pytest_alma.runlog import RunLog

    state.run_log = RunLog(state.services.run_dir)
    state.run_log.write("run", state.services.header())
    _end_on_sigterm(state)
    config.pluginmanager.register(_ResultCollector(state), "alma-results")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(state), "alma-xdist")


def _end_on_sigterm(state: SessionState) -> None:
    """Turn the first SIGTERM into KeyboardInterrupt, so that pytest ends the session cleanly
    and ``pytest_sessionfinish`` writes results.json (partial) from what finished.

    A second SIGTERM is ignored while the session writes its results (SIGKILL still ends it;
    ``python -m pytest_alma report`` then rebuilds the results from the journal).

    An exception raised by a signal handler can be lost: when the signal arrives while the
    interpreter runs a garbage-collector callback (Hypothesis installs one), it is printed and
    dropped. :func:`pytest_runtest_protocol` then stops the session before the next item.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread

    def on_sigterm(signum: int, frame: object) -> None:
        if state.terminated:
            return
        state.terminated = True
        raise KeyboardInterrupt("SIGTERM")

    state.previous_sigterm = signal.signal(signal.SIGTERM, on_sigterm)


class _XdistHooks:
    """Hooks that exist only when pytest-xdist is installed (registered conditionally)."""

    def __init__(self, state: SessionState) -> None:
        self.state = state

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKERINPUT_KEY] = self.state.harness_config

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        # Every worker collects (and deselects) the same items; the controller collects none.
        self.state.selected_items.update(ids)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop before the next item once SIGTERM was received, even if its KeyboardInterrupt was
    lost (see :func:`_end_on_sigterm`)."""
    state = item.config.stash.get(STATE_KEY, None)
    if state is not None and state.terminated:
        raise KeyboardInterrupt("SIGTERM")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != ".py" or file_path.name.startswith("_"):
        return None
    state = parent.config.stash.get(STATE_KEY, None)
    if state is None or not state.active:
        return None
    resolved = file_path.resolve()
    for d in _design_dirs(parent.config, state.settings):
        if d in resolved.parents:
            from pytest_alma.collect import DesignFile

            design_file: pytest.Collector = DesignFile.from_parent(parent, path=file_path)
            return design_file
    return None


@pytest.fixture(scope="session")
def alma_harness(request: pytest.FixtureRequest) -> Harness:
    """The pytest-alma harness of this process (plays episodes, builds memory)."""
    return get_session_state(request.config).harness()


class _ResultCollector:
    """Controller-only hooks: gather episode results from every test report.

    xdist forwards worker reports to the controller's ``pytest_runtest_logreport``; this object
    is registered only on the controller, so results are counted exactly once.
    """

    def __init__(self, state: SessionState) -> None:
        self.state = state

    def _log(self, kind: str, data: Any, key: str | None = None) -> None:
        if self.state.run_log is not None:
            self.state.run_log.write(kind, data, key)

    def _failed(self, report: pytest.TestReport) -> None:
        self.state.failed_items.append(report.nodeid)
        if report.nodeid not in self.state.failure_details:
            from pytest_alma.failures import clip

            # A report with no call phase (a setup error, a crashed xdist worker: when "???")
            # says only what pytest saw; the kind is the harness's until known better.
            text = report.longreprtext.strip() or f"the item failed in its {report.when} phase"
            self.state.failure_details[report.nodeid] = ItemFailure(clip(text), "harness")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Without xdist the controller runs the items itself (under xdist it collects none).
        self.state.selected_items.update(item.nodeid for item in session.items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.state.reported_items.add(report.nodeid)
        if report.when != "call":
            # user_properties ride on the setup, call and teardown reports alike: read one.
            if report.failed:
                self._failed(report)
            return
        for name, value in report.user_properties:
            if name == "alma_episodes" and isinstance(value, list):
                self.state.episodes.extend(value)
                self.state.items_with_episodes.add(report.nodeid)
                for episode in value:
                    self._log("episode", episode)
            elif name == "alma_collection" and isinstance(value, dict):
                # Keyed by task: every design has the same collection items; keep the record
                # that says the episode was played (its tokens were spent then).
                key = json.dumps(value.get("task"), sort_keys=True)
                if key not in self.state.collections or value.get("played_now"):
                    if self.state.collections.get(key) != value:
                        self._log("collection", value, key)
                    self.state.collections[key] = value
            elif name == "alma_build" and isinstance(value, dict) and value:
                # One record per design and environment (a design runs on several).
                design, env = str(value.get("design")), value.get("env")
                key = design if env is None else f"{design}@{env}"
                if self.state.builds.get(key) != value:
                    self._log("build", value, key)
                self.state.builds[key] = value
            elif name == FAILURE_PROPERTY and isinstance(value, dict):
                self.state.failure_details[report.nodeid] = ItemFailure(
                    str(value.get("error")), str(value.get("error_kind") or "harness")
                )
        if report.failed:
            self._failed(report)

    def unreported_failures(self) -> list[dict[str, Any]]:
        """Failure records of the episodes of failed deploy and stream items that sent none.

        A worker that died mid-item (os._exit, a segfault, the OOM killer) sends a failed report
        without the item's properties, and a design file that does not load never plays: their
        episodes are found from the node id and the plan (``failures.item_episodes``), so that
        they count as failures instead of vanishing from the means.
        """
        from pytest_alma.failures import item_episodes, unplayed

        services = self.state.services
        if services is None:
            return []
        records: list[dict[str, Any]] = []
        for nodeid in dict.fromkeys(self.state.failed_items):
            if nodeid in self.state.items_with_episodes:
                continue
            design, episodes = item_episodes(nodeid, services.plans)
            failure = self.state.failure_details[nodeid]
            for episode in episodes:
                record = unplayed(
                    design,
                    episode,
                    run_seed=self.state.settings.seed,
                    error=failure.error,
                    kind=failure.kind,
                ).to_json()
                records.append(record)
                self._log("episode", record)
            self.state.items_with_episodes.add(nodeid)
        return records


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or not state.active or state.services is None:
        return None
    return state.services.header_lines()


#: The record / regression gate / replay state of the session (``pytest_alma.gate``).
GATE_KEY: pytest.StashKey[GateSession | None] = pytest.StashKey()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Record, gate and replay set-up (``--alma-record``, ``--alma-regression``,
    ``--alma-cache=replay-only``): before any item runs and before xdist starts its workers,
    so that a missing record or a settings mismatch fails fast, as a usage error."""
    config = session.config
    state = config.stash.get(STATE_KEY, None)
    if state is None or not state.active or os.environ.get("PYTEST_ALMA_ATTACH"):
        return  # (a search sub-session never records or gates: its parent does)
    from pytest_alma.gate import GateSession
    from pytest_alma.record import GateError

    try:
        config.stash[GATE_KEY] = GateSession.start(
            state.settings,
            worker=state.is_worker,
            rootdir=Path(config.rootpath),
            services=state.services,
        )
    except GateError as exc:
        raise pytest.UsageError(str(exc)) from None


def _gate_after_session(session: pytest.Session, state: SessionState) -> None:
    """Write the record or run the regression gate, now that results.json is written."""
    gate = session.config.stash.get(GATE_KEY, None)
    if gate is None:
        return
    from pytest_alma.gate import combine_exit_status

    results = state.services.run_dir / "results.json" if state.services is not None else None
    status = gate.finish(results, int(session.exitstatus))
    session.exitstatus = combine_exit_status(int(session.exitstatus), status)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE_KEY, None)
    if state is None or not state.active:
        return
    if state.is_worker:
        _gate_after_session(session, state)
        state.close()
        return
    collector = session.config.pluginmanager.get_plugin("alma-results")
    if isinstance(collector, _ResultCollector):
        state.episodes.extend(collector.unreported_failures())
    partial_reason = _partial_reason(session, state)
    # A session stopped before any episode finished still says so in a (partial) results.json.
    stopped_early = partial_reason is not None and state.run_log is not None
    if state.services is not None and (state.episodes or state.collections or stopped_early):
        state.summary_lines = state.services.finish(
            state.episodes,
            state.builds,
            list(state.collections.values()),
            partial_reason=partial_reason,
        )
        if state.settings.search.enabled:
            _search_after_session(session, state)
    _gate_after_session(session, state)


def _partial_reason(session: pytest.Session, state: SessionState) -> str | None:
    """Why the session's results do not cover every selected item (None: they do)."""
    if state.terminated:
        return "the session was stopped by SIGTERM: only the episodes that finished are counted"
    if session.exitstatus == pytest.ExitCode.INTERRUPTED:
        return "the session was interrupted: only the episodes that finished are counted"
    stopped = session.shouldfail or session.shouldstop
    if stopped:
        return f"the session stopped early ({stopped}): only the episodes that ran are counted"
    never_ran = state.selected_items - state.reported_items
    if never_ran:
        # xdist stops scheduling after too many crashed workers (--max-worker-restart); a
        # design that crashes its workers must not make the rest of the run vanish silently.
        return (
            f"{len(never_ran)} of {len(state.selected_items)} selected items never ran (the "
            "session stopped scheduling them, e.g. xdist's maximum of crashed workers was "
            "reached; see --max-worker-restart): only the episodes that ran are counted"
        )
    return None


def _search_after_session(session: pytest.Session, state: SessionState) -> None:
    """``--alma-search``: the meta-agent runs now that every worker is done (controller only)."""
    from pytest_alma.search.after_session import run_after_session

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def progress(line: str) -> None:  # live: a search takes minutes with a real model
        if reporter is not None:
            reporter.write_line(line)

    assert state.services is not None
    if reporter is not None:
        reporter.section("pytest-alma search", sep="-")
    state.summary_lines += run_after_session(
        state.services, _design_dirs(session.config, state.settings), progress
    )


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or not state.active or state.is_worker:
        return
    if state.summary_lines:
        terminalreporter.section("pytest-alma")
        for line in state.summary_lines:
            terminalreporter.write_line(line)
    gate = config.stash.get(GATE_KEY, None)
    if gate is not None and gate.lines:
        terminalreporter.section(gate.title)
        for line in gate.lines:
            terminalreporter.write_line(line)
    if gate is not None and gate.failures:
        # Counted on pytest's last line ("38 passed, 1 failed the gate"), as other plugins
        # count reruns: otherwise a session failed by the gate ends on a green "38 passed".
        terminalreporter.stats.setdefault("failed the gate", []).extend([gate] * gate.failures)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is not None:
        state.close()
