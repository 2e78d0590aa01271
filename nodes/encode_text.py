"""EncodeText: token windows -> CLIP embeddings (the U-Net's cross-attention input)."""

from __future__ import annotations

from typing import Any

import torch

from graph.node import Node
from nodes.sd.embeddings import vectors_in_place
from nodes.sd.handles import ClipHandle, Conditioning, TokenWindows
from nodes.sd.lora_patch import applies_patches
from nodes.sd.prompt_weights import apply_weights
from nodes.sd.sdxl_text import check_skip, encode_sdxl
from nodes.types import Clip, Tokens
from nodes.types import Conditioning as ConditioningType


@torch.no_grad()
@applies_patches  # the CLIP's LoRAs, merged for this call only
def encode_windows(clip: ClipHandle, tokens: TokenWindows) -> torch.Tensor:
    """Last hidden state of every window (``clip.skip`` > 1: that many layers from the
    end, through the final layer norm, as diffusers' ``clip_skip``), concatenated:
    [1, 77 * windows, dim].

    Each window is encoded on its own (batch 1), as diffusers' pipelines encode a
    prompt, so a one-window prompt gives the pipeline's embeddings bit for bit."""
    encoder = clip.text_encoder
    use_mask = bool(getattr(encoder.config, "use_attention_mask", False))
    outs = []
    for i, row in enumerate(tokens.ids):
        ids = row.unsqueeze(0).to(clip.device)
        mask = torch.ones_like(ids) if use_mask else None
        with vectors_in_place(encoder, {c: v for r, c, v in tokens.vectors if r == i}):
            outs.append(skipped_hidden(encoder, ids, mask, clip.skip))
    hidden = torch.cat(outs, dim=0)  # [windows, 77, dim]
    hidden = apply_weights(hidden, tokens.weights)
    return hidden.reshape(1, -1, hidden.shape[-1])


def skipped_hidden(encoder: Any, ids: torch.Tensor, mask: Any, skip: int) -> torch.Tensor:
    """A1111 CLIP skip ``skip`` (1: the last layer) = diffusers ``clip_skip = skip - 1``."""
    if skip <= 1:
        return encoder(ids, attention_mask=mask)[0]
    check_skip(encoder, skip)
    out = encoder(ids, attention_mask=mask, output_hidden_states=True)
    final_norm = getattr(encoder, "text_model", encoder).final_layer_norm  # transformers 5: flat
    return final_norm(out.hidden_states[-skip])


class EncodeText(Node):
    """Encode token windows with the CLIP text model; applies the prompt weights.

    With an SDXL CLIP: both encoders' penultimate states (concatenated) and the pooled
    embedding; the size conditioning then defaults to the latent's size at sampling
    (set it with SizeConditioning)."""

    CATEGORY = "conditioning"
    OUTPUTS = {"conditioning": ConditioningType}
    clip: Clip
    tokens: Tokens

    def run(self, ctx: Any, clip: ClipHandle, tokens: TokenWindows) -> dict[str, Any]:
        if clip.family == "sdxl":
            return {"conditioning": encode_sdxl(clip, tokens)}
        if tokens.second is not None:
            raise ValueError("these tokens come from an SDXL CLIP: tokenize with the same CLIP")
        return {"conditioning": Conditioning(encode_windows(clip, tokens), text=tokens.text)}
