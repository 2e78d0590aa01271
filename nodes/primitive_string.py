"""String: a primitive node, the value of a widget converted to an input."""

from __future__ import annotations

from typing import Any

from graph.node import Node, Widget
from graph.types import StringValue


class String(Node):
    """A text, shared by every widget it is linked to (one prompt for several encoders)."""

    CATEGORY = "primitive"
    OUTPUTS = {"value": StringValue}
    CONSTANT_OUTPUTS = {"value": "value"}
    value: str = Widget("", multiline=True, max_length=100_000)

    def run(self, ctx: Any, value: str) -> dict[str, Any]:
        return {"value": value}
