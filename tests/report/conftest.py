"""Fixtures for the report tests: the stored run, copied to a temporary directory and
rendered there (once per module: rendering draws the charts)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from report_fixture import LINEAGE, copy_run, stored_results

from pytest_alma.report import Rendered, write_reports


@pytest.fixture(scope="module")
def rendered_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Rendered]:
    """The stored run, copied and rendered in place (as at the end of a session)."""
    run = copy_run(tmp_path_factory.mktemp("run"))
    results = json.loads((run / "results.json").read_text(encoding="utf-8"))
    return run, write_reports(results, run)


@pytest.fixture(scope="module")
def searched_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Rendered]:
    """The stored run with a search lineage added, rendered."""
    run = copy_run(tmp_path_factory.mktemp("searched"))
    results = stored_results()
    # The shape pytest_alma/search/after_session.py writes.
    results["search"] = {
        "archive": ".alma/search/archive.sqlite3",
        "generations": [1, 2],
        "written": ["designs/gen1_rules_keyed_plans.py", "designs/gen2_rules_keyed_plans_dedup.py"],
        "failed": ["spatial_hints: contract rule 'retrieve-size' <16000 chars>"],
        "duplicates": 1,
        "stopped": "budget",
        "meta_usd": 0.01234,
        "eval_usd": 0.5,
        "lineage": copy.deepcopy(LINEAGE),
    }
    return run, write_reports(results, run)
