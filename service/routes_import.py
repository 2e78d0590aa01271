"""Workflows from elsewhere (ComfyUI API/UI JSON) become ours at the API's door.

``import_or_reject`` is the one call ``POST /api/jobs`` makes; ``POST
/api/workflows/import`` converts without running (the canvas's Open and drop).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from graph.validate import Problem
from graph.workflow import WorkflowFormatError
from importers import ImportResult, import_document
from service.errors import ApiError
from service.state import services

routes = web.RouteTableDef()


def import_or_reject(data: Any, engine: Any) -> ImportResult:
    """Ours as is, ComfyUI's converted; a 400 listing every problem otherwise."""
    try:
        return import_document(data, set(engine.registry.nodes))
    except WorkflowFormatError as exc:
        problems = getattr(exc, "problems", None) or [Problem(None, None, "bad_format", str(exc))]
        raise ApiError(400, "invalid_workflow", str(exc), [p.to_json() for p in problems]) from None


@routes.post("/api/workflows/import")
async def import_workflow(request: web.Request) -> web.Response:
    from service.routes_jobs import read_json  # routes_jobs imports this module

    svc = services(request)
    body = await read_json(request, svc.config.max_body_bytes)
    result = import_or_reject(body, svc.engine)
    return web.json_response(
        {
            "workflow": result.workflow.model_dump(mode="json", exclude_none=True),
            "source": result.source,
            "warnings": result.warnings,
        }
    )
