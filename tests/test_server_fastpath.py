"""The cached-job path's plumbing: one timer thread, coalesced status messages, and
WAL checkpoints that stay out of claims and finishes (bench/server.py measures it)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

from service.loop_mailbox import LoopMailbox
from service.status_feed import StatusFeed
from service.store import JobStore
from service.store_checkpoint import BACKSTOP_PAGES
from service.timers import COMPACT_AT, Timers


def test_timers_run_due_calls_in_order_and_never_cancelled_ones():
    timers, ran = Timers(), []
    done = threading.Event()
    timers.call_later(0.06, lambda: (ran.append("late"), done.set()))
    timers.call_later(0.01, lambda: ran.append("early"))
    timers.call_later(0.03, lambda: ran.append("cancelled")).cancel()
    timers.call_later(0.02, lambda: 1 / 0)  # a failing call does not stop the others
    assert done.wait(5.0)
    assert ran == ["early", "late"]
    timers.close()


def test_timers_stay_asleep_for_later_calls_and_forget_cancelled_ones():
    timers = Timers()
    timers.call_later(3600, lambda: None)  # the thread sleeps until this one is due
    wakes: list[int] = []
    notify = timers._cond.notify
    timers._cond.notify = lambda *a: (wakes.append(1), notify(*a))  # type: ignore[method-assign]
    for _ in range(3 * COMPACT_AT):  # a job deadline set and cancelled per job
        timers.call_later(3600, lambda: None).cancel()
    assert wakes == []  # none was due before the sleeping one
    assert len(timers._heap) <= 2 * COMPACT_AT + 2  # cancelled calls do not pile up
    done = threading.Event()
    timers.call_later(0.01, done.set)  # due first: wakes the thread
    assert wakes == [1] and done.wait(5.0)
    timers.close()


async def test_mailbox_runs_thread_calls_in_order_with_few_loop_wakeups():
    loop = asyncio.get_running_loop()
    box, got, wakes = LoopMailbox(loop), [], []
    real = loop.call_soon_threadsafe
    loop.call_soon_threadsafe = lambda *a: (wakes.append(1), real(*a))  # type: ignore[method-assign]
    try:

        def burst() -> None:  # a job's thread sending its messages
            for n in range(500):
                box.call(got.append, n)
                if n == 250:
                    box.call(lambda: 1 / 0)  # a failing call drops nothing else

        await asyncio.to_thread(burst)
        await asyncio.sleep(0.05)
    finally:
        loop.call_soon_threadsafe = real  # type: ignore[method-assign]
    assert got == list(range(500))
    assert 1 <= len(wakes) < 500  # the loop was busy elsewhere: calls folded


async def test_status_messages_fold_many_changes_into_the_latest_state():
    loop = asyncio.get_running_loop()
    state, sent = {"n": 0}, []
    feed = StatusFeed(loop, lambda: dict(state), sent.append, interval=0.05)

    def change_a_lot() -> None:  # a worker thread finishing jobs
        for n in range(1, 201):
            state["n"] = n
            feed.request()

    await asyncio.to_thread(change_a_lot)
    await asyncio.sleep(0.2)
    assert 1 <= len(sent) <= 3 and sent[-1] == {"type": "status", "n": 200}
    state["n"] = 201
    feed.request()  # long after the last message: sent at once
    await asyncio.sleep(0.01)
    assert sent[-1]["n"] == 201


def test_wal_checkpoints_run_beside_the_store_not_in_its_commits(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path)
    assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
    before = path.stat().st_size
    for i in range(200):  # a few hundred pages: far below the store's own checkpoint
        store.add({"pad": "x" * 3000, "i": i}, "c")
    deadline = time.monotonic() + 10
    while path.stat().st_size <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.stat().st_size > before  # the checkpoint thread copied the log in
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 200
