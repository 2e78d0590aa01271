"""The values that flow along MODEL, CLIP, VAE, TOKENS, CONDITIONING and LATENT links.

Model handles are owned by the process-wide model store (``ctx.resources``),
so they report no bytes to the output cache (``cache_nbytes``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class ModelHandle:
    """The denoising U-Net with what sampling needs to know about it."""

    unet: Any  # diffusers UNet2DConditionModel, eval mode, on `device` in `dtype`
    scheduler_config: dict[str, Any]  # diffusers scheduler config of the checkpoint
    prediction_type: str  # "epsilon" | "v_prediction"
    device: torch.device
    dtype: torch.dtype
    identity: str  # stable id of the loaded file (name, size, mtime, dtype, device)
    vae_scale_factor: int = 8
    preview: Any = None  # latents -> PIL image for progress (nodes/sd/preview.py), or None

    def cache_nbytes(self) -> int:
        return 0


@dataclass(frozen=True)
class ClipHandle:
    tokenizer: Any  # transformers CLIPTokenizer(Fast), model_max_length 77
    text_encoder: Any  # transformers CLIPTextModel
    device: torch.device
    dtype: torch.dtype
    identity: str

    def cache_nbytes(self) -> int:
        return 0


@dataclass(frozen=True)
class VaeHandle:
    vae: Any  # diffusers AutoencoderKL
    device: torch.device
    dtype: torch.dtype
    identity: str
    scaling_factor: float = 0.18215

    def cache_nbytes(self) -> int:
        return 0


@dataclass(frozen=True)
class TokenWindows:
    """A prompt as 77-token windows (BOS + 75 + EOS/pad), with per-token weights."""

    ids: torch.Tensor  # int64 [windows, 77]
    weights: torch.Tensor  # float32 [windows, 77], 1.0 where unweighted
    text: str = ""

    @property
    def nbytes(self) -> int:
        return int(self.ids.nbytes + self.weights.nbytes)


@dataclass(frozen=True)
class Conditioning:
    embeddings: torch.Tensor  # [1, 77 * windows, dim], on the model's device
    text: str = ""

    @property
    def nbytes(self) -> int:
        return int(self.embeddings.nbytes)


@dataclass(frozen=True)
class LatentBatch:
    """Latents in the U-Net's space (already multiplied by the VAE scaling factor)."""

    samples: torch.Tensor  # [B, 4, h, w]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return int(self.samples.nbytes)
