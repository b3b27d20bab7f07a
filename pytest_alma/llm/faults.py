"""Fault plans for the scripted model: which requests fail, and how.

A plan injects faults on chosen requests (1-based index over the model endpoints, i.e. chat
completions and embeddings together, in arrival order) and/or with a seeded probability. The
probability draw depends only on (seed, request index), so a plan replays identically however
requests interleave across threads.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

FaultKind = Literal["429", "500", "timeout", "malformed", "slow"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)

_SPEC_HELP = (
    "a comma-separated list of KIND@N (fault on the N-th model request, N 1-based; N-M for a "
    "range), KIND:P (probability P in [0, 1] per request) and options seed=INT, hang=SECONDS "
    "(timeout faults), slow=SECONDS (slow faults); KIND is one of " + ", ".join(FAULT_KINDS) + ". "
    "Examples: '429@1,500@2,timeout@3,malformed@4' or '429:0.2,seed=7'"
)


def _kind(text: str, spec: str) -> FaultKind:
    for kind in FAULT_KINDS:
        if kind == text:
            return kind
    raise ValueError(f"fault plan {spec!r}: unknown fault kind {text!r}; expected {_SPEC_HELP}")


@dataclass(frozen=True)
class FaultPlan:
    """Which requests get which fault.

    Attributes:
        at: request index (1-based) -> fault kind; takes precedence over probabilities.
        probabilities: fault kind -> probability per request, drawn in :data:`FAULT_KINDS` order.
        seed: seeds the probability draws.
        hang_s: how long a ``timeout`` fault sleeps before answering (longer than any caller's
            timeout; the handler is cancelled as soon as the caller hangs up).
        slow_s: extra latency of a ``slow`` fault.
        retry_after_s: the ``Retry-After`` header of a ``429`` fault.
    """

    at: Mapping[int, FaultKind] = field(default_factory=dict)
    probabilities: Mapping[FaultKind, float] = field(default_factory=dict)
    seed: int = 0
    hang_s: float = 60.0
    slow_s: float = 0.2
    retry_after_s: float = 0.0

    def __post_init__(self) -> None:
        for kind, p in self.probabilities.items():
            if kind not in FAULT_KINDS or not 0.0 <= p <= 1.0:
                raise ValueError(f"fault probability {kind}:{p} is invalid; expected {_SPEC_HELP}")
        if any(index < 1 for index in self.at):
            raise ValueError("fault request indices are 1-based")

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """Build a plan from a command-line string (see the examples in :data:`_SPEC_HELP`)."""
        at: dict[int, FaultKind] = {}
        probabilities: dict[FaultKind, float] = {}
        options: dict[str, float] = {}
        for raw in spec.split(","):
            item = raw.strip()
            if not item:
                continue
            try:
                if "=" in item:
                    name, value = (s.strip() for s in item.split("=", 1))
                    if name not in ("seed", "hang", "slow", "retry_after"):
                        raise ValueError(f"unknown option {name!r}")
                    options[name] = float(value)
                elif "@" in item:
                    kind_text, where = (s.strip() for s in item.split("@", 1))
                    kind = _kind(kind_text, spec)
                    first, _, last = where.partition("-")
                    for index in range(int(first), int(last or first) + 1):
                        at[index] = kind
                elif ":" in item:
                    kind_text, p_text = (s.strip() for s in item.split(":", 1))
                    probabilities[_kind(kind_text, spec)] = float(p_text)
                else:
                    raise ValueError(f"cannot read {item!r}")
            except ValueError as err:
                if str(err).startswith("fault plan"):
                    raise
                raise ValueError(f"fault plan {spec!r}: {err}; expected {_SPEC_HELP}") from err
        return cls(
            at=at,
            probabilities=probabilities,
            seed=int(options.get("seed", 0)),
            hang_s=options.get("hang", 60.0),
            slow_s=options.get("slow", 0.2),
            retry_after_s=options.get("retry_after", 0.0),
        )

    def decide(self, index: int) -> FaultKind | None:
        """The fault for the ``index``-th model request (1-based), or ``None``."""
        kind = self.at.get(index)
        if kind is not None or not self.probabilities:
            return kind
        # A string seed hashes deterministically (unlike tuples of str under PYTHONHASHSEED).
        rng = random.Random(f"{self.seed}:{index}")
        for candidate in FAULT_KINDS:
            p = self.probabilities.get(candidate, 0.0)
            if p and rng.random() < p:
                return candidate
        return None

    @property
    def empty(self) -> bool:
        """True when the plan never injects anything."""
        return not self.at and not any(self.probabilities.values())
