"""One bounded JSON reader for every document that comes from outside.

Python's ``json`` accepts what the rest of the program cannot handle: integers
of thousands of digits (``str()`` of one over 4300 digits raises), nesting
deep enough to exhaust the recursion limit while decoding, or to exceed
pydantic's serialization depth later. Every request body, websocket frame,
workflow file and PNG workflow chunk goes through `loads` (text) or `check`
(an already decoded value), which refuse such documents with `DocumentTooComplex`,
a ``ValueError`` that callers report as bad input.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64  # containers inside containers; real workflows use fewer than 10
MAX_INT_DIGITS = 100  # seeds are 20 digits; anything longer is not a number we use


class DocumentTooComplex(ValueError):
    """Valid JSON, but deeper or with longer integers than any document we accept."""


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise DocumentTooComplex(
            f"an integer of {digits} digits; at most {MAX_INT_DIGITS} are accepted"
        )
    return int(text)


def loads(text: str | bytes | bytearray) -> Any:
    """Decode JSON within the bounds; ``json.JSONDecodeError`` (or ``UnicodeDecodeError``)
    when malformed, `DocumentTooComplex` when out of bounds."""
    try:
        value = json.loads(text, parse_int=_parse_int)
    except RecursionError:
        raise DocumentTooComplex(f"the document is nested deeper than {MAX_DEPTH} levels") from None
    check(value)
    return value


def check(value: Any) -> None:
    """Refuse a decoded value nested deeper than `MAX_DEPTH` or holding an integer of
    more than `MAX_INT_DIGITS` digits (walked iteratively: no recursion to exhaust)."""
    limit = 10**MAX_INT_DIGITS
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            if type(item) is int and not -limit < item < limit:
                raise DocumentTooComplex(
                    f"an integer of more than {MAX_INT_DIGITS} digits; it is not accepted"
                )
            continue
        if depth >= MAX_DEPTH:
            raise DocumentTooComplex(f"the document is nested deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)
