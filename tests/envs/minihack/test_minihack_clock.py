"""NetHack's clock is pinned (docs/minihack.md, "The clock").

The same episode is played in subprocesses whose system clock is faked with libfaketime (Debian's
``faketime`` package, installed by .ci/run and the README's set-up line) at the level NetHack
reads it, libc's ``time()``: a full-moon Friday the 13th just after midnight (UTC) and an
ordinary noon (in Tokyo). Pinned, the two trajectories are identical; on the system clock they
differ, which shows the comparison can fail.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # minihack 1.0.2 imports the deprecated pkg_resources
    import minihack  # noqa: F401  (registers the MiniHack gym ids)

from nle.nethack.nethack import DLPATH

from pytest_alma.envs.minihack import clock, elfpatch
from pytest_alma.envs.minihack.adapter import MiniHackEnvironment
from pytest_alma.envs.minihack.text import OBSERVATION_KEYS, message_text


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    """Seconds since the epoch of a UTC date."""
    return calendar.timegm((year, month, day, hour, minute, 0))


FULL_MOON_FRIDAY_13TH_MIDNIGHT = utc(2025, 6, 13, 0, 30)
FULL_MOON_NOON = utc(2025, 6, 11, 12)  # a Wednesday
NEW_MOON_NOON = utc(2025, 6, 25, 12)  # a Wednesday
FRIDAY_13TH_NOON = utc(2026, 3, 13, 12)  # a last-quarter moon

LUCKY = "You are lucky!  Full moon tonight."
CAREFUL = "Be careful!  New moon tonight."
FRIDAY = "Watch out!  Bad things can happen on Friday the 13th."
HELLO = "Hello Agent, welcome to NetHack!  You are a chaotic male human Rogue."


def test_the_pinned_instant_is_neutral_and_recorded() -> None:
    assert utc(2015, 12, 3, 12) == clock.PINNED_EPOCH
    found = clock.effects(clock.PINNED_EPOCH)
    assert found == clock.ClockEffects(moon_phase=6, friday_13th=False, night=False, midnight=False)
    assert found.neutral
    # Mid-phase: a day either side is still the last quarter.
    assert {clock.effects(clock.PINNED_EPOCH + d * 86400).moon_phase for d in (-1, 1)} == {6}
    assert MiniHackEnvironment().settings()["clock"] == {
        "mode": "pinned",
        "utc": "2015-12-03T12:00:00Z",
        "epoch": 1449144000,
        "moon_phase": "last quarter",
        "friday_13th": False,
        "night": False,
        "midnight": False,
        "time_zone": "UTC",
    }


def test_effects_of_known_dates() -> None:
    assert clock.effects(FULL_MOON_FRIDAY_13TH_MIDNIGHT) == clock.ClockEffects(4, True, True, True)
    assert clock.effects(FULL_MOON_NOON) == clock.ClockEffects(4, False, False, False)
    assert clock.effects(NEW_MOON_NOON) == clock.ClockEffects(0, False, False, False)
    assert clock.effects(FRIDAY_13TH_NOON) == clock.ClockEffects(6, True, False, False)
    assert clock.effects(utc(2026, 1, 1, 22)).night and not clock.effects(utc(2026, 1, 1, 21)).night
    assert not any(clock.effects(e).neutral for e in (FULL_MOON_NOON, NEW_MOON_NOON))


def test_the_clock_choice_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.CLOCK_ENV_VAR, "lunar")
    with pytest.raises(ValueError, match="unknown MiniHack clock 'lunar'.*'pinned'.*'system'"):
        MiniHackEnvironment()
    monkeypatch.setenv(clock.CLOCK_ENV_VAR, "system")
    assert MiniHackEnvironment().settings()["clock"]["mode"] == "system"
    assert MiniHackEnvironment(clock="pinned").settings()["clock"]["mode"] == "pinned"


def _start_message(task: str, epoch: int) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env: Any = gym.make(task, observation_keys=OBSERVATION_KEYS)
    try:
        clock.pin_env(env, epoch)
        env.unwrapped.seed(0, 0, False)
        obs, _ = env.reset(seed=0)
        return message_text(obs).removeprefix("message:\n")
    finally:
        env.close()


@pytest.mark.parametrize(
    ("epoch", "message"),
    [
        (FULL_MOON_NOON, LUCKY),
        (NEW_MOON_NOON, CAREFUL),
        (FRIDAY_13TH_NOON, FRIDAY),
        (clock.PINNED_EPOCH, HELLO),
    ],
)
def test_nethack_reads_the_pinned_instant(epoch: int, message: str) -> None:
    # NetHack announces the moon and Friday the 13th at the start: it sees exactly our instant.
    assert _start_message("MiniHack-Room-5x5-v0", epoch) == message


def test_dates_are_utc_whatever_the_time_zone() -> None:
    # 2026-04-04 12:00 UTC is the last full-moon day; in Kiritimati (UTC+14) it is already
    # 02:00 on the 5th, a waning gibbous moon. NetHack must see the UTC date.
    last_full = utc(2026, 4, 4, 12)
    assert clock.effects(last_full).moon_phase == 4
    assert clock.effects(last_full + 14 * 3600).moon_phase == 5
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import test_minihack_clock as t; "
        f"print(t._start_message('MiniHack-Room-5x5-v0', {last_full}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent)],
        env={**os.environ, "TZ": "Pacific/Kiritimati"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == LUCKY


def test_the_installed_library_is_never_written() -> None:
    before = hashlib.sha256(Path(DLPATH).read_bytes()).hexdigest()
    MiniHackEnvironment()  # checks, in memory, that the pin applies
    _start_message("MiniHack-Room-5x5-v0", FULL_MOON_NOON)  # patches the game's own copy
    assert hashlib.sha256(Path(DLPATH).read_bytes()).hexdigest() == before


def test_patching_a_copy_is_idempotent_and_refuses_what_it_does_not_understand(
    tmp_path: Path,
) -> None:
    original = Path(DLPATH).read_bytes()
    copy = tmp_path / "libnethack.so"
    copy.write_bytes(original)
    clock.pin_library(copy)
    once = copy.read_bytes()
    assert once != original and elfpatch.is_patched(once, clock.PINNED_EPOCH)
    assert elfpatch.time_stub(clock.PINNED_EPOCH) in once and b"localtime\0" not in once
    clock.pin_library(copy)
    assert copy.read_bytes() == once
    with pytest.raises(elfpatch.ClockPatchError, match="'localtime', found 0"):
        elfpatch.patched(once, clock.PINNED_EPOCH + 1)  # already patched: refused, not stacked
    with pytest.raises(elfpatch.ClockPatchError, match="not a 64-bit"):
        elfpatch.patched(b"#!/bin/sh\n" * 10, clock.PINNED_EPOCH)
    arm = bytearray(original)
    arm[18:20] = (183).to_bytes(2, "little")  # EM_AARCH64
    with pytest.raises(elfpatch.ClockPatchError, match="not x86-64"):
        elfpatch.patched(bytes(arm), clock.PINNED_EPOCH)
    bad = tmp_path / "other.so"
    bad.write_bytes(bytes(arm))
    with pytest.raises(RuntimeError, match="ALMA_MINIHACK_CLOCK=system"):
        clock.pin_library(bad)
    assert bad.read_bytes() == bytes(arm)  # nothing written on refusal
    with pytest.raises(ValueError, match="1..2\\*\\*31-1"):
        elfpatch.time_stub(2**31)


# ---------------------------------------------------------------------------------------------
# The same episode under two faked system clocks

_EPISODE = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
from pytest_alma.envs.minihack.adapter import MiniHackEnvironment
from pytest_alma.records import Task

env = MiniHackEnvironment()
episode = env.open(Task("minihack", "MiniHack-Room-Monster-5x5-v0", "test", 0), 20)
start = episode.reset()
steps = []
for action in ["east", "east", "south", "east", "east", "north", "east", "east", "east", "east"]:
    result = episode.step(action)
    steps.append([result.observation, result.reward, result.done, result.info["messages"]])
    if result.done:
        break
episode.close()
print(json.dumps({"start": start.observation, "steps": steps, "score": episode.score(),
                  "settings": env.settings()["clock"], "python_clock": time.time()}))
"""


