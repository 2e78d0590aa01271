"""The SQLite job store on its own: WAL, order, atomic claims, leases, attempts,
recovery that spares live servers, schema migration, idempotency, pruning."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from service.store import IdempotencyConflict, JobStore


def test_queue_order_claim_requeue_and_wal(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path)
    a, _ = store.add({"n": 1}, "c1")
    b, _ = store.add({"n": 2}, "c1")
    assert store.queued_ids() == [a.id, b.id]
    claimed = store.claim_next("w1")
    assert claimed is not None and claimed.id == a.id and claimed.status == "running"
    assert (claimed.worker, claimed.attempts) == ("w1", 1)
    assert store.running() == [(a.id, "w1")]
    assert store.claim(a.id, "w2") is None  # a claim moves only a queued row
    store.requeue(a.id)
    assert store.queued_ids() == [a.id, b.id] and store.get(a.id).started is None
    assert store.get(a.id).attempts == 0  # it never started
    assert store.claim(b.id, "w2").id == b.id  # a chosen job, out of order
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_lost_job_is_retried_once_then_fails_worker_lost(tmp_path):
    store = JobStore(tmp_path / "j.db")
    a, _ = store.add({}, "c")
    b, _ = store.add({}, "c")
    store.claim_next()
    store.close()  # like a crash: its lease ends, nobody finished the job
    store = JobStore(tmp_path / "j.db")
    assert store.recovered == {a.id: "queued"}
    assert store.queued_ids() == [a.id, b.id]  # back at its place
    assert store.claim_next().attempts == 2
    assert store.release_lost(a.id, "worker w died") == "error"
    job = store.get(a.id)
    assert job.status == "error" and job.error["error_type"] == "worker_lost"
    assert "worker w died" in job.error["message"]
    assert store.claim_next().id == b.id
    store.close()


def test_max_attempts_is_configurable(tmp_path):
    store = JobStore(tmp_path / "j.db", max_attempts=3)
    a, _ = store.add({}, "c")
    for _ in range(2):
        store.claim_next()
        assert store.release_lost(a.id, "died") == "queued"
    store.claim_next()
    assert store.release_lost(a.id, "died") == "error"
    store.close()


def test_a_second_store_never_touches_jobs_a_live_server_holds(tmp_path):
    path = tmp_path / "j.db"
    live = JobStore(path, lease_seconds=0.3)
    a, _ = live.add({}, "c")
    b, _ = live.add({}, "c")
    assert live.claim_next("live-w").id == a.id
    other = JobStore(path)
    assert other.recovered == {}
    assert other.get(a.id).status == "running"
    assert other.claim_next("other-w").id == b.id  # it takes the next job, not a
    for _ in range(3):  # the live server's heartbeat
        time.sleep(0.15)
        live.renew([a.id])
        assert other.recover_lost() == {}
    time.sleep(0.4)  # the live server went silent: its lease ran out
    assert other.recover_lost() == {a.id: "queued"}
    assert other.recover_lost() == {}  # b is the other store's own
    other.close()
    live.close()


def test_a_dead_process_on_this_host_releases_at_once(tmp_path):
    path = tmp_path / "j.db"
    store = JobStore(path, lease_seconds=3600)
    a, _ = store.add({}, "c")
    store.claim_next()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE jobs SET owner=? WHERE id=?", (f"{socket.gethostname()}|{gone.pid}|x", a.id)
        )
    assert store.recover_lost() == {a.id: "queued"}  # lease not over, its process gone
    store.close()


def test_concurrent_claims_from_two_stores_take_each_job_once(tmp_path):
    path = tmp_path / "j.db"
    stores = [JobStore(path), JobStore(path)]
    ids = {stores[0].add({"i": i}, "c")[0].id for i in range(60)}
    taken: list[str] = []

    def drain(store: JobStore, name: str) -> None:
        while (job := store.claim_next(name)) is not None:
            taken.append(job.id)

    threads = [
        threading.Thread(target=drain, args=(s, f"w{i}{k}"))
        for i, s in enumerate(stores)
        for k in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(ids)  # every job once, none twice
    for s in stores:
        s.close()


def test_an_old_database_gains_the_new_columns(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the schema of the first release
        db.executescript(
            "CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
            " client_id TEXT NOT NULL, status TEXT NOT NULL, workflow TEXT NOT NULL,"
            " idempotency_key TEXT UNIQUE, payload_hash TEXT, created REAL NOT NULL,"
            " started REAL, finished REAL, seconds REAL, nodes TEXT NOT NULL DEFAULT '{}',"
            " files TEXT NOT NULL DEFAULT '[]', error TEXT);"
            "INSERT INTO jobs (id, client_id, status, workflow, created, started)"
            " VALUES ('old-running', 'c', 'running', '{}', 1, 2), ('old-queued', 'c', 'queued',"
            " '{}', 1, NULL);"
        )
    store = JobStore(path)
    assert store.recovered == {"old-running": "queued"}  # its server is the one that stopped
    job = store.claim_next("w")
    assert (job.id, job.worker, job.attempts) == ("old-running", "w", 1)
    assert store.get("old-queued").summary()["worker"] is None
    store.close()


def test_pruning_counts_again_after_another_server_wrote(tmp_path):
    """Each store skips counting the history while its own tally is within the limit;
    jobs another store (server) finished in the same database are still pruned."""
    one = JobStore(tmp_path / "j.db", history_limit=2)
    two = JobStore(tmp_path / "j.db", history_limit=2)

    def run(store):
        job = store.add({"x": 1}, "c")[0]
        store.claim(job.id)
        store.finish(job.id, "ok", 0.1, {}, [], None)
        return job.id

    ids = [run(one), run(two), run(two), run(one)]
    assert [j.id for j in one.page(10)[0]] == ids[::-1][:2]
    ids.append(run(one))  # one's tally alone would say 3: it counts, as two wrote
    assert [j.id for j in two.page(10)[0]] == ids[::-1][:2]
    one.close()
    two.close()


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
