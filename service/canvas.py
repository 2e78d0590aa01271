"""Serves the built canvas (web/dist) after the API routes, or says how to build it.

The folder is looked up on each request, so building the canvas while the server
runs needs no restart; names are confined to the folder like every file route."""

from __future__ import annotations

from aiohttp import web

from graph.workspace import PathOutsideFolder, confined_path
from service.config import BUILD_HINT
from service.errors import ApiError
from service.state import services

routes = web.RouteTableDef()

NOT_BUILT = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Canvas not built</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>The canvas has not been built</h1>
<p>The API is running, but the web canvas (web/dist) is missing. Build it with</p>
<pre>{BUILD_HINT}</pre>
<p>then reload this page. The API is under <a href="/api/nodes">/api/</a>.</p>
</body></html>
"""


@routes.get("/")
async def index(request: web.Request) -> web.StreamResponse:
    page = services(request).config.web_dist / "index.html"
    if not page.is_file():
        return web.Response(text=NOT_BUILT, content_type="text/html", status=503)
    response = web.FileResponse(page)
    response.headers["Cache-Control"] = "no-cache"
    return response


@routes.get("/{path:.+}")
async def asset(request: web.Request) -> web.StreamResponse:
    path = request.match_info["path"]
    if path == "api" or path.startswith("api/"):
        raise ApiError(404, "not_found", f"no API route {request.path}")
    dist = services(request).config.web_dist
    try:
        target = confined_path(dist, path)
    except PathOutsideFolder:
        raise ApiError(404, "not_found", "no such file") from None
    if not target.is_file():
        raise ApiError(404, "not_found", "no such file")
    response = web.FileResponse(target)
    if path.startswith("assets/"):  # Vite's content-hashed bundles
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response
