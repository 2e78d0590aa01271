"""The SQLite job store on its own: WAL, order, recovery, idempotency, pruning."""

from __future__ import annotations

import sqlite3

import pytest

from service.store import IdempotencyConflict, JobStore


def test_queue_order_claim_requeue_and_wal(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path)
    a, _ = store.add({"n": 1}, "c1")
    b, _ = store.add({"n": 2}, "c1")
    assert store.queued_ids() == [a.id, b.id]
    claimed = store.claim_next()
    assert claimed is not None and claimed.id == a.id and claimed.status == "running"
    assert store.running_id() == a.id
    store.requeue(a.id)
    assert store.queued_ids() == [a.id, b.id] and store.get(a.id).started is None
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_recovery_marks_running_jobs_interrupted(tmp_path):
    store = JobStore(tmp_path / "j.db")
    a, _ = store.add({}, "c")
    b, _ = store.add({}, "c")
    store.claim_next()
    store.close()
    store = JobStore(tmp_path / "j.db")
    assert store.recovered == [a.id]
    assert store.get(a.id).status == "interrupted"
    assert store.get(b.id).status == "queued"
    assert store.claim_next().id == b.id  # the interrupted job is never re-run
    store.close()


def test_idempotency_and_pruning(tmp_path):
    store = JobStore(tmp_path / "j.db", history_limit=2)
    first, created = store.add({"x": 1}, "c", "key", "hash-1")
    again, created_again = store.add({"x": 1}, "c", "key", "hash-1")
    assert created and not created_again and again.id == first.id
    with pytest.raises(IdempotencyConflict):
        store.add({"x": 2}, "c", "key", "hash-2")
    ids = [first.id] + [store.add({"i": i}, "c")[0].id for i in range(3)]
    for job_id in ids:
        assert store.claim_next().id == job_id
        store.finish(job_id, "ok", 0.1, {}, [], None)
    assert [j.id for j in store.page(10)[0]] == ids[::-1][:2]
    assert store.get(ids[0]) is None
    queued, _ = store.add({"late": 1}, "c")
    store.prune()
    assert store.get(queued.id).status == "queued"  # pruning never touches the queue
    store.close()
