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
    Option("cache", "LLM response cache mode", "rw", str, ("rw", "ro", "replay", "off")),
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
        "address-space limit of each xdist worker in MB (0 = no limit); a design that "
        "allocates beyond it fails its own item",
        4096,
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
)

OPTIONS_BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


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
        cache=values["cache"],
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
        sources=sources,
    )
