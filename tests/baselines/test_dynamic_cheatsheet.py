"""The Dynamic Cheatsheet baseline (``baselines/dynamic_cheatsheet.py``) and its scripted policy.

The design's ``ctx.llm`` is a fake that answers chats with the scripted policy's ``reply()`` (or a
reply the test forces) and embeds with the scripted model's hashed embeddings, counting every
call, so the tests are offline, fast and can compare call counts with the module docstring.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_alma.design import (
    DesignContext,
    DesignLoadError,
    LoadedDesign,
    MemoryDesign,
    instantiate,
    load_design,
    restore,
    snapshot,
)
from pytest_alma.llm.embedding import embed_text
from pytest_alma.llm.scripted import builtin_policies
from pytest_alma.llm.scripted_cheatsheet import DynamicCheatsheetPolicy, episode_line
from pytest_alma.records import Step, Task, TaskStart, Trajectory

BASELINE = Path(__file__).resolve().parents[2] / "baselines" / "dynamic_cheatsheet.py"
VARIANT_ENV = "ALMA_DYNAMIC_CHEATSHEET_VARIANT"
MODEL_ENV = "ALMA_DYNAMIC_CHEATSHEET_MODEL"


class FakeLLM:
    """Chat through the scripted policy (or ``forced`` replies), hashed embeddings; counts calls."""

    def __init__(self) -> None:
        self.policy = DynamicCheatsheetPolicy()
        self.chats: list[tuple[list[dict[str, str]], dict[str, Any]]] = []
        self.embeds: list[list[str]] = []
        self.forced: list[str] = []  # replies to give instead of the policy's, in order
        self.embedder: Callable[[str], list[float]] = embed_text

    async def chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_mode: bool = False,
        model: str | None = None,
    ) -> str:
        self.chats.append((list(messages), {"temperature": temperature, "model": model}))
        if self.forced:
            return self.forced.pop(0)
        assert self.policy.matches(messages)
        return self.policy.reply(messages, {})

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.embeds.append(list(texts))
        return [self.embedder(t) for t in texts]

    def counts(self) -> tuple[int, int]:
        """(chat calls, embed calls) so far."""
        return len(self.chats), len(self.embeds)


@pytest.fixture
def loaded() -> LoadedDesign:
    return load_design(BASELINE)


@pytest.fixture
def make(
    loaded: LoadedDesign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[MemoryDesign, FakeLLM]]:
    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.delenv(VARIANT_ENV, raising=False)

    def build(variant: str | None = None) -> tuple[MemoryDesign, FakeLLM]:
        if variant is None:
            monkeypatch.delenv(VARIANT_ENV, raising=False)
        else:
            monkeypatch.setenv(VARIANT_ENV, variant)
        llm = FakeLLM()
        ctx = DesignContext(llm=llm, rng=random.Random(0), scratch_dir=tmp_path, seed=0)
        return instantiate(loaded, ctx), llm

    return build


def start(goal: str, observation: str, task_id: str = "t") -> TaskStart:
    return TaskStart(Task("babaisai", task_id, "train", 0), observation, goal, ("up", "down"))


def episode(
    goal: str,
    observation: str,
    actions: Sequence[str],
    success: bool,
    error: str | None = None,
) -> Trajectory:
    steps = tuple(
        Step(a, f"after {a} you see a wall", 0.0, i == len(actions) - 1)
        for i, a in enumerate(actions)
    )
    return Trajectory(
        start(goal, observation), steps, 1.0 if success else 0.0, success, error=error
    )


KEY = episode("put the key in the box", "rule: key is win. a key and a box", ["left", "up"], True)
GOBLIN = episode("fight goblin", "goblin nearby, sword on floor", ["north", "attack"], False)
KEY_AGAIN = start("put the key in the box", "rule: key is win. a key and a box")
UNRELATED = start("", "zzqx vvwk jjyy")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def docstring_counts(loaded: LoadedDesign) -> dict[tuple[str, str], tuple[int, int]]:
    """The main-case (chat, embed) counts each variant's docstring states for update/retrieve."""
    doc = loaded.module.__doc__ or ""
    cost = doc[doc.index("Cost, exactly") :]
    cumulative, synthesis = cost.split("* retrieval_synthesis", 1)
    found: dict[tuple[str, str], tuple[int, int]] = {}
    for variant, text in (("cumulative", cumulative), ("retrieval_synthesis", synthesis)):
        for call in ("update", "retrieve"):
            match = re.search(rf"{call}: (\d+) chat \+ (\d+) embed call", text)
            assert match, f"no {call} cost for {variant} in the docstring"
            found[(variant, call)] = (int(match.group(1)), int(match.group(2)))
    return found


