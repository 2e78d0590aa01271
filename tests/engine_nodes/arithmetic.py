from __future__ import annotations

from typing import Any, Literal

from graph import Node, RunContext, Widget
from tests.engine_nodes.types import Integer, Number


class Const(Node):
    """A number."""

    CATEGORY = "math"
    OUTPUTS = {"value": Number}
    value: float = Widget(0.0, ge=-1e12, le=1e12)

    def run(self, ctx: RunContext, value: float) -> dict[str, Any]:
        return {"value": value}


class IntConst(Node):
    """An integer."""

    CATEGORY = "math"
    OUTPUTS = {"value": Integer}
    value: int = Widget(0, ge=-(2**31), le=2**31, step=1)

    def run(self, ctx: RunContext, value: int) -> dict[str, Any]:
        return {"value": value}


class Add(Node):
    """a + b (b optional)."""

    CATEGORY = "math"
    OUTPUTS = {"value": Number}
    a: Number
    b: Number | None = None

    def run(self, ctx: RunContext, a: float, b: float | None = None) -> dict[str, Any]:
        return {"value": a + (b or 0)}


class Scale(Node):
    """x times a factor, rounded one of two ways."""

    CATEGORY = "math"
    OUTPUTS = {"value": Number}
    x: Number
    factor: float = Widget(1.0, ge=-1000, le=1000)
    mode: Literal["exact", "floor"] = "exact"

    def run(self, ctx: RunContext, x: float, factor: float, mode: str) -> dict[str, Any]:
        v = x * factor
        return {"value": float(int(v)) if mode == "floor" else v}


class Sum(Node):
    """Sum of up to four numbers (a fan-in)."""

    CATEGORY = "math"
    OUTPUTS = {"value": Number}
    a: Number
    b: Number | None = None
    c: Number | None = None
    d: Number | None = None

    def run(self, ctx: RunContext, **xs: float | None) -> dict[str, Any]:
        return {"value": sum(v for v in xs.values() if v is not None)}
