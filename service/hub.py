"""Websocket fan-out: each connection has its own bounded outbox and sender task.

Publishing never waits on a socket, so a slow or stuck client cannot slow the
worker. When an outbox is full, progress messages (and queue status) are
coalesced or dropped first, then per-node messages; a job's ``queued``,
``error`` and ``run_finished`` messages are never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import Any, Protocol

log = logging.getLogger(__name__)

# Replaced by a newer message with the same key while still unsent.
_COALESCE = {"progress": ("job", "node_id"), "status": ()}
# Dropped, in this order, when the outbox is over its bound.
_DROP_ORDER = (
    ("progress", "status"),
    ("node_started", "node_finished", "node_cached", "run_started"),
)


class _Socket(Protocol):
    async def send_str(self, data: str) -> None: ...


class Outbox:
    """Pending messages of one connection."""

    def __init__(self, socket: _Socket, limit: int) -> None:
        self.socket = socket
        self.limit = limit
        self.pending: deque[dict[str, Any]] = deque()
        self.dropped = 0
        self._ready = asyncio.Event()
        self._closed = False

    def offer(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind in _COALESCE:
            key = tuple(message.get(k) for k in _COALESCE[kind])
            for i, old in enumerate(self.pending):
                if old.get("type") == kind and tuple(old.get(k) for k in _COALESCE[kind]) == key:
                    self.pending[i] = message
                    return
        self.pending.append(message)
        self._shed()
        self._ready.set()

    def _shed(self) -> None:
        for kinds in _DROP_ORDER:
            while len(self.pending) > self.limit:
                victim = next((m for m in self.pending if m.get("type") in kinds), None)
                if victim is None:
                    break
                self.pending.remove(victim)
                self.dropped += 1

    async def pump(self) -> None:
        """Send pending messages until closed or the socket fails."""
        while not self._closed:
            await self._ready.wait()
            self._ready.clear()
            while self.pending and not self._closed:
                message = self.pending.popleft()
                # default=repr: one odd value must not end this client's stream
                await self.socket.send_str(json.dumps(message, default=repr))

    def close(self) -> None:
        self._closed = True
        self._ready.set()


class Hub:
    """Connections by client id; messages go only to the owning client's sockets."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self._clients: dict[str, set[Outbox]] = {}

    def connect(self, client_id: str, socket: _Socket) -> Outbox:
        box = Outbox(socket, self.limit)
        self._clients.setdefault(client_id, set()).add(box)
        return box

    def disconnect(self, client_id: str, box: Outbox) -> None:
        box.close()
        boxes = self._clients.get(client_id)
        if boxes is not None:
            boxes.discard(box)
            if not boxes:
                del self._clients[client_id]

    def send(self, client_id: str, message: dict[str, Any]) -> None:
        for box in list(self._clients.get(client_id, ())):
            box.offer(message)

    def broadcast(self, message: dict[str, Any]) -> None:
        for boxes in list(self._clients.values()):
            for box in list(boxes):
                box.offer(message)

    def connections(self) -> int:
        return sum(len(b) for b in self._clients.values())

    async def close_all(self) -> None:
        for boxes in list(self._clients.values()):
            for box in list(boxes):
                box.close()
                closer = getattr(box.socket, "close", None)
                if closer is not None:
                    with contextlib.suppress(Exception):
                        await closer()
        self._clients.clear()
