"""LoRA state dicts -> the modules they change.

Formats: kohya / A1111 (``lora_unet_*``, ``lora_te_*``, ``lora_te1_*``/``lora_te2_*`` for
SDXL, with ``.lora_down``/``.lora_up``/``.alpha``, LoCon convolutions included), and
diffusers / PEFT (``unet.``/``text_encoder.``/``text_encoder_2.`` prefixes with
``.lora_A``/``.lora_B``, ``.lora.down``/``.lora.up``, ``.lora_linear_layer.*`` or the old
attention-processor names). Keys are matched against names built from the target model's
own modules (as ComfyUI does), not by rewriting strings: a kohya name is the module path
with dots turned into underscores, in the diffusers layout (SD 1.x) or the original LDM
layout (SDXL). Keys that match nothing are reported, never guessed.

Scale per layer: ``alpha / rank`` (kohya's ``.alpha``; for diffusers files the adapter
metadata's ``lora_alpha``, else 1 as in diffusers), so strength 1
equals diffusers' ``fuse_lora(lora_scale=1)``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import torch

LORA_TYPES = (torch.nn.Linear, torch.nn.Conv2d)
KOHYA_PREFIXES = {
    "lora_unet_": "unet",
    "lora_te_": "text_encoder",
    "lora_te1_": "text_encoder",
    "lora_te2_": "text_encoder_2",
}
DIFFUSERS_PREFIXES = {
    "unet.": "unet",
    "text_encoder.": "text_encoder",
    "text_encoder_2.": "text_encoder_2",
}
_SUFFIXES = (  # (key ending, role), the longest first where one ends another
    (".lora_linear_layer.down.weight", "down"),
    (".lora_linear_layer.up.weight", "up"),
    ("_lora.down.weight", "down"),
    ("_lora.up.weight", "up"),
    (".lora.down.weight", "down"),
    (".lora.up.weight", "up"),
    (".lora_down.weight", "down"),
    (".lora_up.weight", "up"),
    (".lora_A.weight", "down"),
    (".lora_B.weight", "up"),
    (".alpha", "alpha"),
)
_ADAPTER_NAME = re.compile(r"\.(lora_[AB])\.[^.]+\.weight$")  # PEFT: lora_A.<adapter>.weight
_TEXT_ATTN = {"to_q": "q_proj", "to_k": "k_proj", "to_v": "v_proj", "to_out": "out_proj"}
METADATA_KEY = "lora_adapter_metadata"  # diffusers' save_lora_weights


@dataclass(frozen=True)
class LayerLora:
    """One low-rank pair for one module: delta = up @ down * scale."""

    down: torch.Tensor
    up: torch.Tensor
    scale: float  # alpha / rank

    @property
    def nbytes(self) -> int:
        return int(self.down.nbytes + self.up.nbytes)


@dataclass
class ParsedLora:
    """What a LoRA file changes: component -> module name -> its pair; and what it does not."""

    layers: dict[str, dict[str, LayerLora]] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for c in self.layers.values() for p in c.values())

    @property
    def count(self) -> int:
        return sum(len(c) for c in self.layers.values())


def _text_name(name: str) -> str:
    """transformers 5 flattens CLIPTextModel (no ``text_model.`` level); LoRA files name it."""
    return (
        name
        if name.startswith("text_model.") or name.startswith("text_projection")
        else ("text_model." + name)
    )


def module_aliases(component: str, module: Any) -> dict[str, str]:
    """Every name a LoRA file may use for a patchable module of ``component`` -> the
    module's own path. Kohya names carry their prefix (``lora_unet_...``)."""
    names = [n for n, m in module.named_modules() if isinstance(m, LORA_TYPES)]
    out: dict[str, str] = {}
    if component == "unet":
        for n in names:
            out[n] = n
            out["lora_unet_" + n.replace(".", "_")] = n
        for ldm, n in ldm_unet_names(module).items():
            out.setdefault("lora_unet_" + ldm.replace(".", "_"), n)
        return out
    kohya = ("lora_te_", "lora_te1_") if component == "text_encoder" else ("lora_te2_",)
    for n in names:
        full = _text_name(n)
        out[n] = n
        out[full] = n
        for prefix in kohya:
            out[prefix + full.replace(".", "_")] = n
    return out


