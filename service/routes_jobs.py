"""POST/GET/DELETE /api/jobs: validate like the CLI, apply budgets, queue, report.

Jobs are private to the client id that queued them (service/clients.py): another
client's job answers 404 exactly like a missing one."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from aiohttp import web

from graph import jsondoc
from graph.validate import Problem
from service.budgets import check_budgets, check_node_count
from service.clients import HEADER, Caller, caller
from service.errors import ApiError
from service.params import query_int
from service.routes_import import Converted, Imported, convert, reject_missing, with_models
from service.state import Services, services
from service.store import FINISHED, IdempotencyConflict, Job
from service.submission_memo import Accepted
from service.worker import Prepared

routes = web.RouteTableDef()
STATUSES = ("queued", "running", *FINISHED)


async def read_json(request: web.Request, limit: int) -> Any:
    """The request body as JSON: 413 over ``limit`` bytes, 400 when malformed."""
    body = await read_body(request, limit)
    # a 5 MB body takes a second to decode and check: not on the event loop
    return await asyncio.to_thread(parse_json, body)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body's bytes: 413 over ``limit``."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "body_too_large", f"request bodies are limited to {limit} bytes")
    body = bytearray()
    async for chunk in request.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > limit:
            raise ApiError(413, "body_too_large", f"request bodies are limited to {limit} bytes")
    return bytes(body)


def parse_json(body: bytes) -> Any:
    """JSON from outside (`graph.jsondoc`'s bounds); 400 when malformed."""
    try:
        return jsondoc.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    except jsondoc.DocumentTooComplex as exc:
        raise ApiError(400, "invalid_json", f"the body is not accepted: {exc}") from None


def _digest(sent: Any, client_id: str, key: str | None) -> str | None:
    """The digest that ties an idempotency key to the workflow as sent (model hashes
    recorded on the way in may still have been pending; None without a key: nothing
    compares it)."""
    if key is None:
        return None
    return hashlib.sha256(json.dumps([sent, client_id], sort_keys=True).encode()).hexdigest()


def _problems(problems: list[Problem]) -> list[dict[str, Any]]:
    return [p.to_json() for p in problems]


INLINE_BODY_BYTES = 64 * 1024  # POSTs up to this size are queued on the event loop


def names_model_hashes(raw: bytes) -> bool:
    """Whether a body may carry a ``models`` section: resolving its hashes may hash files
    (not on the loop), and depends on more than the body (not remembered)."""
    return b'"models"' in raw


@routes.post("/api/jobs")
async def submit(request: web.Request) -> web.Response:
    svc = services(request)
    body = await read_body(request, svc.config.max_body_bytes)
    headers = (request.headers.get(HEADER), request.headers.get("Idempotency-Key"))
    if len(body) <= INLINE_BODY_BYTES and not names_model_hashes(body):
        # a small workflow that names no model hashes is checked in about a millisecond:
        # here, on the loop, rather than paying two thread hand-offs
        return web.json_response(_queue_job(svc, body, *headers))
    # decoding, import (which may hash model files), validation, budgets and the insert:
    # one trip off the event loop (a 5 MB body takes seconds)
    return web.json_response(await asyncio.to_thread(_queue_job, svc, body, *headers))


def _queue_job(
    svc: Services, raw: bytes, header_client: str | None, header_key: str | None
) -> dict[str, Any]:
    """Check and queue one POSTed job (on the loop when small, else in a thread); the
    reply's body. An identical resubmission reuses what did not change (`SubmissionMemo`)."""
    memo = None if names_model_hashes(raw) else svc.submissions
    seen = memo.get(raw) if memo is not None else None
    body = seen.body if seen is not None else _request_body(raw)
    client_id = body.get("client_id") or header_client
    # no id: the server issues one (returned below); one it did not issue: 400
    client_id = svc.clients.issue() if client_id is None else svc.clients.check(client_id)
    key = body.get("idempotency_key", header_key)
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 200):
        raise ApiError(400, "bad_idempotency_key", "idempotency_key must be a short string")

    converted = seen.converted if seen is not None else convert(body["workflow"], svc.engine)
    imported = reject_missing(with_models(converted, svc.engine))  # model files: every time
    if seen is not None and seen.still_holds(imported, svc.engine):
        accepted = seen
    else:
        accepted = _accept(svc, body, converted, imported)
        if memo is not None:
            memo.put(raw, accepted)
    checked, workflow = accepted.checked, accepted.imported.workflow
    over = check_budgets(checked, svc.config.budgets, svc.engine.workspace)  # reads image headers
    if over:
        raise ApiError(400, "budget_exceeded", over[0].message, _problems(over))

    digest = _digest(body["workflow"], client_id, key)
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
        job, created = store.add(accepted.stored, client_id, key, digest, accepted.stored_json)
    except IdempotencyConflict:
        raise ApiError(
            409, "idempotency_conflict", "this idempotency_key was used with a different request"
        ) from None
    if created:  # starts it here when a worker is idle, with the checked workflow at hand
        svc.queue.submitted(job, Prepared(svc.engine, workflow, checked))
    reply: dict[str, Any] = {"id": job.id, "status": job.status, "client_id": client_id}
    if imported.warnings:
        reply["import"] = {"source": imported.source, "warnings": imported.warnings}
    return reply


