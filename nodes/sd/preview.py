"""A cheap latent -> RGB preview for progress events (no VAE call).

SD 1.x / 2.x latents map to RGB roughly linearly; the factors are the widely used
"latent2rgb" projection (as in ComfyUI's SD15 latent format), applied to the current
denoised estimate in U-Net space."""

from __future__ import annotations

import torch
from PIL import Image

LATENT_RGB_FACTORS = torch.tensor(
    [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ]
)
MAX_SIDE = 256


def latent_preview(latents: torch.Tensor, max_side: int = MAX_SIDE) -> Image.Image:
    """The first latent of a batch [B, 4, h, w] as a small PIL RGB image."""
    x = latents[0].detach().float().cpu()
    if x.shape[0] != LATENT_RGB_FACTORS.shape[0]:
        x = x[:4] if x.shape[0] > 4 else torch.cat([x, x.new_zeros(4 - x.shape[0], *x.shape[1:])])
    rgb = torch.einsum("chw,cr->hwr", x, LATENT_RGB_FACTORS)
    rgb = ((rgb + 1.0) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    image = Image.fromarray(rgb, "RGB")
    h, w = rgb.shape[:2]
    scale = min(8, max(1, max_side // max(h, w)))
    if scale > 1:
        image = image.resize((w * scale, h * scale), Image.Resampling.NEAREST)
    return image
