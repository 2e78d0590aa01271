"""ImageScale: images resized to a size in pixels (ComfyUI's ImageScale)."""

from __future__ import annotations

from typing import Any

import torch

from graph.cost import Cost, CostInputs
from graph.node import Node, Widget
from nodes.sd.resize import Crop, ImageMethod, keep_aspect, resize, sized_cost
from nodes.types import Image


class ImageScale(Node):
    """Resize images to width x height. 0 on one side keeps the aspect, 0 on both passes
    the image through; center crop trims to the new aspect first. Same numbers as ComfyUI
    (torch interpolate; lanczos through PIL on 8-bit pixels)."""

    CATEGORY = "image"
    OUTPUTS = {"image": Image}
    image: Image
    upscale_method: ImageMethod = "nearest-exact"
    width: int = Widget(512, ge=0, le=16384)
    height: int = Widget(512, ge=0, le=16384)
    crop: Crop = "disabled"

    @classmethod
    def cost(cls, inputs: CostInputs) -> Cost:
        return sized_cost(inputs, "image", 1)

    def run(
        self,
        ctx: Any,
        image: torch.Tensor,
        upscale_method: str,
        width: int,
        height: int,
        crop: str,
    ) -> dict[str, Any]:
        if width == 0 and height == 0:
            return {"image": image}
        w, h = keep_aspect(width, height, image.shape[2], image.shape[1], 1)
        nchw = image.movedim(-1, 1)
        out = resize(nchw, w, h, upscale_method, crop)
        return {"image": out.movedim(1, -1).contiguous()}