def _faketime_library() -> str:
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    assert found, (
        "libfaketime is missing: apt-get install faketime (the README's set-up line does this)"
    )
    return str(found[0])


def _play_at(fake_local: str, zone: str, mode: str) -> dict[str, Any]:
    """The episode's trajectory with the system clock frozen at ``fake_local`` in ``zone``."""
    env = {
        **os.environ,
        "LD_PRELOAD": _faketime_library(),
        "FAKETIME": fake_local,  # no '@': the clock stands still there
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "TZ": zone,
        clock.CLOCK_ENV_VAR: mode,
    }
    done = subprocess.run(
        [sys.executable, "-c", _EPISODE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


#: A full-moon Friday the 13th, 00:30 in UTC; an ordinary noon in Tokyo (UTC+9), a Wednesday.
_STRANGE = ("2025-06-13 00:30:00", "UTC")
_ORDINARY = ("2026-04-22 12:00:00", "Asia/Tokyo")
_ORDINARY_UTC = utc(2026, 4, 22, 3)


@pytest.fixture(scope="module")
def trajectories() -> dict[tuple[str, str], dict[str, Any]]:
    """The episode under both faked clocks, pinned and on the system clock."""
    return {
        (mode, which): _play_at(*at, mode)
        for mode in ("pinned", "system")
        for which, at in (("strange", _STRANGE), ("ordinary", _ORDINARY))
    }


def test_the_system_clocks_really_were_faked(
    trajectories: dict[tuple[str, str], dict[str, Any]],
) -> None:
    assert clock.effects(_ORDINARY_UTC + 9 * 3600).neutral  # Tokyo's local date and hour
    strange = trajectories["system", "strange"]
    assert strange["python_clock"] == pytest.approx(FULL_MOON_FRIDAY_13TH_MIDNIGHT, abs=5)
    assert trajectories["system", "ordinary"]["python_clock"] == pytest.approx(_ORDINARY_UTC, abs=5)
    # The pin does not touch the Python process's own clock.
    pinned = trajectories["pinned", "strange"]
    assert pinned["python_clock"] == pytest.approx(FULL_MOON_FRIDAY_13TH_MIDNIGHT, abs=5)


def test_without_the_pin_the_two_clocks_play_different_games(
    trajectories: dict[tuple[str, str], dict[str, Any]],
) -> None:
    strange, ordinary = trajectories["system", "strange"], trajectories["system", "ordinary"]
    assert strange["settings"] == ordinary["settings"] == clock.clock_settings("system")
    assert FRIDAY in strange["start"] and FRIDAY not in ordinary["start"]
    assert strange["start"] != ordinary["start"]


def test_pinned_the_same_episode_is_identical_under_both_clocks(
    trajectories: dict[tuple[str, str], dict[str, Any]],
) -> None:
    strange, ordinary = trajectories["pinned", "strange"], trajectories["pinned", "ordinary"]
    assert strange["settings"] == clock.clock_settings("pinned")
    for key in ("start", "steps", "score", "settings"):
        assert strange[key] == ordinary[key], key
    assert len(strange["steps"]) >= 5
    assert all(word not in strange["start"] for word in ("Full moon", "New moon", "Friday"))
