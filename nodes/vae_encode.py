"""VAEEncode: images -> latents (for img2img and inversion)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

from graph.cost import Cost, CostInputs
from graph.node import Node
from nodes.sd.handles import LatentBatch, VaeHandle
from nodes.sd.vae_latents import from_vae_space, spatial_factor
from nodes.sd.vae_tiled import tiled_encode
from nodes.sd.vae_tiling import use_tiles
from nodes.types import Image, Latent, Vae

MULTIPLE = 8  # the default; encode() uses the VAE's own factor


def crop_to_multiple(images: torch.Tensor, multiple: int = MULTIPLE) -> torch.Tensor:
    """Centre-crop [B, H, W, 3] so H and W are multiples of the VAE factor."""
    _, h, w, _ = images.shape
    nh, nw = h - h % multiple, w - w % multiple
    if nh == 0 or nw == 0:
        raise ValueError(f"image {w}x{h} is smaller than {multiple}x{multiple} pixels")
    top, left = (h - nh) // 2, (w - nw) // 2
    return images[:, top : top + nh, left : left + nw, :]


@torch.no_grad()
def encode(
    vae: VaeHandle, images: torch.Tensor, tiling: str = "auto", check: Any = None
) -> torch.Tensor:
    """Latents in U-Net space (the posterior's mean times the scaling factor), on the VAE's device.

    The mean rather than a sample: encoding is deterministic and needs no seed. In tiles
    when ``tiling`` says so (`nodes.sd.vae_tiling`), calling ``check`` between layers then."""
    cropped = crop_to_multiple(images, spatial_factor(vae.vae))
    x = cropped.permute(0, 3, 1, 2).to(vae.device, vae.dtype) * 2.0 - 1.0
    b, _, h, w = x.shape
    if use_tiles(tiling, vae.vae, b, h, w, vae.device):
        moments = tiled_encode(vae.vae, x, int(vae.vae.tile_sample_min_size), check)
        dist = DiagonalGaussianDistribution(moments)
    else:
        dist = vae.vae.encode(x).latent_dist
    return from_vae_space(vae.vae, dist.mode(), vae.scaling_factor)


class VAEEncode(Node):
    """Encode RGB images into latents with the checkpoint's VAE (centre-cropped to 8 px)."""

    CATEGORY = "latent"
    OUTPUTS = {"latent": Latent}
    vae: Vae
    image: Image
    tiling: Literal["auto", "on", "off"] = "auto"  # auto: when the image would not fit

    @classmethod
    def cost(cls, inputs: CostInputs) -> Cost:
        """The VAE works on every pixel once; the size passes through."""
        return Cost(pixels=inputs.linked_pixels("image"), pixels_field="image")

    def run(self, ctx: Any, vae: VaeHandle, image: torch.Tensor, tiling: str) -> dict[str, Any]:
        ctx.check_interrupted()
        return {"latent": LatentBatch(encode(vae, image, tiling, ctx.check_interrupted))}
