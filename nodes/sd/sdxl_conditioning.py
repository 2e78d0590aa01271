"""SDXL's added conditioning: the pooled text embedding and the size / aesthetic ids.

A U-Net with ``addition_embed_type == "text_time"`` takes ``added_cond_kwargs``:
``text_embeds`` (pooled bigG embedding) and ``time_ids``: the base's 6 numbers
``original_size + crops_coords_top_left + target_size``, the refiner's 5
``original_size + crops_coords_top_left + (aesthetic_score,)``. Which one a model takes
follows from its added-embedding width, as in diffusers' ``_get_add_time_ids``.
Defaults are diffusers': sizes = the latent's size in pixels, crop (0, 0), aesthetic score
6.0 on the positive side and 2.5 on the negative; a negative without its own sizes uses
the positive's (the base pipeline's ``negative_add_time_ids = add_time_ids``; the refiner
keeps its own crop and aesthetic score).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nodes.sd.handles import Conditioning, ModelHandle

POSITIVE_AESTHETIC = 6.0
NEGATIVE_AESTHETIC = 2.5

Size = tuple[int, int]  # (height, width), diffusers' order


@dataclass(frozen=True)
class SizeConditioning:
    """Explicit micro-conditioning; None fields take the defaults above."""

    original: Size | None = None
    crop: Size = (0, 0)  # (top, left)
    target: Size | None = None
    aesthetic: float | None = None


def needs_added_conditioning(model: ModelHandle) -> bool:
    return getattr(model.unet.config, "addition_embed_type", None) == "text_time"


def _n_time_ids(model: ModelHandle, pooled_dim: int) -> int:
    unet = model.unet
    width = unet.add_embedding.linear_1.in_features
    n, rest = divmod(width - pooled_dim, unet.config.addition_time_embed_dim)
    if rest or n not in (5, 6):
        raise ValueError(
            f"conditioning with a {pooled_dim}-d pooled embedding does not fit this model's "
            f"added embedding ({width} inputs): encode the prompt with this checkpoint's CLIP"
        )
    return n


def _ids(
    sizes: SizeConditioning, pixels: Size, n_ids: int, aesthetic: float, base: SizeConditioning
) -> list[float]:
    original = sizes.original or base.original or pixels
    if n_ids == 5:
        score = sizes.aesthetic if sizes.aesthetic is not None else aesthetic
        return [*original, *sizes.crop, score]
    return [*original, *sizes.crop, *(sizes.target or base.target or pixels)]


def _per_item(t: torch.Tensor, batch: int) -> torch.Tensor:
    if t.shape[0] == batch:
        return t
    if t.shape[0] != 1:
        raise ValueError(f"a conditioning of {t.shape[0]} prompts does not fit a batch of {batch}")
    return t.repeat(batch, 1)


def added_conditioning(
    model: ModelHandle,
    positive: Conditioning,
    negative: Conditioning | None,
    batch: int,
    guided: bool,
    pixels: Size,
    negative_inherits: bool = True,
) -> dict[str, torch.Tensor] | None:
    """``added_cond_kwargs`` for one (CFG-batched [uncond x B, cond x B]) U-Net call, or
    None for a model without added conditioning. ``negative_inherits`` False: a negative
    without its own sizes takes the defaults, not the positive's (ComfyUI's rule: every
    conditioning's ``encode_adm`` defaults to the latent's size)."""
    if not needs_added_conditioning(model):
        return None
    if positive.pooled is None or (guided and negative is not None and negative.pooled is None):
        raise ValueError(
            "this SDXL model needs SDXL conditioning (with a pooled embedding): encode the "
            "prompts with this checkpoint's CLIP"
        )
    n_ids = _n_time_ids(model, positive.pooled.shape[-1])
    dtype, device = model.dtype, model.device
    pos_sizes = positive.sizes or SizeConditioning()
    pos_ids = _ids(pos_sizes, pixels, n_ids, POSITIVE_AESTHETIC, SizeConditioning())
    pooled = _per_item(positive.pooled.to(device, dtype), batch)
    time_ids = torch.tensor([pos_ids], dtype=dtype).to(device).repeat(batch, 1)
    if not guided or negative is None:
        return {"text_embeds": pooled, "time_ids": time_ids}
    if negative.sizes is not None or not negative_inherits:
        own = negative.sizes or SizeConditioning()
        neg_ids = _ids(own, pixels, n_ids, NEGATIVE_AESTHETIC, SizeConditioning())
    elif n_ids == 6:
        neg_ids = pos_ids
    else:  # refiner: the positive's original size, its own crop (0, 0) and score 2.5
        inherit = SizeConditioning(original=tuple(pos_ids[:2]))  # type: ignore[arg-type]
        neg_ids = _ids(SizeConditioning(), pixels, n_ids, NEGATIVE_AESTHETIC, inherit)
    assert negative.pooled is not None
    neg_pooled = _per_item(negative.pooled.to(device, dtype), batch)
    neg_time = torch.tensor([neg_ids], dtype=dtype).to(device).repeat(batch, 1)
    return {
        "text_embeds": torch.cat([neg_pooled, pooled]),
        "time_ids": torch.cat([neg_time, time_ids]),
    }


def zeros_like_conditioning(positive: Conditioning) -> Conditioning:
    """diffusers' ``force_zeros_for_empty_prompt``: no negative prompt -> zeros."""
    pooled = torch.zeros_like(positive.pooled) if positive.pooled is not None else None
    return Conditioning(torch.zeros_like(positive.embeddings), pooled=pooled)