# -- cumulative (default) ---------------------------------------------------------------------


def test_default_variant_is_cumulative_with_config(make: Any) -> None:
    design, _ = make()
    assert design.variant == "cumulative"
    assert design.config["variant"] == "cumulative"
    assert design.config["model"] is None
    assert design.config["max_sheet_chars"] == 12_000


def test_model_env_var_is_passed_to_chat(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODEL_ENV, "gpt-test-mini")
    design, llm = make()
    assert design.config["model"] == "gpt-test-mini"
    run(design.general_update(KEY))
    assert llm.chats[0][1] == {"temperature": 0.0, "model": "gpt-test-mini"}


def test_empty_sheet_retrieves_empty_dict_without_calls(make: Any) -> None:
    design, llm = make()
    assert run(design.general_retrieve(KEY_AGAIN)) == {}
    assert llm.counts() == (0, 0)


def test_curator_rewrites_sheet_from_previous_sheet_and_episode(make: Any) -> None:
    design, llm = make()
    run(design.general_update(KEY))
    first = run(design.general_retrieve(KEY_AGAIN))
    assert first == {"cheatsheet": episode_line_of(KEY)}
    run(design.general_update(GOBLIN))
    prompt = llm.chats[1][0][1]["content"]
    # The second curator call sees the first sheet and the new episode (as trajectory_text).
    assert episode_line_of(KEY) in prompt
    assert "Goal: fight goblin" in prompt and "Outcome: failure" in prompt
    sheet = run(design.general_retrieve(UNRELATED))["cheatsheet"]
    assert sheet.splitlines() == [episode_line_of(KEY), episode_line_of(GOBLIN)]
    # The same sheet for every task: the cumulative variant does not look at the task.
    assert run(design.general_retrieve(KEY_AGAIN)) == {"cheatsheet": sheet}


def episode_line_of(trajectory: Trajectory) -> str:
    from pytest_alma.memory import trajectory_text

    return episode_line(trajectory_text(trajectory, 4000))


def test_curator_sees_a_bounded_trajectory(make: Any) -> None:
    design, llm = make()
    long = episode("walk", "a long corridor " * 50, [f"step{i}" for i in range(500)], False)
    run(design.general_update(long))
    user = llm.chats[0][0][1]["content"]
    assert len(user) < 4000 + 200  # the episode is at most TRAJECTORY_CHARS, plus tags
    assert "[... steps omitted ...]" in user


def test_error_trajectories_are_skipped(make: Any) -> None:
    for variant in ("cumulative", "retrieval_synthesis"):
        design, llm = make(variant)
        broken = episode("g", "o", ["a"], False, error="LLM unavailable")
        run(design.general_update(broken))
        assert llm.counts() == (0, 0)
        assert run(design.general_retrieve(KEY_AGAIN)) == {}


@pytest.mark.parametrize(
    "bad_reply",
    [
        "",
        "   \n",
        "I am sorry, I cannot update the cheatsheet right now.",
        "<cheatsheet>\n   \n</cheatsheet>",
        "<cheatsheet>\n- a sheet cut off by max_tokens",
        "- entries but no closing marker </cheatsheet>",
        '{"cheatsheet": "json instead of markers"}',
    ],
)
def test_regression_parse_failure_wipes_cheatsheet(make: Any, bad_reply: str) -> None:
    """ALMA's port set the sheet to None when the markers were missing, losing everything."""
    design, llm = make()
    run(design.general_update(KEY))
    before = run(design.general_retrieve(KEY_AGAIN))
    assert before
    llm.forced.append(bad_reply)
    run(design.general_update(GOBLIN))  # must not raise
    assert run(design.general_retrieve(KEY_AGAIN)) == before
    assert design.parse_failures == 1
    # And the next good reply builds on the kept sheet.
    run(design.general_update(GOBLIN))
    assert run(design.general_retrieve(KEY_AGAIN))["cheatsheet"].splitlines() == [
        episode_line_of(KEY),
        episode_line_of(GOBLIN),
    ]


def test_last_block_wins_and_markers_are_case_insensitive(make: Any) -> None:
    design, llm = make()
    llm.forced.append("I will wrap it in <cheatsheet> tags.\n<CHEATSHEET>\nreal\n</Cheatsheet>")
    run(design.general_update(KEY))
    assert run(design.general_retrieve(KEY_AGAIN)) == {"cheatsheet": "real"}


