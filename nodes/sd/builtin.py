"""The built-in checkpoint "builtin/tiny-random": an SD-1.x model small enough to build on
the fly, so every workflow runs on a fresh machine with no downloads.

It keeps the real SD-1.x structure where shapes matter: a 4-level VAE (8x factor,
4 latent channels), a cross-attention U-Net, a CLIP text model with the full
49,408-token vocabulary, and the SD-1.5 PNDM scheduler config. Weights are random
but fully determined by the seed.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from nodes.sd.tokenizer import BOS_ID, EOS_ID, VOCAB_SIZE, load_clip_tokenizer

NAME = "builtin/tiny-random"
NATIVE_SIZE = 64  # pixels; latents 8x8

TINY_UNET_CONFIG: dict[str, Any] = {
    "sample_size": NATIVE_SIZE // 8,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [32, 64],
    "layers_per_block": 1,
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "cross_attention_dim": 32,
    # SD-1.x convention: diffusers' "attention_head_dim" is really the head count (8).
    "attention_head_dim": 8,
    "norm_num_groups": 32,
}

TINY_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": [32, 32, 64, 64],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": NATIVE_SIZE,
    "scaling_factor": 0.18215,
}

TINY_TEXT_CONFIG: dict[str, Any] = {
    "vocab_size": VOCAB_SIZE,
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 77,
    "projection_dim": 32,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "bos_token_id": BOS_ID,
    "eos_token_id": EOS_ID,
    "pad_token_id": EOS_ID,
}

# SD-1.5's scheduler_config.json (offline-models.md section 3).
SD15_SCHEDULER_CONFIG: dict[str, Any] = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
    "clip_sample": False,
}


def build_tiny_components(seed: int = 0) -> dict[str, Any]:
    """unet, vae, text_encoder, tokenizer, scheduler of the built-in model (fp32, CPU, eval).

    Each component is initialised right after ``torch.manual_seed(seed)`` (as in
    diffusers' own tests), inside a forked RNG so the caller's global torch RNG is
    untouched; the same seed gives bit-identical weights."""
    out: dict[str, Any] = {}
    makers = {
        "unet": lambda: UNet2DConditionModel(**TINY_UNET_CONFIG),
        "vae": lambda: AutoencoderKL(**TINY_VAE_CONFIG),
        "text_encoder": lambda: CLIPTextModel(CLIPTextConfig(**TINY_TEXT_CONFIG)),
    }
    for key, make in makers.items():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out[key] = make().eval().requires_grad_(False)
    out["tokenizer"] = load_clip_tokenizer()
    out["scheduler"] = PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG)
    return out
