"""Prompt weighting syntax and 77-token windows (the A1111 / ComfyUI conventions).

Syntax: ``(words)`` multiplies the weight of ``words`` by 1.1, ``[words]`` divides it
by 1.1, ``(words:1.3)`` multiplies it by 1.3; brackets nest (weights multiply);
``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are literal characters; an unclosed bracket
applies to the rest of the prompt (as in A1111); a stray closing bracket is literal
text; ``BREAK`` (upper case, on its own) ends the current 77-token window.

Windows: BOS + up to 75 tokens + EOS, padded with the tokenizer's pad token to 77,
exactly as diffusers' pipelines tokenize a prompt (``padding="max_length"``), so plain
prompts of up to 75 tokens give the same ids as ``StableDiffusionPipeline``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from nodes.sd.embeddings import PATTERN as EMBEDDING
from nodes.sd.handles import TokenWindows

WINDOW = 77
CHUNK = WINDOW - 2  # tokens per window between BOS and EOS
MAX_WINDOWS = 8  # 600 tokens: far beyond what a CLIP prompt usefully holds
MAX_PROMPT_CHARS = 20_000
UP = 1.1
MAX_ABS_WEIGHT = 100.0
_MEAN_FLOOR = 1e-3  # |mean| below this fraction of mean |z|: no mean restoration

_TOKEN = re.compile(
    r"\\[()\[\]\\]"  # escaped bracket or backslash
    r"|:\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*\)"  # ":1.3)" closes a weighted group
    r"|[()\[\]]"
    r"|\bBREAK\b"
    r"|[^\\()\[\]:B]+|."  # plain text (B and : handled one char at a time)
)


class PromptTooLong(ValueError):
    """The prompt needs more windows (or characters) than allowed."""


@dataclass(frozen=True)
class Segment:
    text: str
    weight: float
    brk: bool = False  # a BREAK marker (text empty)
    vectors: Any = None  # a textual-inversion embedding's [n, dim] vectors (text empty)


def split_embeddings(segments: list[Segment], vectors_of: Callable[[str], Any]) -> list[Segment]:
    """Cut ``embedding:NAME[:W]`` out of the text into segments holding its vectors,
    weighted by the surrounding weight times W."""
    out: list[Segment] = []
    for seg in segments:
        pos = 0
        for m in EMBEDDING.finditer(seg.text) if not seg.brk else ():
            if seg.text[pos : m.start()]:
                out.append(replace(seg, text=seg.text[pos : m.start()]))
            weight = seg.weight * (float(m.group(2)) if m.group(2) else 1.0)
            out.append(Segment("", weight, vectors=vectors_of(m.group(1))))
            pos = m.end()
        if pos == 0:
            out.append(seg)
        elif seg.text[pos:]:
            out.append(replace(seg, text=seg.text[pos:]))
    return out


def parse_weights(prompt: str) -> list[Segment]:
    """Split a prompt into runs of text with their weights (adjacent equal weights merged)."""
    out: list[list[Any]] = []  # [text, weight, brk]
    round_open: list[int] = []
    square_open: list[int] = []

    def scale(start: int, factor: float) -> None:
        for seg in out[start:]:
            seg[1] *= factor

    for m in _TOKEN.finditer(prompt):
        tok, number = m.group(0), m.group(1)
        if tok.startswith("\\") and len(tok) == 2:
            out.append([tok[1], 1.0, False])
        elif tok == "(":
            round_open.append(len(out))
        elif tok == "[":
            square_open.append(len(out))
        elif number is not None and round_open:
            weight = float(number)
            if abs(weight) > MAX_ABS_WEIGHT:
                raise ValueError(f"prompt weight {weight} is outside -100..100")
            scale(round_open.pop(), weight)
        elif tok == ")" and round_open:
            scale(round_open.pop(), UP)
        elif tok == "]" and square_open:
            scale(square_open.pop(), 1 / UP)
        elif tok == "BREAK":
            out.append(["", 1.0, True])
        else:
            out.append([tok, 1.0, False])
    for start in round_open:
        scale(start, UP)
    for start in square_open:
        scale(start, 1 / UP)

    merged: list[Segment] = []
    for text, weight, brk in out:
        if merged and not brk and not merged[-1].brk and merged[-1].weight == weight:
            merged[-1] = Segment(merged[-1].text + text, weight)
        elif brk or text:
            merged.append(Segment(text, weight, brk))
    return merged


def tokenize_prompt(
    tokenizer: Any,
    prompt: str,
    max_windows: int = MAX_WINDOWS,
    vectors_of: Callable[[str], Any] | None = None,
) -> TokenWindows:
    """Token ids and per-token weights of ``prompt`` in 77-token windows. With
    ``vectors_of(name) -> [n, dim]``, ``embedding:NAME`` takes n placeholder tokens whose
    input vectors the tokens carry (`TokenWindows.vectors`)."""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise PromptTooLong(
            f"prompt is {len(prompt)} characters long; the limit is {MAX_PROMPT_CHARS}"
        )
    segments = parse_weights(prompt)
    if vectors_of is not None:
        segments = split_embeddings(segments, vectors_of)
    texts = [s.text for s in segments if not s.brk and s.vectors is None]
    encoded = tokenizer(texts, add_special_tokens=False).input_ids if texts else []
    chunks: list[list[tuple[int, float, Any]]] = [[]]
    it = iter(encoded)
    for seg in segments:
        if seg.brk:
            chunks.append([])
            continue
        if seg.vectors is not None:
            placeholder = tokenizer.convert_tokens_to_ids("!")
            items = [(placeholder, seg.weight, v) for v in seg.vectors]
        else:
            items = [(int(tid), seg.weight, None) for tid in next(it)]
        for item in items:
            if len(chunks[-1]) == CHUNK:
                chunks.append([])
            chunks[-1].append(item)
    if len(chunks) > max_windows:
        n_tokens = sum(len(c) for c in chunks)
        raise PromptTooLong(
            f"prompt needs {len(chunks)} windows of {CHUNK} tokens ({n_tokens} tokens); "
            f"the limit is {max_windows} windows ({max_windows * CHUNK} tokens)"
        )
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    ids = torch.full((len(chunks), WINDOW), pad, dtype=torch.int64)
    weights = torch.ones((len(chunks), WINDOW), dtype=torch.float32)
    vectors = []
    for row, chunk in enumerate(chunks):
        ids[row, 0] = bos
        for col, (tid, w, vec) in enumerate(chunk, start=1):
            ids[row, col] = tid
            weights[row, col] = w
            if vec is not None:
                vectors.append((row, col, vec))
        ids[row, len(chunk) + 1] = eos
    return TokenWindows(ids=ids, weights=weights, text=prompt, vectors=tuple(vectors))


def apply_weights(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """A1111's emphasis: scale each token's embedding by its weight, then rescale the
    window so its mean is unchanged. ``hidden`` [windows, 77, dim], ``weights`` [windows, 77].
    Windows whose weights are all 1 come back bit-identical.

    The mean restoration divides by the weighted mean; when either mean is near zero
    relative to the embeddings' magnitude (e.g. an encoder whose final LayerNorm has no
    bias) or the two differ in sign, the ratio is meaningless (huge, NaN or flipping the
    embeddings), so it is skipped and only the per-token scaling applies."""
    out = hidden.clone()
    for i in range(hidden.shape[0]):
        w = weights[i]
        if bool(torch.all(w == 1.0)):
            continue
        z = hidden[i].float()
        original_mean = z.mean()
        z = z * w.to(z.device, torch.float32).unsqueeze(-1)
        new_mean = z.mean()
        floor = _MEAN_FLOOR * z.abs().mean()
        if original_mean.abs() > floor and new_mean.abs() > floor and original_mean * new_mean > 0:
            z = z * (original_mean / new_mean)
        out[i] = z.to(hidden.dtype)
    return out
