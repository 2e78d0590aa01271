"""Tiny random SDXL models (base and refiner shapes) for tests and benches, offline.

Both keep SDXL's structure where it matters: two text encoders on the base (CLIP-L
without projection, OpenCLIP-bigG-like with projection, the real CLIP vocabulary, bigG
padding with "!"), the penultimate-state width sum as cross-attention width, a U-Net with
the ``text_time`` added embedding (6 size ids on the base, 5 with the aesthetic score on
the refiner), per-level transformer depth, a 4-level VAE (8x) with SDXL's scaling factor
0.13025 and ``force_upcast``, and SDXL's Euler scheduler config. Weights come from seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from nodes.sd.builtin import TINY_TEXT_CONFIG, TINY_VAE_CONFIG
from nodes.sd.sdxl_arch import shipped_sdxl
from nodes.sd.sgm_export import save_sgm_file
from nodes.sd.tokenizer import load_clip_tokenizer

# the tiny SD 1.x text tower's settings (hidden_act left to each encoder's default)
TEXT = {k: v for k, v in TINY_TEXT_CONFIG.items() if k != "hidden_act"}
TIME_DIM = 8


def _unet(cross: int, n_ids: int) -> dict[str, Any]:
    return {
        "sample_size": 8,
        "in_channels": 4,
        "out_channels": 4,
        "block_out_channels": [32, 64],
        "layers_per_block": 1,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
        "transformer_layers_per_block": [1, 2],
        "attention_head_dim": [2, 4],
        "use_linear_projection": True,
        "cross_attention_dim": cross,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": TIME_DIM,
        "projection_class_embeddings_input_dim": n_ids * TIME_DIM + TEXT["projection_dim"],
        "norm_num_groups": 32,
    }


VAE = {**TINY_VAE_CONFIG, "scaling_factor": 0.13025, "force_upcast": True}  # SDXL's VAE


def _seeded(seed: int, make: Any) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make().eval().requires_grad_(False)


def tiny_sdxl_components(refiner: bool = False, seed: int = 0) -> dict[str, Any]:
    """diffusers pipeline components (StableDiffusionXLPipeline / ...Img2ImgPipeline
    keyword arguments): the refiner has no ``text_encoder``/``tokenizer``."""
    sched = shipped_sdxl("sdxl-refiner" if refiner else "sdxl-base").scheduler
    bigg = CLIPTextConfig(**{**TEXT, "hidden_act": "gelu"})
    # cross-attention width: bigG alone (refiner) or CLIP-L + bigG; 5 or 6 size ids
    unet = _unet(32, 5) if refiner else _unet(64, 6)
    out: dict[str, Any] = {
        "unet": _seeded(seed, lambda: UNet2DConditionModel(**unet)),
        "vae": _seeded(seed + 1, lambda: AutoencoderKL(**VAE)),
        "text_encoder_2": _seeded(seed + 2, lambda: CLIPTextModelWithProjection(bigg)),
        "tokenizer_2": load_clip_tokenizer("!"),
        "scheduler": EulerDiscreteScheduler.from_config(sched),
        "text_encoder": None,
        "tokenizer": None,
    }
    if not refiner:
        clip_l = CLIPTextConfig(**{**TEXT, "hidden_act": "quick_gelu"})
        out["text_encoder"] = _seeded(seed + 3, lambda: CLIPTextModel(clip_l))
        out["tokenizer"] = load_clip_tokenizer()
    return out


def sdxl_pipeline(components: dict[str, Any], scheduler: Any = None, img2img: bool = False) -> Any:
    """StableDiffusionXLPipeline (base) or StableDiffusionXLImg2ImgPipeline (refiner:
    ``requires_aesthetics_score``) over the components."""
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline

    c = {**components, "scheduler": scheduler or components["scheduler"]}
    if img2img:
        refiner = c["text_encoder"] is None
        pipe = StableDiffusionXLImg2ImgPipeline(
            **c,
            requires_aesthetics_score=refiner,
            force_zeros_for_empty_prompt=not refiner,
            add_watermarker=False,
        )
    else:
        pipe = StableDiffusionXLPipeline(**c, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def write_sdxl_folder(path: Path, components: dict[str, Any]) -> Path:
    """A diffusers folder (model_index.json, safetensors weights, tokenizers)."""
    pipe = sdxl_pipeline(components, img2img=components["text_encoder"] is None)
    pipe.save_pretrained(Path(path), safe_serialization=True)
    return Path(path)


def write_sdxl_single_file(
    path: Path, components: dict[str, Any], dtype: torch.dtype | None = None
) -> Path:
    """An SGM-layout single file (base or refiner, by whether CLIP-L is there)."""
    c = components
    return save_sgm_file(
        Path(path),
        c["unet"],
        c["vae"],
        c["text_encoder"],
        c["text_encoder_2"],
        c["scheduler"],
        dtype=dtype,
    )
