"""Tell the formats apart and hand each to its converter."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph import jsondoc
from graph.pngmeta import read_png_text
from graph.workflow import Workflow, WorkflowFormatError, parse_workflow
from importers.a1111 import convert_parameters, looks_like_parameters
from importers.comfy_api import Layout, convert_api, looks_like_api
from importers.comfy_ui import convert_ui, looks_like_ui, viewport

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class ImportResult:
    """Our workflow, where it came from (sdgraph, comfyui-api, comfyui-ui, a1111) and
    notes for the user (what will differ)."""

    workflow: Workflow
    source: str
    warnings: list[str] = field(default_factory=list)


def import_document(data: Any, known_types: set[str] | None = None) -> ImportResult:
    """Our format as is; ComfyUI API or UI JSON converted. ``known_types`` (the registry's
    node types) refuses conversions that need nodes this engine lacks."""
    if looks_like_ui(data):
        prompt, layout = convert_ui(data)
        return _from_api(prompt, known_types, layout, viewport(data), "comfyui-ui")
    if looks_like_api(data):
        return _from_api(data, known_types, None, None, "comfyui-api")
    if isinstance(data, dict) and ("nodes" in data or "version" in data):
        return ImportResult(parse_workflow(data), "sdgraph")
    raise WorkflowFormatError(
        "not a workflow in a format this engine reads (sdgraph, ComfyUI API or UI JSON)"
    )


def _from_api(
    prompt: dict[str, Any],
    known_types: set[str] | None,
    layout: Layout | None,
    view: dict[str, float] | None,
    source: str,
) -> ImportResult:
    doc, warnings = convert_api(prompt, known_types, layout)
    if view and "ui" in doc:
        doc["ui"]["viewport"] = view
    return ImportResult(parse_workflow(doc), source, warnings)


def _json(text: str, what: str) -> Any:
    try:
        return jsondoc.loads(text)  # the bounded reader of every outside document
    except (json.JSONDecodeError, jsondoc.DocumentTooComplex) as exc:
        raise WorkflowFormatError(f"{what}: malformed JSON: {exc}") from None


def import_png_text(
    chunks: dict[str, str],
    known_types: set[str] | None = None,
    what: str = "this PNG",
) -> ImportResult:
    """From a PNG's text chunks: ours (``workflow``), ComfyUI (``prompt`` = what ran, plus
    ``workflow`` = its canvas, for the layout) or A1111 (``parameters``)."""
    ui = _json(chunks["workflow"], "the workflow chunk") if "workflow" in chunks else None
    if isinstance(ui, dict) and isinstance(ui.get("nodes"), dict):
        return ImportResult(parse_workflow(ui), "sdgraph")
    if "prompt" in chunks:
        prompt = _json(chunks["prompt"], "the prompt chunk")
        if looks_like_api(prompt):
            layout, view = None, None
            if ui is not None and looks_like_ui(ui):
                _, layout = convert_ui(ui)
                view = viewport(ui)
            return _from_api(prompt, known_types, layout, view, "comfyui-png")
    if ui is not None:
        return import_document(ui, known_types)
    params = chunks.get("parameters")
    if params and looks_like_parameters(params):
        doc, warnings = convert_parameters(params)
        return ImportResult(parse_workflow(doc), "a1111", warnings)
    raise WorkflowFormatError(f"{what}: no embedded workflow (sdgraph, ComfyUI or A1111)")


def import_bytes(
    raw: bytes,
    known_types: set[str] | None = None,
    what: str = "the file",
) -> ImportResult:
    """A file's bytes: a PNG with text chunks, or JSON text in any format we read."""
    if raw.startswith(PNG_MAGIC):
        try:
            chunks = read_png_text(raw)
        except Exception as exc:
            raise WorkflowFormatError(f"{what}: not a readable PNG ({exc})") from None
        return import_png_text(chunks, known_types, what=what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WorkflowFormatError(f"{what}: neither a PNG nor UTF-8 JSON text") from None
    if looks_like_parameters(text) and not text.lstrip().startswith("{"):
        doc, warnings = convert_parameters(text)
        return ImportResult(parse_workflow(doc), "a1111", warnings)
    return import_document(_json(text, what), known_types)


def import_file(path: str | Path, known_types: set[str] | None = None) -> ImportResult:
    """A workflow file of any format we read (OSError when it cannot be read)."""
    path = Path(path)
    return import_bytes(path.read_bytes(), known_types, str(path))
