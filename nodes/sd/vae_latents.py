"""Between the U-Net's latent space and the VAE's, as the model's VAE config says.

diffusers' rules: latents = (mode - latents_mean) * scaling_factor / latents_std when the
VAE has per-channel statistics, (mode - shift_factor) * scaling_factor when it has a
shift, else mode * scaling_factor (SD 1.x 0.18215, SDXL 0.13025); decoding inverts it.
The spatial factor is 2^(levels - 1). Nothing here is a constant of one model family.
"""

from __future__ import annotations

from typing import Any

import torch


def spatial_factor(vae: Any) -> int:
    """Pixels per latent cell along each axis (8 for every SD VAE)."""
    return int(2 ** (len(vae.config.block_out_channels) - 1))


def _stats(vae: Any, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    mean = getattr(vae.config, "latents_mean", None)
    std = getattr(vae.config, "latents_std", None)
    if mean is None or std is None:
        return None
    view = (1, len(mean), 1, 1)
    return (
        torch.tensor(mean).view(view).to(like.device, like.dtype),
        torch.tensor(std).view(view).to(like.device, like.dtype),
    )


def to_vae_space(vae: Any, samples: torch.Tensor, scaling_factor: float) -> torch.Tensor:
    """U-Net latents -> what ``vae.decode`` takes (already on the VAE's device/dtype)."""
    stats = _stats(vae, samples)
    if stats is not None:
        return samples * stats[1] / scaling_factor + stats[0]
    shift = getattr(vae.config, "shift_factor", None)
    z = samples / scaling_factor
    return z + shift if shift is not None else z


def from_vae_space(vae: Any, mode: torch.Tensor, scaling_factor: float) -> torch.Tensor:
    """The encoder's posterior mode -> U-Net latents."""
    stats = _stats(vae, mode)
    if stats is not None:
        return (mode - stats[0]) * scaling_factor / stats[1]
    shift = getattr(vae.config, "shift_factor", None)
    if shift is not None:
        mode = mode - shift
    return mode * scaling_factor


def vae_dtype(family: str, dtype: torch.dtype, vae_config: Any) -> torch.dtype:
    """The dtype the VAE is held in. SDXL's original VAE overflows in fp16 (NaNs, black
    images); its config says ``force_upcast`` and diffusers' SDXL pipelines then decode
    in fp32. Here such a VAE simply stays in fp32 (about 160 MB more). The fp16-fix VAE
    (madebyollin/sdxl-vae-fp16-fix) says ``force_upcast: false`` in its diffusers config
    and keeps fp16. bf16 has fp32's range and is kept; SD 1.x/2.x VAEs are unchanged."""
    if family == "sdxl" and dtype == torch.float16 and getattr(vae_config, "force_upcast", True):
        return torch.float32
    return dtype
