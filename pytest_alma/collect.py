"""Collection: a design file becomes a ``pytest.File`` whose items are the design's episodes.

Item ids are stable and readable and identical on every xdist worker::

    designs/example_rules.py::contract
    designs/example_rules.py::babaisai::collect[goto_win-s1234]
    designs/example_rules.py::babaisai::deploy[make_win-s99-r1]      (batched rollout)
    designs/example_rules.py::babaisai::stream[r1]                   (sequential rollout)

Collection episodes appear under every design so that xdist spreads them over workers and
``-k`` selects them; they are played once (under a lock) and read from disk by everyone else.
Collecting runs no design code: the design class is found from the file's syntax tree
(:mod:`pytest_alma.sandbox.static_find`); the module is imported later, in the design's own
process, under the time limit. A file without exactly one design class (or with a syntax error)
still yields its items, each failing with that error, so that one broken file never stops the
session; its deployment episodes are then counted as failures (``error_kind`` "design") by the
controller, which finds them from the item ids. A module that fails at import (raises, exits,
hangs, crashes) fails its own episodes, each a record with the import error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_alma.design import DesignError, DesignLoadError
from pytest_alma.protocol import DeployEpisode
from pytest_alma.records import EpisodeResult, Task
from pytest_alma.sandbox.static_find import DesignSpec, StaticFindError, find_design

USER_PROPERTY = "alma_episodes"
BUILD_PROPERTY = "alma_build"
COLLECTION_PROPERTY = "alma_collection"


class HarnessError(Exception):
    """A harness-side failure to report as plain text (no traceback into pytest internals)."""


class AlmaItem(pytest.Function):
    """A pytest Function whose failures from designs and the harness read as plain messages."""

    def repr_failure(  # type: ignore[override]
        self, excinfo: pytest.ExceptionInfo[BaseException]
    ) -> Any:
        # pytest.Function.repr_failure takes only excinfo; Node's adds a style we do not need.
        if isinstance(excinfo.value, DesignError | HarnessError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    @classmethod
    def from_parent(cls, parent: Any, **kw: Any) -> AlmaItem:
        item: AlmaItem = super().from_parent(parent, **kw)
        _align_structured_id(item)
        return item

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # Point at the design file (not at this module, where the test function lives); the
        # item name is the "domain" pytest appends to the file in verbose output.
        return self.path, None, self.name


def _align_structured_id(item: pytest.Item) -> None:
    """Make ``deploy[label]`` items match their own ids when pytest parses id strings.

    pytest 9.2 keeps a structured node id and parses id strings (the ``--lf`` cache,
    ``--deselect``) into a name and a ``[params]`` part; an item named ``deploy[x]`` that was not
    made by ``parametrize`` would keep ``deploy[x]`` as its name and never match its own cache
    entry. Older pytest versions have no structured id and need nothing.
    """
    current = getattr(item, "_id", None)
    parent_id = getattr(item.parent, "_id", None)
    if current is None or parent_id is None or not hasattr(current, "with_params"):
        return
    base, bracket, params = item.name.partition("[")
    if bracket and params.endswith("]"):
        # Through Any: pytest versions differ on whether Node declares ``_id``.
        node: Any = item
        node._id = parent_id.child(base).with_params(params[:-1])


class DesignFile(pytest.File):
    """A memory design module, collected as a test target.

    Its children are the ``contract`` item and one :class:`EnvironmentNode` per environment, so
    node ids nest as pytest expects (``-k``, ``--lf`` and ``--deselect`` work on every level).
    """

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        from pytest_alma.plugin import get_session_state

        state = get_session_state(self.config)
        try:
            self.loaded: DesignSpec | None = find_design(self.path)
            self.load_error: DesignError | None = None
        except StaticFindError as exc:
            self.loaded, self.load_error = None, DesignLoadError(str(exc))
        yield self.make_item(self, "contract", _contract_test(self.loaded))
        for env_name in state.settings.envs:
            yield EnvironmentNode.from_parent(self, name=env_name)

    def make_item(
        self, parent: pytest.Collector, name: str, body: Callable[..., None]
    ) -> pytest.Item:
        """An item that runs ``body``, or fails with the load error of a broken design file."""
        if self.load_error is not None:
            body = _failing(self.load_error)
        item: pytest.Item = AlmaItem.from_parent(parent, name=name, callobj=body)
        return item


class EnvironmentNode(pytest.Collector):
    """One environment's episodes of one design (collection, then deployment)."""

    def collect(self) -> Iterator[pytest.Item]:
        from pytest_alma.plugin import get_session_state

        design_file = self.parent
        assert isinstance(design_file, DesignFile)
        loaded = design_file.loaded
        state = get_session_state(self.config)
        plan = state.harness().plan(self.name)
        for task in plan.collection:
            yield design_file.make_item(self, f"collect[{task.label}]", _collect_test(task))
        if state.settings.rollout == "sequential":
            for repeat in range(1, plan.settings.repeats + 1):
                yield design_file.make_item(
                    self, f"stream[r{repeat}]", _stream_test(loaded, self.name, repeat)
                )
        else:
            for episode in plan.deployment:
                yield design_file.make_item(
                    self, f"deploy[{episode.label}]", _deploy_test(loaded, episode)
                )


