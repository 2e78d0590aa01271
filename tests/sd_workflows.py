"""Helpers for the SD node tests: engines over the real nodes, the shipped workflows."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from graph import Engine, Registry, Workspace
from graph.context import Resources
from graph.workflow import parse_workflow

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"


def make_engine(tmp: Path, registry: Registry, resources: Resources | None = None) -> Engine:
    """An engine over ``registry`` in a fresh workspace under ``tmp`` (models in tmp/models)."""
    ws = Workspace.at(tmp / "data", models_dir=tmp / "models").ensure()
    return Engine(registry, ws, resources=resources)


TEST_CHECKPOINT = "builtin/tiny-random"


def workflow_doc(name: str, checkpoint: str = TEST_CHECKPOINT) -> dict[str, Any]:
    """A shipped workflow as a plain dict (a fresh copy each call), its LoadCheckpoint
    nodes pointed at ``checkpoint`` in fp32: the SD tests run on the seeded random
    built-in, whose components the fidelity tests rebuild for diffusers' fp32 pipelines
    (``auto`` would be bf16 on CPUs with native bf16)."""
    doc = json.loads((WORKFLOWS / f"{name}.json").read_text())
    for node in doc["nodes"].values():
        if node["type"] == "LoadCheckpoint":
            node["inputs"]["name"] = checkpoint
            node["inputs"]["dtype"] = "fp32"
    return doc


def with_inputs(doc: dict[str, Any], changes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A copy of ``doc`` with literal inputs replaced: {node_id: {input: value}}."""
    out = copy.deepcopy(doc)
    for nid, inputs in changes.items():
        out["nodes"][nid]["inputs"].update(inputs)
    return out


def run_ok(
    engine: Engine, doc: dict[str, Any], events: list | None = None, previews: bool = False
) -> Any:
    """Run a workflow document and insist that it succeeded."""
    result = engine.run(
        parse_workflow(doc),
        on_event=(events.append if events is not None else None),
        previews=previews,
    )
    assert result.status == "ok", result.error and result.error["traceback"]
    return result


def executed(result: Any) -> set[str]:
    return {nid for nid, rec in result.nodes.items() if rec.status == "executed"}


def output_pixels(engine: Engine, result: Any) -> list[np.ndarray]:
    """The uint8 pixels of every output PNG of a run."""
    out = []
    for f in result.files:
        path = engine.workspace.folder(f["kind"]) / f["name"]
        out.append(np.asarray(Image.open(path).convert("RGB")))
    return out
