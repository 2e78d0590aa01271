"""One row of the jobs table: its schema, its Python form, and the worker-lost error."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, NamedTuple

from graph.failure import failure

FINISHED = ("ok", "error", "interrupted", "cancelled")
LOST = "worker_lost"

SCHEMA = """
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
# Columns added after the first release: databases made by it gain them on open.
ADDED_COLUMNS = {
    "worker": "TEXT",  # the worker that runs (or ran) the job
    "owner": "TEXT",  # the store (server) holding the lease: host|pid|token
    "lease_until": "REAL",  # the owner renews it while the job runs
    "attempts": "INTEGER NOT NULL DEFAULT 0",  # claims so far
}


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
    worker: str | None = None
    attempts: int = 0

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
            "worker": self.worker,
            "attempts": self.attempts,
            "files": self.files,
            "error": None
            if self.error is None
            else {k: self.error.get(k) for k in ("node_id", "node_type", "error_type", "message")},
        }

    def detail(self) -> dict[str, Any]:
        data = self.summary()
        data.update(workflow=self.workflow, nodes=self.nodes, error=self.error)
        return data


class Queued(NamedTuple):
    """What the scheduler needs of a queued job (its workflow is read when needed)."""

    id: str
    client_id: str
    seq: int
    created: float


def lost_error(message: str, node_id: str | None = None) -> dict[str, Any]:
    """The error of a job whose worker died under it as often as it may."""
    return failure(error_type=LOST, message=message, node_id=node_id)


def job_from_row(row: sqlite3.Row) -> Job:
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
        worker=row["worker"],
        attempts=row["attempts"],
    )
