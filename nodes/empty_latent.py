"""EmptyLatent: the starting latent batch of text-to-image."""

from __future__ import annotations

from typing import Any

import torch

from graph.cost import Cost, CostInputs
from graph.node import Node, Widget
from nodes.sd.handles import LatentBatch
from nodes.sd.sampling import EMPTY
from nodes.types import Latent

LATENT_CHANNELS = 4  # placeholder zeros; Sample makes the model's own channels
VAE_FACTOR = 8


class EmptyLatent(Node):
    """A blank latent batch of the given image size (Sample draws the noise, with the
    model's latent channels and VAE factor)."""

    CATEGORY = "latent"
    OUTPUTS = {"latent": Latent}
    width: int = Widget(512, ge=16, le=4096, multiple_of=8)
    height: int = Widget(512, ge=16, le=4096, multiple_of=8)
    batch_size: int = Widget(1, ge=1, le=64)

    @classmethod
    def cost(cls, inputs: CostInputs) -> Cost:
        v = inputs.values
        pixels = v["width"] * v["height"] * v["batch_size"]
        return Cost(pixels=pixels, outputs={"latent": pixels}, pixels_field="width")

    def run(self, ctx: Any, width: int, height: int, batch_size: int) -> dict[str, Any]:
        shape = (batch_size, LATENT_CHANNELS, height // VAE_FACTOR, width // VAE_FACTOR)
        zeros = torch.zeros(shape, dtype=torch.float32)
        return {"latent": LatentBatch(zeros, extra={EMPTY: (height, width)})}
