"""diffusers SDXL components -> an original SGM ("single-file") checkpoint.

The inverse of diffusers' single-file converters for SDXL, built on `ldm_export` (the
U-Net and VAE layouts are the LDM ones; the text encoders sit under
``conditioner.embedders``), so tests and benches can write SDXL base and refiner files
that load back with bit-identical weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nodes.sd.ldm_export import (
    clip_to_ldm,
    open_clip_to_ldm,
    scheduler_hints,
    unet_to_ldm,
    unet_vae_hints,
    vae_to_ldm,
    write_checkpoint,
)
from nodes.sd.sdxl_arch import BIGG_BASE_PREFIX, BIGG_REFINER_PREFIX, CLIP_L_PREFIX


def to_sgm_state_dict(
    unet: Any, vae: Any, text_encoder: Any | None, text_encoder_2: Any
) -> dict[str, torch.Tensor]:
    """Base (``text_encoder`` = CLIP-L) or refiner (``text_encoder`` None) state dict."""
    out = {**unet_to_ldm(unet), **vae_to_ldm(vae)}
    if text_encoder is not None:
        out.update(clip_to_ldm(text_encoder, prefix=CLIP_L_PREFIX))
    bigg = BIGG_BASE_PREFIX if text_encoder is not None else BIGG_REFINER_PREFIX
    out.update(open_clip_to_ldm(text_encoder_2, prefix=bigg))
    return out


def sgm_hints(
    unet: Any, vae: Any, text_encoder: Any | None, text_encoder_2: Any, scheduler: Any = None
) -> dict[str, Any]:
    """What shapes cannot tell (head counts, group norms, activations, the VAE's scaling
    factor, the scheduler), in the layout `checkpoint_arch.apply_hints` reads."""
    t2 = text_encoder_2.config
    out: dict[str, Any] = {
        **unet_vae_hints(unet, vae),
        "text_encoder_2": {
            "num_attention_heads": t2.num_attention_heads,
            "hidden_act": t2.hidden_act,
            "layer_norm_eps": t2.layer_norm_eps,
        },
    }
    if text_encoder is not None:
        t = text_encoder.config
        out["text_encoder"] = {
            "num_attention_heads": t.num_attention_heads,
            "hidden_act": t.hidden_act,
            "projection_dim": t.projection_dim,
            "layer_norm_eps": t.layer_norm_eps,
        }
    return {**out, **scheduler_hints(scheduler)}


def save_sgm_file(
    path: Path,
    unet: Any,
    vae: Any,
    text_encoder: Any | None,
    text_encoder_2: Any,
    scheduler: Any = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write an SGM-layout ``.safetensors`` (with `sgm_hints` as metadata)."""
    sd = to_sgm_state_dict(unet, vae, text_encoder, text_encoder_2)
    hint = sgm_hints(unet, vae, text_encoder, text_encoder_2, scheduler)
    return write_checkpoint(path, sd, hint, dtype)
