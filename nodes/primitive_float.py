"""Float: a primitive node, the value of a widget converted to an input."""

from __future__ import annotations

from typing import Any

from graph.node import Node, Widget
from graph.types import FloatValue


class Float(Node):
    """A decimal number, shared by every widget it is linked to (cfg, denoise)."""

    CATEGORY = "primitive"
    OUTPUTS = {"value": FloatValue}
    CONSTANT_OUTPUTS = {"value": "value"}
    value: float = Widget(1.0, step=0.01)

    def run(self, ctx: Any, value: float) -> dict[str, Any]:
        return {"value": value}
