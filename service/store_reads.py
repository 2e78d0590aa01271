"""The job store's queries that change nothing: one job, pages of the history, the
queue and running jobs as the scheduler and status need them. Mixed into
`service.store.JobStore`, whose connection and lock these use."""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any

from service.job_record import Job, Queued, job_from_row


class JobReads:
    _db: sqlite3.Connection
    _lock: threading.Lock

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else job_from_row(row)

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
        jobs = [job_from_row(r) for r in rows[:limit]]
        return jobs, (jobs[-1].seq if len(rows) > limit else None)

    def get_by_key(self, idempotency_key: str) -> Job | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE idempotency_key=?", (idempotency_key,)
            ).fetchone()
        return None if row is None else job_from_row(row)

    def queued_ids(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT id FROM jobs WHERE status='queued' ORDER BY seq")
            return [r[0] for r in rows]

    def running(self) -> list[tuple[str, str | None]]:
        """(job id, worker) of every running job, oldest first (other servers' too)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, worker FROM jobs WHERE status='running' ORDER BY seq"
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def running_ids(self) -> list[str]:
        return [job_id for job_id, _ in self.running()]

    def queued(self, limit: int = 256) -> list[Queued]:
        """The first ``limit`` queued jobs in queue order (what the scheduler looks at),
        without their workflows: parsing hundreds of those per round cost milliseconds."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, client_id, seq, created FROM jobs WHERE status='queued' "
                "ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [Queued(*r) for r in rows]

    def workflow(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT workflow FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def count(self, status: str) -> int:
        with self._lock:
            return int(
                self._db.execute("SELECT COUNT(*) FROM jobs WHERE status=?", (status,)).fetchone()[
                    0
                ]
            )