def ldm_unet_names(unet: Any) -> dict[str, str]:
    """LDM module path -> diffusers module path (kohya names SDXL U-Nets the LDM way)."""
    try:
        from nodes.sd.ldm_export import UNET_PREFIX, unet_to_ldm

        ldm = unet_to_ldm(unet)
    except (ValueError, KeyError, AttributeError):
        return {}
    by_ptr = {t.data_ptr(): k for k, t in unet.state_dict().items() if k.endswith(".weight")}
    out = {}
    for key, t in ldm.items():
        if key.endswith(".weight") and t.data_ptr() in by_ptr:
            out[key[len(UNET_PREFIX) : -len(".weight")]] = by_ptr[t.data_ptr()][: -len(".weight")]
    return out


def _split(key: str) -> tuple[str, str, str] | None:
    """(component, module key, role) of a state-dict key, or None when not a LoRA key."""
    key = _ADAPTER_NAME.sub(r".\1.weight", key)
    found = next(((e, r) for e, r in _SUFFIXES if key.endswith(e)), None)
    if found is None:
        return None
    ending, role = found
    stem = key[: -len(ending)]
    for prefix, component in KOHYA_PREFIXES.items():
        if stem.startswith(prefix):
            return component, stem, role
    stem = stem.removeprefix("base_model.model.")
    component = "unet"
    for prefix, comp in DIFFUSERS_PREFIXES.items():
        if stem.startswith(prefix):
            component, stem = comp, stem[len(prefix) :]
            break
    stem = stem.replace(".processor.", ".")
    head, _, last = stem.rpartition(".")
    if component != "unet" and last in _TEXT_ATTN and head.endswith("self_attn"):
        stem = f"{head}.{_TEXT_ATTN[last]}"
    elif last == "to_out":
        stem += ".0"
    return component, stem, role


def _metadata_alphas(meta: dict[str, Any]) -> dict[str, Any]:
    raw = meta.get(METADATA_KEY)
    try:
        data = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _alpha_for(
    component: str, module_key: str, groups: dict, meta: dict[str, Any], rank: int
) -> float:
    """kohya ``.alpha``; else the adapter metadata (``alpha_pattern``, ``lora_alpha``); else
    the layer's rank (diffusers' default without alphas: scale 1)."""
    alpha = groups.get("alpha")
    if alpha is not None:
        return float(alpha.item())
    pattern = meta.get(f"{component}.alpha_pattern") or {}
    for pat, value in pattern.items() if isinstance(pattern, dict) else ():
        if re.fullmatch(rf"(.*\.)?{pat}", module_key):
            return float(value)
    if f"{component}.lora_alpha" in meta:
        return float(meta[f"{component}.lora_alpha"])
    return float(rank)


def parse_lora(
    state_dict: dict[str, torch.Tensor],
    metadata: dict[str, Any],
    aliases: dict[str, dict[str, str]],
) -> ParsedLora:
    """Match ``state_dict`` against ``aliases`` (component -> `module_aliases`)."""
    groups: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    keys_of: dict[tuple[str, str], list[str]] = {}
    out = ParsedLora()
    for key, tensor in state_dict.items():
        split = _split(key)
        if split is None:
            out.unmatched.append(key)
            continue
        component, stem, role = split
        groups.setdefault((component, stem), {})[role] = tensor
        keys_of.setdefault((component, stem), []).append(key)
    meta = _metadata_alphas(metadata)
    for (component, stem), g in groups.items():
        target = aliases.get(component, {}).get(stem)
        if target is None or "down" not in g or "up" not in g:
            out.unmatched.extend(keys_of[(component, stem)])
            continue
        rank = int(g["down"].shape[0])
        alpha = _alpha_for(component, stem, g, meta, rank)
        out.layers.setdefault(component, {})[target] = LayerLora(g["down"], g["up"], alpha / rank)
    return out
