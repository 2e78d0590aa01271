"""Sampler and schedule names (ComfyUI/A1111 style) mapped onto diffusers schedulers.

Every scheduler is built with ``Cls.from_config(model.scheduler_config, ...)``, so it
inherits the checkpoint's beta schedule, timestep spacing and offset.

Schedules:
- ``normal``: the checkpoint's own timestep spacing, i.e. what a diffusers pipeline uses
  when given ``Cls.from_config(pipe.scheduler.config)``. For SD 1.x this is
  ``timestep_spacing="leading"`` with ``steps_offset=1`` (20 Euler steps start at
  t=951, sigma 11.03). It is therefore the schedule that reproduces
  ``StableDiffusionPipeline`` for every sampler; ComfyUI's "normal" starts at sigma_max
  (closer to diffusers' "trailing") and is not reproduced.
- ``karras``: ``use_karras_sigmas=True`` (Karras et al. rho=7 sigmas between the model's
  sigma_min and sigma_max; the spacing setting no longer matters).
- ``exponential``: ``use_exponential_sigmas=True``.
euler_ancestral and ddim have no sigma-schedule option in diffusers, so they accept
``normal`` only (a clear error otherwise).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Literal

from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    KDPM2AncestralDiscreteScheduler,
    KDPM2DiscreteScheduler,
    LMSDiscreteScheduler,
    UniPCMultistepScheduler,
)

SamplerName = Literal[
    "euler",
    "euler_ancestral",
    "heun",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpmpp_2m",
    "dpmpp_2m_sde",
    "ddim",
    "unipc",
]
ScheduleName = Literal[
    "normal", "karras", "exponential", "simple", "sgm_uniform", "ddim_uniform", "beta"
]  # the last four: ComfyUI convention only (nodes/sd/comfy_schedules.py)

SAMPLERS: dict[str, tuple[type, dict[str, Any]]] = {
    "euler": (EulerDiscreteScheduler, {}),
    "euler_ancestral": (EulerAncestralDiscreteScheduler, {}),
    "heun": (HeunDiscreteScheduler, {}),
    "dpm_2": (KDPM2DiscreteScheduler, {}),
    "dpm_2_ancestral": (KDPM2AncestralDiscreteScheduler, {}),
    "lms": (LMSDiscreteScheduler, {}),
    "dpmpp_2m": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpmpp_2m_sde": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "sde-dpmsolver++", "solver_order": 2},
    ),
    "ddim": (DDIMScheduler, {}),
    "unipc": (UniPCMultistepScheduler, {}),
}

SCHEDULE_FLAGS: dict[str, dict[str, Any]] = {
    "normal": {},
    "karras": {"use_karras_sigmas": True},
    "exponential": {"use_exponential_sigmas": True},
}


class UnsupportedSchedule(ValueError):
    """The sampler's diffusers scheduler has no such sigma schedule."""


@functools.cache
def _init_parameters(cls: type) -> frozenset[str]:
    """The constructor's parameter names (read once: every validation asks)."""
    return frozenset(inspect.signature(cls.__init__).parameters)


def scheduler_kwargs(sampler: str, schedule: str) -> tuple[type, dict[str, Any]]:
    """The diffusers class and the from_config overrides for a sampler/schedule pair."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if schedule not in SCHEDULE_FLAGS:
        names = ", ".join(SCHEDULE_FLAGS)
        raise ValueError(
            f"schedule {schedule!r} exists only with convention comfyui; with diffusers "
            f"choose one of {names}"
        )
    cls, kwargs = SAMPLERS[sampler]
    flags = SCHEDULE_FLAGS[schedule]
    missing = [k for k in flags if k not in _init_parameters(cls)]
    if missing:
        raise UnsupportedSchedule(
            f"sampler {sampler} ({cls.__name__}) has no {schedule} schedule in diffusers; "
            f"use schedule normal"
        )
    return cls, {**kwargs, **flags}


def build_scheduler(
    scheduler_config: dict[str, Any],
    sampler: str,
    schedule: str,
    prediction_type: str,
    **overrides: Any,
) -> Any:
    """A fresh diffusers scheduler for one sampling run (schedulers are stateful)."""
    cls, kwargs = scheduler_kwargs(sampler, schedule)
    config = {k: v for k, v in dict(scheduler_config).items() if not k.startswith("_")}
    return cls.from_config(config, **kwargs, prediction_type=prediction_type, **overrides)


def step_kwargs(scheduler: Any, generator: Any) -> dict[str, Any]:
    """Extra ``step`` arguments, chosen as diffusers pipelines do (eta 0 for DDIM, the
    seeded generator for ancestral / SDE samplers)."""
    params = inspect.signature(scheduler.step).parameters
    out: dict[str, Any] = {}
    if "eta" in params:
        out["eta"] = 0.0
    if "generator" in params:
        out["generator"] = generator
    return out
