"""The queue loop: match queued jobs to idle workers (service/scheduler.py), run
each on its worker in a thread, record what happened, and route its messages to
the owning client.

Any number of workers of any kind run at once; the dispatcher sees only the
`Worker` protocol. A heartbeat renews the leases of the jobs this server runs and
releases jobs whose server died (service/store.py). A job whose worker dies under
it is queued again or fails with ``worker_lost`` (the store's attempts rule). The
job's final ``run_finished`` is held back until its result is stored, so a client
that reacts to it by fetching the job sees the final state.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from graph.failure import failure
from service.deadline import JobDeadline
from service.job_fastpath import CachedJobs
from service.scheduler import Idle, Policy, Waiting, assign
from service.store import Job, JobStore
from service.timers import Timers
from service.worker import JobOutcome, JobRequest, Prepared, Worker, WorkerLost

log = logging.getLogger(__name__)

Notify = Callable[[str, dict[str, Any]], None]  # (client id, message), thread-safe
NotifyAll = Callable[[dict[str, Any]], None]
ModelsOf = Callable[[dict[str, Any]], frozenset[str]]  # a job's workflow -> its model keys
KEEP_MODEL_HINTS = 4  # models remembered per worker for affinity (a hint, not a promise)
QUEUE_WINDOW = 256  # queued jobs the scheduler looks at per round
KEEP_PREPARED = 256  # validated workflows held for queued jobs (the rest: checked again)
CACHED_ROUNDS = 8  # cached jobs served per assignment before the dispatcher thread goes on


@dataclass
class Slot:
    """One worker and what the dispatcher knows about it."""

    worker: Worker
    job: Job | None = None
    models: list[str] = field(default_factory=list)  # most recently used first
    last_used: float = 0.0
    replacing: str | None = None  # why the dispatcher is killing it under its job
    inbox: queue.SimpleQueue[Job | None] = field(default_factory=queue.SimpleQueue)
    thread: threading.Thread | None = None  # runs the jobs put in its inbox, one by one


class Dispatcher(CachedJobs):
    def __init__(
        self,
        store: JobStore,
        workers: Worker | Sequence[Worker],
        notify: Notify,
        notify_all: NotifyAll,
        *,
        models_of: ModelsOf | None = None,
        policy: Policy | None = None,
        replace_grace: float = 10.0,
        job_timeout: float | None = None,
        status_changed: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        listed = [workers] if not isinstance(workers, Sequence) else list(workers)
        names = [w.name for w in listed]
        if len(set(names)) != len(names):
            raise ValueError(f"worker names must be unique: {names}")
        self.slots = [Slot(w) for w in listed]
        self.job_timeout = job_timeout  # seconds a job may run before it is interrupted
        self._notify = notify
        self._notify_all = notify_all
        self._status_changed = status_changed  # e.g. a coalescing StatusFeed's request
        self._models_of = models_of or (lambda workflow: frozenset())
        self._model_keys: dict[str, frozenset[str]] = {}
        self._prepared: OrderedDict[str, Prepared] = OrderedDict()  # by job id
        self.policy = policy or Policy()
        self.replace_grace = replace_grace  # seconds an interrupted job has to stop
        self._last_client: str | None = None
        self._lock = threading.Lock()  # the slots' job fields
        self._assigning = threading.Lock()  # one thread matches jobs to workers at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beat: threading.Thread | None = None
        self._timers = Timers("job-timers")  # deadlines and grace periods

    @property
    def worker(self) -> Worker:
        """The first worker (the only one with ``--workers inprocess``)."""
        return self.slots[0].worker

    @property
    def current(self) -> Job | None:
        """A running job of this server (the oldest), or None."""
        with self._lock:
            jobs = [s.job for s in self.slots if s.job is not None]
        return min(jobs, key=lambda j: j.seq) if jobs else None

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        for slot in self.slots:
            slot.worker.start()
            slot.thread = threading.Thread(
                target=self._serve, args=(slot,), name=f"job-{slot.worker.name}", daemon=True
            )
            slot.thread.start()
        self._thread = threading.Thread(target=self._loop, name="job-dispatcher", daemon=True)
        self._thread.start()
        self._beat = threading.Thread(target=self._heartbeat, name="job-leases", daemon=True)
        self._beat.start()

    def stop(self, timeout: float = 10.0, interrupt: bool = True) -> bool:
        """Stop taking jobs; interrupt the running ones; close the workers. True if
        every job ended in time (the others are released to the next start)."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(timeout)
        with self._assigning:  # a job being handed over lands in its inbox first
            pass
        if interrupt:
            with self._lock:
                busy = [(s.worker, s.job.id) for s in self.slots if s.job is not None]
            for worker, job_id in busy:
                worker.interrupt(job_id)
        runners = [s.thread for s in self.slots if s.thread is not None]
        for slot in self.slots:
            slot.inbox.put(None)  # after any job already handed over
        for thread in runners:
            thread.join(max(0.0, deadline - time.monotonic()))
        done = not any(t.is_alive() for t in runners)
        self._timers.close()
        for slot in self.slots:
            try:
                slot.worker.close()
            except Exception:
                log.exception("could not close worker %s", slot.worker.name)
        return done

    def wake(self) -> None:
        self._wake.set()

    def kick(self) -> None:
        """Start queued jobs on idle workers now, in the calling thread (it has just
        queued or finished a job), saving the hand-off to the dispatcher thread; when
        another thread is assigning, the dispatcher thread looks again after it."""
        if self._assigning.acquire(blocking=False):
            try:
                self._assign()
            except Exception:
                log.exception("could not read the queue")
            finally:
                self._assigning.release()
        else:
            self.wake()

    def submitted(self, job: Job, prepared: Prepared | None = None) -> None:
        """A job was just queued (any thread): tell its client, then start it if a
        worker is idle. The ``queued`` message goes out before any of the job's own.
        ``prepared``: its validated workflow, for an in-process worker to reuse."""
        if prepared is not None:
            with self._lock:
                self._prepared[job.id] = prepared
                while len(self._prepared) > KEEP_PREPARED:
                    self._prepared.popitem(last=False)
        self._models(job.id, job.workflow)
        self._notify(job.client_id, {"type": "queued", "job": job.id})
        self.broadcast_status()
        self.kick()

    # -- queue operations (event loop) ----------------------------------------
    def cancel(self, job_id: str) -> str | None:
        """Cancel a queued job or interrupt a running one; the job's status after, or
        None for an unknown id."""
        job = self.store.get(job_id)
        if job is None:
            return None
        if job.status == "queued" and self.store.cancel_queued(job_id):
            with self._lock:
                self._prepared.pop(job_id, None)
            self._notify(
                job.client_id,
                {"type": "run_finished", "job": job_id, "status": "cancelled", "seconds": 0.0},
            )
            self.broadcast_status()
            return "cancelled"
        job = self.store.get(job_id)
        if job is not None and job.status == "running":
            slot = self._slot_of(job_id)
            if slot is not None:
                slot.worker.interrupt(job_id)
            return "running"
        return None if job is None else job.status

    def stop_or_replace(self, job_id: str, reason: str = "timeout") -> None:
        """Interrupt the job; if it still runs ``replace_grace`` seconds later (a node
        that never checks its interrupt), replace its worker (`replace_worker`). The
        hook for a per-job wall-clock limit."""
        slot = self._slot_of(job_id)
        if slot is None:
            return
        slot.worker.interrupt(job_id)

        def still_running() -> None:
            if self._slot_of(job_id) is not slot or self._stop.is_set():
                return  # it stopped in time
            if self.replace_worker(job_id, reason):
                log.warning("job %s ignored its interrupt: replaced %s", job_id, slot.worker.name)

        self._timers.call_later(self.replace_grace, still_running)

    def replace_worker(self, job_id: str, reason: str) -> bool:
        """Kill the worker running ``job_id`` and start it cold (a job that ignored its
        interrupt); the job fails with ``reason`` as its error type, never re-runs."""
        slot = self._slot_of(job_id)
        if slot is None:
            return False
        slot.replacing = reason
        if slot.worker.restart():
            return True
        slot.replacing = None
        return False

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            workers = [
                {"name": s.worker.name, "job": s.job.id if s.job else None} for s in self.slots
            ]
        return {
            "queue": self.store.queued_ids(),
            "running": self.store.running_ids(),
            "workers": workers,
        }

    def broadcast_status(self) -> None:
        if self._status_changed is not None:
            self._status_changed()
        else:
            self._notify_all({"type": "status", **self.snapshot()})

    def _slot_of(self, job_id: str) -> Slot | None:
        with self._lock:
            return next((s for s in self.slots if s.job is not None and s.job.id == job_id), None)

    # -- scheduling -------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._assigning:
                try:
                    self._assign()
                except Exception:
                    log.exception("could not read the queue")
            self._wake.wait(1.0)
            self._wake.clear()

    def _assign(self) -> None:
        """Hand queued jobs to idle workers; fully cached ones are served right here
        (service/job_fastpath.py), and their workers are offered the next jobs."""
        for _ in range(CACHED_ROUNDS):
            if not self._assign_round():
                return
        self.wake()  # still serving cached jobs: the dispatcher thread carries on

    def _assign_round(self) -> bool:
        """One matching of queued jobs to idle workers; True if a job was served from
        the cache (its worker is idle again)."""
        with self._lock:
            idle = [s for s in self.slots if s.job is None and s.worker.ready]
            running = [(s, s.job) for s in self.slots if s.job is not None]
        if not idle:
            return False
        queued = self.store.queued(QUEUE_WINDOW)
        if not queued:
            return False
        waiting = [Waiting(*j, self._models(j.id)) for j in queued]
        free = [Idle(s.worker.name, frozenset(s.models), s.last_used) for s in idle]
        busy = [frozenset(s.models) | self._models(job.id, job.workflow) for s, job in running]
        picks, _ = assign(waiting, free, time.time(), self.policy, self._last_client, busy)
        by_name = {s.worker.name: s for s in idle}
        served = False
        for job_id, name in picks:
            if self._stop.is_set():
                return False
            job = self.store.claim(job_id, name)
            if job is None:  # cancelled, or another server took it
                continue
            self._last_client = job.client_id
            slot = by_name[name]
            with self._lock:
                slot.job = job
            if self._serve_cached(slot, job):
                served = True
            else:
                slot.inbox.put(job)
        return served

    def _models(self, job_id: str, workflow: dict[str, Any] | None = None) -> frozenset[str]:
        keys = self._model_keys.get(job_id)
        if keys is None:
            try:
                doc = workflow if workflow is not None else self.store.workflow(job_id)
                keys = self._models_of(doc or {})
            except Exception:  # affinity is an optimisation: never block a job on it
                keys = frozenset()
            if len(self._model_keys) > 4 * QUEUE_WINDOW:
                self._model_keys.clear()
            self._model_keys[job_id] = keys
        return keys

    def _remember_models(self, slot: Slot, job: Job) -> None:
        slot.models[:] = [*self._models(job.id, job.workflow), *slot.models][:KEEP_MODEL_HINTS]

    def _heartbeat(self) -> None:
        """Renew this server's leases; release jobs whose server died."""
        period = max(0.05, self.store.lease_seconds / 3)
        while not self._stop.wait(period):
            try:
                with self._lock:
                    mine = [s.job.id for s in self.slots if s.job is not None]
                self.store.renew(mine)
                released = self.store.recover_lost()
            except Exception:
                log.exception("could not renew job leases")
                continue
            if released:
                log.warning("released jobs of a lost server: %s", released)
                for job_id, status in released.items():
                    job = self.store.get(job_id)
                    if job is not None and status == "error":
                        self._finished_message(job, "error", 0.0)
                self.broadcast_status()
                self.wake()

    # -- one job on one worker ---------------------------------------------------
    def _serve(self, slot: Slot) -> None:
        """The slot's own thread: run what the scheduler puts in its inbox until None."""
        while (job := slot.inbox.get()) is not None:
            try:
                self._run_job(slot, job)
            except Exception:
                log.exception("job %s ended badly on %s", job.id, slot.worker.name)
            finally:
                with self._lock:
                    slot.job = None
                    slot.replacing = None
                    slot.last_used = time.time()
            self.broadcast_status()
            if not self._stop.is_set():
                self.kick()  # this worker is idle: its next job starts here, at once

    def _run_job(self, slot: Slot, job: Job) -> None:
        worker = slot.worker
        if self._stop.is_set():  # stop() may have looked before the slot was set
            worker.interrupt(job.id)
        nodes: dict[str, dict[str, Any]] = {}
        final: dict[str, Any] = {}
        self.broadcast_status()

        on_message = self._relay(job, worker, nodes, final)
        # past the limit: interrupt; a job that ignores it gets its worker replaced
        deadline = JobDeadline(self.job_timeout, lambda: self.stop_or_replace(job.id), self._timers)
        with self._lock:
            prepared = self._prepared.pop(job.id, None)
        try:
            with deadline:
                outcome = worker.run(JobRequest(job.id, job.workflow, prepared), on_message)
        except WorkerLost as exc:
            slot.models.clear()  # it starts cold
            self._lost(slot, job, nodes, str(exc) or "the worker stopped")
            return
        except Exception as exc:  # the worker itself broke: fail the job, keep serving
            log.exception("worker %s failed on job %s", worker.name, job.id)
            error = failure(exc, with_traceback=False)
            self._notify(job.client_id, {"type": "error", "job": job.id, **error})
            outcome = JobOutcome("error", 0.0, error=error)
        if deadline.expired:
            outcome = deadline.outcome(outcome)
            if outcome.error and outcome.error["error_type"] == "timeout":
                self._notify(job.client_id, {"type": "error", "job": job.id, **outcome.error})
        self._remember_models(slot, job)
        self._finish(job, nodes, outcome, final.get("seconds", outcome.seconds), deadline.expired)