def test_sheet_is_capped(make: Any, loaded: LoadedDesign) -> None:
    design, llm = make()
    cap = loaded.module.MAX_SHEET_CHARS
    llm.forced.append("<cheatsheet>\n" + "\n".join(f"- lesson {i}" for i in range(5000)) + "\n")
    llm.forced[-1] += "</cheatsheet>"
    run(design.general_update(KEY))
    sheet = run(design.general_retrieve(KEY_AGAIN))["cheatsheet"]
    assert len(sheet) <= cap
    assert sheet.startswith("- lesson 0\n")  # the head (most useful first) is kept
    assert sheet.endswith("[... cheatsheet cut ...]")


def test_scripted_curator_keeps_the_sheet_under_the_stated_limit(make: Any) -> None:
    design, _ = make()
    for i in range(400):
        run(design.general_update(episode(f"goal number {i}", "obs", ["a", "b"], i % 2 == 0)))
    sheet = run(design.general_retrieve(KEY_AGAIN))["cheatsheet"]
    assert len(sheet) <= 12_000
    assert "goal number 399" in sheet and "goal number 0:" not in sheet  # oldest dropped


# -- retrieval & synthesis ----------------------------------------------------------------------


def test_variant_from_class_attribute(
    make: Any, loaded: LoadedDesign, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loaded.cls, "variant", "retrieval_synthesis")
    design, _ = make()
    assert design.variant == "retrieval_synthesis"
    assert design.config["top_k"] == 3


def test_unknown_variant_is_refused(make: Any) -> None:
    with pytest.raises(DesignLoadError, match="retrieval_synthesis"):
        make("retrieval-and-synthesis")


def test_synthesis_stores_episodes_and_synthesises_from_similar_ones(make: Any) -> None:
    design, llm = make("retrieval_synthesis")
    assert run(design.general_retrieve(KEY_AGAIN)) == {}  # empty store: no calls at all
    assert llm.counts() == (0, 0)
    run(design.general_update(KEY))
    run(design.general_update(GOBLIN))
    assert llm.counts() == (0, 2)
    assert llm.embeds == [
        ["Goal: put the key in the box\nObservation: rule: key is win. a key and a box"],
        ["Goal: fight goblin\nObservation: goblin nearby, sword on floor"],
    ]
    assert len(design.episodes) == 2 and len(design.index) == 2
    memory = run(design.general_retrieve(KEY_AGAIN))
    assert llm.counts() == (1, 3)
    assert memory == {
        "cheatsheet": "For put the key in the box, similar past episodes:\n" + episode_line_of(KEY)
    }
    prompt = llm.chats[0][0][1]["content"]
    assert prompt.startswith("<task>\nGoal: put the key in the box")
    assert '<episode rank="1" similarity="1.00">' in prompt
    assert "fight goblin" not in prompt  # below MIN_SIMILARITY: not shown


def test_synthesis_shows_at_most_top_k_best_first(make: Any) -> None:
    design, llm = make("retrieval_synthesis")
    for i in range(6):
        run(design.general_update(episode("put the key in the box", f"key box {i}", ["a"], True)))
    run(design.general_update(KEY))
    run(design.general_retrieve(KEY_AGAIN))
    prompt = llm.chats[0][0][1]["content"]
    ranks = re.findall(r'<episode rank="(\d)" similarity="([\d.]+)">', prompt)
    assert [r for r, _ in ranks] == ["1", "2", "3"]
    scores = [float(s) for _, s in ranks]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0


def test_synthesis_below_threshold_returns_empty_without_chat(make: Any) -> None:
    design, llm = make("retrieval_synthesis")
    run(design.general_update(KEY))
    assert run(design.general_retrieve(UNRELATED)) == {}
    assert llm.counts() == (0, 2)  # the query was embedded, no synthesis call


def test_synthesis_parse_failure_falls_back_to_similar_episodes(make: Any) -> None:
    design, llm = make("retrieval_synthesis")
    run(design.general_update(KEY))
    llm.forced.append("Sorry, no cheatsheet today.")
    memory = run(design.general_retrieve(KEY_AGAIN))
    assert list(memory) == ["similar_episodes"]
    assert memory["similar_episodes"][0].startswith("Goal: put the key in the box")


