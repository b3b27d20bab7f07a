"""This repository's own benchmark settings (read by pytest-alma as ini-style defaults).

`pytest` in the repository root runs the benchmark: every design under `designs/` and
`baselines/` on Baba Is AI. The options below are the defaults for that run; every one can be
overridden on the command line (`--alma-*`) or with `ALMA_*` environment variables.
"""

# The project's own end-to-end tests drive throwaway projects with pytester; pytest only
# accepts `pytest_plugins` in the root conftest.
pytest_plugins = ["pytester"]
