"""The values that flow along MODEL, CLIP, VAE, TOKENS, CONDITIONING and LATENT links.

A model handle loaded by a checkpoint holds a `ComponentRef` per module, not the module:
the engine's model store (``ctx.resources.models``) owns and accounts for the module, so
a handle kept in the output cache never keeps an evicted model alive; reading
``handle.unet`` loads it again when it was evicted. Handles built around a module directly
(tests, training scripts) report its bytes to the output cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from graph.models import resolve
from nodes.sd.model_store import module_nbytes


@dataclass(frozen=True)
class ModelHandle:
    """The denoising U-Net with what sampling needs to know about it."""

    unet_ref: Any  # diffusers UNet2DConditionModel (eval, on `device` in `dtype`) or its ref
    scheduler_config: dict[str, Any]  # diffusers scheduler config of the checkpoint
    prediction_type: str  # "epsilon" | "v_prediction"
    device: torch.device
    dtype: torch.dtype
    identity: str  # stable id of the loaded file (name, size, mtime, dtype, device)
    vae_scale_factor: int = 8
    preview: Any = None  # latents -> PIL image for progress (nodes/sd/preview.py), or None

    @property
    def unet(self) -> Any:
        return resolve(self.unet_ref)

    def cache_nbytes(self) -> int:
        return module_nbytes(self.unet_ref)


@dataclass(frozen=True)
class ClipHandle:
    tokenizer: Any  # transformers CLIPTokenizer(Fast), model_max_length 77
    text_encoder_ref: Any  # transformers CLIPTextModel, or its ref
    device: torch.device
    dtype: torch.dtype
    identity: str

    @property
    def text_encoder(self) -> Any:
        return resolve(self.text_encoder_ref)

    def cache_nbytes(self) -> int:
        return module_nbytes(self.text_encoder_ref)


@dataclass(frozen=True)
class VaeHandle:
    vae_ref: Any  # diffusers AutoencoderKL, or its ref
    device: torch.device
    dtype: torch.dtype
    identity: str
    scaling_factor: float = 0.18215

    @property
    def vae(self) -> Any:
        return resolve(self.vae_ref)

    def cache_nbytes(self) -> int:
        return module_nbytes(self.vae_ref)


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
