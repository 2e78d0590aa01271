"""Query values read in one place, so a malformed or out-of-range value is a 400,
never an exception deeper down (SQLite cannot bind an integer over 64 bits)."""

from __future__ import annotations

from aiohttp import web

from service.errors import ApiError

INT64_MAX = 2**63 - 1


def query_int(
    request: web.Request,
    name: str,
    default: int | None,
    lo: int = 0,
    hi: int = INT64_MAX,
    clamp: bool = False,
) -> int | None:
    """The integer query value ``name`` (``default`` when absent or empty); out of
    [lo, hi] it is clamped when ``clamp``, else refused."""
    raw = request.query.get(name, "")
    if raw == "":
        return default
    refused = ApiError(400, "bad_query", f"{name} must be an integer from {lo} to {hi}")
    try:
        value = int(raw) if len(raw) <= 40 else None  # no 4,000-digit parses
    except ValueError:
        value = None
    if value is None:
        raise refused
    if lo <= value <= hi:
        return value
    if clamp:
        return min(max(value, lo), hi)
    raise refused
