"""The meta-agent's calls (schema validation, re-asks, edits), static checks and provenance."""

from __future__ import annotations

import ast
import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_alma.llm.accounting import TokenUsage
from pytest_alma.llm.client import ChatReply
from pytest_alma.llm.pricing import PriceTable
from pytest_alma.llm.scripted_meta import FIXABLE_MARK, ScriptedMetaPolicy, template_design
from pytest_alma.search import prompts
from pytest_alma.search.meta import MetaAgent, MetaAgentError, validate_analysis
from pytest_alma.search.provenance import Provenance, split_docstring, with_header
from pytest_alma.search.static_checks import check_source

GOOD = {
    "learned_from_parent_change": "",
    "memory_assessment": [{"episode": "1", "label": "Useful", "how_it_can_help": "x"}],
    "content_quality_issues": "",
    "structure_and_coherence": "",
    "suggested_changes": [{"priority": "High", "what": "Key on goals", "why": "reuse"}],
}


@dataclass
class CannedClient:
    """A stand-in for the gateway client: answers in order, records what it was asked."""

    replies: list[str]
    asked: list[Sequence[dict[str, str]]] = field(default_factory=list)

    async def chat(self, messages: Sequence[dict[str, str]], **kw: Any) -> ChatReply:
        self.asked.append(list(messages))
        return ChatReply(self.replies.pop(0), TokenUsage(100, 50, 0, 150), False, "priced")


def agent(replies: list[str], edit_format: str = "full") -> tuple[MetaAgent, CannedClient]:
    client = CannedClient(replies)
    prices = PriceTable.default().with_overrides({"priced": {"input": 10.0, "output": 20.0}})
    meta = MetaAgent(
        client=client,
        envs=["babaisai"],
        edit_format=edit_format,  # type: ignore[arg-type]
        prices=prices,
    )
    return meta, client


def analyse(meta: MetaAgent) -> dict[str, Any]:
    return asyncio.run(
        meta.analyse(
            name="d", source="x = 1", score_line="s", episodes_text="e", parent_change=None
        )
    )


def test_validate_analysis_accepts_the_schema_and_says_what_is_wrong() -> None:
    assert validate_analysis("```json\n" + json.dumps(GOOD) + "\n```") == GOOD
    with pytest.raises(ValueError, match="not JSON"):
        validate_analysis("Sure! Here is my analysis")
    broken = {**GOOD, "suggested_changes": [{"priority": "Urgent", "what": "x", "why": "y"}]}
    with pytest.raises(ValueError, match="suggested_changes/0/priority"):
        validate_analysis(json.dumps(broken))
    with pytest.raises(ValueError, match="should be non-empty|is too short"):
        validate_analysis(json.dumps({**GOOD, "suggested_changes": []}))


def test_an_invalid_analysis_is_re_asked_with_the_error_then_accepted() -> None:
    meta, client = agent(["not json at all", json.dumps(GOOD)])
    assert analyse(meta) == GOOD
    assert len(client.asked) == 2
    assert "not usable: it is not JSON" in client.asked[1][-1]["content"]
    # Two calls of 100 prompt + 50 completion tokens at $10 / $20 per million.
    assert meta.spend.calls == 2
    assert meta.spend.cost_usd == pytest.approx(2 * (100 * 10 + 50 * 20) / 1e6)


@dataclass
class SnapshotClient:
    """Answers as OpenAI does when asked for an alias: the reply names the dated snapshot."""

    usage: TokenUsage

    async def chat(self, messages: Sequence[dict[str, str]], **kw: Any) -> ChatReply:
        return ChatReply(
            json.dumps(GOOD), self.usage, False, "gpt-4o-2024-05-13", requested_model="gpt-4o"
        )


def test_a_meta_call_is_priced_as_requested_with_cached_input_at_the_cached_rate() -> None:
    # Asked for gpt-4o ($2.50 in, $1.25 cached, $10 out per 1M); answered by the dated snapshot
    # gpt-4o-2024-05-13, which lists at $5 / $15 with no cached rate. The call bills as gpt-4o.
    usage = TokenUsage(prompt=1000, completion=100, reasoning=0, total=1100, cached_prompt=400)
    meta = MetaAgent(client=SnapshotClient(usage), envs=["babaisai"])  # type: ignore[arg-type]
    analyse(meta)
    assert meta.spend.unknown_price_calls == 0
    # 600 uncached at 2.50 + 400 cached at 1.25 + 100 out at 10.00 (by hand).
    assert meta.spend.cost_usd == pytest.approx((600 * 2.50 + 400 * 1.25 + 100 * 10.00) / 1e6)


def test_an_analysis_that_stays_invalid_fails_the_analysis_stage() -> None:
    meta, _ = agent(["{}"] * 3)
    with pytest.raises(MetaAgentError, match="required property") as info:
        analyse(meta)
    assert info.value.stage == "analysis"


