"""Which SDXL architecture a single file (original SGM layout) or diffusers folder holds.

SGM keys: ``model.diffusion_model.*`` (U-Net, with ``label_emb`` for the added
size/pooled-text embedding), ``first_stage_model.*`` (VAE), and the text encoders under
``conditioner.embedders.N.``: the base has CLIP-L (``0.transformer.*``, transformers
layout) and OpenCLIP bigG (``1.model.*``: fused ``attn.in_proj_*``, ``text_projection``,
``ln_final``); the refiner has bigG only (``0.model.*``). Full-size files get the shipped
configs (`nodes/sd/configs/sdxl-base`, `sdxl-refiner`); anything else with the same
structure (a tiny test model) gets a config inferred from its shapes plus the
``sdgraph.hints`` metadata for what shapes cannot tell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nodes.sd.checkpoint_arch import (
    CONFIGS_DIR,
    _indices,
    _shape,
    apply_hints,
    infer_clip,
    infer_unet,
    infer_vae,
    scheduler_from_hints,
)
from nodes.sd.checkpoint_files import CheckpointError
from nodes.sd.ldm_export import UNET_PREFIX, VAE_PREFIX

SGM_PREFIX = "conditioner.embedders."
CLIP_L_PREFIX = "conditioner.embedders.0.transformer."
BIGG_BASE_PREFIX = "conditioner.embedders.1.model."
BIGG_REFINER_PREFIX = "conditioner.embedders.0.model."
LABEL_EMB = UNET_PREFIX + "label_emb.0.0.weight"
SDXL_VAE_SCALING = 0.13025
BASE_TIME_IDS = 6  # original_size + crops_coords_top_left + target_size
REFINER_TIME_IDS = 5  # original_size + crops_coords_top_left + aesthetic_score


@dataclass(frozen=True)
class SdxlArchitecture:
    """Configs of every component of an SDXL checkpoint (the refiner has no CLIP-L)."""

    name: str  # "sdxl-base" | "sdxl-refiner" | "sdxl-structure"
    unet: dict[str, Any]
    vae: dict[str, Any]
    text_encoder: dict[str, Any] | None  # CLIP-L (None: refiner)
    text_encoder_2: dict[str, Any]  # OpenCLIP bigG, with projection
    scheduler: dict[str, Any]
    force_zeros_for_empty_prompt: bool

    @property
    def refiner(self) -> bool:
        return self.text_encoder is None

    @property
    def bigg_prefix(self) -> str:
        return BIGG_REFINER_PREFIX if self.refiner else BIGG_BASE_PREFIX


def is_sgm(sd: dict[str, torch.Tensor]) -> bool:
    """SDXL-style (SGM) keys: a ``conditioner`` or the U-Net's added embedding."""
    return LABEL_EMB in sd or any(k.startswith(SGM_PREFIX) for k in sd)


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def shipped_sdxl(name: str) -> SdxlArchitecture:
    """The configs of `nodes/sd/configs/sdxl-base` or `sdxl-refiner`."""
    d = CONFIGS_DIR / name
    index = _json(d / "model_index.json")
    te1 = d / "text_encoder" / "config.json"
    return SdxlArchitecture(
        name=name,
        unet=_json(d / "unet" / "config.json"),
        vae=_json(d / "vae" / "config.json"),
        text_encoder=_json(te1) if te1.is_file() else None,
        text_encoder_2=_json(d / "text_encoder_2" / "config.json"),
        scheduler=_json(d / "scheduler" / "scheduler_config.json"),
        force_zeros_for_empty_prompt=bool(index.get("force_zeros_for_empty_prompt", True)),
    )


def infer_open_clip(sd: dict[str, torch.Tensor], prefix: str, file: str) -> dict[str, Any]:
    """CLIPTextConfig values of an OpenCLIP text tower (``<prefix>transformer.resblocks``)."""
    vocab, width = _shape(sd, prefix + "token_embedding.weight", file)
    positions = _shape(sd, prefix + "positional_embedding", file)[0]
    keys = [k[len(prefix) :] for k in sd if k.startswith(prefix)]
    layers = len(_indices(keys, r"transformer\.resblocks\.(\d+)\."))
    inter = _shape(sd, prefix + "transformer.resblocks.0.mlp.c_fc.weight", file)[0]
    proj = _shape(sd, prefix + "text_projection", file)[1]
    return {
        "vocab_size": vocab,
        "hidden_size": width,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": max(1, width // 64),
        "max_position_embeddings": positions,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-5,
        "projection_dim": proj,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "pad_token_id": 1,
    }


