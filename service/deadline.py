"""A wall-clock limit per job (``--job-timeout``).

Past the limit the job is interrupted through the worker (its cancel token: nodes
stop at their next check, between nodes and every sampler step) and recorded as
failed with error_type ``timeout``. A node stuck where it never checks (blocking
I/O in a library call) cannot be stopped in-process; a process worker pool can
replace the worker from ``on_expiry`` after a grace period instead."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType

from graph.failure import failure
from service.timers import Timer, Timers
from service.worker import JobOutcome


class JobDeadline:
    """Calls ``on_expiry`` once if the ``with`` block runs past ``seconds`` (None: never)."""

    def __init__(
        self, seconds: float | None, on_expiry: Callable[[], None], timers: Timers | None = None
    ) -> None:
        self.seconds = seconds
        self.expired = False
        self._on_expiry = on_expiry
        self._timers = timers  # shared (the dispatcher's); None: a thread of its own
        self._timer: threading.Timer | Timer | None = None

    def _expire(self) -> None:
        self.expired = True
        self._on_expiry()

    def __enter__(self) -> JobDeadline:
        if self.seconds and self._timers is not None:
            self._timer = self._timers.call_later(self.seconds, self._expire)
        elif self.seconds:
            timer = threading.Timer(self.seconds, self._expire)
            timer.daemon = True
            timer.start()
            self._timer = timer
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def outcome(self, outcome: JobOutcome) -> JobOutcome:
        """A job stopped by this deadline failed with a ``timeout`` error; any other
        outcome (it finished or failed on its own first) stands."""
        if not self.expired or outcome.status != "interrupted":
            return outcome
        error = failure(
            error_type="timeout",
            message=f"the job ran longer than the server's --job-timeout of {self.seconds:g} s "
            "and was stopped",
        )
        return replace(outcome, status="error", error=error)
