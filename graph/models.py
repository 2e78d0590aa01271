"""The model store: every loaded model component, within a byte budget per device.

Loaded models are by far the largest thing a long-lived engine holds, so one store per
engine owns all of them: entries keyed by whatever identifies a component (file identity,
part, dtype, device), each with its size and device. When a device's budget would be
exceeded, the least recently used entries that the running job does not use (unpinned) go.
Values that outlive a job (cached node outputs) hold a `ComponentRef` (key + how to load
it again) instead of the model, so an evicted model is really freed and comes back on use.

No torch here: callers measure bytes and name devices (nodes/sd/model_store.py does it
for torch modules).
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from graph.memory import default_ram_budget


@dataclass
class ModelEntry:
    key: Hashable
    value: Any
    nbytes: int
    device: str
    label: str
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self, pinned: bool = False) -> dict[str, Any]:
        return {
            "name": self.label,
            **self.info,
            "device": self.device,
            "bytes": self.nbytes,
            "pinned": pinned,
        }


@dataclass
class ModelReport:
    """What one job loaded and evicted (in order), for run summaries."""

    loaded: list[dict[str, Any]] = field(default_factory=list)
    evicted: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"loaded": list(self.loaded), "evicted": list(self.evicted)}


class ComponentRef:
    """A way to a stored component that does not keep it alive: the key, and a loader
    that puts it back into the store when it was evicted."""

    __slots__ = ("key", "loader", "store")

    def __init__(self, store: ModelStore, key: Hashable, loader: Callable[[], Any]) -> None:
        self.store = store
        self.key = key
        self.loader = loader

    def get(self) -> Any:
        return self.store.acquire(self.key, self.loader)

    def __repr__(self) -> str:
        return f"ComponentRef({self.key!r})"


def resolve(value: Any) -> Any:
    """The component behind a `ComponentRef` (loaded again if evicted); anything else as is."""
    return value.get() if isinstance(value, ComponentRef) else value


class ModelStore:
    """Loaded components, least recently used first, within a byte budget per device.

    ``budgets`` maps a device (``"cpu"``, ``"cuda:1"``) or device type (``"cuda"``) to
    bytes; a device without one is unbounded until a default is set for it
    (`set_default_budget`, done by the code that first places something there). Entries
    used inside `job()` are pinned until it ends; only unpinned entries are evicted, so a
    job that needs more than the budget still runs (the store is over budget until it
    ends, then shrinks back)."""

    def __init__(self, budgets: Mapping[str, int] | None = None) -> None:
        self._budgets: dict[str, int] = {"cpu": default_ram_budget(), **(budgets or {})}
        self._entries: OrderedDict[Hashable, ModelEntry] = OrderedDict()
        self._pinned: set[Hashable] = set()
        self._depth = 0
        self._report: ModelReport | None = None
        self._release_hooks: list[Callable[[], None]] = []
        self._lock = threading.RLock()

    # -- budgets ----------------------------------------------------------------
    def budget(self, device: str) -> int | None:
        with self._lock:
            found = self._budgets.get(device)
            return found if found is not None else self._budgets.get(device.split(":")[0])

    def set_default_budget(self, device: str, nbytes: int | None) -> None:
        """Use ``nbytes`` for ``device`` unless a budget for it (or its type) was given."""
        with self._lock:
            if nbytes is not None and self.budget(device) is None:
                self._budgets[device] = int(nbytes)

    def add_release_hook(self, hook: Callable[[], None]) -> None:
        """Called after entries were evicted (e.g. to return freed GPU memory)."""
        with self._lock:
            if hook not in self._release_hooks:
                self._release_hooks.append(hook)

    # -- use ----------------------------------------------------------------------
    def get(self, key: Hashable) -> Any | None:
        """The value (marked as just used, pinned inside a job), or None when not held."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            if self._depth:
                self._pinned.add(key)
            return entry.value

    def peek(self, key: Hashable) -> Any | None:
        """The value without marking it used (for inspection), or None."""
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else entry.value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def acquire(self, key: Hashable, loader: Callable[[], Any]) -> Any:
        """The value of ``key``; when not held, ``loader()`` must `put` it first."""
        value = self.get(key)
        if value is None:
            with self.job():  # pins what the loader puts until we hand it out
                loader()
                value = self.get(key)
        if value is None:
            raise KeyError(f"loading did not store the model component {key!r}")
        return value

    def make_room(self, device: str, nbytes: int) -> None:
        """Evict unpinned entries on ``device`` until ``nbytes`` more would fit."""
        self._evict(device, nbytes)

    def put(
        self, key: Hashable, value: Any, nbytes: int, device: str, label: str, **info: Any
    ) -> Any:
        """Hold ``value`` (``nbytes`` on ``device``); returns it. Older unpinned entries on
        the device go when the budget is exceeded."""
        entry = ModelEntry(key, value, int(nbytes), device, label, info)
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = entry
            if self._depth:
                self._pinned.add(key)
            if self._report is not None:
                self._report.loaded.append(entry.to_json())
        self._evict(device, 0)
        return value

    def drop(self, predicate: Callable[[Hashable], bool]) -> list[dict[str, Any]]:
        """Forget every entry whose key matches (e.g. an older version of a file)."""
        with self._lock:
            gone = [e for k, e in self._entries.items() if predicate(k)]
            self._forget(gone)
            report = [e.to_json() for e in gone]
        self._released(gone)
        return report

    def free_memory(self) -> list[dict[str, Any]]:
        """Evict every entry the running job does not use; returns what went."""
        with self._lock:
            gone = [e for k, e in self._entries.items() if k not in self._pinned]
            self._forget(gone)
            report = [e.to_json() for e in gone]
        self._released(gone, collect=True)
        return report

    @contextmanager
    def job(self) -> Iterator[ModelReport]:
        """Pin what is used until the outermost job ends, then shrink to the budgets."""
        with self._lock:
            self._depth += 1
            if self._depth == 1:
                self._report = ModelReport()
            report = self._report
        assert report is not None
        try:
            yield report
        finally:
            with self._lock:
                self._depth -= 1
                outer = self._depth == 0
                if outer:
                    self._pinned.clear()
                    devices = {e.device for e in self._entries.values()}
            if outer:
                for device in sorted(devices):
                    self._evict(device, 0)
                with self._lock:
                    if self._depth == 0:
                        self._report = None

    # -- what is held ---------------------------------------------------------------
    def entries(self) -> list[dict[str, Any]]:
        """Held components, least recently used first."""
        with self._lock:
            return [e.to_json(k in self._pinned) for k, e in self._entries.items()]

    def used(self, device: str) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._entries.values() if e.device == device)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            devices = sorted({e.device for e in self._entries.values()} | set(self._budgets))
            return {
                "budgets": dict(sorted(self._budgets.items())),
                "used": {d: self.used(d) for d in devices if self.used(d)},
                "loaded": self.entries(),
            }

    # -- internals ------------------------------------------------------------------
    def _evict(self, device: str, extra: int) -> None:
        with self._lock:
            budget = self.budget(device)
            if budget is None:
                return
            used = self.used(device)
            gone: list[ModelEntry] = []
            for key, entry in self._entries.items():
                if used + extra <= budget:
                    break
                if entry.device == device and key not in self._pinned:
                    gone.append(entry)
                    used -= entry.nbytes
            self._forget(gone)
        self._released(gone)

    def _forget(self, gone: list[ModelEntry]) -> None:
        for entry in gone:
            del self._entries[entry.key]
            self._pinned.discard(entry.key)
            if self._report is not None:
                self._report.evicted.append(entry.to_json())

    def _released(self, gone: list[ModelEntry], collect: bool = False) -> None:
        """After evicting: reference counting frees the modules (measured: torch and
        diffusers modules hold no cycles); a full collection (0.6 s with diffusers
        loaded) only on an explicit release, where cycles of a failed job may remain."""
        if not gone and not collect:
            return
        gone.clear()  # drop our last references first
        if collect:
            gc.collect()
        for hook in list(self._release_hooks):
            hook()
