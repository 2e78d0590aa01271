"""Which queued job goes to which idle worker: pure functions over a queue snapshot.

Three rules, in this order of strength:
1. Nothing starves: a job that has waited ``max_wait`` seconds is never passed over.
2. Fairness: clients take turns (round-robin over ``client_id``, each client's own
   jobs in queue order), so one client's hundred jobs do not shut out another's one.
3. Model affinity: an idle worker that already holds a job's models takes it; when
   no idle worker holds the next job's models, up to ``lookahead`` later jobs are
   searched for one that fits an idle worker (as SwarmUI and InvokeAI do), then for
   one whose models nobody holds; otherwise the least recently used idle worker
   loads them, unless every idle worker holds other models, a busy worker holds
   these, and only a few jobs (``share_after`` per holder) wait for them: then that
   worker takes them when done, without a load.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graph.registry import Registry

# Choice sources whose values are model files a worker keeps loaded between jobs.
MODEL_SOURCES = ("checkpoints", "loras", "vaes", "embeddings", "controlnets", "upscalers")


@dataclass(frozen=True)
class Waiting:
    id: str
    client_id: str
    seq: int  # queue order
    created: float  # wall-clock seconds when queued
    models: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Idle:
    name: str
    models: frozenset[str] = frozenset()  # what it holds (a hint: stale costs one load)
    last_used: float = 0.0  # when it last finished a job


@dataclass(frozen=True)
class Policy:
    lookahead: int = 32
    max_wait: float = 120.0  # seconds before a job may no longer be passed over
    affinity: bool = True  # False: plain fair FIFO on the LRU worker (the bench baseline)
    share_after: int = 2  # jobs per busy holder of a model before an idle worker loads it too


def choice_values(
    workflow: Mapping[str, Any], registry: Registry, sources: Sequence[str]
) -> list[tuple[str, str]]:
    """(source, value) of every Choice input from ``sources`` the workflow sets."""
    found: list[tuple[str, str]] = []
    for node in (workflow.get("nodes") or {}).values():
        spec = registry.nodes.get(node.get("type", ""))
        if spec is None:
            continue
        inputs = node.get("inputs") or {}
        for name, inp in spec.inputs.items():
            if inp.choice_source in sources:
                value = inputs.get(name, inp.default)
                if isinstance(value, str):
                    found.append((inp.choice_source, value))
    return found


def model_keys(workflow: Mapping[str, Any], registry: Registry) -> frozenset[str]:
    """The model files a workflow loads, as ``source:name`` (from its Choice inputs)."""
    return frozenset(f"{s}:{v}" for s, v in choice_values(workflow, registry, MODEL_SOURCES))


def fair_order(waiting: Sequence[Waiting], last_client: str | None = None) -> list[Waiting]:
    """Round-robin over clients (in order of their oldest job), starting after the
    client served last; each client's jobs in queue order."""
    by_client: dict[str, list[Waiting]] = {}
    for job in sorted(waiting, key=lambda j: j.seq):
        by_client.setdefault(job.client_id, []).append(job)
    clients = list(by_client)
    if last_client in by_client:
        at = clients.index(last_client) + 1
        clients = clients[at:] + clients[:at]
    order: list[Waiting] = []
    depth = 0
    while len(order) < len(waiting):
        for client in clients:
            jobs = by_client[client]
            if depth < len(jobs):
                order.append(jobs[depth])
        depth += 1
    return order


def assign(
    waiting: Sequence[Waiting],
    idle: Sequence[Idle],
    now: float,
    policy: Policy = Policy(),
    last_client: str | None = None,
    busy: Sequence[frozenset[str]] = (),
) -> tuple[list[tuple[str, str]], str | None]:
    """Pairs (job id, worker name) to start now, and the round-robin cursor after them.
    ``busy``: the models of the workers that are running jobs."""
    free = sorted(idle, key=lambda w: (w.last_used, w.name))  # least recently used first
    holders = list(busy)  # the models of each busy worker, and of each worker given a job
    pending = list(waiting)
    picks: list[tuple[str, str]] = []
    while free and pending:
        order = fair_order(pending, last_client)
        aged = [j for j in order if now - j.created >= policy.max_wait]
        head = min(aged, key=lambda j: j.seq) if aged else order[0]
        job, worker = head, None
        if policy.affinity and head.models:
            worker = _holder(head, free)
            if worker is None and policy.lookahead > 0 and not aged:
                job, worker = _better_pick(head, order[: policy.lookahead], free, holders)
                cold = any(not w.models for w in free)  # a load there evicts nothing
                if job is head and not cold and _wait_for_holder(head, pending, holders, policy):
                    break  # a busy worker will take it (and all else waits for a holder)
        worker = worker or free[0]
        picks.append((job.id, worker.name))
        free.remove(worker)
        pending.remove(job)
        holders.append(worker.models | job.models)
        last_client = job.client_id
    return picks, last_client


def _holder(job: Waiting, free: Sequence[Idle]) -> Idle | None:
    """The least recently used idle worker holding all of the job's models."""
    if not job.models:
        return None
    return next((w for w in free if job.models <= w.models), None)


def _better_pick(
    head: Waiting, window: Sequence[Waiting], free: Sequence[Idle], holders: list[frozenset[str]]
) -> tuple[Waiting, Idle | None]:
    """No idle worker holds the head's models. Prefer a job in the window that an idle
    worker holds the models for (no load); else, when a busy worker holds the head's
    models (it will take the head when done), a job whose models nobody holds (it
    needs a load anyway) or that needs none; else the head itself."""
    for job in window:
        worker = _holder(job, free)
        if worker is not None:
            return job, worker
    if any(head.models <= h for h in holders):
        held = set().union(*holders, *(w.models for w in free))
        fresh = next((j for j in window if not j.models or not j.models <= held), None)
        if fresh is not None:
            return fresh, None
    return head, None


def _wait_for_holder(
    head: Waiting, pending: Sequence[Waiting], holders: list[frozenset[str]], policy: Policy
) -> bool:
    """True when busy workers hold the head's models and too few jobs wait for them
    to be worth loading a second copy."""
    count = sum(head.models <= h for h in holders)
    if not count:
        return False
    wanting = sum(j.models == head.models for j in pending)
    return wanting <= policy.share_after * count
