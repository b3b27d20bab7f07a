"""The ``--alma-*`` options, their ini twins and environment variables, and one resolver.

Precedence, the same for every option: command line > environment variable > ini file
(``[tool.pytest.ini_options]`` / ``pytest.ini``) > default. Each option is declared once in
:data:`OPTIONS`; the pytest plugin registers them and :func:`resolve` reads them back into a
typed :class:`AlmaSettings`, raising :class:`SettingsError` with the option's name and the
accepted values when something is off.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class SettingsError(ValueError):
    """An ``--alma-*`` value is invalid; the message names the option and what is allowed."""


@dataclass(frozen=True)
class Option:
    """One setting: CLI flag ``--alma-<name>``, ini key ``alma_<name>``, env ``ALMA_<NAME>``."""

    name: str
    help: str
    default: Any = None
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] = ()
    #: A switch: ``--alma-<name>`` takes no value on the command line (env/ini: 1/0, true/false).
    switch: bool = False

    @property
    def flag(self) -> str:
        return f"--alma-{self.name}"

    @property
    def dest(self) -> str:
        return f"alma_{self.name.replace('-', '_')}"

    @property
    def ini(self) -> str:
        return self.dest

    @property
    def env_var(self) -> str:
        return f"ALMA_{self.name.replace('-', '_').upper()}"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError("must be zero or more")
    return value


def _niceness(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 19:
        raise ValueError("must be between 0 (same priority) and 19 (lowest)")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be zero or more")
    return value


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be 1/0, true/false, yes/no or on/off")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise ValueError("must be at least 0 and below 1")
    return value


def _similarity(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise ValueError("must be above 0 and at most 1 (1: reject identical code only)")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be above zero")
    return value


#: Modules a generated design may not import (``--alma-search-forbidden-imports``): process,
#: network and FFI access that a memory design has no use for. The sandboxed design process is the
#: real guard (docs/isolation.md); this list rejects such code before anything runs.
DEFAULT_FORBIDDEN_IMPORTS = (
    "subprocess,socket,ctypes,multiprocessing,pty,signal,urllib,http,requests,httpx,aiohttp,"
    "openai,shutil,importlib,builtins,pytest_alma.llm,pytest_alma.isolation"
)


OPTIONS: tuple[Option, ...] = (
    Option(
        "env",
        "environments to benchmark, comma-separated (babaisai, minihack, textworld, alfworld)",
        "babaisai",
        _csv,
    ),
    Option(
        "model",
        "agent model, e.g. gpt-4o-mini or gpt-5-nano/low; 'scripted' is the offline "
        "test double (default: scripted when no API key or base URL is set)",
        None,
    ),
    Option("base-url", "OpenAI-compatible server URL (vLLM, Ollama, llama.cpp, LM Studio)", None),
    Option(
        "upstream-name",
        "a name for the LLM server that stands in for --alma-base-url in the LLM cache keys "
        "(default: a fingerprint of the URL): give one to keep a server's cache when its URL "
        "changes; never give two servers the same name",
        None,
    ),
    Option(
        "api-key-env", "name of the environment variable that holds the API key", "OPENAI_API_KEY"
    ),
    Option("split", "task split to run (default: the environment's evaluation split)", None),
    Option("train-size", "cap on the number of collection tasks", 500, _positive_int),
    Option("repeats", "deployment repeats per task", 3, _positive_int),
    Option("rollout", "deployment mode", "batched", str, ("batched", "sequential")),
    Option(
        "max-steps", "agent step cap per episode (default: the environment's)", None, _positive_int
    ),
    Option("limit", "at most N tasks per split, for quick runs", None, _positive_int),
    Option(
        "cache",
        "LLM response cache mode (replay-only: serve recorded replies, any other call is an "
        "error; 'replay' is its old name)",
        "rw",
        str,
        ("rw", "ro", "replay-only", "replay", "off"),
    ),
    Option(
        "budget-usd",
        "stop making LLM calls once this many dollars are spent",
        None,
        _non_negative_float,
    ),
    Option("seed", "run seed: task order, split and per-episode seeds derive from it", 0, int),
    Option(
        "temperature", "sampling temperature for the agent (default: the server's)", None, float
    ),
    Option(
        "max-tokens",
        "completion-token cap of each agent call (max_tokens; max_completion_tokens for "
        "reasoning models, where it also caps the hidden reasoning). Default: 1024, or 4096 "
        "when the model reasons (an effort, o-series, gpt-5). An action is a few tokens and a "
        "reply that explains itself a few hundred; reasoning models think within the cap and "
        "return no text when it cuts them off. The cap also sizes each call's budget reservation",
        None,
        _positive_int,
    ),
    Option("history", "how many past (action, observation) turns the agent sees", 8, int),
    Option(
        "memory-cap",
        "characters of retrieved memory shown to the agent before truncation",
        16000,
        _positive_int,
    ),
    Option(
        "design-timeout",
        "seconds allowed for one general_update or general_retrieve call",
        300.0,
        _non_negative_float,
    ),
    Option(
        "llm-timeout",
        "seconds per upstream LLM attempt before it is retried",
        120.0,
        _non_negative_float,
    ),
    Option("llm-retries", "retries of a failed upstream LLM call (429, 5xx, timeouts)", 3, int),
    Option("concurrency", "concurrent upstream LLM calls (across all workers)", 16, _positive_int),
    Option(
        "store", "directory for shared collection episodes, memory snapshots and the cache", ".alma"
    ),
    Option("reports", "directory where run reports are written", "reports"),
    Option(
        "worker-nice",
        "how much lower the xdist workers' CPU priority is than the LLM gateway's (0 to 19)",
        10,
        _niceness,
    ),
    Option(
        "worker-memory-mb",
        "address-space limit of each xdist worker's own process in MB (0 = no limit); design "
        "code runs in design processes (see --alma-design-memory-mb)",
        4096,
        _non_negative_int,
    ),
    Option(
        "sandbox",
        "where design code runs: auto (bubblewrap where it works, else an unsandboxed "
        "subprocess, labelled so), require (bubblewrap or a usage error), off (unsandboxed)",
        "auto",
        str,
        ("auto", "require", "off"),
    ),
    Option(
        "design-memory-mb",
        "hard address-space limit of each design process in MB (0 = no limit)",
        4096,
        _non_negative_int,
    ),
    Option(
        "design-cpu-s",
        "hard limit on the CPU seconds of each design process (0 = no limit); a design process "
        "over it is killed and restarted for the next call",
        3600,
        _non_negative_int,
    ),
    Option("designs", "design directories to collect, comma-separated", "designs,baselines", _csv),
    Option("faults", "faults the scripted model injects, e.g. '429@3,500@5' or '429:0.1'", None),
    Option(
        "scripted-latency",
        "milliseconds the scripted model waits per call",
        0.0,
        _non_negative_float,
    ),
    Option(
        "prices",
        "a JSON or TOML file of model prices in USD per million tokens "
        "({model: {input, cached_input, output}}) that overrides the built-in table",
        None,
    ),
    # -- the meta-agent search (pytest --alma-search; docs/search.md) ----------------------
    Option(
        "search",
        "after the session, run the ALMA meta-agent: write new designs for the next session",
        False,
        _boolean,
        switch=True,
    ),
    Option("search-steps", "generations the search runs in this invocation", 1, _positive_int),
    Option("search-children", "parents drawn (children made) per generation", 5, _positive_int),
    Option("meta-model", "model of the meta-agent (default: the agent's model)", None),
    Option(
        "meta-max-tokens",
        "completion-token cap of each meta-agent call (sent as the agent's cap is). Default "
        "8192: the longest shipped design (baselines/g_memory.py, 30 KB) is about 7,500 tokens "
        "and an analysis far less; the cap also sizes each call's budget reservation",
        8192,
        _positive_int,
    ),
    Option(
        "search-archive",
        "the search archive (SQLite; default: <store>/search/archive.sqlite3)",
        None,
    ),
    Option(
        "search-out",
        "directory the search writes new designs to (default: the first --alma-designs dir)",
        None,
    ),
    Option(
        "search-root",
        "how an empty archive starts: from the session's designs or one written from scratch",
        "designs",
        str,
        ("designs", "scratch"),
    ),
    Option(
        "search-edit-format",
        "how the meta-agent writes a child: the whole file or SEARCH/REPLACE edits",
        "full",
        str,
        ("full", "edits"),
    ),
    Option(
        "search-heldout",
        "fraction of tasks held out from the meta-agent and used for the search reward "
        "(0: the reference's protocol, reward on the tasks it sees)",
        0.0,
        _fraction,
    ),
    Option("search-temperature", "softmax temperature of parent selection", 0.5, _positive_float),
    Option(
        "search-visit-penalty",
        "weight of ln(1 + visits) subtracted from a parent's selection score",
        0.5,
        _non_negative_float,
    ),
    Option(
        "search-normalise",
        "reward normalisation against No Memory before selection",
        "sigmoid",
        str,
        ("sigmoid", "difference", "none"),
    ),
    Option("search-repairs", "repair rounds for a failing candidate", 3, _non_negative_int),
    Option(
        "search-forbidden-imports",
        "modules a generated design may not import, comma-separated",
        DEFAULT_FORBIDDEN_IMPORTS,
        _csv,
    ),
    Option(
        "search-novelty",
        "reject a candidate whose normalised code is at least this similar to an archived one",
        0.98,
        _similarity,
    ),
    Option(
        "search-novelty-embedding",
        "also reject a candidate whose code embedding has at least this cosine similarity to "
        "an archived one's (0: off; costs one embedding call per candidate)",
        0.0,
        _fraction,
    ),
    Option(
        "search-smoke-tasks",
        "tasks of the smoke sub-session that verifies a candidate before it is evaluated",
        2,
        _positive_int,
    ),
    # -- records and the regression gate (docs/ci.md) ----------------------------------
    Option(
        "record",
        "write this run's scores (and a replay file of its LLM calls) to the committed record",
        False,
        _boolean,
        switch=True,
    ),
    Option(
        "regression",
        "compare this run with the committed record and fail the session on a regression",
        False,
        _boolean,
        switch=True,
    ),
    Option(
        "record-file",
        "the committed record of scores (default: reports/alma-record.json)",
        None,
    ),
    Option(
        "regression-threshold",
        "how much worse a design may be before the gate fails, e.g. 'mean:5%', "
        "'mean:0.05' (absolute) or 'p:0.05' (significantly worse); per design: "
        "'design=mean:2%,*=mean:5%'",
        "mean:5%",
    ),
    Option(
        "fail-on-improvement",
        "also fail the gate when a design is better than the record beyond the threshold",
        False,
        _boolean,
        switch=True,
    ),
)

OPTIONS_BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


@dataclass(frozen=True)
class SearchSettings:
    """The meta-agent search's settings (``--alma-search*``, ``--alma-meta-model``)."""

    enabled: bool = False
    steps: int = 1
    children: int = 5
    meta_model: str | None = None
    meta_max_tokens: int = 8192
    archive: str | None = None
    out: str | None = None
    root: str = "designs"
    edit_format: str = "full"
    heldout: float = 0.0
    temperature: float = 0.5
    visit_penalty: float = 0.5
    normalise: str = "sigmoid"
    repairs: int = 3
    forbidden_imports: tuple[str, ...] = ()
    novelty: float = 0.98
    novelty_embedding: float = 0.0
    smoke_tasks: int = 2

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "children": self.children,
            "meta_model": self.meta_model,
            "meta_max_tokens": self.meta_max_tokens,
            "root": self.root,
            "edit_format": self.edit_format,
            "heldout": self.heldout,
            "temperature": self.temperature,
            "visit_penalty": self.visit_penalty,
            "normalise": self.normalise,
            "repairs": self.repairs,
            "forbidden_imports": list(self.forbidden_imports),
            "novelty": self.novelty,
            "novelty_embedding": self.novelty_embedding,
            "smoke_tasks": self.smoke_tasks,
        }


