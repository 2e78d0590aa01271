"""What a model file is (sd1, sd2, sdxl, sdxl-refiner, lora-sd1, lora-sdxl, vae, ...), read
from the safetensors header only: no tensor is loaded and nothing is unpickled."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from graph.workspace import open_regular

MAX_HEADER = 100 * 1024 * 1024


def read_safetensors(path: Path) -> tuple[dict[str, object], int] | None:
    """The raw header (tensor entries and ``__metadata__``) and the offset where tensor
    data starts, or None when the file is not safetensors."""
    try:
        with open_regular(path) as f:
            raw = f.read(8)
            if len(raw) < 8:
                return None
            (length,) = struct.unpack("<Q", raw)
            if not 2 <= length <= MAX_HEADER:
                return None
            header = json.loads(f.read(length))
    except (OSError, ValueError):
        return None
    return (header, 8 + length) if isinstance(header, dict) else None


def safetensors_header(path: Path) -> dict[str, dict] | None:
    """The header's tensor entries, or None when the file is not safetensors."""
    read = read_safetensors(path)
    if read is None:
        return None
    return {k: v for k, v in read[0].items() if k != "__metadata__" and isinstance(v, dict)}


def _checkpoint_family(keys: set[str]) -> str:
    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keys)

    if has("conditioner.embedders.1."):
        return "sdxl"
    if has("conditioner.embedders.0.model."):
        return "sdxl-refiner"
    if has("cond_stage_model.model."):
        return "sd2"
    if has("cond_stage_model.transformer."):
        return "sd1"
    return "unknown"


def _lora_family(header: dict[str, dict]) -> str:
    keys = set(header)
    if any(k.startswith(("lora_te2_", "lora_te1_")) for k in keys):
        return "lora-sdxl"
    for key, entry in header.items():  # the cross-attention context width
        if "attn2_to_k.lora_down" in key or "attn2.to_k.lora_A" in key:
            width = (entry.get("shape") or [0, 0])[-1]
            return {768: "lora-sd1", 1024: "lora-sd2", 2048: "lora-sdxl"}.get(width, "lora")
    return "lora"


def detect_family(kind: str, path: Path) -> str:
    """The family of a file found under ``<models>/<kind>/``."""
    if path.is_dir():
        return "diffusers"
    if kind == "vae":
        return "vae"
    if kind == "embeddings":
        return "embedding"
    header = safetensors_header(path)
    if header is None:
        return "unknown"
    if kind == "loras":
        return _lora_family(header)
    if kind == "checkpoints":
        return _checkpoint_family(set(header))
    return "unknown"
