"""Tiny random LoRAs for the tiny built-in model and the tiny SDXL, in kohya and
diffusers/PEFT layouts.

SDXL files (components with a ``text_encoder_2``) name things as real SDXL LoRAs do:
kohya's ``lora_te1_``/``lora_te2_`` for the two text encoders and the U-Net in the
original LDM layout (``lora_unet_input_blocks_4_1_...``: kohya trains SDXL on that U-Net),
so diffusers' own key conversion is what the parity tests check against.

Stable interface: LoRA tests and `bench/lora.py` import these."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from nodes.sd.lora_keys import ldm_unet_names

UNET_LAYERS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.2")
UNET_CONV = ("conv1", "conv_shortcut", "time_emb_proj")  # LoCon: 3x3 and 1x1 convolutions
TEXT_LAYERS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


def _targets(module: Any, endings: tuple[str, ...]) -> list[tuple[str, Any]]:
    kinds = (torch.nn.Linear, torch.nn.Conv2d)
    return [
        (n, m)
        for n, m in module.named_modules()
        if isinstance(m, kinds) and any(n.endswith("." + e) or n == e for e in endings)
    ]


def _pair(m: Any, rank: int, gen: torch.Generator, size: float) -> tuple[torch.Tensor, ...]:
    if isinstance(m, torch.nn.Conv2d):
        down = torch.randn(rank, m.in_channels, *m.kernel_size, generator=gen) * size
        up = torch.randn(m.out_channels, rank, 1, 1, generator=gen) * size
    else:
        down = torch.randn(rank, m.in_features, generator=gen) * size
        up = torch.randn(m.out_features, rank, generator=gen) * size
    return down, up


def _text_path(name: str) -> str:
    return name if name.startswith("text_model.") else "text_model." + name


def _texts(components: dict[str, Any]) -> tuple[str, ...]:
    return tuple(c for c in ("text_encoder", "text_encoder_2") if components.get(c) is not None)


def _is_sdxl(components: dict[str, Any]) -> bool:
    return "text_encoder_2" in _texts(components)


def _pairs(
    components: dict[str, Any], unet_endings: tuple[str, ...], seed: int, rank: int, size: float
) -> Iterator[tuple[str, str, torch.Tensor, torch.Tensor]]:
    """(component, module path as LoRA files name it, down, up) for every target layer."""
    gen = torch.Generator().manual_seed(seed)
    parts = (("unet", unet_endings), *((t, TEXT_LAYERS) for t in _texts(components)))
    for component, endings in parts:
        for name, m in _targets(components[component], endings):
            path = name if component == "unet" else _text_path(name)
            yield (component, path, *_pair(m, rank, gen, size))


def kohya_lora(
    components: dict[str, Any],
    seed: int = 0,
    rank: int = 4,
    alpha: float = 2.0,
    conv: bool = True,
    size: float = 0.3,
) -> dict[str, torch.Tensor]:
    """kohya / A1111 keys (``lora_unet_*``, ``lora_te_*``; SDXL: ``lora_te1_*``,
    ``lora_te2_*`` and LDM U-Net names) with ``.alpha`` (LoCon convolutions when ``conv``)."""
    sdxl = _is_sdxl(components)
    te = "lora_te1_" if sdxl else "lora_te_"
    prefixes = {"unet": "lora_unet_", "text_encoder": te, "text_encoder_2": "lora_te2_"}
    ldm = {v: k for k, v in ldm_unet_names(components["unet"]).items()} if sdxl else {}
    sd: dict[str, torch.Tensor] = {}
    endings = UNET_LAYERS + (UNET_CONV if conv else ())
    for component, path, down, up in _pairs(components, endings, seed, rank, size):
        key = prefixes[component] + ldm.get(path, path).replace(".", "_")
        sd[key + ".lora_down.weight"] = down
        sd[key + ".lora_up.weight"] = up
        sd[key + ".alpha"] = torch.tensor(alpha)
    return sd


def peft_lora(
    components: dict[str, Any], seed: int = 1, rank: int = 4, size: float = 0.3
) -> dict[str, torch.Tensor]:
    """diffusers ``save_lora_weights`` / PEFT keys (``unet.*.lora_A.weight``), no alphas."""
    sd: dict[str, torch.Tensor] = {}
    for component, path, down, up in _pairs(components, UNET_LAYERS, seed, rank, size):
        sd[f"{component}.{path}.lora_A.weight"] = down
        sd[f"{component}.{path}.lora_B.weight"] = up
    return sd


def write_lora(models_dir: Path, name: str, sd: dict[str, torch.Tensor]) -> Path:
    path = Path(models_dir) / "loras" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path
