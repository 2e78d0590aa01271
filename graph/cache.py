"""The node-output cache: least-recently-used entries beyond a byte budget go.

Values are stored as they are (a GPU tensor stays on the GPU); their size is
estimated from ``nbytes`` (tensors, arrays) or a ``cache_nbytes()`` method.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

DEFAULT_BUDGET = 4 * 1024**3


def estimate_nbytes(value: Any, _depth: int = 0) -> int:
    """Approximate memory held by a node output (tensors by nbytes)."""
    if _depth > 8:
        return 0
    fn = getattr(value, "cache_nbytes", None)
    if callable(fn):
        return int(fn())
    n = getattr(value, "nbytes", None)
    if isinstance(n, int):
        return n
    if isinstance(value, dict):
        return sum(estimate_nbytes(v, _depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(estimate_nbytes(v, _depth + 1) for v in value)
    if isinstance(value, (bytes, str)):
        return sys.getsizeof(value)
    return 64


@dataclass
class CacheEntry:
    outputs: dict[str, Any]
    files: list[dict[str, str]]
    nbytes: int


class OutputCache:
    """Key -> outputs of one successful node run, LRU within ``budget`` bytes."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self.nbytes = 0
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> CacheEntry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, outputs: dict[str, Any], files: list[dict[str, str]]) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        size = estimate_nbytes(outputs)
        self._entries[key] = CacheEntry(outputs, files, size)
        self.nbytes += size
        self._evict()

    def _evict(self) -> None:
        while self.nbytes > self.budget and len(self._entries) > 1:
            _, entry = self._entries.popitem(last=False)
            self.nbytes -= entry.nbytes
        if self.nbytes > self.budget and self._entries:
            # a single entry bigger than the whole budget is not kept either
            _, entry = self._entries.popitem(last=False)
            self.nbytes -= entry.nbytes

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0
