from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

from graph import Choice, Node, RunContext, Widget, choice_source
from graph.workspace import Workspace
from tests.engine_nodes.types import Number, Text


class Format(Node):
    """A number as text."""

    CATEGORY = "text"
    OUTPUTS = {"text": Text}
    x: Number
    template: str = Widget("{}", max_length=200)

    def run(self, ctx: RunContext, x: float, template: str) -> dict[str, Any]:
        return {"text": template.format(x)}


class Join(Node):
    """Two texts joined by a separator."""

    CATEGORY = "text"
    OUTPUTS = {"text": Text}
    a: Text
    b: Text
    sep: str = Widget(" ", multiline=False)

    def run(self, ctx: RunContext, a: str, b: str, sep: str) -> dict[str, Any]:
        return {"text": a + sep + b}


class Fail(Node):
    """Raises, for error tests."""

    CATEGORY = "test"
    OUTPUTS = {"value": Number}
    x: Number
    message: str = "boom"

    def run(self, ctx: RunContext, x: float, message: str) -> dict[str, Any]:
        raise RuntimeError(message)


class Slow(Node):
    """Counts steps with progress; interruptible between steps."""

    CATEGORY = "test"
    OUTPUTS = {"value": Number}
    x: Number
    steps: int = Widget(5, ge=1, le=10_000)
    delay: float = Widget(0.01, ge=0, le=5)

    def run(self, ctx: RunContext, x: float, steps: int, delay: float) -> dict[str, Any]:
        for i in range(steps):
            time.sleep(delay)
            ctx.progress((i + 1) / steps, i + 1, steps)
        return {"value": x}


class Noise(Node):
    """A fresh random number every run: opts out of caching."""

    CATEGORY = "test"
    CACHEABLE = False
    OUTPUTS = {"value": Number}

    def run(self, ctx: RunContext) -> dict[str, Any]:
        return {"value": float(uuid.uuid4().int % 1000)}


@choice_source("notes")
def list_notes(workspace: Workspace) -> list[str]:
    folder = workspace.input_dir
    return sorted(p.name for p in folder.glob("*.txt")) if folder.is_dir() else []


class ReadNote(Node):
    """A text file from the input folder; its content hash joins the cache key."""

    CATEGORY = "text"
    OUTPUTS = {"text": Text}
    name: str = Choice("notes")

    @classmethod
    def fingerprint(cls, workspace: Workspace, inputs: dict[str, Any]) -> str | None:
        data = workspace.file("input", inputs["name"]).read_bytes()
        return hashlib.sha256(data).hexdigest()

    def run(self, ctx: RunContext, name: str) -> dict[str, Any]:
        return {"text": ctx.workspace.file("input", name).read_text()}


class Save(Node):
    """Writes its input to a new JSON file in the output folder."""

    CATEGORY = "output"
    OUTPUT_NODE = True
    value: Number | None = None
    text: Text | None = None
    prefix: str = "result"

    def run(self, ctx: RunContext, prefix: str, value: Any = None, text: Any = None) -> dict:
        folder = ctx.workspace.output_dir
        folder.mkdir(parents=True, exist_ok=True)
        n = len(list(folder.glob(f"{prefix}_*.json"))) + 1
        path = folder / f"{prefix}_{n:05d}.json"
        path.write_text(json.dumps({"value": value, "text": text}))
        ctx.record_file("output", path)
        return {}


class Sink(Node):
    """An output node that keeps nothing (for benchmarks and pruning tests)."""

    CATEGORY = "output"
    OUTPUT_NODE = True
    value: Number

    def run(self, ctx: RunContext, value: float) -> dict[str, Any]:
        return {}
