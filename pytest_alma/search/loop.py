"""The search loop: seed the archive, draw parents, and take each child through its steps.

One generation: draw ``k`` parents (visit-penalised softmax), then for each parent, in parallel:
analysis, code generation, novelty check, the verification cascade (static checks, an isolated
import, a smoke sub-session with the Hypothesis contract and a few episodes) with up to
``--alma-search-repairs`` repairs each tested, evaluation in a full sub-session, and the design
file written to the designs directory. Every step's result is committed to the archive before the
next step starts (see :mod:`pytest_alma.search.archive`), so a killed search resumes where it
stopped; LLM calls repeated by a resumed step are answered by the response cache.

The budget (``--alma-budget-usd``) is checked at every generation boundary: a generation starts
only when the spend so far plus the cost of the most expensive generation so far fits. If the
gateway still refuses a call inside a generation, the affected children stop where they are
(status ``budget``) and resume there once there is budget again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_alma.llm.pricing import PriceTable
from pytest_alma.search import archive as A
from pytest_alma.search.archive import Archive
from pytest_alma.search.child import ChildSteps, first_line
from pytest_alma.search.evidence import (
    evaluation_cost,
    heldout_tasks,
)
from pytest_alma.search.novelty import source_digest
from pytest_alma.search.selection import SelectionParams, draw, new_rng, rng_from_state, rng_state
from pytest_alma.search.subsession import failure_text
from pytest_alma.settings import AlmaSettings

BASELINE = "no_memory"


@dataclass
class SearchContext:
    """What the search needs from the session that ran before it."""

    settings: AlmaSettings
    rootdir: Path
    store: Path
    run_dir: Path
    results: dict[str, Any]
    attach: dict[str, Any]
    workers: int
    model: str
    test_double: bool
    stats: Callable[[], dict[str, Any]]
    design_dirs: list[Path]
    progress: Callable[[str], None] = print
    prices: PriceTable = field(default_factory=PriceTable.default)


@dataclass
class SearchOutcome:
    """What the search did in this invocation (for the terminal summary)."""

    generations: list[int] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    stopped: str | None = None
    archive: Path | None = None
    meta_usd: float = 0.0
    eval_usd: float = 0.0


def settings_key(settings: AlmaSettings, results: dict[str, Any]) -> dict[str, Any]:
    """What makes rewards comparable: tasks, protocol, model and held-out fraction."""
    recorded = results.get("settings", {})
    return {
        "envs": list(settings.envs),
        "split": settings.split,
        "limit": settings.limit,
        "train_size": settings.train_size,
        "repeats": settings.repeats,
        "rollout": settings.rollout,
        "seed": settings.seed,
        "max_steps": settings.max_steps,
        "history": settings.history,
        "memory_cap": settings.memory_cap,
        "model": results.get("model"),
        "environments": recorded.get("environments", {}),
        "heldout": settings.search.heldout,
    }


class Search(ChildSteps):
    """One ``--alma-search`` invocation over an archive."""

    def __init__(self, ctx: SearchContext) -> None:
        self.ctx = ctx
        self.s = ctx.settings.search
        path = Path(self.s.archive) if self.s.archive else ctx.store / "search" / "archive.sqlite3"
        self.archive_path = path if path.is_absolute() else ctx.rootdir / path
        out = Path(self.s.out) if self.s.out else ctx.design_dirs[0]
        self.out_dir = out if out.is_absolute() else ctx.rootdir / out
        self.work_dir = self.archive_path.parent / "work"
        self.meta_model = self.s.meta_model or ctx.model
        self.params = SelectionParams(self.s.temperature, self.s.visit_penalty, self.s.normalise)
        self.archive = Archive(self.archive_path)
        self.outcome = SearchOutcome(archive=self.archive_path)
        self.baseline: float = 0.0
        self.heldout: dict[str, set[str]] = {}

    # -- set-up ------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Bind the settings, fix the held-out tasks and the No Memory reward, seed the archive."""
        self.archive.bind_settings(settings_key(self.ctx.settings, self.ctx.results))
        held = self.archive.get_meta("heldout")
        if held is None:
            held = self._choose_heldout()
            self.archive.set_meta("heldout", held)
        self.heldout = {env: set(ids) for env, ids in held.items()}
        baseline = self.archive.get_meta("baseline")
        if baseline is None:
            baseline = self._baseline_reward()
            self.archive.set_meta("baseline", baseline)
        self.baseline = float(baseline)
        if self.archive.get_meta("rng_state") is None:
            self.archive.set_meta("rng_state", rng_state(new_rng(self.ctx.settings.seed)))
        if self.s.root == "designs":
            self._seed_from_session()

    def _choose_heldout(self) -> dict[str, list[str]]:
        tasks: dict[str, set[str]] = {}
        for e in self.ctx.results.get("episodes", []):
            if e.get("phase") == "deploy":
                tasks.setdefault(e["task"]["env"], set()).add(e["task"]["task_id"])
        return {
            env: sorted(heldout_tasks(ids, self.s.heldout, self.ctx.settings.seed))
            for env, ids in sorted(tasks.items())
        }

    def _baseline_reward(self) -> float:
        reward = self._reward(self.ctx.results, BASELINE)
        if reward is not None:
            return reward.mean
        # The session did not run No Memory (e.g. `pytest designs/`): evaluate it once.
        from pytest_alma.baseline_fixtures import baseline_path

        source = baseline_path(BASELINE, self.ctx.rootdir).read_text(encoding="utf-8")
        self.ctx.progress("search: evaluating no_memory (the normalisation baseline)")
        result = self._subsession("baseline", BASELINE, source, smoke=False)
        reward = self._reward(result.results or {}, BASELINE)
        if reward is None:
            raise RuntimeError(
                "the search needs No Memory's score and its evaluation failed:\n"
                + failure_text(result)
            )
        return reward.mean

    def _seed_from_session(self) -> None:
        """Every design the session evaluated joins the archive as a seed (once, by content)."""
        names = sorted({e["design"] for e in self.ctx.results.get("episodes", [])} - {BASELINE})
        for name in names:
            path = self._design_file(name)
            reward = self._reward(self.ctx.results, name)
            if path is None or reward is None:
                continue
            source = path.read_text(encoding="utf-8")
            digest = source_digest(source)
            with self.archive.transaction() as db:
                if self.archive.by_hash(digest) is not None:
                    continue  # already known (e.g. a design this search wrote earlier)
                dollars, tokens = evaluation_cost(self.ctx.results, name)
                self.archive.add_candidate(
                    db,
                    id=f"seed:{name}",
                    generation=0,
                    origin="seed",
                    status=A.SEED,
                    name=name,
                    source=source,
                    source_hash=digest,
                    reward=reward.mean,
                    reward_low=reward.low,
                    reward_high=reward.high,
                    reward_n=reward.n,
                    scores=json.dumps(reward.per_env),
                    run_dir=str(self.ctx.run_dir),
                    eval_cost_usd=dollars,
                    eval_tokens=tokens,
                    path=str(path),
                    model=self.ctx.model,
                )

    def _design_file(self, name: str) -> Path | None:
        for directory in self.ctx.design_dirs:
            matches = sorted(directory.rglob(f"{name}.py"))
            if matches:
                return matches[0]
        return None

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> SearchOutcome:
        """Resume an unfinished generation, then run new ones up to ``--alma-search-steps``."""
        try:
            self.prepare()
            done = 0
            open_generation = self.archive.open_generation()
            if open_generation is not None:
                self.ctx.progress(f"search: resuming generation {open_generation.number}")
                self._run_generation(open_generation.number)
                done += 1
            while done < self.s.steps and self.outcome.stopped is None:
                if not self._budget_allows():
                    break
                number = self._start_generation()
                if number is None:
                    break
                self._run_generation(number)
                done += 1
        finally:
            self.archive.close()
        return self.outcome

    def _start_generation(self) -> int | None:
        # Generation 0 is where the archive started (the seeds, or the design written from
        # scratch); children of drawn parents are generations 1, 2, ...
        number = max((g.number for g in self.archive.generations()), default=0) + 1
        candidates = self.archive.selectable()
        if not candidates:
            number = 0 if not self.archive.generations() else number
            if self.s.root != "scratch" and self.archive.candidates():
                self.outcome.stopped = (
                    "no design can be drawn as a parent (none has code and a score); "
                    "run the session with designs to seed from, or --alma-search-root scratch"
                )
                return None
            # The reference's start: the first design is written from scratch.
            self.archive.start_generation(
                number,
                [],
                [],
                None,
                None,
                [self._slot(number, 0, None, A.ANALYSED, origin="scratch")],
            )
            self.ctx.progress(f"search: generation {number}: writing a first design from scratch")
            return number
        state = self.archive.get_meta("rng_state")
        rng = rng_from_state(state)
        parents, table = draw(
            [{"id": c.id, "reward": c.reward, "visits": c.visits} for c in candidates],
            self.s.children,
            rng,
            self.baseline,
            self.params,
        )
        children = [self._slot(number, i, p, A.PENDING) for i, p in enumerate(parents)]
        self.archive.start_generation(number, parents, table, state, rng_state(rng), children)
        self.ctx.progress(f"search: generation {number}: parents {', '.join(parents)}")
        return number

    def _slot(
        self, number: int, index: int, parent: str | None, status: str, origin: str = "child"
    ) -> dict[str, Any]:
        return {
            "id": f"g{number}.{index}",
            "generation": number,
            "slot": index,
            "parent": parent,
            "origin": origin,
            "status": status,
            "model": self.meta_model,
        }

    def _run_generation(self, number: int) -> None:
        children = [c.id for c in self.archive.children_of_generation(number)]
        workers = max(1, min(len(children), 3))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="alma-search") as pool:
            list(pool.map(self._advance_safely, children))
        final = [self.archive.candidate(c) for c in children]
        unfinished = [c for c in final if c is not None and c.status not in A.TERMINAL]
        budget_stopped = [c for c in unfinished if c.status == A.BUDGET]
        if budget_stopped:
            self.outcome.stopped = (
                f"the budget (--alma-budget-usd {self.ctx.settings.budget_usd}) ran out in "
                f"generation {number}: {len(budget_stopped)} child(ren) stopped where they were "
                "and resume on the next run with budget left"
            )
        if not unfinished:
            self.archive.finish_generation(number)
        elif not budget_stopped:
            self.outcome.stopped = (
                f"generation {number} is unfinished ({', '.join(c.id for c in unfinished)}: "
                f"{'; '.join(str(c.reason) for c in unfinished)}); the next run resumes it"
            )
        self.outcome.generations.append(number)
        for c in final:
            if c is None:
                continue
            if c.status == A.WRITTEN:
                self.outcome.written.append(c.path or c.id)
            elif c.status == A.FAILED:
                self.outcome.failed.append(f"{c.id} ({c.stage}: {first_line(c.reason)})")
            elif c.status == A.DUPLICATE:
                self.outcome.duplicates.append(f"{c.id} (of {c.duplicate_of})")
            self.outcome.meta_usd += c.meta_cost_usd
            self.outcome.eval_usd += c.eval_cost_usd

    def _budget_allows(self) -> bool:
        budget = self.ctx.settings.budget_usd
        if budget is None:
            return True
        # What the gateway's cap counts: spent plus the worst case of attempts a provider may
        # still bill (retries, timeouts); older stats have only spent_usd.
        stats = self.ctx.stats()
        spent = float(stats.get("charged_usd", stats.get("spent_usd")) or 0.0)
        costs = [self._generation_cost(g.number) for g in self.archive.generations()]
        projected = max(costs, default=0.0)
        if spent >= budget or spent + projected > budget:
            self.outcome.stopped = (
                f"budget: ${spent:.4f} of ${budget:.4f} spent and the most expensive generation "
                f"so far cost ${projected:.4f}; stopping at this generation boundary (the "
                "archive is complete; raise --alma-budget-usd and run again to continue)"
            )
            return False
        return True

    def _generation_cost(self, number: int) -> float:
        return sum(
            c.meta_cost_usd + c.eval_cost_usd for c in self.archive.children_of_generation(number)
        )


def lineage_nodes(path: Path) -> list[dict[str, Any]]:
    """The archive as nodes for the lineage chart (id, name, parent, generation, status, reward)."""
    archive = Archive(path)
    try:
        return [
            {
                "id": c.id,
                "name": c.name or c.id,
                "parent": c.parent,
                "generation": c.generation,
                "status": c.status,
                "reward": c.reward if c.status not in (A.FAILED, A.DUPLICATE) else None,
            }
            for c in archive.candidates()
        ]
    finally:
        archive.close()


def run_search(ctx: SearchContext) -> SearchOutcome:
    """Run the search of one session (see :class:`Search`)."""
    return Search(ctx).run()


__all__ = ["Search", "SearchContext", "SearchOutcome", "lineage_nodes", "run_search"]
