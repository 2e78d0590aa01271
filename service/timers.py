"""One thread for every per-job timer (job deadlines, interrupt grace periods).

A ``threading.Timer`` per job started a thread on every job's path, which a fully
cached job (about a millisecond of work) felt; this keeps a heap of due times
and runs what is due, in order, on one long-lived daemon thread."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
COMPACT_AT = 1024  # cancelled calls kept in the heap before it is rebuilt without them


class Timer:
    """A pending call; ``cancel`` before it is due and it never runs."""

    def __init__(self, fn: Callable[[], None], owner: Timers | None = None) -> None:
        self.fn = fn
        self.cancelled = False
        self._owner = owner

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            if self._owner is not None:
                self._owner._cancelled += 1


class Timers:
    def __init__(self, name: str = "timers") -> None:
        self._name = name
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._cancelled = 0  # cancelled calls still in the heap (a hint: not locked)

    def call_later(self, seconds: float, fn: Callable[[], None]) -> Timer:
        """Run ``fn`` on the timer thread in ``seconds``. The thread is woken only when
        the new call is due first: a job's hour-long deadline, set and cancelled on
        every job, leaves it asleep (waking it cost a thread switch per job)."""
        timer = Timer(fn, self)
        entry = (time.monotonic() + seconds, next(self._order), timer)
        with self._cond:
            if self._cancelled > COMPACT_AT and 2 * self._cancelled > len(self._heap):
                self._heap = [e for e in self._heap if not e[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            if self._heap[0] is entry:
                self._cond.notify()
        return timer

    def close(self) -> None:
        """Drop what is pending; the thread ends."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    while self._heap and self._heap[0][2].cancelled:
                        heapq.heappop(self._heap)  # cancelled ones go without waiting
                        self._cancelled = max(0, self._cancelled - 1)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._closed:
                    return
                timer = heapq.heappop(self._heap)[2]
            try:
                timer.fn()
            except Exception:
                log.exception("a timer failed")
