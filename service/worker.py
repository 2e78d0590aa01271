"""Workers run jobs; the queue (dispatcher) decides which job runs where.

`Worker` is the whole contract a backend must meet: run one job while
streaming JSON event messages to a sink, interrupt a job by id, and say which
models it holds. The dispatcher drives any number of workers through it without
knowing their kind: `InProcessWorker` (here) runs jobs on one long-lived
`graph.Engine` in the server process, so its output cache and loaded models
persist between jobs; `ProcessWorker` and `RayWorker` (service/workers/) run the
same `InProcessWorker` inside a child process or a Ray actor and raise
`WorkerLost` when that dies under a job.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from graph.context import CancelToken
from graph.executor import Engine, RunResult
from graph.failure import failure
from graph.validate import Checked, InvalidWorkflow
from graph.workflow import Workflow, WorkflowFormatError, parse_workflow
from service.messages import EventEncoder
from service.previews import preview_data_url

MessageSink = Callable[[dict[str, Any]], None]
# wraps each job's run, given its workflow document (nodes.sd.runtime.job_threads)
JobScope = Callable[[dict[str, Any]], contextlib.AbstractContextManager[Any]]


@dataclass(frozen=True)
class Prepared:
    """A job's workflow as the server parsed and validated it when it was queued (this
    process only): an in-process worker on the same engine runs it without parsing and
    checking it again (`Engine.run` checks again when a listing it read has changed)."""

    engine: Engine
    workflow: Workflow
    checked: Checked


@dataclass(frozen=True)
class JobRequest:
    id: str
    workflow: dict[str, Any]
    prepared: Prepared | None = field(default=None, compare=False, repr=False)


@dataclass
class JobOutcome:
    status: str  # ok | error | interrupted
    seconds: float
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: list[dict[str, str]] = field(default_factory=list)  # {kind, name}
    error: dict[str, Any] | None = None


class WorkerLost(Exception):
    """The process or actor running the job died (crash, kill, lost machine): the
    job's outcome is unknown and the queue decides whether to run it again."""


class Worker(Protocol):
    name: str  # unique among the server's workers; stored on every job it runs

    def start(self) -> None:
        """Bring the worker up (spawn a process, create an actor); may return early."""
        ...

    def close(self) -> None:
        """Release the worker for good (the server stops)."""
        ...

    @property
    def ready(self) -> bool:
        """True when a job given now would start without waiting for a start-up."""
        ...

    def restart(self) -> bool:
        """Kill whatever runs and start cold (a job that ignores its interrupt); the
        job's ``run`` then raises `WorkerLost`. False when the kind cannot."""
        ...

    def run(self, job: JobRequest, emit: MessageSink) -> JobOutcome:
        """Run the job to its end; every message ends with one ``run_finished``."""
        ...

    def interrupt(self, job_id: str) -> bool:
        """Ask the job to stop at its next check (between nodes, every sampler step)."""
        ...

    def loaded_models(self) -> list[str]: ...

    def free_memory(self) -> None:
        """Drop cached outputs and the loaded models no running job uses."""
        ...

    def stats(self) -> dict[str, Any]: ...


class InProcessWorker:
    """Runs jobs in the calling thread on one engine shared by every job."""

    def __init__(
        self,
        engine: Engine,
        preview_size: int = 256,
        preview_interval: float = 0.1,
        job_scope: JobScope | None = None,
        name: str = "inprocess",
    ) -> None:
        self.name = name
        self.engine = engine
        self._job_scope = job_scope or (lambda workflow: contextlib.nullcontext())
        self._encode = partial(preview_data_url, max_side=preview_size)
        self._preview_interval = preview_interval
        self._tokens: dict[str, CancelToken] = {}
        self._lock = threading.Lock()

    ready = True  # the engine lives in this process

    def start(self) -> None:
        return None

    def close(self) -> None:
        return None

    def restart(self) -> bool:
        return False  # a node stuck in this process cannot be killed without the server

    def _token(self, job_id: str) -> CancelToken:
        with self._lock:
            return self._tokens.setdefault(job_id, CancelToken())

    def interrupt(self, job_id: str) -> bool:
        self._token(job_id).cancel()  # also before run() starts: the token waits for it
        return True

    def loaded_models(self) -> list[str]:
        return [e["name"] for e in self.engine.resources.models.entries()]

    def free_memory(self) -> None:
        """Drop cached outputs and the loaded models no running job uses."""
        self.engine.free_memory()

    def stats(self) -> dict[str, Any]:
        cache = self.engine.cache
        models = self.engine.resources.models.snapshot()
        return {
            "name": self.name,
            "kind": "in-process",
            "loaded_models": [e["name"] for e in models["loaded"]],
            "models": models,  # budgets, bytes used per device, each component held
            "cache": {"entries": len(cache), "bytes": cache.nbytes, "budget": cache.budget},
        }

    def run(self, job: JobRequest, emit: MessageSink) -> JobOutcome:
        token = self._token(job.id)
        encode = EventEncoder(job.id, self._encode, self._preview_interval)
        t0 = time.perf_counter()
        ready = job.prepared if job.prepared and job.prepared.engine is self.engine else None
        try:
            workflow = ready.workflow if ready else parse_workflow(job.workflow)
            with self._job_scope(job.workflow):  # e.g. the per-job thread policy
                result = self.engine.run(
                    workflow,
                    lambda ev: emit(encode(ev)),
                    token,
                    job.id,
                    checked=ready.checked if ready else None,
                    previews=True,  # the server sends them to the job's client
                )
        except (InvalidWorkflow, WorkflowFormatError) as exc:
            # The workflow was valid when queued; its files or models changed since.
            problems = [p.to_json() for p in getattr(exc, "problems", [])]
            return self._failed(job, emit, exc, t0, details=problems)
        except Exception as exc:  # a bug outside any node: fail this job only
            return self._failed(job, emit, exc, t0)
        finally:
            with self._lock:
                self._tokens.pop(job.id, None)
        return _outcome(result)

    def run_cached(self, job: JobRequest, emit: MessageSink) -> JobOutcome | None:
        """The job's outcome when every output it needs is cached (`Engine.run_cached`:
        nothing executes, so it may run in the thread that queued it), else None with
        nothing emitted. Only for a job checked by this worker's engine when queued."""
        ready = job.prepared
        if ready is None or ready.engine is not self.engine:
            return None
        encode = EventEncoder(job.id, self._encode, self._preview_interval)
        result = self.engine.run_cached(
            ready.checked, ready.workflow, lambda ev: emit(encode(ev)), job.id
        )
        return None if result is None else _outcome(result)

    @staticmethod
    def _failed(
        job: JobRequest, emit: MessageSink, exc: BaseException, t0: float, details: Any = None
    ) -> JobOutcome:
        error = failure(exc)
        if details:
            error["details"] = details
        seconds = time.perf_counter() - t0
        emit({"type": "error", "job": job.id, **error})
        emit({"type": "run_finished", "job": job.id, "status": "error", "seconds": seconds})
        return JobOutcome("error", seconds, error=error)


def _outcome(result: RunResult) -> JobOutcome:
    nodes = {
        nid: {"status": rec.status, "seconds": round(rec.seconds, 6)}
        for nid, rec in result.nodes.items()
    }
    if result.error is not None and result.error.get("node_id"):
        nodes[result.error["node_id"]] = {"status": "error", "seconds": None}
    return JobOutcome(result.status, result.seconds, nodes, list(result.files), result.error)
