"""Resizing a LatentBatch (LatentUpscale, LatentUpscaleBy)."""

from __future__ import annotations

from nodes.sd.handles import LatentBatch
from nodes.sd.resize import resize
from nodes.sd.sampling import EMPTY

VAE_FACTOR = 8  # pixels per latent cell for the SD 1.x/2.x/XL VAEs (ComfyUI's // 8 too)


def resize_latent(
    latent: LatentBatch, width: int, height: int, method: str, crop: str = "disabled"
) -> LatentBatch:
    """The latent at ``width`` x ``height`` cells. An empty latent stays empty (Sample makes
    its noise at the new size); other markers (inverted noise) no longer hold."""
    samples = resize(latent.samples, width, height, method, crop)
    extra = {EMPTY: (height * VAE_FACTOR, width * VAE_FACTOR)} if EMPTY in latent.extra else {}
    return LatentBatch(samples, extra=extra)
