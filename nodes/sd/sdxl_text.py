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

from dataclasses import replace

import torch

from nodes.sd.handles import ClipHandle, Conditioning, TokenWindows
from nodes.sd.prompt_weights import apply_weights, tokenize_prompt


def _pad_windows(tokens: TokenWindows, tokenizer: object, n: int) -> TokenWindows:
    have = tokens.ids.shape[0]
    if have >= n:
        return tokens
    empty = tokenize_prompt(tokenizer, "")
    ids = torch.cat([tokens.ids, empty.ids.repeat(n - have, 1)])
    weights = torch.cat([tokens.weights, empty.weights.repeat(n - have, 1)])
    return replace(tokens, ids=ids, weights=weights)


def tokenize_for(clip: ClipHandle, text: str, text_2: str = "") -> TokenWindows:
    """The prompt's windows for every tokenizer of ``clip``. ``text_2`` goes to the
    second encoder (SDXL base: OpenCLIP bigG); empty means ``text`` (diffusers' prompt_2)."""
    first = tokenize_prompt(clip.tokenizer, text)
    if clip.tokenizer_2 is None:
        if text_2:
            raise ValueError(
                "text_2 is for the second text encoder, and this CLIP has only one "
                "(SD 1.x/2.x or the SDXL refiner); leave it empty"
            )
        return first
    second = tokenize_prompt(clip.tokenizer_2, text_2 or text)
    n = max(first.ids.shape[0], second.ids.shape[0])
    first = _pad_windows(first, clip.tokenizer, n)
    second = _pad_windows(second, clip.tokenizer_2, n)
    return replace(first, second=second)


@torch.no_grad()
def _penultimate(encoder: object, tokens: TokenWindows, device: torch.device) -> tuple:
    """([1, 77 * windows, dim] weighted penultimate states, first window's pooled or None)."""
    states, pooled = [], None
    for i, row in enumerate(tokens.ids):
        out = encoder(row.unsqueeze(0).to(device), output_hidden_states=True)  # type: ignore[operator]
        states.append(out.hidden_states[-2])
        if i == 0 and out[0].ndim == 2:  # CLIPTextModelWithProjection: text_embeds
            pooled = out[0]
    hidden = apply_weights(torch.cat(states, dim=0), tokens.weights)
    return hidden.reshape(1, -1, hidden.shape[-1]), pooled


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
        h, p = _penultimate(encoder, windows, clip.device)
        hidden.append(h)
        pooled = p if p is not None else pooled
    if pooled is None:
        raise ValueError("an SDXL CLIP needs a text encoder with a projection (pooled output)")
    return Conditioning(torch.cat(hidden, dim=-1), text=tokens.text, pooled=pooled)
