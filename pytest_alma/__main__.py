"""Command line: ``python -m pytest_alma report RUN``, ``compare RUN_A RUN_B`` and ``envs``.

``RUN`` is a run directory (``reports/<run-id>``), a run id, or ``latest``. A run whose
controller was killed before it wrote ``results.json`` is rebuilt from its journal
(``episodes.jsonl``) first, marked ``"partial": true``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pytest_alma.report import terminal_lines, write_reports
from pytest_alma.runlog import EPISODES_FILE, RESULTS_FILE, rebuild
from pytest_alma.store import atomic_write_json, read_json


def resolve_run(arg: str, reports: Path, *, journal: bool = False) -> Path:
    """Turn a run argument into a run directory holding results.json (or, with ``journal``,
    only the journal ``episodes.jsonl`` of a run that was killed)."""
    if arg == "latest":
        latest = reports / "LATEST"
        if not latest.exists():
            raise SystemExit(f"no runs recorded in {reports} (no LATEST file)")
        arg = latest.read_text().strip()
    path = Path(arg)
    for candidate in (path, reports / arg):
        if (candidate / "results.json").exists():
            return candidate
        if candidate.name == "results.json" and candidate.exists():
            return candidate.parent
        if journal and (candidate / EPISODES_FILE).exists():
            return candidate
    raise SystemExit(
        f"no results.json found for run {arg!r} (looked in {path} and {reports / arg})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_alma", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser(
        "report",
        help="re-render a run's reports (summary.md, charts, report.html) from its results.json",
    )
    report.add_argument("run", help="run directory, run id, or 'latest'")
    report.add_argument("--reports", default="reports", help="reports directory")
    report.add_argument(
        "--out", default=None, help="write the reports here (default: the run directory)"
    )
    sub.add_parser("envs", help="list the registered environments")
    _add_compare_parser(sub)
    search = sub.add_parser("search", help="the meta-agent search's archive")
    search.add_argument("action", choices=["status"], help="status: the archive as a table")
    search.add_argument(
        "--archive", default=None, help="archive file (default: <store>/search/archive.sqlite3)"
    )
    search.add_argument("--store", default=".alma", help="the store directory (--alma-store)")
    search.add_argument("--json", action="store_true", help="print the lineage nodes as JSON")
    args = parser.parse_args(argv)
    if args.command == "compare":
        return _compare(args)
    if args.command == "report":
        run_dir = resolve_run(args.run, Path(args.reports), journal=True)
        if not (run_dir / RESULTS_FILE).exists():
            try:
                results = rebuild(run_dir)
            except ValueError as exc:
                raise SystemExit(f"cannot rebuild the results of {run_dir}: {exc}") from None
            atomic_write_json(run_dir / RESULTS_FILE, results)
            print(f"rebuilt {run_dir / RESULTS_FILE} from {EPISODES_FILE} (partial)")
        results = read_json(run_dir / RESULTS_FILE)
        rendered = write_reports(results, run_dir, None if args.out is None else Path(args.out))
        print("\n".join(terminal_lines(results)))
        for note in rendered.notes:
            print(note)
        for path in rendered.written:
            print(f"wrote {path}")
        return 0
    if args.command == "search":
        from pytest_alma.search.status import render_status

        archive = Path(args.archive or Path(args.store) / "search" / "archive.sqlite3")
        if not archive.exists():
            raise SystemExit(
                f"no search archive at {archive}: run `pytest --alma-search` first, or pass "
                "--archive PATH"
            )
        if args.json:
            from pytest_alma.search.after_session import status_document

            print(status_document(archive))
        else:
            print(render_status(archive))
        return 0
    if args.command == "envs":
        from pytest_alma.envs.base import available_environments

        for name, target in available_environments().items():
            print(f"{name}\t{target}")
        return 0
    return 2


def _add_compare_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    compare = sub.add_parser(
        "compare",
        help="B minus A per design and environment, paired on the same tasks, seeds, repeats",
        description="Compare two runs (or a run and the committed record): per design and "
        "environment, B minus A with a 95%% interval and a test paired on the episodes both "
        "played (Welch's unpaired test where none match). Refuses runs that played different "
        "episodes unless --force. Exit status: 0, 2 when refused, 6 when --threshold fails.",
    )
    compare.add_argument("run_a", help="A: run directory, run id, 'latest' or a record file")
    compare.add_argument("run_b", help="B: run directory, run id, 'latest' or a record file")
    compare.add_argument("--reports", default="reports", help="reports directory")
    compare.add_argument(
        "--force", action="store_true", help="compare even if the runs played other episodes"
    )
    compare.add_argument(
        "--threshold",
        default=None,
        help="judge B against A like the regression gate ('mean:5%%', 'mean:0.05', 'p:0.05', "
        "'design=mean:2%%,*=mean:5%%') and exit 6 when a design is worse beyond it",
    )
    compare.add_argument(
        "--fail-on-improvement",
        action="store_true",
        help="with --threshold: also exit 6 when a design is better beyond it",
    )


def _load_side(arg: str, reports: Path) -> tuple[str, dict[str, Any], Any]:
    """A run's results (or a record) to compare: its label, document and scores."""
    from pytest_alma.compare import design_scores
    from pytest_alma.record import RECORD_FORMAT, record_scores

    path = Path(arg)
    if path.is_file() and path.suffix == ".json":
        data = read_json(path)
        if isinstance(data, dict) and data.get("format") == RECORD_FORMAT:
            return f"record {path} (run {data.get('run_id')})", data, record_scores(data)
    run_dir = resolve_run(arg, reports)
    results: dict[str, Any] = read_json(run_dir / "results.json")
    return f"run {run_dir}", results, design_scores(results)


def _compare(args: argparse.Namespace) -> int:
    """``compare RUN_A RUN_B``: print the table; 2 when refused, 6 when --threshold fails."""
    from pytest_alma.compare import (
        ComparisonRefused,
        ThresholdError,
        compare_documents,
        parse_thresholds,
    )
    from pytest_alma.record import REGRESSION_EXIT_CODE

    reports = Path(args.reports)
    label_a, doc_a, scores_a = _load_side(args.run_a, reports)
    label_b, doc_b, scores_b = _load_side(args.run_b, reports)
    try:
        thresholds = None
        if args.threshold is not None:
            thresholds = parse_thresholds(args.threshold, "--threshold")
        lines, failing = compare_documents(
            doc_a,
            doc_b,
            scores_a,
            scores_b,
            force=args.force,
            thresholds=thresholds,
            fail_on_improvement=args.fail_on_improvement,
        )
    except (ComparisonRefused, ThresholdError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, label, doc in (("A", label_a, doc_a), ("B", label_b, doc_b)):
        double = " (SCRIPTED TEST DOUBLE)" if doc.get("test_double") else ""
        print(f"{name}: {label}, model {doc.get('model')}{double}")
    print("\n".join(lines))
    return REGRESSION_EXIT_CODE if failing else 0


if __name__ == "__main__":
    sys.exit(main())
