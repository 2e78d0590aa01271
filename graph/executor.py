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
from graph.context import CancelToken, Interrupted, Resources, RunContext
from graph.events import (
    Event,
    NodeCached,
    NodeFinished,
    NodeStarted,
    RunError,
    RunFinished,
    RunStarted,
)
from graph.node import Node
from graph.plan import Plan, consumers, dumps_inputs, make_plan
from graph.registry import Registry
from graph.validate import Checked, InvalidWorkflow, Problem, validate
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

    # -- running ----------------------------------------------------------
    def run(
        self,
        workflow: Workflow,
        on_event: EventSink | None = None,
        cancel: CancelToken | None = None,
        run_id: str | None = None,
    ) -> RunResult:
        """Validate then execute. Raises InvalidWorkflow (nothing runs) on problems."""
        checked = self.check(workflow)
        if not checked.ok:
            raise InvalidWorkflow(checked.problems)
        return self.execute(checked, workflow, on_event, cancel, run_id)

    def execute(
        self,
        checked: Checked,
        workflow: Workflow,
        on_event: EventSink | None = None,
        cancel: CancelToken | None = None,
        run_id: str | None = None,
    ) -> RunResult:
        emit = on_event or _ignore
        cancel = cancel or CancelToken()
        run_id = run_id or uuid.uuid4().hex
        with self._lock:
            return self._execute(checked, workflow.model_dump(), emit, cancel, run_id)

    def _fingerprints(self, checked: Checked) -> dict[str, str | None]:
        prints: dict[str, str | None] = {}
        for nid, node in checked.nodes.items():
            fp = node.spec.cls.fingerprint
            if fp.__func__ is not _default_fingerprint:  # type: ignore[attr-defined]
                prints[nid] = fp(self.workspace, node.literals)
        return prints

    def _execute(
        self,
        checked: Checked,
        workflow: dict[str, Any],
        emit: EventSink,
        cancel: CancelToken,
        run_id: str,
    ) -> RunResult:
        t_start = time.perf_counter()
        nodes = checked.nodes
        try:
            plan = make_plan(nodes, self.cache, self._fingerprints(checked))
        except Exception as exc:  # a fingerprint failed (e.g. a file vanished)
            return self._fail(run_id, None, None, exc, {}, emit, t_start)
        result = RunResult(run_id, "ok", 0.0)
        emit(RunStarted(run_id, list(plan.to_run), list(plan.cached)))
        for nid in plan.cached:
            entry = plan.hits.get(nid)
            files = entry.files if entry is not None else []
            result.nodes[nid] = NodeRecord("cached")
            if nodes[nid].spec.output_node:
                result.files.extend(files)
            emit(NodeCached(run_id, nid, nodes[nid].spec.type, files))
        values = {nid: entry.outputs for nid, entry in plan.hits.items()}
        remaining = consumers(nodes, plan.to_run)
        try:
            for nid in plan.to_run:
                self._run_node(nid, plan, checked, workflow, values, remaining, emit, cancel,
                               run_id, result)
        except Interrupted:
            result.status = "interrupted"
        except _NodeFailed as failed:
            node = nodes[failed.node_id]
            return self._fail(run_id, failed.node_id, node.spec.type, failed.exc,
                              dumps_inputs(node), emit, t_start, result)
        result.seconds = time.perf_counter() - t_start
        emit(RunFinished(run_id, result.status, result.seconds))
        return result

    def _run_node(
        self,
        nid: str,
        plan: Plan,
        checked: Checked,
        workflow: dict[str, Any],
        values: dict[str, dict[str, Any]],
        remaining: dict[str, int],
        emit: EventSink,
        cancel: CancelToken,
        run_id: str,
        result: RunResult,
    ) -> None:
        cancel.raise_if_cancelled()
        node = checked.nodes[nid]
        spec = node.spec
        emit(NodeStarted(run_id, nid, spec.type))
        kwargs = dict(node.literals)
        for name, (src, out) in node.links.items():
            kwargs[name] = values[src][out]
            remaining[src] -= 1
            if remaining[src] == 0:
                del values[src]
        ctx = RunContext(run_id, nid, spec.type, self.workspace, self.resources, workflow,
                         cancel, emit)
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
        if remaining.get(nid, 0) > 0:
            values[nid] = outputs
        if spec.cacheable:
            self.cache.put(plan.keys[nid], outputs, ctx.files)
        result.nodes[nid] = NodeRecord("executed", seconds)
        if spec.output_node:
            result.files.extend(ctx.files)
        emit(NodeFinished(run_id, nid, spec.type, seconds, ctx.files))

    def _fail(
        self,
        run_id: str,
        node_id: str | None,
        node_type: str | None,
        exc: BaseException,
        inputs: dict[str, Any],
        emit: EventSink,
        t_start: float,
        result: RunResult | None = None,
    ) -> RunResult:
        result = result or RunResult(run_id, "error", 0.0)
        result.status = "error"
        result.error = {
            "node_id": node_id,
            "node_type": node_type,
            "error_type": type(exc).__name__,
            "message": str(exc) or type(exc).__name__,
            "traceback": "".join(traceback.format_exception(exc)),
            "inputs": inputs,
        }
        emit(RunError(run_id, **result.error))
        result.seconds = time.perf_counter() - t_start
        emit(RunFinished(run_id, "error", result.seconds))
        return result


class _NodeFailed(Exception):
    def __init__(self, node_id: str, exc: Exception) -> None:
        super().__init__(node_id)
        self.node_id = node_id
        self.exc = exc


_default_fingerprint = Node.fingerprint.__func__  # type: ignore[attr-defined]

__all__ = ["Engine", "InvalidWorkflow", "Problem", "RunResult"]
