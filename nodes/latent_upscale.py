"""LatentUpscale: a latent batch resized to a size in pixels (ComfyUI's LatentUpscale)."""

from __future__ import annotations

from typing import Any

from graph.cost import Cost, CostInputs
from graph.node import Node, Widget
from nodes.sd.handles import LatentBatch
from nodes.sd.latent_resize import VAE_FACTOR, resize_latent
from nodes.sd.resize import Crop, LatentMethod, keep_aspect, sized_cost
from nodes.types import Latent

LEAST = 64  # ComfyUI's smallest side in pixels


class LatentUpscale(Node):
    """Resize latents to width x height pixels (the latent gets width // 8 x height // 8
    cells), e.g. for a hires-fix second pass. 0 on one side keeps the aspect, 0 on both
    passes the latent through; center crop trims to the new aspect first. Same numbers as
    ComfyUI for nearest-exact, bilinear, area and bicubic (`nodes/sd/resize.py`)."""

    CATEGORY = "latent"
    OUTPUTS = {"latent": Latent}
    latent: Latent
    upscale_method: LatentMethod = "nearest-exact"
    width: int = Widget(1024, ge=0, le=16384, step=8)
    height: int = Widget(1024, ge=0, le=16384, step=8)
    crop: Crop = "disabled"

    @classmethod
    def cost(cls, inputs: CostInputs) -> Cost:
        return sized_cost(inputs, "latent", LEAST)

    def run(
        self,
        ctx: Any,
        latent: LatentBatch,
        upscale_method: str,
        width: int,
        height: int,
        crop: str,
    ) -> dict[str, Any]:
        if width == 0 and height == 0:
            return {"latent": latent}
        old_h, old_w = latent.samples.shape[-2:]
        w, h = keep_aspect(width, height, old_w * VAE_FACTOR, old_h * VAE_FACTOR, LEAST)
        cells = (w // VAE_FACTOR, h // VAE_FACTOR)
        return {"latent": resize_latent(latent, *cells, upscale_method, crop)}
