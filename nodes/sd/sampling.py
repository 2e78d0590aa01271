"""The denoising loops: sampling with classifier-free guidance, and DDIM inversion.

The sampling loop is StableDiffusionPipeline's (and, for denoise < 1,
StableDiffusionImg2ImgPipeline's) step for step: same noise from a CPU generator
(`randn_tensor`), same scheduler calls, same CFG batch [uncond, cond], so a seed gives
diffusers' image. No node or run state here: progress goes through ``on_step``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from diffusers import DDIMInverseScheduler
from diffusers.utils.torch_utils import randn_tensor

from nodes.sd.handles import Conditioning, LatentBatch, ModelHandle
from nodes.sd.lora_patch import applies_patches
from nodes.sd.samplers import build_scheduler, step_kwargs

# on_step(step_done, total_steps, latents_for_preview); may raise to interrupt.
StepCallback = Callable[[int, int, torch.Tensor], None]

INVERTED = "inverted"  # LatentBatch.extra key marking DDIM-inverted noise


@dataclass(frozen=True)
class SampleSettings:
    seed: int
    steps: int
    cfg: float
    sampler: str
    schedule: str
    denoise: float = 1.0


def _guided(cfg: float) -> bool:
    """Classifier-free guidance runs the uncond pass only when it changes the result
    (diffusers: ``guidance_scale > 1``)."""
    return cfg > 1.0


def match_lengths(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeat the shorter of two [1, 77*k, dim] embeddings so both have the same token
    count (ComfyUI's rule for prompts of different window counts)."""
    la, lb = a.shape[1], b.shape[1]
    if la == lb:
        return a, b
    n = math.lcm(la, lb)
    return a.repeat(1, n // la, 1), b.repeat(1, n // lb, 1)


def guidance_embeddings(
    model: ModelHandle,
    positive: Conditioning,
    negative: Conditioning | None,
    batch: int,
    cfg: float,
) -> torch.Tensor:
    """Cross-attention input for one U-Net call: [uncond x B, cond x B] when guided.

    A conditioning holds one prompt (repeated over the batch) or one per batch item."""
    pos = _per_item(positive.embeddings.to(model.device, model.dtype), batch)
    if not _guided(cfg):
        return pos
    if negative is None:
        raise ValueError("cfg above 1 needs a negative conditioning")
    neg = _per_item(negative.embeddings.to(model.device, model.dtype), batch)
    if pos.shape[-1] != neg.shape[-1]:
        raise ValueError("positive and negative conditionings come from different text encoders")
    pos, neg = match_lengths(pos, neg)
    return torch.cat([neg, pos])


def _per_item(embeddings: torch.Tensor, batch: int) -> torch.Tensor:
    n = embeddings.shape[0]
    if n == batch:
        return embeddings
    if n != 1:
        raise ValueError(f"a conditioning of {n} prompts does not fit a batch of {batch}")
    return embeddings.repeat(batch, 1, 1)


def _check_dims(model: ModelHandle, embeddings: torch.Tensor) -> None:
    want = model.unet.config.cross_attention_dim
    if embeddings.shape[-1] != want:
        raise ValueError(
            f"conditioning width {embeddings.shape[-1]} does not fit this model (it expects "
            f"{want}): encode the prompt with the CLIP of the same checkpoint"
        )


def predict_noise(
    model: ModelHandle,
    scheduler: Any,
    latents: torch.Tensor,
    t: Any,
    embeds: torch.Tensor,
    cfg: float,
) -> torch.Tensor:
    """One (CFG-batched) U-Net evaluation, guidance applied."""
    guided = _guided(cfg)
    model_in = torch.cat([latents] * 2) if guided else latents
    model_in = scheduler.scale_model_input(model_in, t)
    out = model.unet(model_in, t, encoder_hidden_states=embeds, return_dict=False)[0]
    if guided:
        uncond, cond = out.chunk(2)
        out = uncond + cfg * (cond - uncond)
    return out


@torch.no_grad()
@applies_patches  # the model's LoRAs, merged for this call only
def sample(
    model: ModelHandle,
    positive: Conditioning,
    negative: Conditioning | None,
    latent: LatentBatch,
    settings: SampleSettings,
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """Denoise ``latent`` (txt2img when denoise is 1, img2img below); returns the latents
    in U-Net space on the model's device."""
    s = settings
    inverted = latent.extra.get(INVERTED)
    overrides: dict[str, Any] = {}
    if inverted is not None and s.sampler == "ddim":
        # mirror the inversion's timesteps exactly
        overrides["timestep_spacing"] = inverted["timestep_spacing"]
    scheduler = build_scheduler(
        model.scheduler_config, s.sampler, s.schedule, model.prediction_type, **overrides
    )
    device, dtype = model.device, model.dtype
    scheduler.set_timesteps(s.steps, device=device)
    timesteps = scheduler.timesteps
    generator = torch.Generator("cpu").manual_seed(s.seed)
    init = latent.samples
    shape = tuple(init.shape)
    if inverted is not None:
        if s.denoise < 1.0:
            raise ValueError("an inverted latent is noise for the whole schedule: use denoise 1")
        latents = init.to(device, dtype) * scheduler.init_noise_sigma
    elif s.denoise >= 1.0:
        # StableDiffusionPipeline.prepare_latents: the input only gives the shape
        latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        latents = latents * scheduler.init_noise_sigma
    else:
        # StableDiffusionImg2ImgPipeline.get_timesteps + prepare_latents
        init_steps = min(int(s.steps * s.denoise), s.steps)
        if init_steps < 1:
            raise ValueError(
                f"denoise {s.denoise} with {s.steps} steps runs no step (steps x denoise < 1)"
            )
        t_start = s.steps - init_steps
        timesteps = timesteps[t_start * scheduler.order :]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(t_start * scheduler.order)
        noise = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        latents = scheduler.add_noise(init.to(device, dtype), noise, timesteps[:1].repeat(shape[0]))
    embeds = guidance_embeddings(model, positive, negative, shape[0], s.cfg)
    _check_dims(model, embeds)
    extra = step_kwargs(scheduler, generator)
    total = len(timesteps)
    for i, t in enumerate(timesteps):
        noise_pred = predict_noise(model, scheduler, latents, t, embeds, s.cfg)
        out = scheduler.step(noise_pred, t, latents, **extra, return_dict=True)
        latents = out.prev_sample
        if on_step is not None:
            x0 = getattr(out, "pred_original_sample", None)
            on_step(i + 1, total, x0 if x0 is not None else latents)
    return latents


@torch.no_grad()
@applies_patches
def invert(
    model: ModelHandle,
    conditioning: Conditioning,
    negative: Conditioning | None,
    latent: LatentBatch,
    steps: int,
    cfg: float,
    on_step: StepCallback | None = None,
) -> LatentBatch:
    """DDIM inversion (diffusers' DDIMInverseScheduler): the noise that deterministic DDIM
    sampling with the same model, conditioning, steps and cfg maps back to ``latent``."""
    config = dict(model.scheduler_config)
    spacing = config.get("timestep_spacing", "leading")
    if spacing not in ("leading", "trailing"):
        spacing = "trailing"  # DDIMInverseScheduler knows only these two
    accepted = inspect.signature(DDIMInverseScheduler.__init__).parameters
    clean = {k: v for k, v in config.items() if k in accepted}
    clean["timestep_spacing"] = spacing
    scheduler = DDIMInverseScheduler.from_config(clean, prediction_type=model.prediction_type)
    scheduler.set_timesteps(steps, device=model.device)
    latents = latent.samples.to(model.device, model.dtype)
    embeds = guidance_embeddings(model, conditioning, negative, latents.shape[0], cfg)
    _check_dims(model, embeds)
    total = len(scheduler.timesteps)
    for i, t in enumerate(scheduler.timesteps):
        noise_pred = predict_noise(model, scheduler, latents, t, embeds, cfg)
        latents = scheduler.step(noise_pred, t, latents, return_dict=False)[0]
        if on_step is not None:
            on_step(i + 1, total, latents)
    extra = {INVERTED: {"steps": steps, "timestep_spacing": spacing}}
    return LatentBatch(latents, extra=extra)
