"""Int: a primitive node, the value of a widget converted to an input."""

from __future__ import annotations

from typing import Any

from graph.node import Node, Widget
from graph.types import IntValue


class Int(Node):
    """An integer, shared by every widget it is linked to (steps of two samplers, a size)."""

    CATEGORY = "primitive"
    OUTPUTS = {"value": IntValue}
    CONSTANT_OUTPUTS = {"value": "value"}
    value: int = Widget(0, ge=-(2**63), le=2**64 - 1, step=1)

    def run(self, ctx: Any, value: int) -> dict[str, Any]:
        return {"value": value}
