"""SaveImage: PNG files in the output folder, with the workflow embedded."""

from __future__ import annotations

import json
from typing import Any

import torch

from graph.node import Node, Widget
from model_index import complete_models, index_for
from nodes.sd.images import save_png, to_pil
from nodes.sd.parameters import describe
from nodes.types import Image


def write_images(
    ctx: Any, kind: str, images: torch.Tensor, prefix: str, compress_level: int
) -> None:
    """One PNG per batch item, each carrying the ``workflow`` (with each model file's
    sha256 and size) and ``parameters`` chunks."""
    doc = complete_models(ctx.workflow, index_for(ctx.workspace))
    workflow = json.dumps(doc, separators=(",", ":"))
    for image in to_pil(images):
        text = {
            "workflow": workflow,
            "parameters": describe(ctx.workflow, ctx.node_id, image.width, image.height),
        }
        path = save_png(ctx.workspace, kind, prefix, image, text, compress_level)
        ctx.record_file(kind, path)


class SaveImage(Node):
    """Save images as numbered PNGs (never overwriting); the workflow rides along."""

    CATEGORY = "image"
    OUTPUT_NODE = True
    OUTPUTS = {}
    image: Image
    filename_prefix: str = Widget("image", max_length=200)

    def run(self, ctx: Any, image: torch.Tensor, filename_prefix: str) -> dict[str, Any]:
        write_images(ctx, "output", image, filename_prefix, compress_level=4)
        return {}
