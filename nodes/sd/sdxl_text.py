"""Prompts for CLIPs with two encoders, and SDXL's text conditioning.

SDXL (diffusers' ``StableDiffusionXLPipeline.encode_prompt``): each encoder's
penultimate hidden state (no final layer norm), concatenated along the feature axis
(CLIP-L 768 + bigG 1280 = 2048 on the base; bigG alone on the refiner), and the pooled,
projected embedding of the last encoder. Prompt weights, BREAK and prompts longer than
one window work per encoder as for SD 1.x (`prompt_weights`); the pooled embedding is the
first window's (ComfyUI's rule). When the two prompts need different window counts the
shorter is padded with empty-prompt windows (also ComfyUI's rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from nodes.sd.embeddings import vectors_in_place
from nodes.sd.handles import ClipHandle, Conditioning, TokenWindows
from nodes.sd.lora_patch import applies_patches
from nodes.sd.prompt_weights import apply_weights, tokenize_prompt


def _pad_windows(tokens: TokenWindows, tokenizer: object, n: int) -> TokenWindows:
    have = tokens.ids.shape[0]
    if have >= n:
        return tokens
    empty = tokenize_prompt(tokenizer, "")
    ids = torch.cat([tokens.ids, empty.ids.repeat(n - have, 1)])
    weights = torch.cat([tokens.weights, empty.weights.repeat(n - have, 1)])
    return replace(tokens, ids=ids, weights=weights)


def tokenize_for(
    clip: ClipHandle,
    text: str,
    text_2: str = "",
    vectors_for: Callable[[Any, str | None], Any] | None = None,
) -> TokenWindows:
    """The prompt's windows for every tokenizer of ``clip``. ``text_2`` goes to the
    second encoder (SDXL base: OpenCLIP bigG); empty means ``text`` (diffusers' prompt_2).
    ``vectors_for(encoder, part)`` gives `tokenize_prompt`'s ``vectors_of`` for that
    encoder (textual-inversion embeddings): on SDXL ``part`` names the file's tensor for
    it ("clip_l" for CLIP-L, "clip_g" for bigG, also the refiner's only encoder), since
    the two widths need not differ (they do not in tiny test models)."""
    sdxl = clip.family == "sdxl"
    first_part = ("clip_l" if clip.tokenizer_2 is not None else "clip_g") if sdxl else None

    def vectors_of(encoder: Any, part: str | None) -> Any:
        return None if vectors_for is None else vectors_for(encoder, part)

    first = tokenize_prompt(
        clip.tokenizer, text, vectors_of=vectors_of(clip.text_encoder, first_part)
    )
    if clip.tokenizer_2 is None:
        if text_2:
            raise ValueError(
                "text_2 is for the second text encoder, and this CLIP has only one "
                "(SD 1.x/2.x or the SDXL refiner); leave it empty"
            )
        return first
    second = tokenize_prompt(
        clip.tokenizer_2, text_2 or text, vectors_of=vectors_of(clip.text_encoder_2, "clip_g")
    )
    n = max(first.ids.shape[0], second.ids.shape[0])
    first = _pad_windows(first, clip.tokenizer, n)
    second = _pad_windows(second, clip.tokenizer_2, n)
    return replace(first, second=second)


def check_skip(encoder: Any, skip: int) -> None:
    """CLIP skip counts layers of this encoder: more than it has is an error."""
    layers = encoder.config.num_hidden_layers
    if skip > layers:
        raise ValueError(f"CLIP skip {skip} is more than this text encoder's {layers} layers")


@torch.no_grad()
def _penultimate(encoder: Any, tokens: TokenWindows, device: torch.device, skip: int) -> tuple:
    """([1, 77 * windows, dim] weighted penultimate states, first window's pooled or None).
    CLIP skip ``skip`` > 1 goes that many layers further back from the penultimate one."""
    check_skip(encoder, skip)
    states, pooled = [], None
    for i, row in enumerate(tokens.ids):
        with vectors_in_place(encoder, {c: v for r, c, v in tokens.vectors if r == i}):
            out = encoder(row.unsqueeze(0).to(device), output_hidden_states=True)
        states.append(out.hidden_states[-(max(skip, 1) + 1)])
        if i == 0 and out[0].ndim == 2:  # CLIPTextModelWithProjection: text_embeds
            pooled = out[0]
    hidden = apply_weights(torch.cat(states, dim=0), tokens.weights)
    return hidden.reshape(1, -1, hidden.shape[-1]), pooled


@applies_patches  # the CLIP's LoRAs, merged for this call only
def encode_sdxl(clip: ClipHandle, tokens: TokenWindows) -> Conditioning:
    """SDXL conditioning of one prompt: embeddings [1, 77k, sum of widths] and pooled."""
    pairs = [(clip.text_encoder, tokens)]
    if clip.text_encoder_2 is not None:
        if tokens.second is None:
            raise ValueError(
                "these tokens come from a CLIP with one tokenizer, but this CLIP has two "
                "text encoders: tokenize with the same CLIP"
            )
        pairs.append((clip.text_encoder_2, tokens.second))
    elif tokens.second is not None:
        raise ValueError(
            "these tokens come from a CLIP with two tokenizers (SDXL base), but this CLIP "
            "has one text encoder: tokenize with the same CLIP"
        )
    hidden, pooled = [], None
    for encoder, windows in pairs:
        h, p = _penultimate(encoder, windows, clip.device, clip.skip)
        hidden.append(h)
        pooled = p if p is not None else pooled
    if pooled is None:
        raise ValueError("an SDXL CLIP needs a text encoder with a projection (pooled output)")
    return Conditioning(torch.cat(hidden, dim=-1), text=tokens.text, pooled=pooled)
