"""Sample: denoise a latent batch with a diffusers scheduler and classifier-free guidance."""

from __future__ import annotations

from typing import Any, Literal

import torch

from graph.cost import Cost, CostInputs
from graph.node import Node, Widget
from nodes.sd.comfy_sampling import comfy_sample
from nodes.sd.handles import Conditioning, LatentBatch, ModelHandle
from nodes.sd.preview import latent_preview
from nodes.sd.samplers import SamplerName, ScheduleName, scheduler_kwargs
from nodes.sd.sampling import SampleSettings, sample
from nodes.types import Conditioning as ConditioningType
from nodes.types import Latent, Model

SEED_MAX = 2**64 - 1


def progress_callback(ctx: Any, model: ModelHandle | None = None) -> Any:
    """Per-step progress with a preview when the run shows them (the model's own
    previewer where it has one, made when its checkpoint loaded); ctx.progress raises
    when interrupted."""
    previewer = getattr(model, "preview", None)

    def on_step(step: int, total: int, latents: torch.Tensor) -> None:
        if not ctx.previews:  # the CLI and the benchmarks: no decode nobody sees
            preview = None
        elif previewer is None:
            preview = latent_preview(latents)
        else:
            preview = previewer(latents) if previewer.due(step, total) else None
        ctx.progress(step / total, step, total, preview=preview)

    return on_step


def sampling_cost(inputs: CostInputs) -> Cost:
    """Every step runs the U-Net over the whole latent it is given."""
    return Cost(
        pixels=inputs.linked_pixels("latent"),
        steps=inputs.values["steps"],
        pixels_field="latent",
        steps_field="steps",
    )


class Sample(Node):
    """Generate latents: txt2img at denoise 1, img2img (noise the input) below 1.

    Base -> refiner hand-off (diffusers' denoising_end / denoising_start): the base stops
    at ``denoising_end`` (its latent keeps the remaining noise), the refiner continues it
    from ``denoising_start`` (same value, no new noise). Without a negative, an SDXL base
    uses zeros (diffusers' negative_prompt=None); other models need one when cfg > 1.

    convention: ``diffusers`` reproduces diffusers' pipelines; ``comfyui`` reproduces
    ComfyUI's KSampler (its sigma schedules, noise scaling and timesteps; samplers euler,
    euler_ancestral, dpmpp_2m, ddim; SDXL with its pooled and size conditioning), so an
    imported ComfyUI workflow gives its picture.
    The schedules simple, sgm_uniform, ddim_uniform and beta exist only there."""

    CATEGORY = "sampling"
    OUTPUTS = {"latent": Latent}
    model: Model
    positive: ConditioningType
    negative: ConditioningType | None = None
    latent: Latent
    seed: int = Widget(0, ge=0, le=SEED_MAX, seed=True)
    steps: int = Widget(20, ge=1, le=500)
    cfg: float = Widget(7.5, ge=0.0, le=100.0, step=0.1)
    sampler: SamplerName = "euler"
    schedule: ScheduleName = "normal"
    denoise: float = Widget(1.0, gt=0.0, le=1.0, step=0.01)
    denoising_start: float = Widget(0.0, ge=0.0, lt=1.0, step=0.01)
    denoising_end: float = Widget(1.0, gt=0.0, le=1.0, step=0.01)
    convention: Literal["diffusers", "comfyui"] = "diffusers"

    @classmethod
    def check(cls, inputs: dict[str, Any], choices: Any) -> list[tuple[str, str, str]]:
        """Pairs that cannot run, rejected before any model loads."""
        problems: list[tuple[str, str]] = []
        if inputs["convention"] == "diffusers":
            try:
                scheduler_kwargs(inputs["sampler"], inputs["schedule"])
            except ValueError as e:  # UnsupportedSchedule, or a ComfyUI-only schedule
                problems.append(("schedule", str(e)))
        start, end = inputs["denoising_start"], inputs["denoising_end"]
        if start > 0.0 and start >= end:
            problems.append(
                ("denoising_start", f"denoising_start {start} must be below denoising_end {end}")
            )
        if start > 0.0 and inputs["denoise"] < 1.0:
            problems.append(("denoise", "denoising_start replaces denoise: use denoise 1"))
        if inputs["convention"] == "comfyui" and (start > 0.0 or end < 1.0):
            problems.append(
                (
                    "convention",
                    "denoising_start / denoising_end follow diffusers: use convention diffusers",
                )
            )
        return [(field, "invalid_combination", message) for field, message in problems]

    @classmethod
    def cost(cls, inputs: CostInputs) -> Cost:
        return sampling_cost(inputs)

    def run(
        self,
        ctx: Any,
        model: ModelHandle,
        positive: Conditioning,
        latent: LatentBatch,
        seed: int,
        steps: int,
        cfg: float,
        sampler: str,
        schedule: str,
        denoise: float,
        denoising_start: float,
        denoising_end: float,
        convention: str = "diffusers",
        negative: Conditioning | None = None,
    ) -> dict[str, Any]:
        settings = SampleSettings(
            seed, steps, cfg, sampler, schedule, denoise, denoising_start, denoising_end
        )
        ctx.check_interrupted()
        run = comfy_sample if convention == "comfyui" else sample
        out = run(model, positive, negative, latent, settings, progress_callback(ctx, model))
        return {"latent": LatentBatch(out)}  # stays on the model's device