def _failing(error: DesignError) -> Callable[..., None]:
    def design_load_failed(request: pytest.FixtureRequest) -> None:
        from pytest_alma.failures import clip
        from pytest_alma.plugin import FAILURE_PROPERTY

        # Tells the controller why this item's episodes (if any) were never played.
        failure = {"error": clip(f"design error: {error}"), "error_kind": "design"}
        request.node.user_properties.append((FAILURE_PROPERTY, failure))
        raise error

    return design_load_failed


def _attach(request: pytest.FixtureRequest, results: list[EpisodeResult]) -> None:
    # Plain JSON-able values only: they travel from xdist workers on the test report.
    request.node.user_properties.append((USER_PROPERTY, [r.to_json() for r in results]))


def _fail_on_errors(results: list[EpisodeResult]) -> None:
    errors = [r for r in results if r.error]
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more episodes)" if len(errors) > 1 else ""
        raise HarnessError(f"{first.task.task_id} r{first.repeat}: {first.error}{more}")


def _collect_test(task: Task) -> Callable[..., None]:
    def collection_episode(request: pytest.FixtureRequest, alma_harness: Any) -> None:
        from pytest_alma.llm.errors import LLMError

        try:
            trajectory, _ = alma_harness.collect(task)
        except LLMError as exc:
            message = f"collection episode {task.label}: {type(exc).__name__}: {exc}"
            raise HarnessError(message) from None
        record = alma_harness.collection_record(task)  # says whether this run played it
        request.node.user_properties.append((COLLECTION_PROPERTY, record))
        if trajectory.error:
            raise HarnessError(f"collection episode {task.label}: {trajectory.error}")

    return collection_episode


def _deploy_test(loaded: DesignSpec | None, episode: DeployEpisode) -> Callable[..., None]:
    def deployment_episode(request: pytest.FixtureRequest, alma_harness: Any) -> None:
        assert loaded is not None
        result = alma_harness.deploy(loaded, episode)
        _attach(request, [result])
        request.node.user_properties.append(
            (BUILD_PROPERTY, alma_harness.build_info(loaded, episode.task.env))
        )
        _fail_on_errors([result])

    return deployment_episode


def _stream_test(loaded: DesignSpec | None, env_name: str, repeat: int) -> Callable[..., None]:
    def sequential_stream(request: pytest.FixtureRequest, alma_harness: Any) -> None:
        assert loaded is not None
        results = alma_harness.stream(loaded, env_name, repeat)
        _attach(request, results)
        request.node.user_properties.append(
            (BUILD_PROPERTY, alma_harness.build_info(loaded, env_name))
        )
        _fail_on_errors(results)

    return sequential_stream


def _contract_test(loaded: DesignSpec | None) -> Callable[..., None]:
    def design_contract(alma_harness: Any) -> None:
        # Imported here: Hypothesis loads only when a contract item runs.
        from pytest_alma.contract.run import check_design

        assert loaded is not None
        settings = alma_harness.settings
        check_design(
            loaded,
            memory_cap=settings.memory_cap,
            call_timeout_s=settings.design_timeout or None,
            envs=tuple(settings.envs),
            sandbox=alma_harness.sandbox,
            limits=alma_harness.limits,
            process=alma_harness.design_process(loaded),
        )

    return design_contract