def _request_body(raw: bytes) -> dict[str, Any]:
    """The decoded body of POST /api/jobs; 400 unless an object carrying a workflow."""
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    if "workflow" not in body:
        raise ApiError(400, "no_workflow", 'the body must carry the workflow as {"workflow": ...}')
    return body


def _accept(
    svc: Services, body: dict[str, Any], converted: Converted, imported: Imported
) -> Accepted:
    """Validate an imported workflow (400 listing its problems) and render its stored form
    (~1 s at 5 MB)."""
    workflow = imported.workflow
    over = check_node_count(workflow, svc.config.budgets)
    if over:
        raise ApiError(400, "budget_exceeded", over[0].message, _problems(over))
    checked = svc.engine.check(workflow)
    if checked.problems:
        raise ApiError(
            400,
            "invalid_workflow",
            f"the workflow has {len(checked.problems)} problem(s)",
            _problems(checked.problems),
        )
    stored = workflow.model_dump(mode="json")
    return Accepted(body, converted, imported, checked, stored, json.dumps(stored))


@routes.post("/api/clients")
async def new_client(request: web.Request) -> web.Response:
    """A client id for this browser or script; one already issued by this server is
    confirmed (sent back unchanged), anything else gets a fresh one."""
    svc = services(request)
    body = await read_json(request, 4096) if request.can_read_body else {}
    old = body.get("client_id") if isinstance(body, dict) else None
    client_id = old if svc.clients.valid(old) else svc.clients.issue()
    return web.json_response({"client_id": client_id})


def _caller(request: web.Request) -> Caller:
    svc = services(request)
    return caller(request, svc.clients, svc.config.auth_token)


def _owned_job(request: web.Request) -> Job:
    """The job of the URL if the caller may see it; 404 alike for missing and foreign."""
    job = services(request).jobs.get(request.match_info["id"])
    if job is None or not _caller(request).owns(job.client_id):
        raise ApiError(404, "not_found", "no such job")
    return job


@routes.get("/api/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    q = request.query
    limit = query_int(request, "limit", 50, 1, 200, clamp=True) or 50
    before = query_int(request, "before", None)
    statuses = tuple(s for s in q.get("status", "").split(",") if s)
    if any(s not in STATUSES for s in statuses):
        raise ApiError(400, "bad_query", f"status must be among {', '.join(STATUSES)}")
    who = _caller(request)
    if who.operator:
        owner = q.get("client_id")  # the operator sees every job, or one client's
    elif who.client_id is None:
        raise ApiError(
            400,
            "no_client_id",
            f"jobs are private to their client: send the {HEADER} header (POST /api/clients "
            "issues an id)",
        )
    else:
        owner = who.client_id
    jobs, cursor = services(request).jobs.page(limit, before, owner, statuses)
    return web.json_response({"jobs": [j.summary() for j in jobs], "next": cursor})


@routes.get("/api/jobs/{id}")
async def get_job(request: web.Request) -> web.Response:
    return web.json_response(_owned_job(request).detail())


@routes.delete("/api/jobs/{id}")
async def cancel_job(request: web.Request) -> web.Response:
    job_id = _owned_job(request).id
    status = services(request).queue.cancel(job_id)
    if status is None:
        raise ApiError(404, "not_found", "no such job")
    body: dict[str, Any] = {"id": job_id, "status": status}
    if status == "running":
        body["interrupting"] = True
    return web.json_response(body)
