import os
import subprocess
import sys

import pytest

from pytest_alma.settings import SettingsError, resolve


def test_precedence_cli_over_env_over_ini_over_default() -> None:
    ini = {"repeats": "5", "seed": "9", "limit": "4"}
    env = {"ALMA_REPEATS": "4", "ALMA_SEED": "8"}
    cli = {"repeats": "2"}
    s = resolve(cli, ini, env)
    assert s.repeats == 2 and s.sources["repeats"] == "command line"
    assert s.seed == 8 and s.sources["seed"] == "$ALMA_SEED"
    assert s.limit == 4 and s.sources["limit"] == "ini alma_limit"
    assert s.train_size == 500 and s.sources["train-size"] == "default"


def test_lists_and_choices() -> None:
    s = resolve({"env": "babaisai, minihack", "rollout": "sequential"}, {}, {})
    assert s.envs == ("babaisai", "minihack") and s.rollout == "sequential"
    assert resolve({}, {}, {}).designs == ("designs", "baselines")


@pytest.mark.parametrize(
    ("cli", "message"),
    [
        ({"rollout": "parallel"}, "--alma-rollout: invalid value 'parallel'.*batched, sequential"),
        ({"repeats": "0"}, "--alma-repeats: invalid value '0'.*positive"),
        ({"budget-usd": "-1"}, "--alma-budget-usd"),
        ({"cache": "maybe"}, "rw, ro, replay-only, replay, off"),
        ({"worker-nice": "20"}, "--alma-worker-nice: invalid value '20'.*between 0"),
        ({"worker-nice": "-5"}, "--alma-worker-nice.*between 0"),
    ],
)
def test_invalid_values_name_the_option(cli: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        resolve(cli, {}, {})


def test_bad_env_var_names_its_source() -> None:
    with pytest.raises(SettingsError, match=r"from \$ALMA_SEED"):
        resolve({}, {}, {"ALMA_SEED": "x"})


def test_unknown_environments_say_what_is_there() -> None:
    from pytest_alma.envs.base import UnknownEnvironmentError, load_environment

    with pytest.raises(
        UnknownEnvironmentError,
        match="registered: alfworld, babaisai, minihack, textworld. Did you mean .babaisai.",
    ):
        load_environment("babaisia")
    with pytest.raises(UnknownEnvironmentError, match="Did you mean 'textworld'"):
        load_environment("text-world")


@pytest.mark.skipif(not hasattr(os, "nice"), reason="os.nice is POSIX only")
@pytest.mark.parametrize("niceness", [0, 10])
def test_worker_priority_is_lowered_by_the_setting(niceness: int) -> None:
    # In a child process: niceness can only go up, and the test process must keep its own.
    code = (
        "import os; from pytest_alma.plugin import _lower_worker_priority as lower; "
        f"before = os.nice(0); lower({niceness}); print(os.nice(0) - before)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == min(niceness, 19 - os.nice(0))
    assert resolve({}, {}, {}).worker_nice == 10


def test_switches_and_search_settings_resolve_with_their_twins() -> None:
    from pytest_alma.settings import resolve

    settings = resolve({"search": "1", "search-children": "2"}, {}, {"ALMA_SEARCH_HELDOUT": "0.5"})
    assert settings.search.enabled and settings.search.children == 2
    assert settings.search.heldout == 0.5 and settings.search.steps == 1
    assert "subprocess" in settings.search.forbidden_imports
    assert resolve({}, {"search": "false"}, {}).search.enabled is False
    assert resolve({"cache": "replay-only"}, {}, {}).cache == "replay"
    with pytest.raises(SettingsError, match="--alma-search-heldout: invalid value '1.5'"):
        resolve({"search-heldout": "1.5"}, {}, {})
    with pytest.raises(SettingsError, match="--alma-search: invalid value 'perhaps'"):
        resolve({}, {}, {"ALMA_SEARCH": "perhaps"})


def test_max_tokens_and_upstream_name_have_their_twins() -> None:
    from pytest_alma.llm.client import agent_max_tokens

    assert resolve({}, {}, {}).max_tokens is None  # the default depends on the model
    assert agent_max_tokens(None, "gpt-4o-mini") == 1024
    assert agent_max_tokens(None, "gpt-5-nano/low") == 4096  # reasoning counts against the cap
    assert agent_max_tokens(300, "gpt-5-nano/low") == 300
    s = resolve({}, {"max-tokens": "256", "upstream-name": "ini-name"}, {"ALMA_MAX_TOKENS": "512"})
    assert s.max_tokens == 512 and s.sources["max-tokens"] == "$ALMA_MAX_TOKENS"
    assert s.upstream_name == "ini-name" and s.sources["upstream-name"] == "ini alma_upstream_name"
    assert resolve({"upstream-name": "lab"}, {}, {"ALMA_UPSTREAM_NAME": "x"}).upstream_name == "lab"
    with pytest.raises(SettingsError, match="--alma-max-tokens"):
        resolve({"max-tokens": "0"}, {}, {})
