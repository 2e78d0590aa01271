"""VAEDecode: latents -> images."""

from __future__ import annotations

from typing import Any, Literal

import torch

from graph.cost import Cost, CostInputs
from graph.node import Node
from nodes.sd.handles import LatentBatch, VaeHandle
from nodes.sd.vae_latents import spatial_factor, to_vae_space
from nodes.sd.vae_tiled import tiled_decode
from nodes.sd.vae_tiling import use_tiles
from nodes.types import Image, Latent, Vae


@torch.no_grad()
def decode(
    vae: VaeHandle, latent: LatentBatch, tiling: str = "auto", check: Any = None
) -> torch.Tensor:
    """[B, H, W, 3] float 0..1 on the CPU, as StableDiffusionPipeline post-processes it;
    in tiles when ``tiling`` says so (`nodes.sd.vae_tiling`), calling ``check`` (the
    run's interruption check) between layers then."""
    z = to_vae_space(vae.vae, latent.samples.to(vae.device, vae.dtype), vae.scaling_factor)
    b, _, h, w = z.shape
    factor = spatial_factor(vae.vae)
    if use_tiles(tiling, vae.vae, b, h * factor, w * factor, vae.device):
        pixels = tiled_decode(vae.vae, z, int(vae.vae.tile_latent_min_size), check)
    else:
        pixels = vae.vae.decode(z, return_dict=False)[0]
    images = (pixels / 2 + 0.5).clamp(0, 1)
    return images.float().permute(0, 2, 3, 1).cpu().contiguous()


class VAEDecode(Node):
    """Decode latents into RGB images with the checkpoint's VAE."""

    CATEGORY = "latent"
    OUTPUTS = {"image": Image}
    vae: Vae
    latent: Latent
    tiling: Literal["auto", "on", "off"] = "auto"  # auto: when the image would not fit

    @classmethod
    def cost(cls, inputs: CostInputs) -> Cost:
        """The VAE works on every pixel once; the size passes through."""
        return Cost(pixels=inputs.linked_pixels("latent"), pixels_field="latent")

    def run(self, ctx: Any, vae: VaeHandle, latent: LatentBatch, tiling: str) -> dict[str, Any]:
        ctx.check_interrupted()
        return {"image": decode(vae, latent, tiling, ctx.check_interrupted)}
