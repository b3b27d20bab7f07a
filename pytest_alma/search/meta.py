"""The meta-agent's three LLM calls: analyse a parent, write a child, repair a failing child.

Every call goes through the session's gateway (cached, budgeted, accounted under the tags
``meta.analysis``, ``meta.generate`` and ``meta.repair``). The analysis must match a real JSON
schema (:data:`~pytest_alma.search.prompts.ANALYSIS_SCHEMA`); an invalid answer is re-asked
with the validation error, up to ``retries`` times, and only then is the candidate failed
(the reference crashed on the first bad JSON after counting the parent's visit). SEARCH/REPLACE
edits that do not match are re-asked once with the closest region of the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from pytest_alma.llm.client import LLMClient
from pytest_alma.llm.errors import LLMUnavailableError
from pytest_alma.llm.pricing import PriceTable
from pytest_alma.search import prompts
from pytest_alma.search.edits import (
    EditFormatError,
    EditMismatchError,
    apply_edits,
    edit_reprompt,
    extract_code,
    parse_edits,
)


class MetaAgentError(RuntimeError):
    """The meta-model's answer stayed unusable after the retries; ``stage`` says which call."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


@dataclass
class MetaSpend:
    """What one candidate's meta-agent calls cost."""

    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    unknown_price_calls: int = 0