def test_edits_that_do_not_match_are_re_asked_once_with_the_closest_region() -> None:
    parent = "A = 1\nB = 2\n"
    wrong = "<<<<<<< SEARCH\nB = 3\n=======\nB = 4\n>>>>>>> REPLACE\n"
    right = "<<<<<<< SEARCH\nB = 2\n=======\nB = 4\n>>>>>>> REPLACE\n"
    meta, client = agent([wrong, right], edit_format="edits")
    child = asyncio.run(
        meta.write_child(parent_name="p", parent_source=parent, score_line="s", analysis=GOOD)
    )
    assert child == "A = 1\nB = 4\n"
    assert "B = 2" in client.asked[1][-1]["content"]  # the closest region is shown
    meta, _ = agent([wrong, wrong], edit_format="edits")
    with pytest.raises(MetaAgentError, match="did not apply twice"):
        asyncio.run(
            meta.write_child(parent_name="p", parent_source=parent, score_line="s", analysis=GOOD)
        )


def test_a_reply_without_code_fails_generation() -> None:
    meta, _ = agent([""])
    with pytest.raises(MetaAgentError, match="no code"):
        asyncio.run(
            meta.write_child(parent_name=None, parent_source=None, score_line="", analysis=None)
        )


def test_static_checks_name_the_problem() -> None:
    assert check_source(template_design("x"), ["subprocess"]) == []
    problems = [str(p) for p in check_source("import subprocess\nclass A: pass\n", ["subprocess"])]
    assert any("subprocess is forbidden" in p for p in problems)
    assert any("no class subclasses MemoryDesign" in p for p in problems)
    two = (
        "from pytest_alma import MemoryDesign\nclass A(MemoryDesign):\n    pass\n"
        "class B(MemoryDesign):\n    pass\n"
    )
    assert any("several design classes (A, B)" in str(p) for p in check_source(two, []))
    missing = "from pytest_alma import MemoryDesign\nclass A(MemoryDesign):\n    pass\n"
    assert [str(p) for p in check_source(missing, [])] == [
        "line 2: A does not define general_update",
        "line 2: A does not define general_retrieve",
    ]
    assert "syntax error" in str(check_source("def (:\n", [])[0])
    assert "calls eval()" in str(check_source("eval('1')\n", [])[0])
    sneaky = "from os import path\nimport importlib.util\n"
    assert any("importlib" in str(p) for p in check_source(sneaky, ["importlib"]))


def test_the_scripted_meta_policy_answers_each_role_deterministically() -> None:
    policy = ScriptedMetaPolicy()
    analysis_call = [
        {"role": "system", "content": prompts.analysis_system(["babaisai"])},
        {"role": "user", "content": "## Design `seed_a`\n..."},
    ]
    assert policy.matches(analysis_call)
    answer = validate_analysis(policy.reply(analysis_call, {}))
    assert "seed_a" in answer["memory_assessment"][0]["how_it_can_help"]
    code_call = [
        {"role": "system", "content": prompts.code_system(["babaisai"], "full")},
        {"role": "user", "content": "## Current design `p`\n```python\nX = 1\n```"},
    ]
    first = policy.reply(code_call, {})
    assert first == policy.reply(code_call, {})
    ast.parse(first.strip("`").removeprefix("python"))
    broken = "x = 1\nraise RuntimeError('bug')  " + FIXABLE_MARK + "\ny = 2"
    repair_call = [
        {"role": "system", "content": prompts.repair_system(["babaisai"])},
        {
            "role": "user",
            "content": prompts.repair_user(source=broken, stage="contract", failure="bug"),
        },
    ]
    assert "RuntimeError" not in policy.reply(repair_call, {})
    assert not policy.matches([{"role": "system", "content": "You play Baba Is You."}])


def test_provenance_header_replaces_the_docstring_and_keeps_the_code(tmp_path: Path) -> None:
    code = '"""Original notes."""\n\nfrom __future__ import annotations\n\nX = 1\n'
    p = Provenance(
        name="alma_g2_abcd1234",
        candidate_id="g2.1",
        parent="seed_a (seed:seed_a)",
        generation=2,
        meta_model="scripted",
        test_double=True,
        reward=0.5,
        reward_low=0.25,
        reward_high=0.75,
        reward_n=8,
        parent_reward=0.4,
        baseline_reward=0.1,
        heldout=True,
        changes=["[High] Key on goals"],
        repairs=1,
    )
    text = with_header(code, p)
    doc, rest = split_docstring(text)
    assert doc is not None and rest.startswith("from __future__ import annotations")
    for expected in (
        "alma_g2_abcd1234",
        "generation 2",
        "parent seed_a (seed:seed_a)",
        "meta-model scripted (the scripted TEST DOUBLE",
        "0.500 [95% interval 0.250, 0.750], n=8 on held-out tasks",
        "parent 0.400, No Memory 0.100",
        "- [High] Key on goals",
        "Original notes.",
        "1 repair round(s)",
    ):
        assert expected in doc
    compile(text, "x.py", "exec")  # the header does not break the module


def test_a_server_that_rejects_json_mode_is_asked_again_without_it() -> None:
    from pytest_alma.llm.errors import LLMUnavailableError

    class NoJsonMode(CannedClient):
        async def chat(self, messages: Sequence[dict[str, str]], **kw: Any) -> ChatReply:
            if "response_format" in kw:
                raise LLMUnavailableError("LLM call failed (gateway HTTP 400): unknown field")
            return await super().chat(messages, **kw)

    client = NoJsonMode([json.dumps(GOOD), json.dumps(GOOD)])
    meta = MetaAgent(client=client, envs=["babaisai"])  # type: ignore[arg-type]
    assert analyse(meta) == GOOD and analyse(meta) == GOOD
    assert meta.json_mode is False and len(client.asked) == 2  # JSON mode tried once only
