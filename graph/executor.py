"""The executor: validate, plan, run the nodes that must run, stream events.

One `Engine` lives as long as its process (the server, or one CLI invocation
running several workflows): its output cache and shared resources persist
across runs. Runs are serialised: one at a time per engine.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graph.cache import DEFAULT_BUDGET, OutputCache
from graph.context import CancelToken, Interrupted, Resources, RunContext, WorkflowDoc
from graph.events import (
    Event,
    NodeCached,
    NodeFinished,
    NodeStarted,
    RunError,
    RunFinished,
    RunStarted,
)
from graph.failure import failure
from graph.memory import OUT_OF_MEMORY, is_out_of_memory
from graph.plan import Plan, consumers, dumps_inputs, make_plan
from graph.registry import Registry
from graph.validate import (
    Checked,
    CheckedNode,
    InvalidWorkflow,
    Problem,
    check_arrived_values,
    validate,
)
from graph.workflow import Workflow
from graph.workspace import Workspace

EventSink = Callable[[Event], None]


def _ignore(_: Event) -> None:
    return None


@dataclass
class NodeRecord:
    status: str  # executed | cached
    seconds: float = 0.0


@dataclass
class RunResult:
    run_id: str
    status: str  # ok | error | interrupted
    seconds: float
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    files: list[dict[str, str]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    models: dict[str, Any] = field(default_factory=dict)  # loaded / evicted during the run

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "seconds": round(self.seconds, 6),
            "nodes": {
                k: {"status": v.status, "seconds": round(v.seconds, 6)}
                for k, v in self.nodes.items()
            },
            "files": [f["name"] for f in self.files],
            "error": self.error,
            "models": self.models,
        }


class Engine:
    """Runs workflows against one registry, workspace, cache and resource store."""

    def __init__(
        self,
        registry: Registry,
        workspace: Workspace,
        cache_budget: int = DEFAULT_BUDGET,
        resources: Resources | None = None,
    ) -> None:
        self.registry = registry
        self.workspace = workspace
        self.cache = OutputCache(cache_budget)
        self.resources = resources or Resources()
        self._lock = threading.Lock()

    # -- validation -------------------------------------------------------
    def choices(self, source: str) -> list[str]:
        lister = self.registry.choice_sources.get(source)
        return list(lister(self.workspace)) if lister else []

    def check(self, workflow: Workflow) -> Checked:
        """Every problem of the workflow (empty when it can run)."""
        return validate(workflow, self.registry, self.choices)

    def still_valid(self, checked: Checked) -> bool:
        """Whether this engine's earlier ``check`` of a workflow (without problems) would
        give the same verdict now: the Choice listings it read are unchanged."""
        return checked.ok and all(self.choices(s) == v for s, v in checked.listed.items())

    # -- running ----------------------------------------------------------
    def run(
        self,
        workflow: Workflow,
        on_event: EventSink | None = None,
        cancel: CancelToken | None = None,
        run_id: str | None = None,
        checked: Checked | None = None,
        previews: bool = False,
    ) -> RunResult:
        """Validate then execute. Raises InvalidWorkflow (nothing runs) on problems.
        ``checked``: this engine's own earlier check of the same workflow (the server's,
        when the job was queued), used when `still_valid`, else checked again.
        ``previews``: nodes attach live preview images to their progress (someone shows
        them: the server); otherwise none are made."""
        if checked is None or not self.still_valid(checked):
            checked = self.check(workflow)
        if not checked.ok:
            raise InvalidWorkflow(checked.problems)
        return self.execute(checked, workflow, on_event, cancel, run_id, previews)

    def execute(
        self,
        checked: Checked,
        workflow: Workflow,
        on_event: EventSink | None = None,
        cancel: CancelToken | None = None,
        run_id: str | None = None,
        previews: bool = False,
    ) -> RunResult:
        emit = on_event or _ignore
        cancel = cancel or CancelToken()
        run_id = run_id or uuid.uuid4().hex
        with self._lock:
            with self.resources.models.job() as models:  # pins the models this run uses
                doc = WorkflowDoc(workflow)
                result = self._execute(checked, doc, emit, cancel, run_id, previews)
            result.models = models.to_json()
            return result

    def run_cached(
        self,
        checked: Checked,
        workflow: Workflow,
        on_event: EventSink | None = None,
        run_id: str | None = None,
    ) -> RunResult | None:
        """The run of an already checked workflow whose every needed output is in the
        cache (serving them is all it does, well under a millisecond), or None, having
        emitted nothing, when a node would execute, the check is stale or another run
        holds the engine: the caller then runs it the usual way (`run`)."""
        if not self.still_valid(checked) or not self._lock.acquire(blocking=False):
            return None
        try:
            with self.resources.models.job() as models:
                try:
                    plan = make_plan(checked, self.cache, self._fingerprint)
                except Exception:  # a fingerprint failed: `run` reports it
                    return None
                if plan.to_run:
                    return None
                emit, doc = on_event or _ignore, WorkflowDoc(workflow)
                run_id = run_id or uuid.uuid4().hex
                result = self._execute(checked, doc, emit, CancelToken(), run_id, plan=plan)
            result.models = models.to_json()
            return result
        finally:
            self._lock.release()

    def free_memory(self) -> list[dict[str, Any]]:
        """Drop cached outputs and every loaded model the running job does not use."""
        self.cache.clear()
        return self.resources.models.free_memory()

    def _fingerprint(self, node: CheckedNode) -> str | None:
        spec = node.spec
        return spec.cls.fingerprint(self.workspace, node.literals) if spec.has_fingerprint else None

    def _execute(
        self,
        checked: Checked,
        workflow: WorkflowDoc,
        emit: EventSink,
        cancel: CancelToken,
        run_id: str,
        previews: bool = False,
        plan: Plan | None = None,
    ) -> RunResult:
        t_start = time.perf_counter()
        result = RunResult(run_id, "ok", 0.0)
        try:
            plan = plan or make_plan(checked, self.cache, self._fingerprint)
        except Exception as exc:  # a fingerprint failed (e.g. a file vanished)
            return self._fail(result, None, exc, emit, t_start)
        emit(RunStarted(run_id, list(plan.to_run), list(plan.cached)))
        nodes = checked.nodes
        for nid in plan.cached:
            result.nodes[nid] = NodeRecord("cached")
        for nid, entry in plan.hits.items():  # the cached values this run actually reads
            if nodes[nid].spec.output_node:
                result.files.extend(entry.files)
            emit(NodeCached(run_id, nid, nodes[nid].spec.type, entry.files))
        run = _Run(self, checked, plan, workflow, emit, cancel, result, previews)
        try:
            for nid in plan.to_run:
                run.node(nid)
        except Interrupted:
            result.status = "interrupted"
        except _NodeFailed as failed:
            self._fail(result, nodes[failed.node_id], failed.exc, emit, t_start)
            if is_out_of_memory(failed.exc):
                # the failed node's locals and this run's values go before the release
                traceback.clear_frames(failed.exc.__traceback__)
                del run
                self.free_memory()
            return result
        result.seconds = time.perf_counter() - t_start
        emit(RunFinished(run_id, result.status, result.seconds))
        return result

    def _fail(
        self,
        result: RunResult,
        node: CheckedNode | None,
        exc: BaseException,
        emit: EventSink,
        t_start: float,
    ) -> RunResult:
        result.status = "error"
        result.error = failure(
            exc,
            node_id=node.id if node else None,
            node_type=node.spec.type if node else None,
            inputs=dumps_inputs(node) if node else None,
        )
        if node is not None and is_out_of_memory(exc):
            result.error.update(OUT_OF_MEMORY)  # _execute releases memory next
        emit(RunError(result.run_id, **result.error))
        result.seconds = time.perf_counter() - t_start
        emit(RunFinished(result.run_id, "error", result.seconds))
        return result


class _Run:
    """The state of one execution: values still needed downstream, and the result."""

    def __init__(
        self,
        engine: Engine,
        checked: Checked,
        plan: Plan,
        workflow: WorkflowDoc,
        emit: EventSink,
        cancel: CancelToken,
        result: RunResult,
        previews: bool = False,
    ) -> None:
        self.engine = engine
        self.previews = previews
        self.nodes = checked.nodes
        self.plan = plan
        self.workflow = workflow
        self.emit = emit
        self.cancel = cancel
        self.result = result
        self.values = {nid: entry.outputs for nid, entry in plan.hits.items()}
        self.remaining = consumers(checked.nodes, plan.to_run)

    def node(self, nid: str) -> None:
        """Run one node; its outputs go to the cache and to the nodes that read them."""
        self.cancel.raise_if_cancelled()
        node = self.nodes[nid]
        spec = node.spec
        run_id = self.result.run_id
        self.emit(NodeStarted(run_id, nid, spec.type))
        kwargs = dict(node.literals)
        for name, (src, out) in node.links.items():
            kwargs[name] = self.values[src][out]
            self.remaining[src] -= 1
            if self.remaining[src] == 0:
                del self.values[src]  # free intermediates as soon as the last reader has them
        engine = self.engine
        if node.pending:  # widgets fed by links: checked as if typed in, now they are known
            problems = check_arrived_values(node, kwargs, engine.choices)
            if problems:
                raise _NodeFailed(nid, InvalidWorkflow(problems))
        ctx = RunContext(
            run_id,
            nid,
            spec.type,
            engine.workspace,
            engine.resources,
            self.workflow,
            self.cancel,
            self.emit,
            previews=self.previews,
        )
        t0 = time.perf_counter()
        try:
            outputs = spec.cls().run(ctx, **kwargs)
            missing = [o for o in spec.outputs if o not in (outputs or {})]
            if missing:
                raise TypeError(f"{spec.type}.run returned no value for {', '.join(missing)}")
        except Interrupted:
            raise
        except Exception as exc:
            raise _NodeFailed(nid, exc) from exc
        seconds = time.perf_counter() - t0
        if self.remaining.get(nid, 0) > 0:
            self.values[nid] = outputs
        if spec.cacheable:
            engine.cache.put(self.plan.keys[nid], outputs, ctx.files)
        self.result.nodes[nid] = NodeRecord("executed", seconds)
        if spec.output_node:
            self.result.files.extend(ctx.files)
        self.emit(NodeFinished(run_id, nid, spec.type, seconds, ctx.files, ctx.warnings))


class _NodeFailed(Exception):
    def __init__(self, node_id: str, exc: Exception) -> None:
        super().__init__(node_id)
        self.node_id = node_id
        self.exc = exc


__all__ = ["Engine", "InvalidWorkflow", "Problem", "RunResult"]
