"""One child of a generation, step by step: analysis, code, novelty, verification, evaluation.

:class:`ChildSteps` is the part of :class:`~pytest_alma.search.loop.Search` that takes one
candidate from its archived status to the next, committing each step before the next starts, so
that a resumed search picks every child up where it stopped. Nothing a child does can end the
session or another child: failures of the candidate are archived as its failure; outages and our
own bugs leave the step to be resumed.
"""

from __future__ import annotations

import json
import math
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_alma import aio
from pytest_alma.llm.client import LLMClient
from pytest_alma.llm.errors import BudgetExceededError
from pytest_alma.sandbox.launch import Limits, choose_sandbox
from pytest_alma.search import archive as A
from pytest_alma.search.archive import Archive, Candidate
from pytest_alma.search.evidence import (
    Reward,
    episodes_for_analysis,
    evaluation_cost,
    reward_of,
)
from pytest_alma.search.import_check import check_import
from pytest_alma.search.meta import MetaAgent, MetaAgentError, analysis_summary
from pytest_alma.search.novelty import find_near_duplicate, normalised_source, source_digest
from pytest_alma.search.prompts import score_line
from pytest_alma.search.provenance import Provenance, design_name, write_design
from pytest_alma.search.static_checks import check_source
from pytest_alma.search.subsession import SubsessionResult, failure_text, run_subsession
from pytest_alma.settings import SearchSettings

if TYPE_CHECKING:
    from pytest_alma.search.loop import SearchContext


class BudgetStop(Exception):
    """The budget is spent: stop this child where it is."""


class ChildSteps:
    """The per-child steps of the search (a mixin of :class:`~pytest_alma.search.loop.Search`)."""

    ctx: SearchContext
    s: SearchSettings
    archive: Archive
    baseline: float
    heldout: dict[str, set[str]]
    meta_model: str
    work_dir: Path
    out_dir: Path

    def _reward(self, results: dict[str, Any], design: str) -> Reward | None:
        return reward_of(results, design, self.heldout or None)

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
            max_tokens=self.s.meta_max_tokens,
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
        settings = self.ctx.settings
        error = check_import(
            path,
            choose_sandbox(settings.sandbox),
            Limits(memory_mb=settings.design_memory_mb, cpu_s=settings.design_cpu_s),
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
        if budget is None:
            return False
        stats = self.ctx.stats()  # charged_usd: what the gateway's cap counts (see loop.py)
        return float(stats.get("charged_usd", stats.get("spent_usd")) or 0.0) >= budget

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
        self._say(f"search: {c.id}: failed at {stage}: {first_line(reason)}")


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


def first_line(text: str | None) -> str:
    """The first line of ``text`` (at most 200 characters), for one-line reports."""
    return (text or "").strip().splitlines()[0][:200] if (text or "").strip() else ""
