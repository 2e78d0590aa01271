"""Test nodes that hold pretend models in the engine's model store and run out of
memory (pure Python, no torch)."""

from __future__ import annotations

from typing import Any, Literal

from graph import Node, RunContext, Widget
from tests.engine_nodes.types import Number


class FakeModel(Node):
    """Holds ``nbytes`` of pretend weights in the model store, like a checkpoint loader
    (not cached, so every run uses its model)."""

    CATEGORY = "test"
    CACHEABLE = False
    OUTPUTS = {"value": Number}
    name: str = "model"
    nbytes: int = Widget(1000, ge=0, le=2**40)

    def run(self, ctx: RunContext, name: str, nbytes: int) -> dict[str, Any]:
        store, key = ctx.resources.models, ("fake", name)
        store.acquire(key, lambda: store.put(key, f"weights of {name}", nbytes, "cpu", name))
        return {"value": float(nbytes)}


class OutOfMemory(Node):
    """Fails as Python (MemoryError) or torch's CPU allocator (RuntimeError) report it."""

    CATEGORY = "test"
    OUTPUTS = {"value": Number}
    x: Number
    kind: Literal["python", "cpu"] = "python"

    def run(self, ctx: RunContext, x: float, kind: str) -> dict[str, Any]:
        if kind == "python":
            raise MemoryError()
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
            "memory: you tried to allocate 2305843009213693952 bytes. Error code 12"
        )
