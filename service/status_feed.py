"""Queue status for every websocket client, coalesced.

Each queue change (a job queued, started, finished) asks for a status message;
building the snapshot (two queries) and sending it to every client on each change
made a job's cost grow with the number of clients connected. Requests that come
within ``interval`` of the last message fold into one sent at the end of it, built
then, so the latest state always arrives, at most ``interval`` late."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class StatusFeed:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        snapshot: Callable[[], dict[str, Any]],
        broadcast: Callable[[dict[str, Any]], None],
        post: Callable[..., None] | None = None,
        interval: float = 0.05,
    ) -> None:
        self.interval = interval
        self._loop = loop
        # how a request reaches the loop from any thread (e.g. a LoopMailbox's call)
        self._post = post or loop.call_soon_threadsafe
        self._snapshot = snapshot
        self._broadcast = broadcast
        self._lock = threading.Lock()
        self._pending = False
        self._closed = False
        self._last = float("-inf")

    def request(self) -> None:
        """Thread-safe: a status message will follow (one for many requests)."""
        with self._lock:
            if self._pending:
                return
            self._pending = True
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            self._post(self._schedule)

    def _schedule(self) -> None:
        wait = self._last + self.interval - self._loop.time()
        if wait > 0:
            self._loop.call_later(wait, self._send)
        else:
            self._send()

    def close(self) -> None:
        """No message from now on (the server is stopping)."""
        with self._lock:
            self._closed = True

    def _send(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._pending = False  # a change from now on asks for the next message
        self._last = self._loop.time()
        try:
            message = {"type": "status", **self._snapshot()}
        except Exception:
            log.exception("could not read the queue status")
            return
        self._broadcast(message)
