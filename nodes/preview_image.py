"""PreviewImage: temporary PNGs for looking at an intermediate image."""

from __future__ import annotations

from typing import Any

import torch

from graph.node import Node
from nodes.save_image import write_images
from nodes.types import Image


class PreviewImage(Node):
    """Show images without keeping them: PNGs in the temp folder (fast compression).

    Cacheable like every other node: an identical rerun reports the same temporary
    files, which stay valid for the life of the process (the server empties the temp
    folder when it starts, and then the cache is new too; `run.py` leaves it, since a
    server may be using the same data folder)."""

    CATEGORY = "image"
    OUTPUT_NODE = True
    OUTPUTS = {}
    image: Image

    def run(self, ctx: Any, image: torch.Tensor) -> dict[str, Any]:
        write_images(ctx, "temp", image, "preview", compress_level=1)
        return {}