def _sdxl_unet(sd: dict[str, torch.Tensor], pooled_dim: int, n_ids: int, file: str) -> dict:
    """The SD-structure U-Net config plus SDXL's per-level transformer depth and the
    added embedding (``label_emb``: n_ids x addition_time_embed_dim + pooled_dim inputs)."""
    unet = infer_unet(sd, file)
    per, levels = unet["layers_per_block"], len(unet["block_out_channels"])
    keys = [k[len(UNET_PREFIX) :] for k in sd if k.startswith(UNET_PREFIX)]
    depth = []
    for i in range(levels):
        first = 1 + i * (per + 1)
        n = len(_indices(keys, rf"input_blocks\.{first}\.1\.transformer_blocks\.(\d+)\."))
        depth.append(max(n, 1))
    added_in = _shape(sd, LABEL_EMB, file)[1]
    time_dim, rest = divmod(added_in - pooled_dim, n_ids)
    if rest or time_dim < 1:
        raise CheckpointError(
            f"{file}: unknown architecture (added embedding of {added_in} inputs does not fit "
            f"{n_ids} size ids and a {pooled_dim}-d pooled text embedding)"
        )
    unet.pop("transformer_layers_per_block", None)
    return {
        **unet,
        "transformer_layers_per_block": depth,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": time_dim,
        "projection_class_embeddings_input_dim": added_in,
        "sample_size": 128,
    }


def _signature(a: SdxlArchitecture) -> tuple[Any, ...]:
    u = a.unet
    depth = u["transformer_layers_per_block"]
    levels = len(u["block_out_channels"])
    depth = list(depth) if isinstance(depth, list) else [depth] * levels
    attn = [i for i, t in enumerate(u["down_block_types"]) if t.startswith("CrossAttn")]
    depth = [depth[i] for i in attn]  # only levels with attention have transformer blocks
    te1 = a.text_encoder
    return (
        tuple(u["block_out_channels"]),
        u["layers_per_block"],
        u["cross_attention_dim"],
        tuple(u["down_block_types"]),
        tuple(depth),
        u["projection_class_embeddings_input_dim"],
        tuple(a.vae["block_out_channels"]),
        None if te1 is None else (te1["hidden_size"], te1["num_hidden_layers"]),
        (a.text_encoder_2["hidden_size"], a.text_encoder_2["num_hidden_layers"]),
    )


def detect_sdxl(sd: dict[str, torch.Tensor], meta: dict[str, Any], file: str) -> SdxlArchitecture:
    """The SDXL architecture of an SGM-layout state dict; CheckpointError when unsupported."""
    if BIGG_BASE_PREFIX + "token_embedding.weight" in sd:
        refiner = False
    elif BIGG_REFINER_PREFIX + "token_embedding.weight" in sd:
        refiner = True
    else:
        raise CheckpointError(
            f"{file}: SDXL-style keys, but no OpenCLIP bigG text encoder "
            f"('{BIGG_BASE_PREFIX}*' or '{BIGG_REFINER_PREFIX}*')"
        )
    if LABEL_EMB not in sd:
        raise CheckpointError(f"{file}: unknown architecture (SDXL U-Net without label_emb)")
    if not any(k.startswith(VAE_PREFIX) for k in sd):
        raise CheckpointError(f"{file}: no 'first_stage_model.*' VAE weights in the checkpoint")
    prefix = BIGG_REFINER_PREFIX if refiner else BIGG_BASE_PREFIX
    te2 = infer_open_clip(sd, prefix, file)
    te1 = None
    if not refiner:
        if not any(k.startswith(CLIP_L_PREFIX) for k in sd):
            raise CheckpointError(f"{file}: SDXL base without its CLIP-L ('{CLIP_L_PREFIX}*')")
        te1 = infer_clip(sd, file, prefix=CLIP_L_PREFIX)
    n_ids = REFINER_TIME_IDS if refiner else BASE_TIME_IDS
    unet = _sdxl_unet(sd, te2["projection_dim"], n_ids, file)
    vae = {**infer_vae(sd, file), "scaling_factor": SDXL_VAE_SCALING, "force_upcast": True}
    ref = shipped_sdxl("sdxl-refiner" if refiner else "sdxl-base")
    inferred = SdxlArchitecture("sdxl-structure", unet, vae, te1, te2, ref.scheduler, True)
    if _signature(inferred) == _signature(ref):
        return ref
    hints = meta.get("hints", {})
    return SdxlArchitecture(
        name="sdxl-structure",
        unet=apply_hints(unet, "unet", hints),
        vae=apply_hints(vae, "vae", hints),
        text_encoder=None if te1 is None else apply_hints(te1, "text_encoder", hints),
        text_encoder_2=apply_hints(te2, "text_encoder_2", hints),
        scheduler=scheduler_from_hints(hints, ref.scheduler),
        force_zeros_for_empty_prompt=ref.force_zeros_for_empty_prompt,
    )


def is_sdxl_folder(path: Path) -> bool:
    """A diffusers folder of an SDXL pipeline (base or refiner)."""
    try:
        index = _json(Path(path) / "model_index.json")
    except (OSError, ValueError):
        return False
    return str(index.get("_class_name", "")).startswith("StableDiffusionXL") or bool(
        (index.get("text_encoder_2") or [None])[0]
    )
