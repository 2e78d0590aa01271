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
from nodes.sd.samplers import build_scheduler, step_kwargs
from nodes.sd.sdxl_conditioning import added_conditioning, zeros_like_conditioning

# on_step(step_done, total_steps, latents_for_preview); may raise to interrupt.
StepCallback = Callable[[int, int, torch.Tensor], None]

INVERTED = "inverted"  # LatentBatch.extra key marking DDIM-inverted noise
EMPTY = "empty_image_size"  # LatentBatch.extra key: a blank latent for (height, width) pixels


@dataclass(frozen=True)
class SampleSettings:
    seed: int
    steps: int
    cfg: float
    sampler: str
    schedule: str
    denoise: float = 1.0
    # diffusers' denoising_start / denoising_end: fractions of the schedule (on the
    # timestep scale) to skip at the start (no noise is added; the latent is partly
    # denoised already) and to leave undone at the end (the result keeps its noise)
    denoising_start: float = 0.0
    denoising_end: float = 1.0


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
    added: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """One (CFG-batched) U-Net evaluation, guidance applied. ``added``: SDXL's
    ``added_cond_kwargs`` (pooled text embedding and size ids)."""
    guided = _guided(cfg)
    model_in = torch.cat([latents] * 2) if guided else latents
    model_in = scheduler.scale_model_input(model_in, t)
    extra = {"added_cond_kwargs": added} if added is not None else {}
    out = model.unet(model_in, t, encoder_hidden_states=embeds, return_dict=False, **extra)[0]
    if guided:
        uncond, cond = out.chunk(2)
        out = uncond + cfg * (cond - uncond)
    return out


def _cutoff(scheduler: Any, fraction: float) -> int:
    """diffusers' discrete timestep cutoff for denoising_start / denoising_end."""
    n = scheduler.config.num_train_timesteps
    return int(round(n - fraction * n))


def _start_partway(scheduler: Any, timesteps: torch.Tensor, start: float) -> torch.Tensor:
    """StableDiffusionXLImg2ImgPipeline.get_timesteps with denoising_start."""
    n = int((timesteps < _cutoff(scheduler, start)).sum().item())
    if scheduler.order == 2 and n % 2 == 0:
        n += 1  # do not stop between the two evaluations of a 2nd-order step
    t_start = len(timesteps) - n
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(t_start)
    return timesteps[t_start:]


def resolve_negative(
    model: ModelHandle, positive: Conditioning, negative: Conditioning | None
) -> Conditioning | None:
    """No negative: zeros where the model asks for them (SDXL base,
    ``force_zeros_for_empty_prompt``), else None (an error when cfg needs one)."""
    if negative is None and model.zeros_for_missing_negative:
        return zeros_like_conditioning(positive)
    return negative


def _blank_shape(model: ModelHandle, latent: LatentBatch) -> tuple[int, ...]:
    """The shape of the latent to make: an empty latent gets the model's channels and
    spatial factor; any other latent keeps its own shape."""
    size = latent.extra.get(EMPTY)
    if size is None:
        return tuple(latent.samples.shape)
    f = model.vae_scale_factor
    return (latent.samples.shape[0], model.latent_channels, size[0] // f, size[1] // f)


@torch.no_grad()
def sample(
    model: ModelHandle,
    positive: Conditioning,
    negative: Conditioning | None,
    latent: LatentBatch,
    settings: SampleSettings,
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """Denoise ``latent`` (txt2img when denoise is 1, img2img below, a continuation of a
    partly denoised latent after ``denoising_start``); returns the latents in U-Net space
    on the model's device."""
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
    if s.denoising_start > 0.0:
        if inverted is not None or EMPTY in latent.extra:
            raise ValueError(
                "denoising_start continues a partly denoised latent (e.g. a Sample with "
                "denoising_end); this latent is empty or inverted noise"
            )
        if s.denoise < 1.0:
            raise ValueError("denoising_start replaces denoise: use denoise 1")
        timesteps = _start_partway(scheduler, timesteps, s.denoising_start)
        latents = init.to(device, dtype)
    elif inverted is not None:
        if s.denoise < 1.0:
            raise ValueError("an inverted latent is noise for the whole schedule: use denoise 1")
        latents = init.to(device, dtype) * scheduler.init_noise_sigma
    elif s.denoise >= 1.0:
        # StableDiffusionPipeline.prepare_latents: the input only gives the shape
        shape = _blank_shape(model, latent)
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
    if s.denoising_end < 1.0:  # diffusers: keep the timesteps at or above the cutoff
        cutoff = _cutoff(scheduler, s.denoising_end)
        timesteps = timesteps[: int((timesteps >= cutoff).sum().item())]
    if len(timesteps) == 0:
        raise ValueError(
            f"denoising_start {s.denoising_start} / denoising_end {s.denoising_end} leave "
            f"no step of {s.steps}"
        )
    negative = resolve_negative(model, positive, negative)
    embeds = guidance_embeddings(model, positive, negative, shape[0], s.cfg)
    _check_dims(model, embeds)
    pixels = (shape[2] * model.vae_scale_factor, shape[3] * model.vae_scale_factor)
    added = added_conditioning(model, positive, negative, shape[0], _guided(s.cfg), pixels)
    extra = step_kwargs(scheduler, generator)
    total = len(timesteps)
    for i, t in enumerate(timesteps):
        noise_pred = predict_noise(model, scheduler, latents, t, embeds, s.cfg, added)
        out = scheduler.step(noise_pred, t, latents, **extra, return_dict=True)
        latents = out.prev_sample
        if on_step is not None:
            x0 = getattr(out, "pred_original_sample", None)
            on_step(i + 1, total, x0 if x0 is not None else latents)
    return latents


@torch.no_grad()
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
    negative = resolve_negative(model, conditioning, negative)
    embeds = guidance_embeddings(model, conditioning, negative, latents.shape[0], cfg)
    _check_dims(model, embeds)
    f = model.vae_scale_factor
    pixels = (latents.shape[2] * f, latents.shape[3] * f)
    batch = latents.shape[0]
    added = added_conditioning(model, conditioning, negative, batch, _guided(cfg), pixels)
    total = len(scheduler.timesteps)
    for i, t in enumerate(scheduler.timesteps):
        noise_pred = predict_noise(model, scheduler, latents, t, embeds, cfg, added)
        latents = scheduler.step(noise_pred, t, latents, return_dict=False)[0]
        if on_step is not None:
            on_step(i + 1, total, latents)
    extra = {INVERTED: {"steps": steps, "timestep_spacing": spacing}}
    return LatentBatch(latents, extra=extra)
