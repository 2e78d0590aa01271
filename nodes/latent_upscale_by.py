"""LatentUpscaleBy: a latent batch scaled by a factor (ComfyUI's LatentUpscaleBy)."""

from __future__ import annotations

from typing import Any

from graph.cost import Cost, CostInputs
from graph.node import Node, Widget
from nodes.sd.handles import LatentBatch
from nodes.sd.latent_resize import resize_latent
from nodes.sd.resize import LatentMethod
from nodes.types import Latent


class LatentUpscaleBy(Node):
    """Scale latents by ``scale_by`` (each side rounded to whole latent cells), as the
    hires fix of A1111 does with its latent upscalers. Same numbers as ComfyUI for
    nearest-exact, bilinear, area and bicubic (`nodes/sd/resize.py`)."""

    CATEGORY = "latent"
    OUTPUTS = {"latent": Latent}
    latent: Latent
    upscale_method: LatentMethod = "nearest-exact"
    scale_by: float = Widget(1.5, ge=0.01, le=8.0, step=0.01)

    @classmethod
    def cost(cls, inputs: CostInputs) -> Cost:
        """The pixels arriving, times the factor squared."""
        pixels = round(inputs.linked_pixels("latent") * inputs.values["scale_by"] ** 2)
        return Cost(pixels=pixels, outputs={"latent": pixels}, pixels_field="scale_by")

    def run(
        self, ctx: Any, latent: LatentBatch, upscale_method: str, scale_by: float
    ) -> dict[str, Any]:
        old_h, old_w = latent.samples.shape[-2:]
        w, h = max(1, round(old_w * scale_by)), max(1, round(old_h * scale_by))
        return {"latent": resize_latent(latent, w, h, upscale_method)}
