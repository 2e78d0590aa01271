"""Run a call that might block forever (reading a FIFO) without hanging the test."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def outcome_within(fn: Callable[[], Any], seconds: float = 5.0) -> BaseException | None:
    """The exception ``fn`` raised (None if it returned); fails the test if ``fn`` was
    still running after ``seconds`` (its daemon thread is left behind)."""
    out: list[BaseException | None] = []

    def target() -> None:
        try:
            fn()
            out.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            out.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert out, f"still blocked after {seconds} s"
    return out[0]
