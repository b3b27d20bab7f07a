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
import math
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_alma import aio
from pytest_alma.llm.client import LLMClient
from pytest_alma.llm.errors import BudgetExceededError, LLMError
from pytest_alma.llm.pricing import PriceTable
from pytest_alma.search import archive as A
from pytest_alma.search.archive import Archive, Candidate
from pytest_alma.search.evidence import (
    Reward,
    episodes_for_analysis,
    evaluation_cost,
    heldout_tasks,
    reward_of,
)
from pytest_alma.search.import_check import check_import
from pytest_alma.search.meta import MetaAgent, MetaAgentError, analysis_summary
from pytest_alma.search.novelty import find_near_duplicate, normalised_source, source_digest
from pytest_alma.search.prompts import score_line
from pytest_alma.search.provenance import Provenance, design_name, write_design
from pytest_alma.search.selection import SelectionParams, draw, new_rng, rng_from_state, rng_state
from pytest_alma.search.static_checks import check_source
from pytest_alma.search.subsession import SubsessionResult, failure_text, run_subsession
from pytest_alma.settings import AlmaSettings

BASELINE = "no_memory"


class BudgetStop(Exception):
    """The budget is spent: stop this child where it is."""


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


class Search:
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

    def _reward(self, results: dict[str, Any], design: str) -> Reward | None:
        return reward_of(results, design, self.heldout or None)

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
                self.outcome.failed.append(f"{c.id} ({c.stage}: {_first_line(c.reason)})")
            elif c.status == A.DUPLICATE:
                self.outcome.duplicates.append(f"{c.id} (of {c.duplicate_of})")
            self.outcome.meta_usd += c.meta_cost_usd
            self.outcome.eval_usd += c.eval_cost_usd

    def _say(self, line: str) -> None:
        """A progress line with the spend so far (meta-agent and evaluation apart)."""
        candidates = self.archive.candidates()
        meta = sum(c.meta_cost_usd for c in candidates)
        evaluation = sum(c.eval_cost_usd for c in candidates if c.origin != "seed")
        try:
            spent = float(self.ctx.stats().get("spent_usd") or 0.0)
        except OSError:  # the gateway's stats are a nicety here, never a reason to stop
            spent = float("nan")
        budget = self.ctx.settings.budget_usd
        of = f" of ${budget:.4f}" if budget is not None else ""
        self.ctx.progress(
            f"{line}  [search spend: meta-agent ${meta:.4f}, evaluation ${evaluation:.4f}; "
            f"session ${spent:.4f}{of}]"
        )

    def _budget_allows(self) -> bool:
        budget = self.ctx.settings.budget_usd
        if budget is None:
            return True
        spent = float(self.ctx.stats().get("spent_usd") or 0.0)
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

    # -- one child ---------------------------------------------------------------------------

    def _advance_safely(self, candidate_id: str) -> None:
        """Advance one child; nothing it does can end the session or the other children."""
        try:
            self._advance(candidate_id)
        except BudgetStop:
            pass
        except Exception as exc:  # a bug or an outage: keep the step, say why, resume later
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self.archive.update(candidate_id, reason=f"interrupted: {detail}")
            self.ctx.progress(f"search: {candidate_id}: interrupted ({detail}); resumable")

    def _advance(self, candidate_id: str) -> None:
        loop = aio.new_event_loop()
        client = LLMClient(
            base_url=self.ctx.attach["gateway_url"],
            token=self.ctx.attach["gateway_token"],
            model=self.meta_model,
            seed=self.ctx.settings.seed,
            tag="meta",
            scope=f"search:{candidate_id}",
        )
        meta = MetaAgent(
            client=client,
            envs=list(self.ctx.settings.envs),
            edit_format=self.s.edit_format,
            prices=self.ctx.prices,
        )
        try:
            while True:
                c = self.archive.candidate(candidate_id)
                assert c is not None
                if c.status in A.TERMINAL:
                    return
                try:
                    self._step(c, meta, loop)
                except BudgetExceededError as exc:
                    self._stop_for_budget(c, str(exc))
                finally:
                    self._charge_meta(candidate_id, meta)
        finally:
            loop.run_until_complete(client.aclose())
            loop.close()

    def _charge_meta(self, candidate_id: str, meta: MetaAgent) -> None:
        if meta.spend.calls:
            c = self.archive.candidate(candidate_id)
            assert c is not None
            self.archive.update(
                candidate_id,
                meta_cost_usd=c.meta_cost_usd + meta.spend.cost_usd,
                meta_tokens=c.meta_tokens + meta.spend.tokens,
            )
            meta.spend.calls = 0
            meta.spend.cost_usd = 0.0
            meta.spend.tokens = 0

    def _stop_for_budget(self, c: Candidate, why: str) -> None:
        self.archive.update(c.id, status=A.BUDGET, resume_status=c.status, reason=why)
        self._say(f"search: {c.id}: stopped by the budget at '{c.status}'")
        raise BudgetStop(why)

    def _step(self, c: Candidate, meta: MetaAgent, loop: Any) -> None:
        if c.status == A.BUDGET:
            self.archive.update(c.id, status=c.resume_status or A.PENDING, resume_status=None)
        elif c.status == A.PENDING:
            self._analyse(c, meta, loop)
        elif c.status == A.ANALYSED:
            self._generate(c, meta, loop)
        elif c.status == A.GENERATED:
            self._verify(c, meta, loop)
        elif c.status == A.VERIFIED:
            self._evaluate(c)
        elif c.status == A.EVALUATED:
            self._write(c)
        else:
            raise RuntimeError(f"candidate {c.id} has an unknown status {c.status!r}")

    def _parent(self, c: Candidate) -> Candidate:
        parent = self.archive.candidate(c.parent) if c.parent else None
        if parent is None:
            raise RuntimeError(f"candidate {c.id}: parent {c.parent!r} is not in the archive")
        return parent

    def _analyse(self, c: Candidate, meta: MetaAgent, loop: Any) -> None:
        parent = self._parent(c)
        results = _read_results(parent.run_dir)
        episodes = episodes_for_analysis(results, parent.name or "", self.heldout or None)
        try:
            analysis = loop.run_until_complete(
                meta.analyse(
                    name=parent.name or parent.id,
                    source=parent.source or "",
                    score_line=self._score_line(parent),
                    episodes_text=episodes,
                    parent_change=self._change_text(parent),
                )
            )
        except MetaAgentError as exc:
            self._fail(c, exc.stage, str(exc))
            return
        self.archive.update(c.id, status=A.ANALYSED, analysis=json.dumps(analysis))
        self._say(f"search: {c.id}: analysed {parent.name}")

    def _score_line(self, c: Candidate) -> str:
        return score_line(c.reward, c.reward_low, c.reward_high, c.reward_n, self.baseline)

    def _change_text(self, parent: Candidate) -> str | None:
        """The grandparent's change that produced ``parent`` and how the score moved."""
        if not parent.parent or not parent.analysis:
            return None
        grand = self.archive.candidate(parent.parent)
        if grand is None or grand.reward is None or parent.reward is None:
            return None
        changes = "\n".join(f"- {line}" for line in analysis_summary(parent.analysis_json))
        return (
            f"It was made from `{grand.name}` (score {grand.reward:.3f}) by these changes:\n"
            f"{changes}\nThe score moved by {parent.reward - grand.reward:+.3f} "
            f"to {parent.reward:.3f}.\nThe parent's code was:\n```python\n{grand.source}\n```"
        )

    def _generate(self, c: Candidate, meta: MetaAgent, loop: Any) -> None:
        parent = self._parent(c) if c.parent else None
        try:
            code = loop.run_until_complete(
                meta.write_child(
                    parent_name=parent.name if parent else None,
                    parent_source=parent.source if parent else None,
                    score_line=self._score_line(parent) if parent else "",
                    analysis=c.analysis_json,
                )
            )
        except MetaAgentError as exc:
            self._fail(c, exc.stage, str(exc))
            return
        if self._claim_source(c, code, attempts=0, meta=meta, loop=loop):
            self._say(f"search: {c.id}: generated {design_name(c.generation, source_digest(code))}")

    def _claim_source(
        self, c: Candidate, code: str, attempts: int, meta: MetaAgent, loop: Any
    ) -> bool:
        """Store new code for ``c`` unless it duplicates archived code (atomically)."""
        digest = source_digest(code)
        embedding = self._embed_code(c, code, meta, loop)
        with self.archive.transaction() as db:
            others = {
                o.id: o.source
                for o in self.archive.candidates()
                if o.id != c.id and o.source is not None
            }
            near = find_near_duplicate(code, others, self.s.novelty)
            check = f"code similarity, threshold {self.s.novelty}"
            if near is None:
                near = self._near_by_embedding(c, embedding)
                check = f"code embedding cosine, threshold {self.s.novelty_embedding}"
            if near is not None:
                other, similarity = near
                self.archive.update(
                    c.id,
                    db,
                    status=A.DUPLICATE,
                    source=code,
                    source_hash=digest,
                    duplicate_of=other,
                    stage="novelty",
                    reason=f"{similarity:.3f} similar to {other} ({check})",
                )
                self.ctx.progress(f"search: {c.id}: rejected, a duplicate of {other}")
                return False
            self.archive.update(
                c.id,
                db,
                status=A.GENERATED,
                source=code,
                source_hash=digest,
                name=design_name(c.generation, digest),
                attempts=attempts,
                embedding=json.dumps(embedding) if embedding is not None else None,
            )
        return True

    def _embed_code(
        self, c: Candidate, code: str, meta: MetaAgent, loop: Any
    ) -> list[float] | None:
        """The embedding of ``code`` (and of archived code that has none yet), when the
        embedding novelty check is on."""
        if not self.s.novelty_embedding:
            return None
        missing = [
            o
            for o in self.archive.candidates()
            if o.id != c.id and o.source is not None and o.embedding is None
        ]
        texts = [normalised_source(o.source or "") for o in missing] + [normalised_source(code)]
        vectors = loop.run_until_complete(meta.embed(texts))
        for other, vector in zip(missing, vectors, strict=False):
            self.archive.update(other.id, embedding=json.dumps(vector))
        mine: list[float] = vectors[-1]
        return mine

    def _near_by_embedding(
        self, c: Candidate, embedding: list[float] | None
    ) -> tuple[str, float] | None:
        """The archived candidate whose code embedding is closest, if at least the threshold."""
        if embedding is None:
            return None
        best: tuple[str, float] | None = None
        for other in self.archive.candidates():
            if other.id == c.id or not other.embedding:
                continue
            score = _cosine(embedding, json.loads(other.embedding))
            if score >= self.s.novelty_embedding and (best is None or score > best[1]):
                best = (other.id, score)
        return best

    def _verify(self, c: Candidate, meta: MetaAgent, loop: Any) -> None:
        assert c.source is not None and c.name is not None
        stage, failure = self._cascade(c)
        self.archive.add_attempt(c.id, c.attempts, c.source, stage, failure is None, failure)
        if failure is None:
            self.archive.update(c.id, status=A.VERIFIED, stage=None, reason=None)
            self._say(f"search: {c.id}: verified (attempt {c.attempts + 1})")
            return
        self._say(f"search: {c.id}: {stage} failed (attempt {c.attempts + 1})")
        if c.attempts >= self.s.repairs:
            self._fail(c, stage, failure)
            return
        try:
            fixed = loop.run_until_complete(
                meta.repair(source=c.source, stage=stage, failure=failure)
            )
        except MetaAgentError as exc:
            self._fail(c, exc.stage, str(exc))
            return
        self._claim_source(c, fixed, attempts=c.attempts + 1, meta=meta, loop=loop)

    def _cascade(self, c: Candidate) -> tuple[str, str | None]:
        """The first stage that fails and why, or ``("smoke", None)`` when all pass."""
        assert c.source is not None and c.name is not None
        problems = check_source(c.source, self.s.forbidden_imports)
        if problems:
            return "static", "\n".join(str(p) for p in problems)
        path = self._candidate_file(c, f"a{c.attempts}")
        error = check_import(
            path, self.ctx.settings.worker_memory_mb, self.ctx.settings.api_key_env
        )
        if error is not None:
            return "import", error
        result = self._subsession(f"{c.id}/a{c.attempts}", c.name, c.source, smoke=True)
        if result.passed:
            return "smoke", None
        first = result.failures[0].nodeid if result.failures else ""
        return ("contract" if first.endswith("contract") else "smoke"), failure_text(result)

    def _candidate_file(self, c: Candidate, label: str) -> Path:
        assert c.source is not None and c.name is not None
        directory = self.work_dir / c.id / label
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.py"):
            old.unlink()
        path = directory / f"{c.name}.py"
        path.write_text(c.source, encoding="utf-8")
        return path

    def _subsession(self, label: str, name: str, source: str, *, smoke: bool) -> SubsessionResult:
        directory = self.work_dir / label / ("smoke" if smoke else "eval") / "design"
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.py"):
            old.unlink()
        (directory / f"{name}.py").write_text(source, encoding="utf-8")
        overrides = {"limit": str(self.s.smoke_tasks), "repeats": "1"} if smoke else None
        result = run_subsession(
            directory,
            rootdir=self.ctx.rootdir,
            store=self.ctx.store,
            reports=self.ctx.run_dir / "search" / label / ("smoke" if smoke else "eval"),
            attach=self.ctx.attach,
            settings=self.ctx.settings,
            workers=self.ctx.workers,
            overrides=overrides,
            deselect_contract=not smoke,
        )
        if self._budget_exhausted():
            raise BudgetExceededError("the session's budget ran out during a sub-session")
        return result

    def _budget_exhausted(self) -> bool:
        budget = self.ctx.settings.budget_usd
        return budget is not None and float(self.ctx.stats().get("spent_usd") or 0.0) >= budget

    def _evaluate(self, c: Candidate) -> None:
        assert c.source is not None and c.name is not None
        result = self._subsession(c.id, c.name, c.source, smoke=False)
        reward = self._reward(result.results or {}, c.name)
        if reward is None:
            self._fail(c, "evaluate", failure_text(result))
            return
        dollars, tokens = evaluation_cost(result.results or {}, c.name)
        self.archive.update(
            c.id,
            status=A.EVALUATED,
            reward=reward.mean,
            reward_low=reward.low,
            reward_high=reward.high,
            reward_n=reward.n,
            scores=json.dumps(reward.per_env),
            run_dir=str(result.run_dir),
            eval_cost_usd=c.eval_cost_usd + dollars,
            eval_tokens=c.eval_tokens + tokens,
        )
        self._say(
            f"search: {c.id}: {c.name} scored {reward.mean:.3f} [{reward.low:.3f}, "
            f"{reward.high:.3f}] (No Memory {self.baseline:.3f})"
            f"{' [scripted test double]' if self.ctx.test_double else ''}"
        )

    def _write(self, c: Candidate) -> None:
        assert c.source is not None and c.name is not None
        parent = self.archive.candidate(c.parent) if c.parent else None
        provenance = Provenance(
            name=c.name,
            candidate_id=c.id,
            parent=f"{parent.name} ({parent.id})" if parent else None,
            generation=c.generation,
            meta_model=c.model or self.meta_model,
            test_double=self.ctx.test_double,
            reward=c.reward,
            reward_low=c.reward_low,
            reward_high=c.reward_high,
            reward_n=c.reward_n,
            parent_reward=parent.reward if parent else None,
            baseline_reward=self.baseline,
            heldout=bool(self.s.heldout),
            changes=analysis_summary(c.analysis_json),
            repairs=c.attempts,
        )
        path = write_design(self.out_dir, c.source, provenance)
        self.archive.update(c.id, status=A.WRITTEN, path=str(path))
        self._say(f"search: {c.id}: wrote {path}")

    def _fail(self, c: Candidate, stage: str, reason: str) -> None:
        self.archive.update(c.id, status=A.FAILED, stage=stage, reason=reason)
        self._say(f"search: {c.id}: failed at {stage}: {_first_line(reason)}")


def _cosine(a: list[float], b: list[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=False)) / norm if norm else 0.0


def _read_results(run_dir: str | None) -> dict[str, Any]:
    if not run_dir:
        return {}
    path = Path(run_dir) / "results.json"
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:200] if (text or "").strip() else ""


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


__all__ = ["LLMError", "SearchContext", "SearchOutcome", "lineage_nodes", "run_search"]
