"""Loading the engine behind an open socket: the server answers at once.

Importing torch, diffusers and the node types takes seconds; the socket opens first
and serves the canvas, ``/api/status`` (which says the engine is loading) and
``/api/clients``, while a background thread builds the engine. Every other API request
waits for it (up to ``config.engine_wait``) and then runs, or gets 503 ``engine_loading``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from graph.executor import Engine
from service.errors import ApiError
from service.worker import Worker

log = logging.getLogger(__name__)

# answered while the engine loads; everything else under /api/ waits for it
NO_ENGINE_PATHS = frozenset({"/api/status", "/api/clients"})

Build = Callable[[], tuple[Engine, Worker]]


class EngineLoad:
    """The state of the background load: running, ready, or failed with a message."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.seconds: float | None = None
        self.error: str | None = None
        self._done = asyncio.Event()
        self._abandoned = False

    @property
    def ready(self) -> bool:
        return self._done.is_set() and self.error is None

    def describe(self) -> dict[str, Any]:
        if self.error is not None:
            return {"state": "failed", "error": self.error}
        if self._done.is_set():
            return {"state": "ready", "load_seconds": round(self.seconds or 0.0, 3)}
        return {
            "state": "loading",
            "seconds": round(time.monotonic() - self.started, 3),
            "message": "importing torch, diffusers and the node types",
        }

    def start(self, build: Build, on_ready: Callable[[Engine, Worker], None]) -> None:
        """Build in a daemon thread; ``on_ready`` runs on the event loop afterwards."""
        loop = asyncio.get_running_loop()

        def finish(result: tuple[Engine, Worker] | None, error: str | None) -> None:
            self.seconds = time.monotonic() - self.started
            if self._abandoned:  # the server stopped while loading
                return
            if result is not None:
                try:
                    on_ready(*result)
                except Exception as exc:  # noqa: BLE001 - reported through status
                    error = f"{type(exc).__name__}: {exc}"
            self.error = error
            if error:
                log.error("the engine failed to load: %s", error)
            else:
                log.info("engine ready after %.2f s", self.seconds)
            self._done.set()

        def work() -> None:
            try:
                result, error = build(), None
            except Exception as exc:  # noqa: BLE001 - a broken node package, reported
                result, error = None, f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(finish, result, error)

        threading.Thread(target=work, name="engine-load", daemon=True).start()

    def abandon(self) -> None:
        """The server is stopping: a load that finishes later starts nothing."""
        self._abandoned = True

    def mark_ready(self) -> None:
        """An engine that was given, not loaded."""
        self.seconds = 0.0
        self._done.set()

    async def wait(self, timeout: float) -> None:
        """Return once the engine is ready; ApiError 503 when it failed or is still loading."""
        if not self._done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), timeout)
        if self.error is not None:
            raise ApiError(503, "engine_failed", f"the engine failed to load: {self.error}")
        if not self._done.is_set():
            raise ApiError(
                503,
                "engine_loading",
                "the engine is still loading (torch, diffusers, node types); retry shortly",
            )


def make_engine_gate(load: EngineLoad, timeout: float) -> Callable[..., Awaitable[Any]]:
    """Middleware: API requests other than NO_ENGINE_PATHS wait for the engine."""

    @web.middleware
    async def engine_gate(request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if not load.ready and path.startswith("/api/") and path not in NO_ENGINE_PATHS:
            await load.wait(timeout)
        return await handler(request)  # type: ignore[no-any-return]

    return engine_gate
