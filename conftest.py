"""This repository's own pytest configuration.

`pytest` in the repository root is the benchmark: every design under `designs/` and
`baselines/` on Baba Is AI. Its settings are the `alma_*` keys in `pyproject.toml`
(`[tool.pytest.ini_options]`); each can be overridden on the command line (`--alma-*`) or with
`ALMA_*` environment variables.
"""

# The project's own end-to-end tests drive throwaway projects with pytester; pytest only
# accepts `pytest_plugins` in the root conftest.
pytest_plugins = ["pytester"]
