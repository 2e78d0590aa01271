"""The durable job queue and history: one SQLite table in WAL mode.

The queue survives restarts; a job found ``running`` when the store opens was
cut off by a crash or kill and is marked ``interrupted`` (never re-run, so a
job that crashes the process cannot crash-loop it). Finished jobs beyond the
history limit are pruned, oldest first; their output files stay on disk.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.failure import failure

FINISHED = ("ok", "error", "interrupted", "cancelled")
SQLITE_HEADER = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    status TEXT NOT NULL,
    workflow TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    payload_hash TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    seconds REAL,
    nodes TEXT NOT NULL DEFAULT '{}',
    files TEXT NOT NULL DEFAULT '[]',
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
"""


@dataclass
class Job:
    seq: int
    id: str
    client_id: str
    status: str
    workflow: dict[str, Any]
    created: float
    started: float | None
    finished: float | None
    seconds: float | None
    nodes: dict[str, Any]
    files: list[dict[str, str]]
    error: dict[str, Any] | None

    def summary(self) -> dict[str, Any]:
        """What job lists show: everything but the workflow and per-node detail."""
        return {
            "id": self.id,
            "status": self.status,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "seconds": self.seconds,
            "client_id": self.client_id,
            "files": self.files,
            "error": None
            if self.error is None
            else {k: self.error.get(k) for k in ("node_id", "node_type", "error_type", "message")},
        }

    def detail(self) -> dict[str, Any]:
        data = self.summary()
        data.update(workflow=self.workflow, nodes=self.nodes, error=self.error)
        return data


