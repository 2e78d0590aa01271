"""Seed: a primitive node, the value of a widget converted to an input."""

from __future__ import annotations

from typing import Any

from graph.node import Node, Widget
from graph.types import IntValue


class Seed(Node):
    """One seed for several samplers: changing it re-runs them all, unchanged they stay cached."""

    CATEGORY = "primitive"
    OUTPUTS = {"value": IntValue}
    CONSTANT_OUTPUTS = {"value": "value"}
    value: int = Widget(0, ge=0, le=2**64 - 1, seed=True)

    def run(self, ctx: Any, value: int) -> dict[str, Any]:
        return {"value": value}
