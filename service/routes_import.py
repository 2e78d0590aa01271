"""Workflows from elsewhere (ComfyUI API/UI JSON) become ours at the API's door, with
their model names resolved by content hash.

``import_or_reject`` is the one call ``POST /api/jobs`` makes; ``POST
/api/workflows/import`` converts without running (the canvas's Open and drop).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from graph.validate import Problem
from graph.versions import migrate
from graph.workflow import Workflow, WorkflowFormatError
from importers import import_document
from model_index import index_for, model_inputs, record_models, resolve_models
from service.errors import ApiError
from service.state import services

routes = web.RouteTableDef()


@dataclass
class Imported:
    workflow: Workflow
    source: str
    warnings: list[str] = field(default_factory=list)
    missing: list[Problem] = field(default_factory=list)  # model_missing


@dataclass(frozen=True)
class Converted:
    """A document made ours (converted, node versions migrated): a pure function of the
    document, so an identical resubmission may reuse it (service/submission_memo.py)."""

    workflow: Workflow
    source: str
    warnings: list[str]


def convert(data: Any, engine: Any) -> Converted:
    """Ours as is, ComfyUI's converted, old node versions migrated; 400 otherwise."""
    try:
        result = import_document(data, set(engine.registry.nodes))
    except WorkflowFormatError as exc:
        problems = getattr(exc, "problems", None) or [Problem(None, None, "bad_format", str(exc))]
        raise ApiError(400, "invalid_workflow", str(exc), [p.to_json() for p in problems]) from None
    workflow, outdated = migrate(result.workflow, engine.registry)  # node versions, stamped
    if outdated:
        problems = [p.to_json() for p in outdated]
        raise ApiError(400, "invalid_workflow", outdated[0].message, problems)
    return Converted(workflow, result.source, list(result.warnings))


def with_models(converted: Converted, engine: Any) -> Imported:
    """Model names resolved by content hash and the files used recorded: reads the model
    folder and index (so it is done again for every job, memo or not)."""
    index, inputs = index_for(engine.workspace), model_inputs(engine.registry)
    workflow, missing, notes = resolve_models(converted.workflow, index, inputs)
    workflow = record_models(workflow, index, inputs, wait=False)  # pending: SaveImage fills in
    return Imported(workflow, converted.source, [*converted.warnings, *notes], missing)


def _import(data: Any, engine: Any) -> Imported:
    return with_models(convert(data, engine), engine)


async def import_or_reject(data: Any, engine: Any, allow_missing: bool = False) -> Imported:
    """Ours as is, ComfyUI's converted, model names resolved (in a thread: resolving may
    hash files); a 400 listing every problem otherwise."""
    return await asyncio.to_thread(import_checked, data, engine, allow_missing)


def import_checked(data: Any, engine: Any, allow_missing: bool = False) -> Imported:
    """`import_or_reject` in the calling thread: the event loop's only for a workflow
    without a ``models`` section (resolving recorded hashes may hash files)."""
    return reject_missing(_import(data, engine), allow_missing)


def reject_missing(imported: Imported, allow_missing: bool = False) -> Imported:
    """400 naming every model the workflow needs that is not here (unless allowed)."""
    if imported.missing and not allow_missing:
        problems = [p.to_json() for p in imported.missing]
        raise ApiError(400, "invalid_workflow", "a model the workflow needs is missing", problems)
    return imported


@routes.post("/api/workflows/import")
async def import_workflow(request: web.Request) -> web.Response:
    from service.routes_jobs import read_json  # routes_jobs imports this module

    svc = services(request)
    body = await read_json(request, svc.config.max_body_bytes)
    result = await import_or_reject(body, svc.engine, allow_missing=True)
    return web.json_response(
        {
            "workflow": result.workflow.model_dump(mode="json", exclude_none=True),
            "source": result.source,
            "warnings": result.warnings,
            "problems": [p.to_json() for p in result.missing],
        }
    )
