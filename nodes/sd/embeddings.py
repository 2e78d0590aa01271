"""Textual-inversion embeddings in prompts: ``embedding:NAME`` (weighted: ``embedding:NAME:1.2``
or ``(embedding:NAME:1.2)``) puts the vectors of ``models/embeddings/NAME.(safetensors|pt)``
where the word stands.

The shared tokenizer and text encoder are never extended (diffusers'
``load_textual_inversion`` adds tokens and rows for good). The tokens carry the vectors
and their positions instead; while a window is encoded, a forward hook on the token
embedding layer writes them over the placeholder positions, so the encoder sees exactly
the input rows diffusers' added tokens would give it.

Files: A1111 ``.pt`` (``string_to_param``, pickle: needs --allow-pickle) and
``.safetensors`` (``emb_params``), single- and multi-vector; diffusers' learned_embeds
(one tensor under the token's name); SDXL files with ``clip_l`` and ``clip_g``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import Any

import torch

from nodes.sd.addon_files import AddonError, read_addon, resolve_addon
from nodes.sd.checkpoint_files import read_pickle, sniff_format

PATTERN = re.compile(r"embedding:([^\s,()\[\]:]+)(?::([+-]?(?:\d+\.?\d*|\.\d+)))?")
PLACEHOLDER_TEXT = "!"  # any ordinary token: its row is overwritten (never EOS: pooling reads it)
SDXL_KEYS = {768: "clip_l", 1280: "clip_g"}  # by width, where the caller names no part


def referenced(text: str) -> list[str]:
    """Embedding names a prompt uses, in order, without repeats."""
    return list(dict.fromkeys(m.group(1) for m in PATTERN.finditer(text)))


def rename(text: str, old: str, new: str) -> str:
    """``embedding:old`` (with any weight) as ``embedding:new`` throughout ``text``."""
    return re.sub(rf"embedding:{re.escape(old)}(?![^\s,()\[\]:])", f"embedding:{new}", text)


def find_file(name: str, available: list[str]) -> str | None:
    """The listed file ``name`` means: itself, or NAME plus an extension."""
    if name in available:
        return name
    for entry in available:
        p = PurePosixPath(entry)
        if str(p.with_suffix("")) == name:
            return entry
    return None


def unknown(text: str, available: list[str]) -> list[str]:
    return [n for n in referenced(text) if find_file(n, available) is None]


def _vectors_of(obj: Any, dim: int, label: str, part: str | None = None) -> torch.Tensor:
    """[n, dim] vectors from any of the layouts, for an encoder of width ``dim``. ``part``
    names the SDXL file's tensor for this encoder ("clip_l" / "clip_g"); without it the
    width decides (768 / 1280)."""
    if isinstance(obj, dict) and isinstance(obj.get("string_to_param"), dict):
        obj = next(iter(obj["string_to_param"].values()), None)
    elif isinstance(obj, dict):
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        part = part or SDXL_KEYS.get(dim)
        if part in tensors:
            obj = tensors[part]
        elif "emb_params" in tensors:
            obj = tensors["emb_params"]
        elif len(tensors) == 1:
            obj = next(iter(tensors.values()))
        else:
            obj = None
    if not isinstance(obj, torch.Tensor):
        raise AddonError(f"{label}: not a textual-inversion embedding (no vectors found)")
    vectors = obj.detach().float().reshape(-1, obj.shape[-1])
    if vectors.shape[-1] != dim:
        raise AddonError(
            f"{label}: vectors of width {vectors.shape[-1]} do not fit this text encoder "
            f"({dim}); it was made for another model family"
        )
    return vectors


def load_vectors(
    workspace: Any, name: str, available: list[str], dim: int, part: str | None = None
) -> torch.Tensor:
    """The [n, dim] vectors of embedding ``name`` (``part``: see `_vectors_of`);
    AddonError naming it when unusable."""
    found = find_file(name, available)
    if found is None:
        raise AddonError(f"embedding {name!r}: no such file in models/embeddings/")
    file = resolve_addon(workspace, "embeddings", found)
    if sniff_format(file.path) == "safetensors":
        obj: Any = read_addon(file, workspace)[0]
    else:
        try:
            obj = read_pickle(file.path, bool(getattr(workspace, "allow_pickle", False)))
        except ValueError as e:
            raise AddonError(f"{file.label}: {e}") from e
    return _vectors_of(obj, dim, file.label, part)


@contextmanager
def vectors_in_place(encoder: Any, rows: dict[int, torch.Tensor]) -> Iterator[None]:
    """While encoding one window: token-embedding outputs at positions ``rows`` replaced."""
    if not rows:
        yield
        return
    layer = encoder.get_input_embeddings()

    def hook(_module: Any, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
        out = output.clone()
        for pos, vec in rows.items():
            out[:, pos] = vec.to(out.device, out.dtype)
        return out

    handle = layer.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def vectors_for(workspace: Any, encoder: Any, part: str | None = None) -> Any:
    """``vectors_of(name)`` for `tokenize_prompt`: the embedding's vectors for ``encoder``
    (``part``: which tensor of an SDXL file it takes, "clip_l" or "clip_g")."""
    from nodes.sd.addon_files import list_addons

    available = list_addons(workspace, "embeddings")
    dim = int(encoder.get_input_embeddings().embedding_dim)
    return lambda name: load_vectors(workspace, name, available, dim, part)


def fingerprint(workspace: Any, text: str) -> str | None:
    """Identity (size, mtime) of every embedding file the prompt names."""
    from nodes.sd.addon_files import addon_fingerprint, list_addons

    names = referenced(text)
    if not names:
        return None
    available = list_addons(workspace, "embeddings")
    found = [(n, find_file(n, available)) for n in names]
    return ";".join(
        f"{n}={addon_fingerprint(workspace, 'embeddings', f) if f else 'missing'}" for n, f in found
    )


def problems(field: str, text: str, choices: Any) -> list[tuple[str, str, str]]:
    """Validation: an embedding the prompt names that models/embeddings/ lacks."""
    if choices is None or not referenced(text):
        return []
    available = choices("embeddings")
    return [
        (
            field,
            "unknown_embedding",
            f"embedding {n!r} is not in models/embeddings/ (available: "
            f"{', '.join(available[:20]) or 'none'})",
        )
        for n in unknown(text, available)
    ]
