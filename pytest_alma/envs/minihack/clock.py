"""NetHack's clock, pinned: the same task and seed play the same game on any date, at any hour.

NetHack 3.6 reads the real clock: the phase of the moon (full moon: +1 luck; new moon: danger
from cockatrices), Friday the 13th (-1 luck), night (were-creatures, gremlins, dogs), midnight
(undead), and the hero's birthday (shop prices, shopkeeper names, anthole monsters). Luck
changes outcomes, so a benchmark that reads the real clock plays a different game every day.

Every MiniHack game of the harness therefore runs on one fixed instant, :data:`PINNED_UTC`:
Thursday 2015-12-03 12:00:00 UTC. It is neutral: the moon is in its last quarter (phase 6 of
0-7, the middle of that phase, so no luck either way and no new-moon rules), it is not Friday
the 13th, and noon is neither night (NetHack: before 06:00 or after 21:59) nor midnight (the
hour 0). Dates are UTC, so the machine's time zone does not matter either. The mechanism is in
:mod:`pytest_alma.envs.minihack.elfpatch` (it edits only the game's private copy of
``libnethack.so``; the Python process and other environments keep the real clock).

``ALMA_MINIHACK_CLOCK=system`` turns the pin off (the real, date-dependent clock, as plain
MiniHack plays); results.json records which clock was used under the environment's settings.
"""

from __future__ import annotations

import calendar
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_alma.envs.minihack import elfpatch

CLOCK_ENV_VAR = "ALMA_MINIHACK_CLOCK"
CLOCKS = ("pinned", "system")

#: The instant every MiniHack game sees (see the module docstring for why it is neutral).
PINNED_UTC = datetime(2015, 12, 3, 12, 0, 0, tzinfo=UTC)
PINNED_EPOCH = calendar.timegm(PINNED_UTC.utctimetuple())

MOON_PHASES = (
    "new moon",
    "waxing crescent",
    "first quarter",
    "waxing gibbous",
    "full moon",
    "waning gibbous",
    "last quarter",
    "waning crescent",
)


@dataclass(frozen=True)
class ClockEffects:
    """What NetHack 3.6's clock functions answer at one instant (in UTC)."""

    moon_phase: int  # phase_of_the_moon(): 0 new ... 4 full ... 7
    friday_13th: bool
    night: bool  # night(): hour < 6 or hour > 21
    midnight: bool  # midnight(): hour == 0

    @property
    def neutral(self) -> bool:
        """No luck from the moon or the date, and none of the night or midnight rules."""
        return self.moon_phase not in (0, 4) and not (
            self.friday_13th or self.night or self.midnight
        )


def effects(epoch: int) -> ClockEffects:
    """NetHack 3.6's ``phase_of_the_moon``, ``friday_13th``, ``night``, ``midnight`` at ``epoch``.

    The moon formula is NetHack's (hacklib.c): golden number and epact of the year, then the
    day of the year mapped onto 8 phases.
    """
    t = time.gmtime(epoch)
    day_of_year = t.tm_yday - 1  # struct tm counts from 0
    golden = ((t.tm_year - 1900) % 19) + 1
    epact = (11 * golden + 18) % 30
    if (epact == 25 and golden > 11) or epact == 24:
        epact += 1
    phase = ((((day_of_year + epact) * 6) + 11) % 177) // 22 & 7
    return ClockEffects(
        moon_phase=phase,
        friday_13th=t.tm_wday == 4 and t.tm_mday == 13,  # Python's tm_wday: Monday is 0
        night=t.tm_hour < 6 or t.tm_hour > 21,
        midnight=t.tm_hour == 0,
    )


def chosen_clock(clock: str | None = None) -> str:
    """``clock`` or ``$ALMA_MINIHACK_CLOCK`` or ``"pinned"``, checked."""
    value = clock or os.environ.get(CLOCK_ENV_VAR) or "pinned"
    if value not in CLOCKS:
        raise ValueError(
            f"unknown MiniHack clock {value!r} (from {CLOCK_ENV_VAR} or clock=); choose "
            f"'pinned' (the default: every game on {PINNED_UTC.isoformat()}) or 'system' "
            "(the real, date-dependent clock)"
        )
    return value


def clock_settings(clock: str) -> dict[str, Any]:
    """The clock as recorded in results.json (``settings.environments.minihack.clock``)."""
    if clock == "system":
        return {"mode": "system", "note": "the machine's real clock: games depend on the date"}
    found = effects(PINNED_EPOCH)
    return {
        "mode": "pinned",
        "utc": PINNED_UTC.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "epoch": PINNED_EPOCH,
        "moon_phase": MOON_PHASES[found.moon_phase],
        "friday_13th": found.friday_13th,
        "night": found.night,
        "midnight": found.midnight,
        "time_zone": "UTC",
    }


def pin_library(path: str | Path, epoch: int = PINNED_EPOCH) -> None:
    """Patch one nle library copy in place so that its clock is ``epoch`` (UTC).

    Call it before the game's first reset: nle loads the copy afresh from this file at every
    reset, so every later game of that environment sees the pinned clock.
    """
    with open(path, "r+b") as handle:
        data = handle.read()
        if elfpatch.is_patched(data, epoch):
            return
        try:
            new = elfpatch.patched(data, epoch)
        except elfpatch.ClockPatchError as err:
            raise RuntimeError(
                f"cannot pin NetHack's clock in {path}: {err}. The pin supports nle's x86-64 "
                f"Linux build; set {CLOCK_ENV_VAR}=system to play on the real clock instead "
                "(results then depend on the date, and results.json says so)"
            ) from err
        handle.seek(0)
        handle.write(new)


def pin_env(env: Any, epoch: int = PINNED_EPOCH) -> None:
    """Pin the clock of a freshly made NLE/MiniHack gym environment (before its first reset)."""
    nle_env = env.unwrapped
    if getattr(nle_env, "last_observation", ()):
        raise RuntimeError("pin the clock before the environment's first reset")
    pin_library(nle_env.nethack.dlpath, epoch)


__all__ = [
    "CLOCKS",
    "CLOCK_ENV_VAR",
    "MOON_PHASES",
    "PINNED_EPOCH",
    "PINNED_UTC",
    "ClockEffects",
    "chosen_clock",
    "clock_settings",
    "effects",
    "pin_env",
    "pin_library",
]
