"""The search archive: every candidate design, with how it was made and how it scored.

An embedded SQLite file (``<store>/search/archive.sqlite3`` by default). Every state change of a
candidate is one transaction, so a run killed at any point (SIGKILL included) leaves the archive
consistent, and the next ``pytest --alma-search`` continues from what it says: a generation
whose parents were drawn is finished before a new one starts, and each candidate resumes at its
last completed step. Nothing is held only in memory.

Identity is by content: a candidate's ``source_hash`` is the digest of its normalised code
(comments, docstrings and formatting removed), and a new candidate whose code is already in the
archive is recorded as a ``duplicate`` of it instead of being verified and evaluated again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ARCHIVE_SCHEMA = 1

#: Candidate statuses. Terminal ones end a candidate; the others say which step comes next.
PENDING = "pending"  # parent drawn; analysis next
ANALYSED = "analysed"  # analysis stored; code generation next
GENERATED = "generated"  # code stored; verification (and repairs) next
VERIFIED = "verified"  # passed the cascade; evaluation next
EVALUATED = "evaluated"  # scored; the design file is written next
WRITTEN = "written"  # terminal: in the designs directory
SEED = "seed"  # terminal: a design of the session the search started from
FAILED = "failed"  # terminal: why is in ``stage`` and ``reason``
DUPLICATE = "duplicate"  # terminal: same (or nearly the same) code as ``duplicate_of``
BUDGET = "budget"  # stopped by the budget; resumes at its last step when there is budget again

TERMINAL = frozenset({WRITTEN, SEED, FAILED, DUPLICATE})
#: Candidates that can be drawn as parents: they have code and a score.
SELECTABLE = frozenset({WRITTEN, SEED, EVALUATED})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (
    id TEXT PRIMARY KEY,
    generation INTEGER NOT NULL,
    slot INTEGER NOT NULL DEFAULT 0,
    parent TEXT,
    origin TEXT NOT NULL,
    status TEXT NOT NULL,
    resume_status TEXT,
    stage TEXT,
    reason TEXT,
    name TEXT,
    source TEXT,
    source_hash TEXT,
    analysis TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    reward REAL,
    reward_low REAL,
    reward_high REAL,
    reward_n INTEGER,
    scores TEXT,
    run_dir TEXT,
    meta_cost_usd REAL NOT NULL DEFAULT 0,
    eval_cost_usd REAL NOT NULL DEFAULT 0,
    meta_tokens INTEGER NOT NULL DEFAULT 0,
    eval_tokens INTEGER NOT NULL DEFAULT 0,
    visits INTEGER NOT NULL DEFAULT 0,
    path TEXT,
    duplicate_of TEXT,
    embedding TEXT,
    model TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS candidates_hash ON candidates (source_hash);
CREATE TABLE IF NOT EXISTS attempts (
    candidate TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    source TEXT NOT NULL,
    stage TEXT NOT NULL,
    ok INTEGER NOT NULL,
    failure TEXT,
    created TEXT NOT NULL,
    PRIMARY KEY (candidate, attempt)
);
CREATE TABLE IF NOT EXISTS generations (
    number INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    parents TEXT NOT NULL,
    selection TEXT NOT NULL,
    rng_before TEXT,
    rng_after TEXT,
    started TEXT NOT NULL,
    finished TEXT,
    stop_reason TEXT
);
"""


