"""InvertLatent: DDIM inversion, latent -> the noise that DDIM sampling turns back into it."""

from __future__ import annotations

from typing import Any

from graph.cost import Cost, CostInputs
from graph.node import Node, Widget
from nodes.sample import progress_callback, sampling_cost
from nodes.sd.handles import Conditioning, LatentBatch, ModelHandle
from nodes.sd.sampling import invert
from nodes.types import Conditioning as ConditioningType
from nodes.types import Latent, Model


class InvertLatent(Node):
    """DDIM-invert a latent into noise; Sample(ddim, same steps/cfg) reconstructs it.

    The output is marked as inverted noise, so Sample uses it as its starting point
    (the seed is then unused). cfg above 1 needs the optional negative conditioning;
    inversion is most faithful at cfg 1."""

    CATEGORY = "sampling"
    OUTPUTS = {"latent": Latent}
    model: Model
    conditioning: ConditioningType
    latent: Latent
    negative: ConditioningType | None = None
    steps: int = Widget(50, ge=1, le=500)
    cfg: float = Widget(1.0, ge=0.0, le=100.0, step=0.1)

    @classmethod
    def cost(cls, inputs: CostInputs) -> Cost:
        return sampling_cost(inputs)

    def run(
        self,
        ctx: Any,
        model: ModelHandle,
        conditioning: Conditioning,
        latent: LatentBatch,
        steps: int,
        cfg: float,
        negative: Conditioning | None = None,
    ) -> dict[str, Any]:
        ctx.check_interrupted()
        out = invert(
            model, conditioning, negative, latent, steps, cfg, progress_callback(ctx, model)
        )
        return {"latent": out}
