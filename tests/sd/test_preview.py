"""Live previews: real decodes for small VAEs, a projection fitted to the VAE otherwise."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn.functional import adaptive_avg_pool2d

from nodes.sd import preview as pv


def test_small_vae_previews_are_its_own_decodes(components: dict[str, Any]) -> None:
    vae = components["vae"]
    previewer = pv.Previewer(vae, float(vae.config.scaling_factor))
    assert previewer.decodes
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    image = previewer(z)
    with torch.no_grad():
        ref = vae.decode(z[:1] / vae.config.scaling_factor).sample[0]
    expected = ((ref.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(image), expected)


def test_fitted_projection_tracks_the_vae_better_than_generic_factors(
    components: dict[str, Any], monkeypatch: Any
) -> None:
    vae = components["vae"]
    sf = float(vae.config.scaling_factor)
    monkeypatch.setattr(pv, "CHEAP_DECODER_PARAMS", 0)  # as for a full-size VAE
    previewer = pv.Previewer(vae, sf)
    assert not previewer.decodes and previewer.bias is not None
    z = torch.randn(3, 4, 16, 16, generator=torch.Generator().manual_seed(7))  # unseen latents
    with torch.no_grad():
        truth = adaptive_avg_pool2d(vae.decode(z / sf).sample, (16, 16))

    def error(factors: torch.Tensor, bias: torch.Tensor | None) -> float:
        rgb = torch.einsum("nchw,cr->nrhw", z, factors)
        if bias is not None:
            rgb = rgb + bias[None, :, None, None]
        return float((rgb - truth).pow(2).mean())

    assert error(previewer.factors, previewer.bias) < 0.5 * error(pv.SD15_LATENT_RGB, None)
    image = previewer(z)
    assert image.mode == "RGB" and min(image.size) >= pv.MAX_SIDE // 2  # smoothly enlarged


def test_previews_are_throttled_but_first_and_last_always_come(
    components: dict[str, Any],
) -> None:
    previewer = pv.Previewer(components["vae"], 0.18215)
    assert previewer.due(1, 50)
    assert not previewer.due(2, 50)  # within MIN_INTERVAL_S of the first
    assert previewer.due(50, 50)