class ArchiveError(RuntimeError):
    """The archive cannot be used as asked (another schema, other settings)."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Candidate:
    """One row of the archive: a design the search made, seeded or rejected."""

    id: str
    generation: int
    slot: int
    parent: str | None
    origin: str  # "seed", "scratch" or "child"
    status: str
    resume_status: str | None
    stage: str | None
    reason: str | None
    name: str | None
    source: str | None
    source_hash: str | None
    analysis: str | None
    attempts: int
    reward: float | None
    reward_low: float | None
    reward_high: float | None
    reward_n: int | None
    scores: str | None
    run_dir: str | None
    meta_cost_usd: float
    eval_cost_usd: float
    meta_tokens: int
    eval_tokens: int
    visits: int
    path: str | None
    duplicate_of: str | None
    embedding: str | None  # JSON vector of the normalised code (--alma-search-novelty-embedding)
    model: str | None
    created: str
    updated: str

    @property
    def analysis_json(self) -> dict[str, Any] | None:
        """The analysis that produced this candidate, parsed."""
        return json.loads(self.analysis) if self.analysis else None

    @property
    def scores_json(self) -> dict[str, Any]:
        """Per-environment scores (``{env: {mean, low, high, n}}``) and extras."""
        return json.loads(self.scores) if self.scores else {}


@dataclass(frozen=True)
class Generation:
    """One generation: the parents drawn, from what scores, with which random state."""

    number: int
    status: str  # "running" or "done"
    parents: list[str]
    selection: list[dict[str, Any]]
    rng_before: dict[str, Any] | None
    rng_after: dict[str, Any] | None
    started: str
    finished: str | None
    stop_reason: str | None


_CANDIDATE_COLUMNS = [f.name for f in fields(Candidate) if not f.name.startswith("_")]


class Archive:
    """The archive file. Thread-safe: children of a generation run concurrently."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # isolation_level=None: explicit BEGIN/COMMIT below, one transaction per state change.
        self._db = sqlite3.connect(
            str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        # WAL + synchronous=FULL: a committed state change survives a SIGKILL or power loss.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self.transaction() as db:
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    db.execute(statement)
            found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if found is None:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(ARCHIVE_SCHEMA),)
                )
            elif int(found["value"]) != ARCHIVE_SCHEMA:
                raise ArchiveError(
                    f"{self.path} is a search archive of schema {found['value']}, this version "
                    f"of pytest-alma reads schema {ARCHIVE_SCHEMA}; start a new archive with "
                    "--alma-search-archive=PATH"
                )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic change: all of it is committed, or none of it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- key/value facts: settings, the No Memory reward, the random state -----------------

    def get_meta(self, key: str) -> Any:
        """A stored fact (JSON value), or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row["value"])

    def set_meta(self, key: str, value: Any, db: sqlite3.Connection | None = None) -> None:
        """Store a fact (inside ``db``'s transaction when given)."""
        text = json.dumps(value, sort_keys=True)
        if db is not None:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, text))
            return
        with self.transaction() as tx:
            tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, text))

    def bind_settings(self, settings_key: dict[str, Any]) -> None:
        """Record the evaluation settings, or refuse settings other than the recorded ones.

        Rewards are only comparable under the same tasks, model and protocol: an archive built
        on one environment split must not draw parents by scores measured on another.
        """
        recorded = self.get_meta("settings")
        if recorded is None:
            self.set_meta("settings", settings_key)
            return
        if recorded != settings_key:
            differing = sorted(
                k
                for k in set(recorded) | set(settings_key)
                if recorded.get(k) != settings_key.get(k)
            )
            details = ", ".join(
                f"{k}: archive {recorded.get(k)!r}, now {settings_key.get(k)!r}" for k in differing
            )
            raise ArchiveError(
                f"the search archive {self.path} was built under other settings ({details}). "
                "Scores measured under different settings cannot drive one search: re-run with "
                "the archive's settings, or start a new archive with --alma-search-archive=PATH."
            )

    # -- candidates --------------------------------------------------------------------------

    def add_candidate(self, db: sqlite3.Connection | None = None, **values: Any) -> Candidate:
        """Insert a candidate (``id``, ``generation``, ``origin``, ``status`` at least)."""
        now = _now()
        row = {"created": now, "updated": now, **values}
        unknown = set(row) - set(_CANDIDATE_COLUMNS)
        if unknown:
            raise KeyError(f"unknown candidate fields: {sorted(unknown)}")
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        sql = f"INSERT INTO candidates ({columns}) VALUES ({marks})"
        if db is not None:
            db.execute(sql, tuple(row.values()))
        else:
            with self.transaction() as tx:
                tx.execute(sql, tuple(row.values()))
        found = self.candidate(str(values["id"]), db)
        assert found is not None
        return found

    def update(
        self, candidate_id: str, db: sqlite3.Connection | None = None, **values: Any
    ) -> None:
        """Change fields of a candidate, as one transaction (or inside ``db``'s)."""
        unknown = set(values) - set(_CANDIDATE_COLUMNS)
        if unknown:
            raise KeyError(f"unknown candidate fields: {sorted(unknown)}")
        values = {**values, "updated": _now()}
        assignments = ", ".join(f"{k} = ?" for k in values)
        sql = f"UPDATE candidates SET {assignments} WHERE id = ?"
        if db is not None:
            db.execute(sql, (*values.values(), candidate_id))
            return
        with self.transaction() as tx:
            tx.execute(sql, (*values.values(), candidate_id))

    def candidate(
        self, candidate_id: str, db: sqlite3.Connection | None = None
    ) -> Candidate | None:
        """One candidate by id."""
        with self._lock:
            row = (
                (db or self._db)
                .execute("SELECT * FROM candidates WHERE id = ?", (candidate_id,))
                .fetchone()
            )
        return None if row is None else _candidate(row)

    def candidates(self) -> list[Candidate]:
        """Every candidate, by generation then slot."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM candidates ORDER BY generation, origin != 'seed', slot, id"
            ).fetchall()
        return [_candidate(r) for r in rows]

    def by_hash(self, source_hash: str) -> Candidate | None:
        """The first candidate whose normalised code has this digest."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM candidates WHERE source_hash = ? ORDER BY generation, slot LIMIT 1",
                (source_hash,),
            ).fetchone()
        return None if row is None else _candidate(row)

    def selectable(self) -> list[Candidate]:
        """Candidates that may be drawn as parents (code and a score; never No Memory)."""
        return [
            c
            for c in self.candidates()
            if c.status in SELECTABLE and c.reward is not None and c.name != "no_memory"
        ]

    # -- attempts (every verified version of a candidate's code) -----------------------------

    def add_attempt(
        self,
        candidate_id: str,
        attempt: int,
        source: str,
        stage: str,
        ok: bool,
        failure: str | None,
    ) -> None:
        """Record one verification attempt (idempotent: a resumed attempt overwrites itself)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?)",
                (candidate_id, attempt, source, stage, int(ok), failure, _now()),
            )

    def attempts(self, candidate_id: str) -> list[dict[str, Any]]:
        """A candidate's verification attempts in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM attempts WHERE candidate = ? ORDER BY attempt", (candidate_id,)
            ).fetchall()
        return [dict(r) for r in rows]

    # -- generations -------------------------------------------------------------------------

    def generations(self) -> list[Generation]:
        """Every generation in order."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM generations ORDER BY number").fetchall()
        return [_generation(r) for r in rows]

    def open_generation(self) -> Generation | None:
        """The generation a killed run left unfinished, if any."""
        running = [g for g in self.generations() if g.status == "running"]
        return running[0] if running else None

    def start_generation(
        self,
        number: int,
        parents: list[str],
        selection: list[dict[str, Any]],
        rng_before: Mapping[str, Any] | None,
        rng_after: Mapping[str, Any] | None,
        children: list[dict[str, Any]],
    ) -> None:
        """Record a generation's draw, its children's slots, the parents' visits and the new
        random state, all in one transaction: a kill cannot leave a drawn parent without its
        child, a visit counted twice, or a draw that a resumed run would repeat."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO generations (number, status, parents, selection, rng_before, "
                "rng_after, started) VALUES (?, 'running', ?, ?, ?, ?, ?)",
                (
                    number,
                    json.dumps(parents),
                    json.dumps(selection),
                    json.dumps(rng_before) if rng_before is not None else None,
                    json.dumps(rng_after) if rng_after is not None else None,
                    _now(),
                ),
            )
            for parent in parents:
                db.execute("UPDATE candidates SET visits = visits + 1 WHERE id = ?", (parent,))
            for child in children:
                self.add_candidate(db, **child)
            if rng_after is not None:
                self.set_meta("rng_state", dict(rng_after), db)

    def finish_generation(self, number: int, stop_reason: str | None = None) -> None:
        """Mark a generation done (every child terminal or stopped by the budget)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE generations SET status = 'done', finished = ?, stop_reason = ? "
                "WHERE number = ?",
                (_now(), stop_reason, number),
            )

    def children_of_generation(self, number: int) -> list[Candidate]:
        """The candidates made in generation ``number``."""
        return [c for c in self.candidates() if c.generation == number and c.origin != "seed"]


def _candidate(row: sqlite3.Row) -> Candidate:
    return Candidate(**{k: row[k] for k in _CANDIDATE_COLUMNS})


def _generation(row: sqlite3.Row) -> Generation:
    return Generation(
        number=int(row["number"]),
        status=str(row["status"]),
        parents=list(json.loads(row["parents"])),
        selection=list(json.loads(row["selection"])),
        rng_before=json.loads(row["rng_before"]) if row["rng_before"] else None,
        rng_after=json.loads(row["rng_after"]) if row["rng_after"] else None,
        started=str(row["started"]),
        finished=row["finished"],
        stop_reason=row["stop_reason"],
    )
