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
import re
from typing import Any

MAX_DEPTH = 64  # containers inside containers; real workflows use fewer than 10
MAX_INT_DIGITS = 100  # seeds are 20 digits; anything longer is not a number we use
_LIMIT = 10**MAX_INT_DIGITS
_LONG_DIGITS = re.compile(r"[0-9]{" + str(MAX_INT_DIGITS + 1) + ",}")


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
    if isinstance(text, bytes | bytearray):
        text = text.decode(json.detect_encoding(text), "surrogatepass")  # as json.loads does
    # The per-integer hook costs a Python call per number: only when a long run of
    # digits (perhaps inside a string) makes it necessary.
    hook = _parse_int if _LONG_DIGITS.search(text) else None
    try:
        value = json.loads(text, parse_int=hook)
    except RecursionError:
        raise DocumentTooComplex(f"the document is nested deeper than {MAX_DEPTH} levels") from None
    if text.count("[") + text.count("{") > MAX_DEPTH:  # else it cannot be too deep
        check(value)
    return value


def check(value: Any) -> None:
    """Refuse a decoded value nested deeper than `MAX_DEPTH` or holding an integer of
    more than `MAX_INT_DIGITS` digits (walked level by level: no recursion to exhaust)."""
    level = [value]
    depth = 0
    while level:
        deeper: list[Any] = []
        for item in level:
            kind = type(item)
            if kind is dict:
                deeper.extend(item.values())
            elif kind is list or kind is tuple:
                deeper.extend(item)
            elif kind is int and not -_LIMIT < item < _LIMIT:
                raise DocumentTooComplex(
                    f"an integer of more than {MAX_INT_DIGITS} digits; it is not accepted"
                )
            else:
                continue
            if depth >= MAX_DEPTH:
                raise DocumentTooComplex(f"the document is nested deeper than {MAX_DEPTH} levels")
        level = deeper
        depth += 1
