"""POST/GET/DELETE /api/jobs: validate like the CLI, apply budgets, queue, report."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from typing import Any

from aiohttp import web

from graph.validate import Problem
from service.budgets import check_budgets, check_node_count
from service.errors import ApiError
from service.routes_import import import_or_reject
from service.state import services
from service.store import FINISHED, IdempotencyConflict

routes = web.RouteTableDef()
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
STATUSES = ("queued", "running", *FINISHED)


async def read_json(request: web.Request, limit: int) -> Any:
    """The request body as JSON: 413 over ``limit`` bytes, 400 when malformed."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "body_too_large", f"request bodies are limited to {limit} bytes")
    body = bytearray()
    async for chunk in request.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > limit:
            raise ApiError(413, "body_too_large", f"request bodies are limited to {limit} bytes")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


def _problems(problems: list[Problem]) -> list[dict[str, Any]]:
    return [p.to_json() for p in problems]


@routes.post("/api/jobs")
async def submit(request: web.Request) -> web.Response:
    svc = services(request)
    body = await read_json(request, svc.config.max_body_bytes)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    if "workflow" not in body:
        raise ApiError(400, "no_workflow", 'the body must carry the workflow as {"workflow": ...}')
    client_id = body.get("client_id") or ""
    if not isinstance(client_id, str) or (client_id and not CLIENT_ID.match(client_id)):
        raise ApiError(400, "bad_client_id", "client_id must be 1-64 of A-Z a-z 0-9 _ -")
    key = body.get("idempotency_key", request.headers.get("Idempotency-Key"))
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 200):
        raise ApiError(400, "bad_idempotency_key", "idempotency_key must be a short string")

    imported = await import_or_reject(body["workflow"], svc.engine)  # ours, or ComfyUI's converted
    workflow = imported.workflow
    over = check_node_count(workflow, svc.config.budgets)
    if over:
        raise ApiError(400, "budget_exceeded", over[0].message, _problems(over))
    checked = await asyncio.to_thread(svc.engine.check, workflow)
    if checked.problems:
        raise ApiError(
            400,
            "invalid_workflow",
            f"the workflow has {len(checked.problems)} problem(s)",
            _problems(checked.problems),
        )
    over = check_budgets(checked, svc.config.budgets)
    if over:
        raise ApiError(400, "budget_exceeded", over[0].message, _problems(over))

    data = workflow.model_dump(mode="json")
    digest = hashlib.sha256(json.dumps([data, client_id], sort_keys=True).encode()).hexdigest()
    store = svc.jobs
    if key is None or store.get_by_key(key) is None:
        queued = store.count("queued")
        if queued >= svc.config.max_queue:
            raise ApiError(
                429,
                "queue_full",
                f"{queued} jobs are waiting; try again when some have run",
                headers={"Retry-After": "5"},
            )
    try:
        job, created = store.add(data, client_id, key, digest)
    except IdempotencyConflict:
        raise ApiError(
            409, "idempotency_conflict", "this idempotency_key was used with a different request"
        ) from None
    if created:
        svc.hub.send(client_id, {"type": "queued", "job": job.id})
        svc.queue.wake()
        svc.queue.broadcast_status()
    reply: dict[str, Any] = {"id": job.id, "status": job.status}
    if imported.warnings:
        reply["import"] = {"source": imported.source, "warnings": imported.warnings}
    return web.json_response(reply)


@routes.get("/api/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    q = request.query
    try:
        limit = min(max(int(q.get("limit", "50")), 1), 200)
        before = int(q["before"]) if q.get("before") else None
    except ValueError:
        raise ApiError(400, "bad_query", "limit and before must be integers") from None
    statuses = tuple(s for s in q.get("status", "").split(",") if s)
    if any(s not in STATUSES for s in statuses):
        raise ApiError(400, "bad_query", f"status must be among {', '.join(STATUSES)}")
    jobs, cursor = services(request).jobs.page(limit, before, q.get("client_id"), statuses)
    return web.json_response({"jobs": [j.summary() for j in jobs], "next": cursor})


@routes.get("/api/jobs/{id}")
async def get_job(request: web.Request) -> web.Response:
    job = services(request).jobs.get(request.match_info["id"])
    if job is None:
        raise ApiError(404, "not_found", "no such job")
    return web.json_response(job.detail())


@routes.delete("/api/jobs/{id}")
async def cancel_job(request: web.Request) -> web.Response:
    job_id = request.match_info["id"]
    status = services(request).queue.cancel(job_id)
    if status is None:
        raise ApiError(404, "not_found", "no such job")
    body: dict[str, Any] = {"id": job_id, "status": status}
    if status == "running":
        body["interrupting"] = True
    return web.json_response(body)
