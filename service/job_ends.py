"""How a job's run ends: its result stored, then its final message (the dispatcher's
part after the worker returns, or after the worker died under the job).

The final ``run_finished`` is sent only once the result is stored, so a client that
reacts to it by fetching the job sees the final state."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from graph.failure import failure
from service.messages import with_urls
from service.store import Job, JobStore, settle_nodes
from service.worker import JobOutcome

if TYPE_CHECKING:
    from service.dispatcher import Notify, Slot

log = logging.getLogger(__name__)


class JobEnds:
    """Mixed into `service.dispatcher.Dispatcher`, whose store and notify it uses."""

    store: JobStore
    _notify: Notify

    def broadcast_status(self) -> None:
        raise NotImplementedError

    def _finish(
        self,
        job: Job,
        nodes: dict[str, dict[str, Any]],
        outcome: JobOutcome,
        seconds: float,
        timed_out: bool = False,
    ) -> None:
        nodes.update(outcome.nodes)
        settle_nodes(nodes, "interrupted" if timed_out else outcome.status)
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
        self._finished_message(job, outcome.status, seconds)

    def _finished_message(self, job: Job, status: str, seconds: float) -> None:
        self._notify(
            job.client_id,
            {"type": "run_finished", "job": job.id, "status": status, "seconds": seconds},
        )
        self.broadcast_status()

    def _lost(self, slot: Slot, job: Job, nodes: dict[str, dict[str, Any]], message: str) -> None:
        """The worker died under the job: fail it (replaced on purpose, or out of
        attempts) or queue it again."""
        at = next((n for n, s in nodes.items() if s["status"] == "running"), None)
        where = f"worker {slot.worker.name}: {message}"
        if slot.replacing is not None:
            error = failure(
                error_type=slot.replacing,
                message=f"{where}: the job did not stop when interrupted; its worker was restarted",
                node_id=at,
            )
            self._notify(job.client_id, {"type": "error", "job": job.id, **error})
            self._finish(job, nodes, JobOutcome("error", 0.0, error=error), 0.0)
            return
        log.warning("job %s lost its worker (%s)", job.id, where)
        status = self.store.release_lost(job.id, where, at)
        if status == "queued":
            self._notify(
                job.client_id,
                {"type": "requeued", "job": job.id, "worker": slot.worker.name, "reason": where},
            )
            self.broadcast_status()
        elif status == "error":
            settle_nodes(nodes, "interrupted")  # as the store recorded it
            self.store.set_nodes(job.id, nodes)
            stored = self.store.get(job.id)
            error = stored.error if stored is not None and stored.error else {}
            self._notify(job.client_id, {"type": "error", "job": job.id, **error})
            self._finished_message(job, "error", 0.0)