@dataclass(frozen=True)
class GateSettings:
    """The record and regression gate's settings (``--alma-record``, ``--alma-regression``)."""

    record: bool = False
    regression: bool = False
    record_file: str | None = None
    threshold: str = "mean:5%"
    fail_on_improvement: bool = False


@dataclass(frozen=True)
class AlmaSettings:
    """Resolved settings of one session."""

    envs: tuple[str, ...]
    model: str | None
    base_url: str | None
    api_key_env: str
    split: str | None
    train_size: int
    repeats: int
    rollout: str
    max_steps: int | None
    limit: int | None
    cache: str
    budget_usd: float | None
    seed: int
    temperature: float | None
    history: int
    memory_cap: int
    design_timeout: float
    llm_timeout: float
    llm_retries: int
    concurrency: int
    store: str
    worker_nice: int
    reports: str
    worker_memory_mb: int
    designs: tuple[str, ...]
    faults: str | None
    scripted_latency: float
    prices: str | None = None
    max_tokens: int | None = None
    upstream_name: str | None = None
    sandbox: str = "auto"
    design_memory_mb: int = 4096
    design_cpu_s: int = 3600
    search: SearchSettings = field(default_factory=SearchSettings)
    gate: GateSettings = field(default_factory=GateSettings)
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "envs": list(self.envs),
            "model": self.model,
            "base_url": self.base_url,
            "split": self.split,
            "train_size": self.train_size,
            "repeats": self.repeats,
            "rollout": self.rollout,
            "max_steps": self.max_steps,
            "limit": self.limit,
            "cache": self.cache,
            "budget_usd": self.budget_usd,
            "seed": self.seed,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "upstream_name": self.upstream_name,
            "history": self.history,
            "memory_cap": self.memory_cap,
            "design_timeout": self.design_timeout,
            "llm_timeout": self.llm_timeout,
            "llm_retries": self.llm_retries,
            "concurrency": self.concurrency,
            "faults": self.faults,
            "scripted_latency": self.scripted_latency,
        }


