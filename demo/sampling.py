"""Text-to-image with in-memory demo components, for training-time evaluation: the
project's own sampling loop (`nodes.sd.sampling.sample`, the Sample node's), one prompt
per batch item."""

from __future__ import annotations

import numpy as np
import torch

from demo.models import SCHEDULER_CONFIG
from nodes.sd.handles import Conditioning, LatentBatch, ModelHandle
from nodes.sd.sampling import SampleSettings, sample
from nodes.sd.tokenizer import load_clip_tokenizer


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
    cpu = torch.device("cpu")
    prediction = SCHEDULER_CONFIG["prediction_type"]
    model = ModelHandle(unet, SCHEDULER_CONFIG, prediction, cpu, torch.float32, "training")
    positive = Conditioning(encode_text(text_encoder, prompts))
    negative = Conditioning(encode_text(text_encoder, [""]))
    shape = LatentBatch(torch.zeros(len(prompts), 4, 8, 8))
    settings = SampleSettings(seed, steps, cfg, sampler, "normal")
    return sample(model, positive, negative, shape, settings)


@torch.no_grad()
def decode(vae, latents: torch.Tensor, scale: float) -> np.ndarray:
    """Scaled latents -> uint8 images [n, 64, 64, 3]."""
    img = vae.decode(latents / scale).sample.clamp(-1, 1)
    return ((img + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def generate(unet, text_encoder, vae, prompts: list[str], scale: float, **kw) -> np.ndarray:
    return decode(vae, sample_latents(unet, text_encoder, prompts, **kw), scale)
