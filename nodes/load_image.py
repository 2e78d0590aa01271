"""LoadImage: an image file from the workspace's input folder."""

from __future__ import annotations

import hashlib
from typing import Any

from graph.cost import Cost, CostInputs
from graph.node import Choice, Node
from graph.registry import choice_source
from graph.workspace import Workspace, open_regular
from nodes.sd.images import image_size, list_images, load_image
from nodes.types import Image


@choice_source("input_images")
def input_images(workspace: Workspace) -> list[str]:
    """Image files of the input folder (subfolders included), sorted."""
    return list_images(workspace.input_dir)


class LoadImage(Node):
    """Load an image from the input folder as an RGB IMAGE (size-capped)."""

    CATEGORY = "image"
    OUTPUTS = {"image": Image}
    file: str = Choice("input_images")

    @classmethod
    def cost(cls, inputs: CostInputs) -> Cost:
        """The file's size from its header: an uploaded image counts like an empty latent."""
        if inputs.workspace is None:
            return Cost(outputs={"image": 0})
        w, h = image_size(inputs.workspace.file("input", inputs.values["file"]))
        return Cost(pixels=w * h, outputs={"image": w * h}, pixels_field="file")

    @classmethod
    def fingerprint(cls, workspace: Workspace, inputs: dict[str, Any]) -> str | None:
        """The file's content hash: replacing the file under the same name re-runs the node."""
        digest = hashlib.sha256()
        with open_regular(workspace.file("input", inputs["file"])) as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def run(self, ctx: Any, file: str) -> dict[str, Any]:
        return {"image": load_image(ctx.workspace.file("input", file))}
