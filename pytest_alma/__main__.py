"""Command line: ``python -m pytest_alma report RUN`` and ``python -m pytest_alma envs``.

``RUN`` is a run directory (``reports/<run-id>``), a run id, or ``latest``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_alma.report import render_summary, terminal_lines
from pytest_alma.store import atomic_write_text, read_json


def resolve_run(arg: str, reports: Path) -> Path:
    """Turn a run argument into a run directory holding results.json."""
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
    raise SystemExit(
        f"no results.json found for run {arg!r} (looked in {path} and {reports / arg})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_alma", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="re-render summary.md of a run from its results.json")
    report.add_argument("run", help="run directory, run id, or 'latest'")
    report.add_argument("--reports", default="reports", help="reports directory")
    sub.add_parser("envs", help="list the registered environments")
    args = parser.parse_args(argv)
    if args.command == "report":
        run_dir = resolve_run(args.run, Path(args.reports))
        results = read_json(run_dir / "results.json")
        atomic_write_text(run_dir / "summary.md", render_summary(results))
        print("\n".join(terminal_lines(results)))
        print(f"wrote {run_dir / 'summary.md'}")
        return 0
    if args.command == "envs":
        from pytest_alma.envs.base import available_environments

        for name, target in available_environments().items():
            print(f"{name}\t{target}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
