"""Hypothesis settings profiles for the contract check: ``dev``, ``ci`` and ``nightly``.

They are plain :class:`hypothesis.settings` objects passed to the state machine, not profiles
registered with Hypothesis: registering ``ci`` globally would replace Hypothesis's own ``ci``
profile for every other property test of the user's session.

Choice (first that applies): the ``profile`` argument, ``ALMA_CONTRACT_PROFILE``, ``ci`` when
the ``CI`` environment variable is set, else ``dev``.

``deadline`` is off everywhere: the contract has its own per-call wall-clock rule
(``time-limit``), and Hypothesis's deadline would instead flag the first, slow example of a
design that warms a cache. The example database is off too: the check runs inside users' projects
and must not write ``.hypothesis/`` folders into them.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

PROFILE_ENV_VAR = "ALMA_CONTRACT_PROFILE"

# Inputs are deliberately large (up to 100-step episodes and 20,000-character strings) and a
# design call may be slow: these health checks would reject exactly the inputs we want.
_SUPPRESSED = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.large_base_example,
]

PROFILES: dict[str, settings] = {
    # Local runs: a quick but varied search, different on each run.
    "dev": settings(
        max_examples=20,
        stateful_step_count=10,
        deadline=None,
        database=None,
        suppress_health_check=_SUPPRESSED,
        print_blob=False,
    ),
    # CI: few examples and derandomized, so the same code gives the same verdict on every run.
    "ci": settings(
        max_examples=10,
        stateful_step_count=8,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=_SUPPRESSED,
        print_blob=False,
        # No shrinking: with 100-step episodes and 20,000-character strings a shrink re-runs the
        # machine thousands of times (40 s for one design on 2 cores). A CI failure still lists
        # its whole call sequence, and the same failure shrinks locally under "dev".
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    ),
    # Scheduled runs: a long search for rare breakages.
    "nightly": settings(
        max_examples=300,
        stateful_step_count=30,
        deadline=None,
        database=None,
        suppress_health_check=_SUPPRESSED,
        print_blob=False,
    ),
}


def profile_name(profile: str | None = None) -> str:
    """The profile to use (see the module docstring); unknown names raise ValueError."""
    name = profile or os.environ.get(PROFILE_ENV_VAR) or ("ci" if os.environ.get("CI") else "dev")
    if name not in PROFILES:
        raise ValueError(
            f"unknown contract profile {name!r} (from {PROFILE_ENV_VAR} or the profile "
            f"argument); choose one of {', '.join(PROFILES)}"
        )
    return name


def get_profile(profile: str | None = None) -> settings:
    """The settings of the chosen profile."""
    return PROFILES[profile_name(profile)]
