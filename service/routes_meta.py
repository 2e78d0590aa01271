"""What the canvas reads to build itself: node schema, models, example workflows."""

from __future__ import annotations

import asyncio
import re
from dataclasses import asdict
from typing import Any

from aiohttp import web

from graph import jsondoc
from graph.schema import registry_schema
from graph.workspace import PathOutsideFolder, confined_path
from model_index import index_for
from service.errors import ApiError
from service.state import services

routes = web.RouteTableDef()
WORKFLOW_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@routes.get("/api/nodes")
async def nodes(request: web.Request) -> web.Response:
    engine = services(request).engine
    schema = await asyncio.to_thread(registry_schema, engine.registry, engine.choices)
    return web.json_response(schema)


@routes.get("/api/models")
async def models(request: web.Request) -> web.Response:
    engine = services(request).engine

    def listing() -> dict[str, Any]:
        found: dict[str, Any] = {
            name: engine.choices(name) for name in sorted(engine.registry.choice_sources)
        }
        found.setdefault("checkpoints", [])
        # every model file: size, family, sha256 and AutoV2 (null while hashing)
        files = index_for(engine.workspace).scan()
        found["files"] = [f.to_json() for f in files]
        # what new latents start at, per checkpoint (the canvas's EmptyLatent)
        found["native_sizes"] = _native_sizes(engine, found["checkpoints"], files)
        return found

    return web.json_response(await asyncio.to_thread(listing))


def _native_sizes(engine: Any, names: list[str], files: list[Any]) -> dict[str, int]:
    """Each checkpoint's native size, when the checkpoints come from the SD nodes (imported
    here only then: the server starts without torch and loads the engine later)."""
    lister = engine.registry.choice_sources.get("checkpoints")
    if getattr(lister, "__module__", None) != "nodes.sd.checkpoints":
        return {}
    from nodes.sd.checkpoint_sizes import native_sizes

    return native_sizes(engine.workspace, names, files)


@routes.get("/api/workflows")
async def workflows(request: web.Request) -> web.Response:
    folder = services(request).config.workflows_dir
    names = sorted(p.stem for p in folder.glob("*.json") if p.is_file()) if folder.is_dir() else []
    return web.json_response({"workflows": names})


@routes.get("/api/workflows/{name}")
async def workflow(request: web.Request) -> web.Response:
    name = request.match_info["name"].removesuffix(".json")
    if not WORKFLOW_NAME.match(name):
        raise ApiError(400, "bad_path", "workflow names are letters, digits, '_', '-', '.'")
    folder = services(request).config.workflows_dir
    try:
        path = confined_path(folder, name + ".json")
    except PathOutsideFolder as exc:
        raise ApiError(400, "bad_path", str(exc)) from None
    if not path.is_file():
        raise ApiError(404, "not_found", f"no workflow {name!r}")
    try:
        data = jsondoc.loads(path.read_bytes())
    except ValueError as exc:  # undecodable, malformed, or out of bounds
        raise ApiError(500, "broken_workflow_file", f"{path.name}: {exc}") from None
    return web.json_response(data)


@routes.get("/api/status")
async def status(request: web.Request) -> web.Response:
    svc = services(request)
    cfg = svc.config
    if svc.dispatcher is None:  # the engine is still loading (service.startup)
        return web.json_response({"engine": svc.load.describe()})
    body = {
        "engine": svc.load.describe(),
        **svc.queue.snapshot(),
        "worker": await asyncio.to_thread(svc.worker.stats),
        "worker_stats": [await asyncio.to_thread(w.stats) for w in svc.workers],
        "clients": svc.hub.connections(),
        "budgets": asdict(cfg.budgets),
        "limits": {
            "max_body_bytes": cfg.max_body_bytes,
            "max_upload_bytes": cfg.max_upload_bytes,
            "max_upload_pixels": cfg.max_upload_pixels,
            "max_queue": cfg.max_queue,
            "history_limit": cfg.history_limit,
        },
        "canvas_built": (cfg.web_dist / "index.html").is_file(),
    }
    return web.json_response(body)
