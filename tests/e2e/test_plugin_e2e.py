"""The plugin run as users run it: in a fresh process, with xdist absent, off and on."""

from __future__ import annotations

import pytest

from .conftest import QUICK, results_of, scores

XDIST_MODES = {
    "absent": ["-p", "no:xdist"],
    "off": ["-n", "0"],
    "on": ["-n", "2"],
}


@pytest.mark.parametrize("mode", sorted(XDIST_MODES))
def test_benchmark_runs_and_prints_the_table(project: pytest.Pytester, mode: str) -> None:
    result = project.runpytest_subprocess(*QUICK, *XDIST_MODES[mode])
    # contract + 2 collect + 2 deploy items per design, two designs
    result.assert_outcomes(passed=10)
    result.stdout.fnmatch_lines(
        [
            "*SCRIPTED TEST DOUBLE*",
            "*pytest-alma*",
            "*no_memory*",
            "*example_rules*",
        ]
    )
    data = results_of(project)
    assert data["test_double"] is True
    assert {e["design"] for e in data["episodes"]} == {"example_rules", "no_memory"}
    assert len(data["episodes"]) == 4
    summary = (project.path / "reports" / data["run_id"] / "summary.md").read_text()
    assert "SCRIPTED TEST DOUBLE" in summary


def test_parallel_run_gives_the_same_numbers(project: pytest.Pytester) -> None:
    args = ["--alma-limit=6", "--alma-repeats=2", "--alma-max-steps=8", "--alma-cache=off"]
    project.runpytest_subprocess(*args, "-n", "0").assert_outcomes(passed=2 + 2 * (3 + 6))
    serial = scores(results_of(project))
    project.runpytest_subprocess(*args, "-n", "3").assert_outcomes(passed=2 + 2 * (3 + 6))
    parallel = scores(results_of(project))
    assert serial == parallel and len(serial) == 12


def test_rerun_is_answered_from_the_cache(project: pytest.Pytester) -> None:
    project.runpytest_subprocess(*QUICK).assert_outcomes(passed=10)
    first = results_of(project)
    result = project.runpytest_subprocess(*QUICK)
    result.assert_outcomes(passed=10)
    second = results_of(project)
    calls = sum(e["agent_tokens"]["calls"] for e in second["episodes"])
    cached = sum(e["agent_tokens"]["cached_calls"] for e in second["episodes"])
    assert calls > 0 and cached == calls
    assert scores(first) == scores(second)
    result.stdout.fnmatch_lines(
        [f"*LLM calls in deployment: {calls}, answered from cache: {calls}*"]
    )


def test_plugin_stays_out_of_unrelated_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    (pytester.path / "designs").mkdir()
    (pytester.path / "designs" / "broken.py").write_text("this is not python(\n")
    result = pytester.runpytest_subprocess("test_plain.py")
    result.assert_outcomes(passed=1)
    assert "pytest-alma" not in result.stdout.str()
    assert not (pytester.path / "reports").exists()
    assert not (pytester.path / ".alma").exists()


def test_unknown_environment_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--alma-env=babaisia")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown environment 'babaisia'*Did you mean 'babaisai'*"])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--alma-split=bogus", "*--alma-split 'bogus' is not a split of babaisai; choose one of*"),
        ("--alma-limit=1", "*--alma-limit must be at least 2*"),
        ("--alma-rollout=parallel", "*--alma-rollout: invalid value 'parallel'*"),
        ("--alma-faults=boom@1", "*unknown fault kind 'boom'*"),
    ],
)
def test_bad_options_are_usage_errors_before_any_episode(
    project: pytest.Pytester, option: str, message: str
) -> None:
    result = project.runpytest_subprocess(option, "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert not (project.path / "reports").exists()


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        (
            {"ALFWORLD_DATA": "/nonexistent"},
            ["--alma-env=alfworld"],
            "*cannot use the alfworld environment*alfworld-download*",
        ),
        (
            {"ALMA_MINIHACK_BOXOBAN_LEVELS": ""},
            ["--alma-env=minihack", "--alma-split=balrog"],
            "*Boxoban-*needs the Boxoban level files*ALMA_MINIHACK_BOXOBAN_LEVELS*",
        ),
    ],
)
def test_missing_datasets_are_usage_errors_before_any_episode(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env: dict, args: list, message: str
) -> None:
    pytest.importorskip(args[0].split("=")[1], reason="needs the environment's extra")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = project.runpytest_subprocess(*args, "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_help_lists_every_option_without_crashing(pytester: pytest.Pytester) -> None:
    # argparse %-formats help texts: one bare "%" in an option's help (the gate threshold's
    # "mean:5%") made `pytest --help` crash in every project where the plugin is installed.
    result = pytester.runpytest_subprocess("--help")
    assert result.ret == 0, result.stderr.str()
    out = result.stdout.str()
    assert "--alma-regression-threshold" in out
    assert "mean:5%" in out
    assert "--alma-max-tokens" in out and "--alma-meta-max-tokens" in out


def test_an_unpriced_model_under_a_budget_is_a_usage_error_before_any_episode(
    project: pytest.Pytester,
) -> None:
    # The gateway would refuse every call (each is priced before it is sent): say so at once.
    # (Port 9 on loopback: nothing is ever sent there, the session stops before the gateway.)
    args = ["--alma-model=my-local-model", "--alma-base-url=http://127.0.0.1:9/v1"]
    result = project.runpytest_subprocess(*args, "--alma-budget-usd=1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'my-local-model' has no known price*--alma-prices=FILE*"])
    assert not (project.path / "reports").exists()
    prices = project.path / "prices.json"
    prices.write_text('{"my-local-model": {"input": 0, "output": 0}}')
    priced = project.runpytest_subprocess(
        *args, "--alma-budget-usd=1", f"--alma-prices={prices}", "--collect-only"
    )
    assert priced.ret == pytest.ExitCode.OK, priced.stderr.str()
