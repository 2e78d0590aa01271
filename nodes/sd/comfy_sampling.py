"""Sampling as ComfyUI's KSampler does it, on diffusers' schedulers, for ComfyUI's picture.

What differs from the diffusers-pipeline loop (``sampling.py``), each as ComfyUI does it:
- sigmas: ComfyUI's schedule lists (``comfy_schedules.py``), given to the scheduler
  explicitly; the U-Net gets the nearest table index as its timestep, never an
  interpolated one;
- start: noise from ``torch.Generator("cpu").manual_seed(seed)`` (the same draws as
  ComfyUI's ``torch.manual_seed`` + ``torch.randn``), times sqrt(1 + sigma0^2) when sigma0
  is the table's largest, else times sigma0, plus the input latent;
- guidance on the denoised prediction, ``uncond + (cond - uncond) * cfg``;
- ancestral noise from a second generator seeded with the same seed;
- SDXL: the pooled embedding and size ids of ``encode_adm`` (defaults: the latent's size
  in pixels, crop 0, aesthetic score 6 / 2.5 on the refiner), each conditioning with its
  own sizes (a negative does not inherit the positive's, unlike diffusers' base pipeline).
EulerDiscreteScheduler takes explicit sigmas; EulerAncestralDiscreteScheduler and
DPMSolverMultistepScheduler (0.42) do not, so their sigma list is set after
``set_timesteps``, the state their ``step`` reads.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
)

from nodes.sd.comfy_schedules import SigmaTable, comfy_sigmas
from nodes.sd.handles import Conditioning, LatentBatch, ModelHandle
from nodes.sd.lora_patch import applies_patches
from nodes.sd.sampling import (
    SampleSettings,
    StepCallback,
    _check_dims,
    _guided,
    guidance_embeddings,
    resolve_negative,
)
from nodes.sd.sdxl_conditioning import added_conditioning

COMFY_SAMPLERS = ("euler", "euler_ancestral", "dpmpp_2m", "ddim")


def _clean(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dict(config).items() if not k.startswith("_")}


class _Denoiser:
    """ComfyUI's model call: x at sigma -> the guided denoised prediction (float32).
    ``added``: SDXL's pooled embedding and size ids (ComfyUI's ``encode_adm``, the same
    vector diffusers' ``text_time`` embedding builds), batched like ``embeds``."""

    def __init__(
        self,
        model: ModelHandle,
        table: SigmaTable,
        embeds: torch.Tensor,
        cfg: float,
        added: dict[str, torch.Tensor] | None = None,
    ):
        self.model, self.table, self.embeds, self.cfg = model, table, embeds, cfg
        self.guided = _guided(cfg)
        self.extra = {"added_cond_kwargs": added} if added is not None else {}

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        m = self.model
        t = self.table.timestep(sigma.reshape(1).cpu()).float().to(m.device)
        x_in = torch.cat([x] * 2) if self.guided else x
        s = sigma.to(x.device, torch.float32).reshape(1, 1, 1, 1)
        unet_in = (x_in / (s**2 + 1.0) ** 0.5).to(m.dtype)
        out = m.unet(
            unet_in, t, encoder_hidden_states=self.embeds, return_dict=False, **self.extra
        )[0].float()
        if m.prediction_type == "v_prediction":
            denoised = x_in / (s**2 + 1.0) - out * s / (s**2 + 1.0) ** 0.5
        elif m.prediction_type == "epsilon":
            denoised = x_in - out * s
        else:
            raise ValueError(f"ComfyUI sampling: unsupported prediction type {m.prediction_type}")
        if not self.guided:
            return denoised
        uncond, cond = denoised.chunk(2)
        return uncond + (cond - uncond) * self.cfg


