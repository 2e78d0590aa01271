"""The queue loop: take the oldest queued job, run it on the worker in a thread,
record what happened, and route its messages to the owning client.

The job's final ``run_finished`` is held back until its result is stored, so a
client that reacts to it by fetching the job sees the final state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from graph.failure import failure
from service.deadline import JobDeadline
from service.messages import with_urls
from service.store import Job, JobStore, settle_nodes
from service.worker import JobOutcome, JobRequest, Worker

log = logging.getLogger(__name__)

Notify = Callable[[str, dict[str, Any]], None]  # (client id, message), thread-safe
NotifyAll = Callable[[dict[str, Any]], None]


class Dispatcher:
    def __init__(
        self,
        store: JobStore,
        worker: Worker,
        notify: Notify,
        notify_all: NotifyAll,
        job_timeout: float | None = None,
    ) -> None:
        self.store = store
        self.worker = worker
        self.job_timeout = job_timeout  # seconds a job may run before it is interrupted
        self._notify = notify
        self._notify_all = notify_all
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: Job | None = None

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="job-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0, interrupt: bool = True) -> bool:
        """Stop taking jobs; interrupt the running one; True if the thread ended in time."""
        self._stop.set()
        self._wake.set()
        current = self.current
        if interrupt and current is not None:
            self.worker.interrupt(current.id)
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    # -- queue operations (event loop) ----------------------------------------
    def cancel(self, job_id: str) -> str | None:
        """Cancel a queued job or interrupt the running one; the job's status after, or
        None for an unknown id."""
        job = self.store.get(job_id)
        if job is None:
            return None
        if job.status == "queued" and self.store.cancel_queued(job_id):
            self._notify(
                job.client_id,
                {"type": "run_finished", "job": job_id, "status": "cancelled", "seconds": 0.0},
            )
            self.broadcast_status()
            return "cancelled"
        job = self.store.get(job_id)
        if job is not None and job.status == "running":
            self.worker.interrupt(job_id)
            return "running"
        return None if job is None else job.status

    def snapshot(self) -> dict[str, Any]:
        return {"queue": self.store.queued_ids(), "running": self.store.running_id()}

    def broadcast_status(self) -> None:
        self._notify_all({"type": "status", **self.snapshot()})

    # -- the worker thread -----------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.store.claim_next()
            except Exception:
                log.exception("could not read the queue")
                job = None
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            if self._stop.is_set():  # stopped while claiming: the job has not started
                self.store.requeue(job.id)
                break
            self._run(job)

    def _run(self, job: Job) -> None:
        self.current = job
        if self._stop.is_set():  # stop() may have looked before `current` was set
            self.worker.interrupt(job.id)
        nodes: dict[str, dict[str, Any]] = {}
        final: dict[str, Any] = {}
        self.broadcast_status()

        def on_message(message: dict[str, Any]) -> None:
            kind = message.get("type")
            if kind == "run_finished":
                final.update(message)
                return
            if kind != "progress" and _track(nodes, message):
                try:
                    self.store.set_nodes(job.id, nodes)
                except Exception:  # a progress record is not worth failing the job
                    log.exception("could not record node states of job %s", job.id)
            self._notify(job.client_id, message)

        deadline = JobDeadline(self.job_timeout, lambda: self.worker.interrupt(job.id))
        try:
            with deadline:
                outcome = self.worker.run(JobRequest(job.id, job.workflow), on_message)
        except Exception as exc:  # the worker itself broke: fail the job, keep serving
            log.exception("worker failed on job %s", job.id)
            error = failure(exc, with_traceback=False)
            self._notify(job.client_id, {"type": "error", "job": job.id, **error})
            outcome = JobOutcome("error", 0.0, error=error)
        if deadline.expired:
            outcome = deadline.outcome(outcome)
            if outcome.error and outcome.error["error_type"] == "timeout":
                self._notify(job.client_id, {"type": "error", "job": job.id, **outcome.error})
        nodes.update(outcome.nodes)
        settle_nodes(nodes, "interrupted" if deadline.expired else outcome.status)
        try:
            self.store.finish(
                job.id,
                outcome.status,
                outcome.seconds,
                nodes,
                with_urls(outcome.files),
                outcome.error,
            )
        except Exception:
            log.exception("could not record the result of job %s", job.id)
        self.current = None
        self._notify(
            job.client_id,
            {
                "type": "run_finished",
                "job": job.id,
                "status": outcome.status,
                "seconds": final.get("seconds", outcome.seconds),
            },
        )
        self.broadcast_status()


def _track(nodes: dict[str, dict[str, Any]], message: dict[str, Any]) -> bool:
    """Update per-node states from one message; True when something changed."""
    kind = message.get("type")
    nid = message.get("node_id")
    if kind == "run_started":
        for n in message.get("to_run", []):
            nodes[n] = {"status": "pending", "seconds": None}
        for n in message.get("cached", []):
            nodes[n] = {"status": "cached", "seconds": 0.0}
    elif kind == "node_started" and nid:
        nodes[nid] = {"status": "running", "seconds": None, "started": time.time()}
    elif kind == "node_finished" and nid:
        nodes[nid] = {"status": "executed", "seconds": message.get("seconds")}
    elif kind == "node_cached" and nid:
        nodes[nid] = {"status": "cached", "seconds": 0.0}
    elif kind == "error" and nid:
        nodes[nid] = {"status": "error", "seconds": None}
    else:
        return False
    return True
