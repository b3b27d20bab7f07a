"""``pytest --alma-search``: run the search after the session's results are written.

Called on the controller only, from ``pytest_sessionfinish``, after ``results.json`` is on disk
and every worker has finished: new design files are written while nobody is collecting. The
search's outcome is added to the run's ``results.json`` (a ``search`` section with the lineage)
and the reports are rendered again, so the run's report shows the lineage chart.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_alma.search.archive import ArchiveError
from pytest_alma.search.loop import SearchContext, SearchOutcome, lineage_nodes, run_search
from pytest_alma.store import atomic_write_json, read_json


def run_after_session(
    services: Any, design_dirs: list[Path], progress: Callable[[str], None]
) -> list[str]:
    """Run the search for the finished session ``services``; return the terminal lines."""
    from pytest_alma.llm.pricing import PriceTable

    settings = services.settings
    results_path = services.run_dir / "results.json"
    results: dict[str, Any] = read_json(results_path)
    store = Path(settings.store)
    prices = PriceTable.default()
    if settings.prices:
        prices_path = Path(settings.prices)
        prices = prices.with_overrides(
            prices_path if prices_path.is_absolute() else services.rootdir / prices_path
        )
    ctx = SearchContext(
        settings=settings,
        rootdir=services.rootdir,
        store=store if store.is_absolute() else services.rootdir / store,
        run_dir=services.run_dir,
        results=results,
        attach=services.attach_document(),
        workers=services.workers or 1,
        model=services.model,
        test_double=services.test_double,
        stats=services.gateway.stats,
        design_dirs=design_dirs,
        progress=progress,
        prices=prices,
    )
    try:
        outcome = run_search(ctx)
    except ArchiveError as exc:
        return [f"search: not run: {exc}"]
    except Exception as exc:  # the session's results are written: report, never crash
        import traceback

        progress("".join(traceback.format_exception(exc)).rstrip())
        return [
            f"search: stopped by an error ({type(exc).__name__}: {exc}); the archive "
            "keeps every finished step and the next `pytest --alma-search` resumes"
        ]
    assert outcome.archive is not None
    results["search"] = {
        "archive": str(outcome.archive),
        "generations": outcome.generations,
        "written": outcome.written,
        "failed": outcome.failed,
        "duplicates": outcome.duplicates,
        "stopped": outcome.stopped,
        "meta_usd": outcome.meta_usd,
        "eval_usd": outcome.eval_usd,
        "lineage": lineage_nodes(outcome.archive),
    }
    atomic_write_json(results_path, results)
    services.render_reports(results)
    return summary_lines(outcome)


def summary_lines(outcome: SearchOutcome) -> list[str]:
    """What the search did, for the end of the terminal output."""
    lines = [
        f"search: generation(s) {', '.join(map(str, outcome.generations)) or 'none'}; archive "
        f"{outcome.archive}",
        f"search: spent ${outcome.meta_usd:.4f} on the meta-agent and ${outcome.eval_usd:.4f} "
        "on evaluations",
    ]
    lines += [f"search: wrote {path}" for path in outcome.written]
    lines += [f"search: failed {text}" for text in outcome.failed]
    lines += [f"search: duplicate {text}" for text in outcome.duplicates]
    if outcome.stopped:
        lines.append(f"search: stopped: {outcome.stopped}")
    lines.append(
        "search: `python -m pytest_alma search status` shows the archive; the next `pytest` "
        "evaluates the new designs"
    )
    return lines


def status_document(path: Path) -> str:
    """The archive as JSON (for scripts)."""
    return json.dumps(lineage_nodes(path), indent=2)
