"""GET /api/ws: a snapshot on connect, then the events of this client's jobs."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSCloseCode, WSMsgType, web

from graph import jsondoc
from service.clients import HEADER
from service.state import services

routes = web.RouteTableDef()
MAX_INCOMING = 64 * 1024


@routes.get("/api/ws")
async def websocket(request: web.Request) -> web.WebSocketResponse:
    svc = services(request)
    # Client ids are capabilities (whoever holds one gets its jobs' events), so only ids
    # this server issued (service/clients.py) subscribe; without one, one is issued.
    client_id = (
        request.query.get("client_id")
        or request.query.get("clientId")
        or request.headers.get(HEADER)  # scripts; browsers cannot set websocket headers
    )
    client_id = svc.clients.issue() if client_id is None else svc.clients.check(client_id)
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_INCOMING)
    await ws.prepare(request)
    box = svc.hub.connect(client_id, ws)
    mine, _ = svc.jobs.page(20, client_id=client_id)
    box.offer(
        {
            "type": "snapshot",
            "client_id": client_id,
            **svc.queue.snapshot(),
            "jobs": [j.summary() for j in mine],
        }
    )
    pump = asyncio.create_task(box.pump())
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                data = jsondoc.loads(msg.data)
            except ValueError:  # malformed, too deep, too long a number: end politely
                await ws.close(code=WSCloseCode.INVALID_TEXT, message=b"expected a JSON message")
                break
            if isinstance(data, dict) and data.get("type") == "ping":
                box.offer({"type": "pong"})
    finally:
        svc.hub.disconnect(client_id, box)
        pump.cancel()
        with contextlib.suppress(BaseException):
            await pump
    return ws
