"""Calls from worker threads onto the event loop, many per wake-up.

``loop.call_soon_threadsafe`` writes to the loop's self-pipe on every call: a job
sends several messages in a burst, and each write woke the loop thread, which
then had to win the interpreter lock from the job's thread (on a busy 2-core
machine, a context switch each). Here calls queue up in order and the loop is
woken once for all that arrived before it got to run them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class LoopMailbox:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Thread-safe: run ``fn(*args)`` on the loop, after every call queued before it."""
        with self._lock:
            self._calls.append((fn, args))
            if self._scheduled:
                return
            self._scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, deque()
            self._scheduled = False
        for fn, args in calls:
            try:
                fn(*args)
            except Exception:  # one bad call must not drop the others
                log.exception("a call on the event loop failed")
