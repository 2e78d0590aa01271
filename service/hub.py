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
_COALESCE = {"progress": ("job", "node_id"), "status": (), "pong": ()}
# Dropped, in this order, when the outbox is over its bound.
_DROP_ORDER = (
    ("progress", "status", "pong"),
    ("node_started", "node_finished", "node_cached", "run_started"),
)
_DROP_CLASS = {kind: i for i, kinds in enumerate(_DROP_ORDER) for kind in kinds}
STALLED_FACTOR = 16  # undroppable messages past limit x this: the client is not reading


class _Socket(Protocol):
    async def send_str(self, data: str) -> None: ...


class Outbox:
    """Pending messages of one connection. Every offer costs O(1) amortized however
    far behind the client is: coalescing finds its slot by key, shedding pops the
    oldest droppable message from a queue per class. A client that falls more than
    ``limit x STALLED_FACTOR`` undroppable messages behind is disconnected (it
    reconnects and gets a snapshot) instead of holding memory without bound."""

    def __init__(self, socket: _Socket, limit: int) -> None:
        self.socket = socket
        self.limit = limit
        self.dropped = 0
        self.stalled = False
        self._pending: dict[int, dict[str, Any]] = {}  # seq -> message, oldest first
        self._seq = 0
        self._slots: dict[tuple[Any, ...], int] = {}  # coalescing key -> seq
        self._droppable: tuple[deque[int], ...] = tuple(deque() for _ in _DROP_ORDER)
        self._ready = asyncio.Event()
        self._closed = False
        self._closing: asyncio.Future[Any] | None = None

    @property
    def pending(self) -> list[dict[str, Any]]:
        """The unsent messages, oldest first (a copy)."""
        return list(self._pending.values())

    def offer(self, message: dict[str, Any]) -> None:
        if self._closed:
            return
        kind = message.get("type")
        key = None
        if kind in _COALESCE:
            key = (kind, *(message.get(k) for k in _COALESCE[kind]))
            seq = self._slots.get(key)
            if seq is not None and seq in self._pending:
                self._pending[seq] = message
                return
        self._seq += 1
        self._pending[self._seq] = message
        if key is not None:
            self._slots[key] = self._seq
        if kind in _DROP_CLASS:
            self._droppable[_DROP_CLASS[kind]].append(self._seq)
        self._shed()
        self._ready.set()

    def _shed(self) -> None:
        for queue in self._droppable:
            while len(self._pending) > self.limit and queue:
                victim = queue.popleft()
                if self._pending.pop(victim, None) is not None:
                    self.dropped += 1
        if len(self._pending) > self.limit * STALLED_FACTOR:
            log.warning("a websocket client stopped reading; disconnecting it")
            self.stalled = True
            self.close()
            self._pending.clear()
            closer = getattr(self.socket, "close", None)
            if closer is not None:  # kept: a task nobody references may be collected
                self._closing = asyncio.ensure_future(
                    closer(code=1013, message=b"too far behind; reconnect")
                )

    def _take(self) -> dict[str, Any]:
        seq = next(iter(self._pending))
        message = self._pending.pop(seq)
        for queue in self._droppable:  # seqs only grow: sent ones sit at the front
            while queue and queue[0] <= seq:
                queue.popleft()
        if len(self._slots) > 2 * len(self._pending) + 16:  # forget sent slots now and then
            self._slots = {k: v for k, v in self._slots.items() if v in self._pending}
        return message

    async def pump(self) -> None:
        """Send pending messages until closed or the socket fails."""
        while not self._closed:
            await self._ready.wait()
            self._ready.clear()
            while self._pending and not self._closed:
                message = self._take()
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
