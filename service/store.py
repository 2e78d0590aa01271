"""The durable job queue and history: one SQLite table in WAL mode.

Several workers (and even several servers) share the queue: a claim moves one
``queued`` row to ``running`` in a single UPDATE, stamping the claiming worker,
the owning store (server) and a lease that the owner renews while the job runs.
A job whose owner is gone (its lease ran out, or its process on this host is
dead) is put back in the queue, once by default (``attempts``), then fails with
``worker_lost``; so a job that kills its worker cannot crash-loop the farm, and
opening a second store never touches jobs a live server holds. Finished jobs
beyond the history limit are pruned, oldest first; their output files stay on disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from service.job_record import (
    ADDED_COLUMNS,
    FINISHED,
    SCHEMA,
    Job,
    job_from_row,
    lost_error,
)
from service.store_checkpoint import BACKSTOP_PAGES, Checkpointer
from service.store_file import StoreUnusable, check_contents, check_database_file
from service.store_reads import JobReads


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


def _owner_token() -> str:
    return f"{socket.gethostname()}|{os.getpid()}|{uuid.uuid4().hex[:12]}"


def _owner_dead(owner: str | None) -> bool:
    """True when the owner is a process of this host that no longer exists."""
    if not owner:
        return True  # a row from before leases: its server is the one that stopped
    host, _, rest = owner.partition("|")
    pid_text = rest.partition("|")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine: only its lease can tell
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # another store in this process is alive by definition
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class JobStore(JobReads):
    """Thread-safe access to the jobs table (the event loop and the workers share it)."""

    def __init__(
        self,
        path: Path,
        history_limit: int = 1000,
        *,
        max_attempts: int = 2,
        lease_seconds: float = 30.0,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.history_limit = history_limit
        self.max_attempts = max(1, max_attempts)
        self.lease_seconds = lease_seconds
        self.owner = _owner_token()
        self._lock = threading.Lock()
        # finished jobs in the table as last counted (None: unknown), and the database's
        # data_version then: unchanged means no other connection wrote since
        self._finished: int | None = None
        self._finished_version = -1
        existed = path.exists() or path.is_symlink()
        if existed:
            check_database_file(path)
        try:
            self._db = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=10.0
            )
            self._db.row_factory = sqlite3.Row
            if existed:
                check_contents(self._db)
            self._db.execute("PRAGMA busy_timeout=10000")  # another server may hold the lock
            self._db.execute("PRAGMA journal_mode=WAL")
            # commits write the log without an fsync (a process crash loses nothing, a
            # power cut may lose the last moments); checkpoints sync, off the hot path
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
            self._db.executescript(SCHEMA)
            self._migrate()
            self.recovered = self.recover_lost()
            self.prune()
            self._checkpoints = Checkpointer(path)
            self._checkpoints.start()
        except (sqlite3.DatabaseError, ValueError) as exc:
            with contextlib.suppress(Exception):
                self._db.close()
            raise StoreUnusable(path, str(exc)) from None

    def _migrate(self) -> None:
        with self._lock:
            have = {r["name"] for r in self._db.execute("PRAGMA table_info(jobs)")}
            for name, decl in ADDED_COLUMNS.items():
                if name not in have:
                    self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {decl}")

    def close(self) -> None:
        """Close; jobs this store still holds are released to the next store that opens
        (their lease ends now), as after a crash."""
        self._checkpoints.close()
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET lease_until=0 WHERE owner=? AND status='running'", (self.owner,)
            )
            self._db.close()

    # -- claims and leases --------------------------------------------------
    def claim(self, job_id: str | None = None, worker: str = "inprocess") -> Job | None:
        """Atomically move one queued job (``job_id``, or the oldest) to running for
        ``worker``; None when it is no longer queued (taken, cancelled) or none is."""
        now = time.time()
        pick = (
            "SELECT seq FROM jobs WHERE id=? AND status='queued'"
            if job_id is not None
            else "SELECT seq FROM jobs WHERE status='queued' ORDER BY seq LIMIT 1"
        )
        with self._lock:
            row = self._db.execute(
                "UPDATE jobs SET status='running', started=?, worker=?, owner=?, "
                f"lease_until=?, attempts=attempts+1 WHERE seq=({pick}) AND status='queued' "
                "RETURNING *",
                (now, worker, self.owner, now + self.lease_seconds)
                + (() if job_id is None else (job_id,)),
            ).fetchone()
        return None if row is None else job_from_row(row)

    def claim_next(self, worker: str = "inprocess") -> Job | None:
        """The oldest queued job, now marked running; None when the queue is empty."""
        return self.claim(None, worker)

    def renew(self, job_ids: list[str]) -> None:
        """The heartbeat: extend this store's leases on jobs its workers still run."""
        if not job_ids:
            return
        marks = ",".join("?" * len(job_ids))
        with self._lock:
            self._db.execute(
                f"UPDATE jobs SET lease_until=? WHERE owner=? AND status='running' "
                f"AND id IN ({marks})",
                (time.time() + self.lease_seconds, self.owner, *job_ids),
            )

    def requeue(self, job_id: str) -> None:
        """Put a claimed job that never started back at its place in the queue."""
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET status='queued', started=NULL, worker=NULL, owner=NULL, "
                "lease_until=NULL, attempts=MAX(attempts-1, 0) WHERE id=? AND status='running'",
                (job_id,),
            )

    def release_lost(self, job_id: str, message: str, node_id: str | None = None) -> str:
        """The job's worker died under it: queue it again while attempts remain, else
        fail it with ``worker_lost``. Returns the job's new status ('' if not running)."""
        with self._lock:
            return self._release(job_id, message, node_id)

    def _release(self, job_id: str, message: str, node_id: str | None = None) -> str:
        row = self._db.execute(
            "UPDATE jobs SET status='queued', started=NULL, worker=NULL, owner=NULL, "
            "lease_until=NULL, nodes='{}' WHERE id=? AND status='running' AND attempts<? "
            "RETURNING status",
            (job_id, self.max_attempts),
        ).fetchone()
        if row is not None:
            return "queued"
        now = time.time()
        tries = self.max_attempts
        error = lost_error(f"{message} ({tries} attempt(s), none finished)", node_id)
        found = self._db.execute("SELECT nodes FROM jobs WHERE id=?", (job_id,)).fetchone()
        try:
            nodes = json.loads(found[0]) if found is not None else {}
        except ValueError:
            nodes = {}
        settle_nodes(nodes, "interrupted")  # cut off where it ran
        row = self._db.execute(
            "UPDATE jobs SET status='error', finished=?, seconds=COALESCE(?-started, 0), "
            "error=?, nodes=?, lease_until=NULL WHERE id=? AND status='running' RETURNING status",
            (now, now, json.dumps(error), json.dumps(nodes), job_id),
        ).fetchone()
        self._finished = None  # one more finished job: `prune` counts again
        return "" if row is None else "error"

    def recover_lost(self) -> dict[str, str]:
        """Release running jobs whose owner is gone (lease over, or its process on this
        host dead); never this store's own. {job id: new status}."""
        now = time.time()
        done: dict[str, str] = {}
        with self._lock:
            rows = self._db.execute(
                "SELECT id, owner, lease_until FROM jobs WHERE status='running' "
                "AND (owner IS NULL OR owner != ?)",
                (self.owner,),
            ).fetchall()
            for row in rows:
                expired = row["lease_until"] is None or row["lease_until"] < now
                if expired or _owner_dead(row["owner"]):
                    done[row["id"]] = self._release(
                        row["id"], "the server or worker running this job stopped"
                    )
        return done

    def add(
        self,
        workflow: dict[str, Any],
        client_id: str,
        idempotency_key: str | None = None,
        payload_hash: str | None = None,
        workflow_json: str | None = None,
    ) -> tuple[Job, bool]:
        """Queue a job; (job, created). A repeated idempotency key returns the first job.
        ``workflow_json``: ``workflow`` already encoded (a resubmission's, remembered)."""
        text = workflow_json or json.dumps(workflow)
        with self._lock:
            if idempotency_key is not None:
                row = self._db.execute(
                    "SELECT * FROM jobs WHERE idempotency_key=?", (idempotency_key,)
                ).fetchone()
                if row is not None:
                    if row["payload_hash"] != payload_hash:
                        raise IdempotencyConflict(idempotency_key)
                    return job_from_row(row), False
            job_id, now = uuid.uuid4().hex, time.time()
            seq = self._db.execute(
                "INSERT INTO jobs (id, client_id, status, workflow, idempotency_key, "
                "payload_hash, created) VALUES (?, ?, 'queued', ?, ?, ?, ?) RETURNING seq",
                (job_id, client_id, text, idempotency_key, payload_hash, now),
            ).fetchone()[0]
        job = Job(seq, job_id, client_id, "queued", workflow, now, None, None, None, {}, [], None)
        return job, True

    def cancel_queued(self, job_id: str) -> bool:
        """Cancel a job that has not started; False when it is not queued."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET status='cancelled', finished=?, seconds=0 "
                "WHERE id=? AND status='queued'",
                (time.time(), job_id),
            )
            self._finished = None  # one more finished job: `prune` counts again
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
            if self._finished is not None:
                self._finished += 1
        self.prune()

    def prune(self) -> int:
        """Delete finished jobs beyond the history limit, oldest first. Counting them
        (~50 us at a full history) is skipped while this store's own tally says the
        history is within the limit and no other connection (another server) has
        written since it counted."""
        marks = ",".join("?" * len(FINISHED))
        with self._lock:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            known = self._finished is not None and version == self._finished_version
            if known and self._finished <= self.history_limit:  # type: ignore[operator]
                return 0
            kept = self._db.execute(
                f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})", FINISHED
            ).fetchone()[0]
            self._finished, self._finished_version = min(kept, self.history_limit), version
            if kept <= self.history_limit:
                return 0
            cur = self._db.execute(
                f"DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE status IN ({marks}) "
                "ORDER BY seq LIMIT ?)",
                (*FINISHED, kept - self.history_limit),
            )
            return cur.rowcount


__all__ = ["FINISHED", "IdempotencyConflict", "Job", "JobStore", "lost_error"]
