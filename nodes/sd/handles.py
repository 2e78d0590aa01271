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
    latent_channels: int = 4  # the U-Net's in_channels (an empty latent gets this many)
    # SDXL base (diffusers' force_zeros_for_empty_prompt): no negative -> zeros
    zeros_for_missing_negative: bool = False
    preview: Any = None  # latents -> PIL image for progress (nodes/sd/preview.py), or None

    @property
    def unet(self) -> Any:
        return resolve(self.unet_ref)

    def cache_nbytes(self) -> int:
        return module_nbytes(self.unet_ref)


@dataclass(frozen=True)
class ClipHandle:
    """One or two text encoders with their tokenizers.

    ``family`` "sd": last hidden state of one encoder (SD 1.x/2.x). "sdxl": penultimate
    hidden states of every encoder concatenated, plus the pooled (projected) embedding of
    the last one; the base has CLIP-L + OpenCLIP bigG (``*_2``), the refiner bigG only."""

    tokenizer: Any  # transformers CLIPTokenizer(Fast), model_max_length 77
    text_encoder_ref: Any  # transformers CLIPTextModel (or ...WithProjection), or its ref
    device: torch.device
    dtype: torch.dtype
    identity: str
    tokenizer_2: Any = None  # SDXL base: the OpenCLIP bigG tokenizer (pads with "!")
    text_encoder_2_ref: Any = None  # SDXL base: CLIPTextModelWithProjection (bigG), or its ref
    family: str = "sd"

    @property
    def text_encoder(self) -> Any:
        return resolve(self.text_encoder_ref)

    @property
    def text_encoder_2(self) -> Any:
        return None if self.text_encoder_2_ref is None else resolve(self.text_encoder_2_ref)

    def cache_nbytes(self) -> int:
        more = 0 if self.text_encoder_2_ref is None else module_nbytes(self.text_encoder_2_ref)
        return module_nbytes(self.text_encoder_ref) + more


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
    second: TokenWindows | None = None  # the same windows for a CLIP's second tokenizer

    @property
    def nbytes(self) -> int:
        more = self.second.nbytes if self.second is not None else 0
        return int(self.ids.nbytes + self.weights.nbytes) + more


@dataclass(frozen=True)
class Conditioning:
    embeddings: torch.Tensor  # [1, 77 * windows, dim], on the model's device
    text: str = ""
    pooled: torch.Tensor | None = None  # SDXL: [1, dim] projected embedding of the last encoder
    sizes: Any = None  # SDXL: nodes.sd.sdxl_conditioning.SizeConditioning (None: defaults)

    @property
    def nbytes(self) -> int:
        more = self.pooled.nbytes if self.pooled is not None else 0
        return int(self.embeddings.nbytes) + int(more)


@dataclass(frozen=True)
class LatentBatch:
    """Latents in the U-Net's space (already multiplied by the VAE scaling factor)."""

    samples: torch.Tensor  # [B, 4, h, w]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return int(self.samples.nbytes)