def _convert(option: Option, raw: Any, source: str) -> Any:
    if raw is None or raw == "":
        return option.default
    if not isinstance(raw, str):
        return raw
    try:
        value = option.parse(raw)
    except ValueError as exc:
        raise SettingsError(
            f"{option.flag}: invalid value {raw!r} (from {source}): {exc}"
        ) from None
    if option.choices and value not in option.choices:
        raise SettingsError(
            f"{option.flag}: invalid value {raw!r} (from {source}); choose one of "
            f"{', '.join(option.choices)}"
        )
    return value


def resolve(
    cli: Mapping[str, Any],
    ini: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> AlmaSettings:
    """Resolve every option: CLI > environment variable > ini > default.

    ``cli`` and ``ini`` map option names (e.g. ``"train-size"``) to raw values, ``None`` or ``""``
    meaning unset.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        for source, raw in (
            ("command line", cli.get(option.name)),
            (f"${option.env_var}", environ.get(option.env_var)),
            (f"ini {option.ini}", ini.get(option.name)),
        ):
            if raw is not None and raw != "" and raw != []:
                if isinstance(raw, list):
                    raw = ",".join(str(r) for r in raw)
                values[option.name] = _convert(option, raw, source)
                sources[option.name] = source
                break
        else:
            values[option.name] = option.default
            sources[option.name] = "default"
    return AlmaSettings(
        envs=tuple(values["env"]) if not isinstance(values["env"], str) else _csv(values["env"]),
        model=values["model"],
        base_url=values["base-url"],
        api_key_env=values["api-key-env"],
        split=values["split"],
        train_size=values["train-size"],
        repeats=values["repeats"],
        rollout=values["rollout"],
        max_steps=values["max-steps"],
        limit=values["limit"],
        # "replay" is the old name of replay-only; the cache knows the mode as "replay".
        cache="replay" if values["cache"] == "replay-only" else values["cache"],
        budget_usd=values["budget-usd"],
        seed=values["seed"],
        temperature=values["temperature"],
        history=values["history"],
        memory_cap=values["memory-cap"],
        design_timeout=values["design-timeout"],
        llm_timeout=values["llm-timeout"],
        llm_retries=values["llm-retries"],
        concurrency=values["concurrency"],
        store=values["store"],
        worker_nice=values["worker-nice"],
        reports=values["reports"],
        worker_memory_mb=values["worker-memory-mb"],
        designs=(
            tuple(values["designs"])
            if not isinstance(values["designs"], str)
            else _csv(values["designs"])
        ),
        faults=values["faults"],
        scripted_latency=values["scripted-latency"],
        prices=values["prices"],
        max_tokens=values["max-tokens"],
        upstream_name=values["upstream-name"],
        sandbox=values["sandbox"],
        design_memory_mb=values["design-memory-mb"],
        design_cpu_s=values["design-cpu-s"],
        search=SearchSettings(
            enabled=bool(values["search"]),
            steps=values["search-steps"],
            children=values["search-children"],
            meta_model=values["meta-model"],
            meta_max_tokens=values["meta-max-tokens"],
            archive=values["search-archive"],
            out=values["search-out"],
            root=values["search-root"],
            edit_format=values["search-edit-format"],
            heldout=values["search-heldout"],
            temperature=values["search-temperature"],
            visit_penalty=values["search-visit-penalty"],
            normalise=values["search-normalise"],
            repairs=values["search-repairs"],
            forbidden_imports=_as_tuple(values["search-forbidden-imports"]),
            novelty=values["search-novelty"],
            novelty_embedding=values["search-novelty-embedding"],
            smoke_tasks=values["search-smoke-tasks"],
        ),
        gate=GateSettings(
            record=bool(values["record"]),
            regression=bool(values["regression"]),
            record_file=values["record-file"],
            threshold=values["regression-threshold"],
            fail_on_improvement=bool(values["fail-on-improvement"]),
        ),
        sources=sources,
    )


def _as_tuple(value: Any) -> tuple[str, ...]:
    """A comma-separated option's value (defaults are declared as strings)."""
    return _csv(value) if isinstance(value, str) else tuple(value)
