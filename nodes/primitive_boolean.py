"""Boolean: a primitive node, the value of a widget converted to an input."""

from __future__ import annotations

from typing import Any

from graph.node import Node
from graph.types import BooleanValue


class Boolean(Node):
    """A yes/no value, shared by every widget it is linked to."""

    CATEGORY = "primitive"
    OUTPUTS = {"value": BooleanValue}
    CONSTANT_OUTPUTS = {"value": "value"}
    value: bool = False

    def run(self, ctx: Any, value: bool) -> dict[str, Any]:
        return {"value": value}
