"""Fully cached jobs, run where they are handed to their worker.

A job whose every output is already in the in-process engine's cache does nothing but
serve those outputs (well under a millisecond). Handing it to the worker's thread and
its messages back to the event loop cost more than that: two thread switches, each a
fight for the interpreter lock with the loop. So the dispatcher first offers a job to
the worker's ``run_cached`` in the thread that assigns it (the loop's, when the POST
queued it); only a job that must execute something goes to the worker's thread."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from service.job_ends import JobEnds
from service.node_states import track_node
from service.store import Job
from service.worker import JobRequest, Prepared, Worker

if TYPE_CHECKING:
    from service.dispatcher import Slot

log = logging.getLogger(__name__)


class CachedJobs(JobEnds):
    """Mixed into `service.dispatcher.Dispatcher`: its lock, prepared workflows and
    model hints are the ones used here."""

    _lock: threading.Lock
    _prepared: OrderedDict[str, Prepared]

    def _remember_models(self, slot: Slot, job: Job) -> None:
        raise NotImplementedError

    def _relay(
        self, job: Job, worker: Worker, nodes: dict[str, dict[str, Any]], final: dict[str, Any]
    ) -> Callable[[dict[str, Any]], None]:
        """The sink of one job's messages: node states recorded, the rest to its client;
        ``run_finished`` is kept in ``final`` (sent once the result is stored)."""

        def on_message(message: dict[str, Any]) -> None:
            kind = message.get("type")
            if kind == "run_finished":
                final.update(message)
                return
            if kind == "run_started":
                message = {**message, "worker": worker.name}
            # stored when a node starts (what a crash or a look at a running job needs);
            # the other changes ride along with the next write or the final one
            if kind != "progress" and track_node(nodes, message) and kind == "node_started":
                try:
                    self.store.set_nodes(job.id, nodes)
                except Exception:  # a progress record is not worth failing the job
                    log.exception("could not record node states of job %s", job.id)
            self._notify(job.client_id, message)

        return on_message

    def _serve_cached(self, slot: Slot, job: Job) -> bool:
        """Run ``job`` here if its worker can serve it from the cache; False when it
        must go to the worker's thread (nothing was sent or stored then)."""
        run_cached = getattr(slot.worker, "run_cached", None)
        if run_cached is None:
            return False
        with self._lock:
            prepared = self._prepared.get(job.id)
        if prepared is None:
            return False
        nodes: dict[str, dict[str, Any]] = {}
        final: dict[str, Any] = {}
        request = JobRequest(job.id, job.workflow, prepared)
        outcome = run_cached(request, self._relay(job, slot.worker, nodes, final))
        if outcome is None:
            return False
        with self._lock:
            self._prepared.pop(job.id, None)
            slot.job = None
            slot.last_used = time.time()
        self._remember_models(slot, job)
        self._finish(job, nodes, outcome, final.get("seconds", outcome.seconds))
        return True
