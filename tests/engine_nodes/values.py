"""Test nodes around value links (widgets fed by primitive nodes)."""

from __future__ import annotations

from typing import Any

from graph import Node, RunContext, Widget
from graph.types import IntValue
from tests.engine_nodes.types import Text


class Length(Node):
    """The length of a text, as an INT: a value known only when it runs."""

    CATEGORY = "text"
    OUTPUTS = {"length": IntValue}
    text: Text

    def run(self, ctx: RunContext, text: str) -> dict[str, Any]:
        return {"length": len(text)}


class Digits(Node):
    """An integer up to 2^64-1 written out, to see it arrive unchanged."""

    CATEGORY = "text"
    OUTPUTS = {"text": Text}
    n: int = Widget(0, ge=0, le=2**64 - 1, seed=True)

    def run(self, ctx: RunContext, n: int) -> dict[str, Any]:
        return {"text": str(n)}


class Repeat(Node):
    """A text repeated 1 to 3 times (a narrow range for run-time checks)."""

    CATEGORY = "text"
    OUTPUTS = {"text": Text}
    text: Text
    times: int = Widget(1, ge=1, le=3)

    def run(self, ctx: RunContext, text: str, times: int) -> dict[str, Any]:
        return {"text": text * times}
