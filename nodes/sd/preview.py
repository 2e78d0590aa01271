"""Live previews of sampling: the current denoised estimate as a small RGB image.

A model gets its previewer when its checkpoint loads (``make_previewer``): where the VAE's
decoder is small (the demo model) previews are real decodes; otherwise a linear
latent -> RGB projection is fitted to this VAE once, at load time, by decoding a few latents
(falling back to the SD 1.x factors widely used, e.g. in ComfyUI, if that fails). Previews
are throttled, so they never cost more than a small share of a run; they touch no RNG, so
the image a seed makes is unchanged."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import torch
from PIL import Image
from torch.nn.functional import adaptive_avg_pool2d

from graph.models import resolve

# SD 1.x latent -> RGB factors (as in ComfyUI's SD15 latent format), rows = latent channels.
SD15_LATENT_RGB = torch.tensor(
    [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ]
)
MAX_SIDE = 256
CHEAP_DECODER_PARAMS = 5_000_000  # decoders up to this size decode previews for real
MIN_INTERVAL_S = 0.25  # at most four previews a second
FIT_LATENT_SIDE = 8
FIT_SAMPLES = 2


def _to_image(rgb: torch.Tensor) -> Image.Image:
    """[3, H, W] in [-1, 1] -> PIL RGB."""
    arr = ((rgb.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(arr, "RGB")


def project(
    latent: torch.Tensor, factors: torch.Tensor, bias: torch.Tensor | None = None
) -> Image.Image:
    """One latent [C, h, w] through a [C, 3] projection (+ bias [3]) as a PIL image."""
    x = latent.detach().float().cpu()
    c = factors.shape[0]
    if x.shape[0] != c:
        x = x[:c] if x.shape[0] > c else torch.cat([x, x.new_zeros(c - x.shape[0], *x.shape[1:])])
    rgb = torch.einsum("chw,cr->rhw", x, factors)
    if bias is not None:
        rgb = rgb + bias[:, None, None]
    return _to_image(rgb)


def latent_preview(latents: torch.Tensor, max_side: int = MAX_SIDE) -> Image.Image:
    """The first latent of a batch [B, 4, h, w] through the SD 1.x factors (no VAE at hand)."""
    return project(latents[0], SD15_LATENT_RGB)


def fit_projection(
    vae: Any, scaling_factor: float, channels: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares latent -> RGB map (+ bias) of this VAE, from decodes of random latents
    (in U-Net space, as sampling sees them) against their images pooled to latent size."""
    param = next(vae.parameters())
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(FIT_SAMPLES, channels, FIT_LATENT_SIDE, FIT_LATENT_SIDE, generator=gen)
    with torch.no_grad():
        img = vae.decode(z.to(param.device, param.dtype) / scaling_factor).sample.float().cpu()
    img = adaptive_avg_pool2d(img, (FIT_LATENT_SIDE, FIT_LATENT_SIDE))
    x = z.permute(0, 2, 3, 1).reshape(-1, channels)
    x = torch.cat([x, torch.ones(x.shape[0], 1)], dim=1)
    y = img.permute(0, 2, 3, 1).reshape(-1, 3)
    sol = torch.linalg.lstsq(x, y).solution  # [C + 1, 3]
    return sol[:channels], sol[channels]


class Previewer:
    """Latents -> preview image for one loaded model; None while throttled."""

    def __init__(self, vae: Any, scaling_factor: float, source: Any = None) -> None:
        # decodes reach the VAE through ``source`` (the model store's ref, when given), so
        # a cached model handle does not keep an evicted VAE alive
        self._source = vae if source is None else source
        self.scaling_factor = scaling_factor
        self.channels = int(getattr(vae.config, "latent_channels", 4))
        self.decodes = sum(p.numel() for p in vae.decoder.parameters()) <= CHEAP_DECODER_PARAMS
        self._projection: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self._lock = threading.Lock()
        self._last = 0.0

    @property
    def factors(self) -> torch.Tensor:
        return self._fitted()[0]

    @property
    def bias(self) -> torch.Tensor | None:
        return self._fitted()[1]

    def _fitted(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The latent -> RGB projection, fitted at the first preview that needs it (not
        at load: a run nobody watches never pays for the fitting decode)."""
        with self._lock:
            if self._projection is None:
                self._projection = SD15_LATENT_RGB, None
                if not self.decodes:
                    # A dtype the device cannot run, say: keep the generic factors.
                    with contextlib.suppress(Exception):
                        self._projection = fit_projection(
                            self.vae, self.scaling_factor, self.channels
                        )
            return self._projection

    @property
    def vae(self) -> Any:
        return resolve(self._source)

    def due(self, step: int, total: int) -> bool:
        """The first and last steps always; in between at most every MIN_INTERVAL_S."""
        now = time.monotonic()
        with self._lock:
            if step in (1, total) or now - self._last >= MIN_INTERVAL_S:
                self._last = now
                return True
        return False

    def __call__(self, latents: torch.Tensor) -> Image.Image:
        first = latents[:1].detach()
        if self.decodes:
            param = next(self.vae.parameters())
            with torch.no_grad():
                img = self.vae.decode(
                    first.to(param.device, param.dtype) / self.scaling_factor
                ).sample
            return _to_image(img[0].float().cpu())
        image = project(first[0], self.factors, self.bias)
        side = max(image.size)
        if side < MAX_SIDE // 2:  # small latents: smooth upscaling, the page scales the rest
            k = max(1, (MAX_SIDE // 2) // side)
            image = image.resize((image.width * k, image.height * k), Image.Resampling.BICUBIC)
        return image


def make_previewer(vae: Any, scaling_factor: float, source: Any = None) -> Previewer | None:
    """The previewer for a loaded VAE (None when it has no decoder to judge by); ``source``
    is how later decodes reach it (a `ComponentRef`; default: the VAE itself)."""
    if not hasattr(vae, "decoder") or not hasattr(vae, "decode"):
        return None
    return Previewer(vae, scaling_factor, source)
