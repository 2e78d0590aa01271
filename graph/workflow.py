"""The workflow file format, shared by the canvas, the CLI and the server.

A link is always the object ``{"node": ID, "output": NAME}``; any other value
is a literal. The ``ui`` block belongs to the canvas and is ignored here. A node's
``mode`` (normal, bypass, mute) changes what runs, so it lives in the node entry
(graph/modes.py applies it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer

from graph import jsondoc
from graph.pngmeta import PngTextError, read_png_text

FORMAT_VERSION = 1


class Link(BaseModel):
    """A reference to one output of another node."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    node: str
    output: str


class NodeEntry(BaseModel):
    """One node of a workflow: its type and its inputs (literals or links)."""

    model_config = ConfigDict(extra="forbid")
    type: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    version: int | None = Field(default=None, ge=1)  # the node's VERSION when saved
    # bypass: outputs pass a same-type input through; mute: skipped (graph/modes.py)
    mode: Literal["normal", "bypass", "mute"] = "normal"

    @model_serializer(mode="wrap")
    def _omit_normal_mode(self, handler: Any) -> dict[str, Any]:
        """Written only when it is not normal: files stay as they were before modes."""
        data = handler(self)
        if data.get("mode") == "normal":
            del data["mode"]
        return data


class ModelRef(BaseModel):
    """The identity of a model file a node names, recorded when the workflow is saved, so
    another machine can find the same file under any name (``models`` section, keyed by
    ``NODE.INPUT``)."""

    model_config = ConfigDict(extra="forbid")
    kind: str | None = None  # the models sub-folder: checkpoints, loras, vae, ...
    name: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    size: int | None = Field(default=None, ge=0)
    autov2: str | None = Field(default=None, pattern=r"^[0-9a-f]{10}$")
    family: str | None = None  # sd1, sdxl, lora-sdxl, ...: what a replacement must be
    # A1111's "Lora hashes": kohya's sha256 of a .safetensors file's tensor data (after the
    # header), short; for other files the sha256 of the whole file
    addnet: str | None = Field(default=None, pattern=r"^[0-9a-f]{8,64}$")


class Workflow(BaseModel):
    """A whole workflow file."""

    model_config = ConfigDict(extra="forbid")
    version: Literal[1] = 1
    nodes: dict[str, NodeEntry]
    models: dict[str, ModelRef] | None = None
    ui: dict[str, Any] | None = None


class WorkflowFormatError(ValueError):
    """The document is not a workflow at all (wrong shape or version)."""


def as_link(value: Any) -> tuple[str, str] | None:
    """(node, output) when ``value`` is a link object, else None."""
    if (
        type(value) is dict
        and len(value) == 2
        and type(value.get("node")) is str
        and type(value.get("output")) is str
    ):
        return value["node"], value["output"]
    return None


def parse_workflow(data: Any) -> Workflow:
    """Parse a decoded JSON document, with a readable error for an unknown version.
    Documents deeper or with longer integers than `graph.jsondoc` allows are refused
    here too, whatever their source."""
    try:
        jsondoc.check(data)
    except jsondoc.DocumentTooComplex as exc:
        raise WorkflowFormatError(f"not a valid workflow: {exc}") from None
    if isinstance(data, dict) and "version" in data and data["version"] != FORMAT_VERSION:
        raise WorkflowFormatError(
            f"unsupported workflow version {data['version']!r}; this engine reads version "
            f"{FORMAT_VERSION}"
        )
    try:
        return Workflow.model_validate(data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(document)"
            parts.append(f"{where}: {err['msg']}")
        raise WorkflowFormatError("not a valid workflow: " + "; ".join(parts)) from None


def load_workflow_file(path: str | Path) -> Workflow:
    """Read a workflow from a JSON file, or from a PNG that embeds one."""
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        try:
            text = read_png_text(raw, keys=("workflow",)).get("workflow")
        except PngTextError as exc:
            raise WorkflowFormatError(f"{path}: {exc}") from None
        if text is None:
            raise WorkflowFormatError(f"{path}: this PNG carries no embedded workflow")
    else:
        text = raw
    try:
        data = jsondoc.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkflowFormatError(f"{path}: malformed JSON: {exc}") from None
    except jsondoc.DocumentTooComplex as exc:
        raise WorkflowFormatError(f"{path}: {exc}") from None
    return parse_workflow(data)


def workflow_json_schema() -> dict[str, Any]:
    """JSON Schema of the file format (``run.py --schema``)."""
    return Workflow.model_json_schema()