def _scheduler(model: ModelHandle, sampler: str, sigmas: torch.Tensor, device: Any) -> Any:
    config = _clean(model.scheduler_config)
    if sampler in ("euler", "ddim"):  # ComfyUI's ddim is Euler on its sigmas
        sched = EulerDiscreteScheduler.from_config(config, prediction_type="sample")
        sched.set_timesteps(sigmas=sigmas.tolist(), device=device)
    elif sampler == "euler_ancestral":
        sched = EulerAncestralDiscreteScheduler.from_config(config, prediction_type="epsilon")
        sched.set_timesteps(len(sigmas) - 1, device=device)
        sched.sigmas = sigmas.to(device)
    elif sampler == "dpmpp_2m":
        sched = DPMSolverMultistepScheduler.from_config(
            config,
            algorithm_type="dpmsolver++",
            solver_order=2,
            prediction_type="sample",
            final_sigmas_type="zero",
            lower_order_final=True,
            euler_at_final=False,
            use_karras_sigmas=False,
            use_exponential_sigmas=False,
            use_beta_sigmas=False,
            thresholding=False,
        )
        sched.set_timesteps(len(sigmas) - 1, device=device)
        sched.sigmas = sigmas.cpu()
    else:
        raise ValueError(
            f"sampler {sampler} has no ComfyUI-convention loop here (those: "
            f"{', '.join(COMFY_SAMPLERS)}); use convention diffusers"
        )
    sched.set_begin_index(0)
    return sched


@torch.no_grad()
@applies_patches  # the model's LoRAs, merged for this call only (as in `sample`)
def comfy_sample(
    model: ModelHandle,
    positive: Conditioning,
    negative: Conditioning | None,
    latent: LatentBatch,
    settings: SampleSettings,
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """KSampler's result for these settings; latents in U-Net space on the model's device."""
    s = settings
    table = SigmaTable.from_config(model.scheduler_config)
    sigmas = comfy_sigmas(table, s.schedule, s.steps, s.denoise, s.sampler)
    device = model.device
    init = latent.samples.to("cpu", torch.float32)
    noise = torch.randn(init.shape, generator=torch.Generator("cpu").manual_seed(s.seed))
    sigma0 = float(sigmas[0])
    sigma_max = float(table.sigma_max)
    at_max = sigma0 > sigma_max or abs(sigma0 - sigma_max) <= 1e-5 * max(sigma0, sigma_max)
    x = noise * (1.0 + sigma0**2) ** 0.5 if at_max else noise * sigma0
    x = (x + init).to(device)
    negative = resolve_negative(model, positive, negative)
    embeds = guidance_embeddings(model, positive, negative, init.shape[0], s.cfg)
    _check_dims(model, embeds)
    f = model.vae_scale_factor  # ComfyUI's default width/height: the latent's, in pixels
    pixels = (init.shape[2] * f, init.shape[3] * f)
    guided = _guided(s.cfg)
    added = added_conditioning(model, positive, negative, init.shape[0], guided, pixels, False)
    denoise = _Denoiser(model, table, embeds, s.cfg, added)
    sched = _scheduler(model, s.sampler, sigmas, device)
    ancestral = torch.Generator("cpu").manual_seed(s.seed)
    total = len(sigmas) - 1
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        t = sched.timesteps[i]
        den = denoise(x, sigma)
        if isinstance(sched, DPMSolverMultistepScheduler):  # steps on VP samples
            x_vp = x / (float(sigma) ** 2 + 1.0) ** 0.5
            x = sched.step(den, t, x_vp, return_dict=False)[0] * (float(sigma_next) ** 2 + 1) ** 0.5
        elif isinstance(sched, EulerAncestralDiscreteScheduler):
            sched.is_scale_input_called = True  # the input scaling happened in the denoiser
            eps = (x - den) / sigma.to(x.device)
            x = sched.step(eps, t, x, generator=ancestral, return_dict=False)[0]
        else:
            sched.is_scale_input_called = True
            x = sched.step(den, t, x, return_dict=False)[0]
        if on_step is not None:
            on_step(i + 1, total, den)
    return x.to(model.dtype)
