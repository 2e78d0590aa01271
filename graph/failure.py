"""The error record of a failed node or job, built in one place.

The executor (a node raised), the worker (a job could not start), the queue (the
worker broke, a job timed out) and the store (a job cut off by a restart) all
report failures with the same keys, so clients read every error the same way."""

from __future__ import annotations

import traceback as tb
from typing import Any

KEYS = ("node_id", "node_type", "error_type", "message", "traceback", "inputs")


def failure(
    exc: BaseException | None = None,
    *,
    error_type: str | None = None,
    message: str | None = None,
    node_id: str | None = None,
    node_type: str | None = None,
    inputs: dict[str, Any] | None = None,
    with_traceback: bool = True,
) -> dict[str, Any]:
    """``{node_id, node_type, error_type, message, traceback, inputs}`` for an exception
    (type, message and traceback from it) or for a failure named by ``error_type``."""
    if exc is None and error_type is None:
        raise ValueError("a failure needs an exception or an error_type")
    kind = error_type or type(exc).__name__
    trace = "".join(tb.format_exception(exc)) if exc is not None and with_traceback else ""
    return {
        "node_id": node_id,
        "node_type": node_type,
        "error_type": kind,
        "message": message or (str(exc) if exc is not None else "") or kind,
        "traceback": trace,
        "inputs": dict(inputs or {}),
    }