@pytest.mark.parametrize(
    "bad_vector",
    [[], [0.0] * 256, [1.0] * 7],
    ids=["empty", "zero", "wrong-size"],
)
def test_unusable_embeddings_never_raise(make: Any, bad_vector: list[float]) -> None:
    design, llm = make("retrieval_synthesis")
    run(design.general_update(KEY))
    llm.embedder = lambda text: bad_vector
    run(design.general_update(GOBLIN))
    assert design.skipped_episodes == 1 and len(design.episodes) == 1
    assert run(design.general_retrieve(KEY_AGAIN)) == {}
    llm.embedder = embed_text
    assert "cheatsheet" in run(design.general_retrieve(KEY_AGAIN))


def test_wrong_number_of_embeddings_never_raises(make: Any) -> None:
    design, llm = make("retrieval_synthesis")

    async def no_vectors(texts: Sequence[str]) -> list[list[float]]:
        return []

    llm.embed = no_vectors  # type: ignore[method-assign,unused-ignore]
    run(design.general_update(KEY))
    assert design.skipped_episodes == 1
    assert run(design.general_retrieve(KEY_AGAIN)) == {}


# -- both variants -------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["cumulative", "retrieval_synthesis"])
def test_call_counts_match_docstring(make: Any, loaded: LoadedDesign, variant: str) -> None:
    stated = docstring_counts(loaded)
    design, llm = make(variant)
    run(design.general_update(KEY))
    assert llm.counts() == stated[(variant, "update")]
    before = llm.counts()
    run(design.general_retrieve(KEY_AGAIN))
    after = llm.counts()
    assert (after[0] - before[0], after[1] - before[1]) == stated[(variant, "retrieve")]
    if variant == "retrieval_synthesis":
        assert all(len(texts) == 1 for texts in llm.embeds)  # "(of 1 text)"


@pytest.mark.parametrize("variant", ["cumulative", "retrieval_synthesis"])
def test_pickle_round_trip_preserves_behaviour(
    make: Any, loaded: LoadedDesign, tmp_path: Path, variant: str
) -> None:
    design, _ = make(variant)
    run(design.general_update(KEY))
    run(design.general_update(GOBLIN))
    expected = run(design.general_retrieve(KEY_AGAIN))
    llm = FakeLLM()
    ctx = DesignContext(llm=llm, rng=random.Random(0), scratch_dir=tmp_path, seed=0)
    restored = restore(loaded, ctx, snapshot(design))
    assert getattr(restored, "variant", None) == variant
    assert run(restored.general_retrieve(KEY_AGAIN)) == expected
    # Nothing is re-embedded after a restore: a retrieval embeds only its query.
    assert llm.counts() == ((1, 1) if variant == "retrieval_synthesis" else (0, 0))
    run(restored.general_update(KEY))
    run(design.general_update(KEY))
    assert run(restored.general_retrieve(UNRELATED)) == run(design.general_retrieve(UNRELATED))


# -- the scripted policy ---------------------------------------------------------------------------


def test_policy_matches_only_the_baseline_prompts(loaded: LoadedDesign) -> None:
    policy = DynamicCheatsheetPolicy()
    curate = [{"role": "system", "content": loaded.module.CURATE_SYSTEM}]
    synth = [{"role": "system", "content": loaded.module.SYNTHESIZE_SYSTEM}]
    assert policy.matches(curate) and policy.matches(synth)
    assert not policy.matches([{"role": "system", "content": "You are playing TextWorld."}])
    # No environment policy claims these prompts, whatever order the policies are tried in.
    for other in builtin_policies():
        if not isinstance(other, DynamicCheatsheetPolicy):
            assert not other.matches(curate) and not other.matches(synth)


def test_policy_reply_is_derived_from_the_prompt_and_deterministic(loaded: LoadedDesign) -> None:
    policy = DynamicCheatsheetPolicy()
    system = loaded.module.CURATE_SYSTEM
    user = (
        "<previous_cheatsheet>\n- old lesson\n</previous_cheatsheet>\n\n<episode>\n"
        "Goal: find the exit\nObservation: a dark room\n1. go north -> a hall\n"
        "2. go east -> the exit\nOutcome: success (score 1, 2 steps)\n</episode>"
    )
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    reply = policy.reply(messages, {})
    assert reply == policy.reply(messages, {})
    assert reply.endswith(
        "<cheatsheet>\n- old lesson\n- In find the exit: go north, go east led to "
        "success (score 1, 2 steps)\n</cheatsheet>"
    )
    # Curating the same episode again does not duplicate its line.
    again = user.replace("- old lesson", reply.split("<cheatsheet>\n")[1].split("\n</")[0])
    assert policy.reply([messages[0], {"role": "user", "content": again}], {}).count("find") == 1