@dataclass
class MetaAgent:
    """The meta-agent of one candidate (one client, one spend counter).

    Args:
        client: a gateway client for the meta-model.
        envs: the environments searched (their descriptions go into every prompt).
        edit_format: ``"full"`` (whole files) or ``"edits"`` (SEARCH/REPLACE blocks).
        prices: the price table, to turn the calls' tokens into dollars.
        retries: re-asks of an analysis that does not match the schema.
    """

    client: LLMClient
    envs: list[str]
    edit_format: str = "full"
    prices: PriceTable = field(default_factory=PriceTable.default)
    retries: int = 2
    spend: MetaSpend = field(default_factory=MetaSpend)
    #: Whether to ask for JSON mode; turned off when the server rejects ``response_format``
    #: (some OpenAI-compatible servers answer it with HTTP 400).
    json_mode: bool = True

    async def _ask(self, messages: Sequence[dict[str, str]], tag: str, **kw: Any) -> str:
        reply = await self.client.chat(messages, tag=tag, **kw)
        self.spend.calls += 1
        self.spend.tokens += reply.usage.total
        if not reply.cached:  # a cache hit cost nothing now
            # Priced as the gateway prices it: by the model the request named (the reply names
            # the dated snapshot that served it, which may be priced differently or not at
            # all), with its cached prompt tokens at the cached rate.
            cost = self.prices.cost(reply.requested_model or reply.model, reply.usage.to_openai())
            if cost is None:
                self.spend.unknown_price_calls += 1
            else:
                self.spend.cost_usd += cost
        return reply.text

    async def _ask_json(self, messages: Sequence[dict[str, str]]) -> str:
        if self.json_mode:
            try:
                return await self._ask(
                    messages, "meta.analysis", response_format={"type": "json_object"}
                )
            except LLMUnavailableError as exc:
                if "HTTP 400" not in str(exc):
                    raise
                self.json_mode = False  # the prompt asks for JSON anyway; the schema checks it
        return await self._ask(messages, "meta.analysis")

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embeddings (for the novelty check), counted in this candidate's meta spend."""
        vectors = await self.client.embed(texts, tag="meta.novelty")
        for record in self.client.take_usage().records:
            if record.kind != "embed":  # chat calls were counted as they were answered
                continue
            self.spend.calls += 1
            self.spend.tokens += record.embedding_tokens
            if not record.cached:
                model = record.requested_model or record.model
                cost = self.prices.cost(model, {"prompt_tokens": record.embedding_tokens})
                if cost is None:
                    self.spend.unknown_price_calls += 1
                else:
                    self.spend.cost_usd += cost
        return vectors

    async def analyse(
        self,
        *,
        name: str,
        source: str,
        score_line: str,
        episodes_text: str,
        parent_change: str | None,
    ) -> dict[str, Any]:
        """The review of a parent design, validated against the analysis schema."""
        messages = [
            {"role": "system", "content": prompts.analysis_system(self.envs)},
            {
                "role": "user",
                "content": prompts.analysis_user(
                    name=name,
                    source=source,
                    score_line=score_line,
                    episodes_text=episodes_text,
                    parent_change=parent_change,
                ),
            },
        ]
        problem = ""
        for _ in range(self.retries + 1):
            text = await self._ask_json(messages)
            try:
                return validate_analysis(text)
            except ValueError as exc:
                problem = str(exc)
                messages = [
                    *messages,
                    {"role": "assistant", "content": text},
                    {
                        "role": "user",
                        "content": f"That answer is not usable: {problem}. Answer again with "
                        "ONE JSON object with exactly the keys asked for.",
                    },
                ]
        raise MetaAgentError(
            "analysis",
            f"the analysis did not match the schema after {self.retries + 1} tries: {problem}",
        )

    async def write_child(
        self,
        *,
        parent_name: str | None,
        parent_source: str | None,
        score_line: str,
        analysis: dict[str, Any] | None,
    ) -> str:
        """The child's whole source (from a full file, or the parent with the edits applied)."""
        edits = self.edit_format == "edits" and parent_source is not None
        messages = [
            {
                "role": "system",
                "content": prompts.code_system(self.envs, self.edit_format if edits else "full"),
            },
            {
                "role": "user",
                "content": prompts.code_user(
                    parent_name=parent_name,
                    parent_source=parent_source,
                    score_line=score_line,
                    analysis=analysis,
                ),
            },
        ]
        text = await self._ask(messages, "meta.generate")
        if not edits:
            return _code_or_fail(text, "generate")
        assert parent_source is not None
        try:
            return apply_edits(parent_source, parse_edits(text))
        except (EditMismatchError, EditFormatError) as exc:
            # One re-prompt that says which block failed and shows the closest region.
            retry = [
                *messages,
                {"role": "assistant", "content": text},
                {"role": "user", "content": edit_reprompt(exc)},
            ]
            second = await self._ask(retry, "meta.generate")
            try:
                return apply_edits(parent_source, parse_edits(second))
            except (EditMismatchError, EditFormatError) as again:
                raise MetaAgentError(
                    "generate", f"the edits did not apply twice: {again}"
                ) from None

    async def repair(self, *, source: str, stage: str, failure: str) -> str:
        """A fixed version of ``source`` given the failure of ``stage``."""
        messages = [
            {"role": "system", "content": prompts.repair_system(self.envs)},
            {
                "role": "user",
                "content": prompts.repair_user(source=source, stage=stage, failure=failure),
            },
        ]
        return _code_or_fail(await self._ask(messages, "meta.repair"), "repair")


def _code_or_fail(text: str, stage: str) -> str:
    code = extract_code(text)
    if not code.strip():
        raise MetaAgentError(stage, "the meta-model answered with no code")
    return code.strip() + "\n"


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


def validate_analysis(text: str) -> dict[str, Any]:
    """Parse and validate an analysis answer; ``ValueError`` says what is wrong."""
    body = text.strip()
    if body.startswith("```"):
        body = _FENCE.sub("", body).strip()
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"it is not JSON ({exc.msg} at line {exc.lineno})") from None
    try:
        jsonschema.validate(data, prompts.ANALYSIS_SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the top level"
        raise ValueError(f"at {where}: {exc.message}") from None
    result: dict[str, Any] = data
    return result


def analysis_summary(analysis: dict[str, Any] | None, limit: int = 5) -> list[str]:
    """The suggested changes as short lines, highest priority first (for file headers)."""
    if not analysis:
        return []
    order = {"High": 0, "Medium": 1, "Low": 2}
    changes = sorted(
        analysis.get("suggested_changes", []), key=lambda c: order.get(c.get("priority"), 3)
    )
    return [f"[{c.get('priority')}] {c.get('what')}" for c in changes[:limit]]
