"""Text-to-image with the demo components via diffusers schedulers (used by training-time
evaluation, the bench and the tests; the engine's Sample node does the same job in workflows)."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
)

from demo.models import SCHEDULER_CONFIG
from nodes.sd.tokenizer import load_clip_tokenizer

SAMPLERS = {
    "euler": (EulerDiscreteScheduler, {}),
    "euler_ancestral": (EulerAncestralDiscreteScheduler, {}),
    "ddim": (DDIMScheduler, {"set_alpha_to_one": False}),
    "dpmpp_2m": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
}
# SD-1.5's inference spacing.
INFERENCE_CONFIG = dict(SCHEDULER_CONFIG, timestep_spacing="leading", steps_offset=1)


def make_scheduler(name: str):
    cls, kwargs = SAMPLERS[name]
    return cls.from_config(INFERENCE_CONFIG, **kwargs)


def tokenize(prompts: list[str]) -> torch.Tensor:
    tok = load_clip_tokenizer()
    return tok(
        prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
    ).input_ids


@torch.no_grad()
def encode_text(text_encoder, prompts: list[str]) -> torch.Tensor:
    return text_encoder(tokenize(prompts)).last_hidden_state


@torch.no_grad()
def sample_latents(
    unet,
    text_encoder,
    prompts: list[str],
    *,
    steps: int = 20,
    sampler: str = "dpmpp_2m",
    cfg: float = 3.0,
    seed: int = 0,
) -> torch.Tensor:
    """Scaled latents [n, 4, 8, 8] with classifier-free guidance, one seed per batch."""
    n = len(prompts)
    cond = encode_text(text_encoder, prompts)
    uncond = encode_text(text_encoder, [""]).expand(n, -1, -1)
    sched = make_scheduler(sampler)
    sched.set_timesteps(steps)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((n, 4, 8, 8), generator=gen) * sched.init_noise_sigma
    emb = torch.cat([uncond, cond])
    for t in sched.timesteps:
        inp = sched.scale_model_input(torch.cat([x, x]), t)
        eps_u, eps_c = unet(inp, t, encoder_hidden_states=emb).sample.chunk(2)
        eps = eps_u + cfg * (eps_c - eps_u)
        x = sched.step(eps, t, x, generator=gen).prev_sample
    return x


@torch.no_grad()
def decode(vae, latents: torch.Tensor, scale: float) -> np.ndarray:
    """Scaled latents -> uint8 images [n, 64, 64, 3]."""
    img = vae.decode(latents / scale).sample.clamp(-1, 1)
    return ((img + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def generate(unet, text_encoder, vae, prompts: list[str], scale: float, **kw) -> np.ndarray:
    return decode(vae, sample_latents(unet, text_encoder, prompts, **kw), scale)
