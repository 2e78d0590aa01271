"""ComfyUI's KSampler convention: its sigma lists, and our diffusers-driven loop against
k-diffusion's update formulas written out (the way ComfyUI runs them)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from nodes.sd.comfy_sampling import _Denoiser, comfy_sample
from nodes.sd.comfy_schedules import SigmaTable, comfy_sigmas
from nodes.sd.handles import Conditioning, LatentBatch, ModelHandle
from nodes.sd.sampling import SampleSettings, guidance_embeddings

SD15 = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}


def test_sigma_lists_match_comfyui_figures() -> None:
    table = SigmaTable.from_config(SD15)
    # figures from ComfyUI 0.3.64 (the reference set's README and its KSampler runs)
    assert float(table.sigma_max) == pytest.approx(14.614641, abs=1e-6)
    ddim = comfy_sigmas(table, "ddim_uniform", 12)
    assert len(ddim) == 14 and float(ddim[0]) == pytest.approx(14.4386, abs=1e-4)
    img2img = comfy_sigmas(table, "normal", 12, denoise=0.6)
    assert len(img2img) == 13 and float(img2img[0]) == pytest.approx(2.1157, abs=1e-4)
    for name in ("normal", "karras", "exponential", "simple", "sgm_uniform", "beta"):
        s = comfy_sigmas(table, name, 12)
        assert len(s) == 13 and float(s[-1]) == 0.0, name
        assert float(s[0]) == pytest.approx(14.614641, abs=1e-5), name
        assert bool((s[:-1] > s[1:]).all()), name
    karras = comfy_sigmas(table, "karras", 12)
    rho = 7.0
    lo, hi = float(table.sigma_min) ** (1 / rho), float(table.sigma_max) ** (1 / rho)
    ramp = torch.linspace(0, 1, 12)
    assert torch.equal(karras[:-1], (hi + ramp * (lo - hi)) ** rho)
    normal = comfy_sigmas(table, "normal", 12)  # t over linspace(999, 0), log-linear sigma
    assert float(normal[1]) == pytest.approx(float(table.sigma(torch.tensor(908.1818))), 1e-6)


def _k_diffusion(model: ModelHandle, conds, sampler: str, schedule: str, seed: int, cfg: float):
    """k-diffusion's sample_euler / sample_euler_ancestral / sample_dpmpp_2m, as ComfyUI
    calls them, on the same denoiser."""
    table = SigmaTable.from_config(model.scheduler_config)
    sigmas = comfy_sigmas(table, schedule, 6)
    noise = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(seed))
    x = noise * (1 + float(sigmas[0]) ** 2) ** 0.5
    embeds = guidance_embeddings(model, conds[0], conds[1], 1, cfg)
    denoise = _Denoiser(model, table, embeds, cfg)
    gen = torch.Generator("cpu").manual_seed(seed)
    old = None
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        d = denoise(x, s)
        if sampler == "euler":
            x = x + (x - d) / s * (s_next - s)
        elif sampler == "euler_ancestral":
            up = min(s_next, (s_next**2 * (s**2 - s_next**2) / s**2) ** 0.5)
            down = (s_next**2 - up**2) ** 0.5
            x = x + (x - d) / s * (down - s)
            if s_next > 0:
                x = x + torch.randn(x.shape, generator=gen) * up
        else:
            t, t_next = -s.log(), -s_next.log()
            h = t_next - t
            if old is None or s_next == 0:
                x = (s_next / s) * x - torch.expm1(-h) * d
            else:
                r = (t - (-sigmas[i - 1].log())) / h
                dd = (1 + 1 / (2 * r)) * d - (1 / (2 * r)) * old
                x = (s_next / s) * x - torch.expm1(-h) * dd
            old = d
    return x


@pytest.mark.parametrize(
    "sampler,schedule",
    [("euler", "normal"), ("euler_ancestral", "normal"), ("dpmpp_2m", "karras")],
)
def test_loop_follows_k_diffusion(
    model: ModelHandle, conds: tuple[Conditioning, Conditioning], sampler: str, schedule: str
) -> None:
    latent = LatentBatch(torch.zeros(1, 4, 8, 8))
    settings = SampleSettings(7, 6, 5.0, sampler, schedule, 1.0)
    ours = comfy_sample(model, conds[0], conds[1], latent, settings)
    ref = _k_diffusion(model, conds, sampler, schedule, 7, 5.0)
    scale = ref.abs().max()
    assert (ours - ref).abs().max() <= 1e-5 * scale, (ours - ref).abs().max()


def test_img2img_starts_from_sigma0_noise(model: ModelHandle, conds: Any) -> None:
    init = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    seen: list[torch.Tensor] = []
    settings = SampleSettings(1, 4, 1.0, "euler", "normal", 0.5)
    comfy_sample(
        model, conds[0], conds[1], LatentBatch(init), settings, lambda *a: seen.append(a[2])
    )
    assert len(seen) == 4  # steps, not steps x denoise
    with pytest.raises(ValueError, match="no ComfyUI-convention loop"):
        comfy_sample(
            model,
            conds[0],
            conds[1],
            LatentBatch(init),
            SampleSettings(1, 2, 1.0, "heun", "normal"),
        )