class StoreUnusable(Exception):
    """The job database exists but cannot be used; it is never replaced silently,
    since the queue and the history live in it."""

    def __init__(self, path: Path, reason: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        super().__init__(
            f"the job database {path} cannot be used: {reason}. It holds the queue and "
            "the history, so it is not replaced. Restore it from a backup, or move it "
            f"aside to start with an empty queue: mv {path} {path}.broken-{stamp} "
            "(with its -wal and -shm files, if any)"
        )
        self.path = path
        self.reason = reason


def check_database_file(path: Path) -> None:
    """Refuse, before SQLite touches it, a file that is not a SQLite database (SQLite
    would silently turn an empty file into a new database)."""
    if not path.is_file():
        raise StoreUnusable(path, "it is not a regular file")
    with path.open("rb") as fh:
        header = fh.read(len(SQLITE_HEADER))
    if not header:
        raise StoreUnusable(path, "the file is empty (0 bytes)")
    if header != SQLITE_HEADER:
        raise StoreUnusable(path, "the file is not a SQLite database")


def _check_contents(db: sqlite3.Connection) -> None:
    """A database that is damaged, or is not ours, is refused rather than reused."""
    problems = [row[0] for row in db.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        raise sqlite3.DatabaseError("the integrity check failed: " + "; ".join(problems[:3]))
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "jobs" not in tables:
        raise sqlite3.DatabaseError("it holds no jobs table (is it another program's database?)")


def settle_nodes(nodes: dict[str, dict[str, Any]], status: str) -> None:
    """Nodes still running or pending when their job ended did not finish."""
    for state in nodes.values():
        if not isinstance(state, dict):
            continue
        if state.get("status") == "running":
            state["status"] = "interrupted" if status == "interrupted" else "error"
        elif state.get("status") == "pending":
            state["status"] = "skipped"


class IdempotencyConflict(Exception):
    """The key was used before with a different request."""


class JobStore:
    """Thread-safe access to the jobs table (the event loop and the worker share it)."""

    def __init__(self, path: Path, history_limit: int = 1000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.history_limit = history_limit
        self._lock = threading.Lock()
        existed = path.exists() or path.is_symlink()
        if existed:
            check_database_file(path)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            if existed:
                _check_contents(self._db)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self.recovered = self._recover()
            self.prune()
        except (sqlite3.DatabaseError, ValueError) as exc:
            with contextlib.suppress(Exception):
                self._db.close()
            raise StoreUnusable(path, str(exc)) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writes -------------------------------------------------------------
    def _recover(self) -> list[str]:
        """Jobs left running by a previous process become interrupted, and so do their
        nodes that were running (pending ones were skipped)."""
        now = time.time()
        error = json.dumps(
            failure(
                error_type="ServerRestarted",
                message="the server stopped while this job was running",
            )
        )
        with self._lock:
            rows = self._db.execute("SELECT id, nodes FROM jobs WHERE status='running'").fetchall()
            for job_id, nodes_json in rows:
                try:
                    nodes = json.loads(nodes_json)
                except ValueError:
                    nodes = {}
                settle_nodes(nodes, "interrupted")
                self._db.execute(
                    "UPDATE jobs SET status='interrupted', finished=?, error=?, nodes=? "
                    "WHERE id=? AND status='running'",
                    (now, error, json.dumps(nodes), job_id),
                )
        return [r[0] for r in rows]

    def add(
        self,
        workflow: dict[str, Any],
        client_id: str,
        idempotency_key: str | None = None,
        payload_hash: str | None = None,
    ) -> tuple[Job, bool]:
        """Queue a job; (job, created). A repeated idempotency key returns the first job."""
        with self._lock:
            if idempotency_key is not None:
                row = self._db.execute(
                    "SELECT * FROM jobs WHERE idempotency_key=?", (idempotency_key,)
                ).fetchone()
                if row is not None:
                    if row["payload_hash"] != payload_hash:
                        raise IdempotencyConflict(idempotency_key)
                    return _job(row), False
            job_id = uuid.uuid4().hex
            self._db.execute(
                "INSERT INTO jobs (id, client_id, status, workflow, idempotency_key, "
                "payload_hash, created) VALUES (?, ?, 'queued', ?, ?, ?, ?)",
                (
                    job_id,
                    client_id,
                    json.dumps(workflow),
                    idempotency_key,
                    payload_hash,
                    time.time(),
                ),
            )
            row = self._db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return _job(row), True

    def claim_next(self) -> Job | None:
        """The oldest queued job, now marked running; None when the queue is empty."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE status='queued' ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            now = time.time()
            self._db.execute(
                "UPDATE jobs SET status='running', started=? WHERE seq=?", (now, row["seq"])
            )
            job = _job(row)
        job.status, job.started = "running", now
        return job

    def requeue(self, job_id: str) -> None:
        """Put a claimed job that never started back at its place in the queue."""
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status='queued', started=NULL WHERE id=? AND status='running'",
                (job_id,),
            )

    def cancel_queued(self, job_id: str) -> bool:
        """Cancel a job that has not started; False when it is not queued."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET status='cancelled', finished=?, seconds=0 "
                "WHERE id=? AND status='queued'",
                (time.time(), job_id),
            )
            return cur.rowcount == 1

    def set_nodes(self, job_id: str, nodes: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET nodes=? WHERE id=?", (json.dumps(nodes), job_id))

    def finish(
        self,
        job_id: str,
        status: str,
        seconds: float,
        nodes: dict[str, Any],
        files: list[dict[str, str]],
        error: dict[str, Any] | None,
    ) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status=?, finished=?, seconds=?, nodes=?, files=?, error=? "
                "WHERE id=?",
                (
                    status,
                    time.time(),
                    seconds,
                    json.dumps(nodes),
                    json.dumps(files),
                    None if error is None else json.dumps(error, default=repr),
                    job_id,
                ),
            )
        self.prune()

    def prune(self) -> int:
        """Delete finished jobs beyond the history limit, oldest first."""
        marks = ",".join("?" * len(FINISHED))
        with self._lock:
            cur = self._db.execute(
                f"DELETE FROM jobs WHERE status IN ({marks}) AND seq NOT IN ("
                f"SELECT seq FROM jobs WHERE status IN ({marks}) ORDER BY seq DESC LIMIT ?)",
                (*FINISHED, *FINISHED, self.history_limit),
            )
            return cur.rowcount

    # -- reads --------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def page(
        self,
        limit: int = 50,
        before: int | None = None,
        client_id: str | None = None,
        statuses: tuple[str, ...] = (),
    ) -> tuple[list[Job], int | None]:
        """Newest first; the second value is the cursor of the next page (or None)."""
        where, args = [], []
        if before is not None:
            where.append("seq < ?")
            args.append(before)
        if client_id is not None:
            where.append("client_id = ?")
            args.append(client_id)
        if statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        sql = "SELECT * FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit + 1)).fetchall()
        jobs = [_job(r) for r in rows[:limit]]
        return jobs, (jobs[-1].seq if len(rows) > limit else None)

    def get_by_key(self, idempotency_key: str) -> Job | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE idempotency_key=?", (idempotency_key,)
            ).fetchone()
        return None if row is None else _job(row)

    def queued_ids(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT id FROM jobs WHERE status='queued' ORDER BY seq")
            return [r[0] for r in rows]

    def running_id(self) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT id FROM jobs WHERE status='running'").fetchone()
        return None if row is None else str(row[0])

    def count(self, status: str) -> int:
        with self._lock:
            return int(
                self._db.execute("SELECT COUNT(*) FROM jobs WHERE status=?", (status,)).fetchone()[
                    0
                ]
            )


def _job(row: sqlite3.Row) -> Job:
    return Job(
        seq=row["seq"],
        id=row["id"],
        client_id=row["client_id"],
        status=row["status"],
        workflow=json.loads(row["workflow"]),
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
        seconds=row["seconds"],
        nodes=json.loads(row["nodes"]),
        files=json.loads(row["files"]),
        error=None if row["error"] is None else json.loads(row["error"]),
    )
