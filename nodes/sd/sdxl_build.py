"""Turning SDXL checkpoints (SGM single files, diffusers folders) into components.

The components dict follows `checkpoints._place`'s convention: ``tokenizer`` /
``text_encoder`` are the first encoder (CLIP-L on the base, bigG on the refiner, as in
diffusers' pipelines where the refiner's ``text_encoder`` is None), ``*_2`` the bigG of
the base, ``family`` "sdxl".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders import single_file_utils as sfu
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from nodes.sd.checkpoint_build import _assign, convert_unet_vae, scheduler_config
from nodes.sd.checkpoint_files import CheckpointError
from nodes.sd.sdxl_arch import CLIP_L_PREFIX, CONFIGS_DIR, SdxlArchitecture
from nodes.sd.tokenizer import MODEL_MAX_LENGTH, load_clip_tokenizer

BIGG_PAD = "!"  # what SDXL's OpenCLIP tokenizer pads with (id 0)


def _fit_keys(weights: dict[str, torch.Tensor], model: torch.nn.Module) -> dict:
    """diffusers' converters give ``text_model.*`` names; transformers 5 flattened
    CLIPTextModel (no prefix) but not CLIPTextModelWithProjection. Position ids are
    rebuilt, ``logit_scale`` belongs to the CLIP pair, not the text tower."""
    wants_prefix = any(k.startswith("text_model.") for k in model.state_dict())
    out = {}
    for k, v in weights.items():
        if k.endswith("position_ids") or k == "logit_scale":
            continue
        if not wants_prefix:
            k = k.removeprefix("text_model.")
        out[k] = v
    return out


def _clip_l_weights(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    p = CLIP_L_PREFIX
    return {k[len(p) :]: v for k, v in sd.items() if k.startswith(p)}


def build_sdxl_from_sgm(
    sd: dict[str, torch.Tensor],
    arch: SdxlArchitecture,
    file: str,
    dtype: torch.dtype | None = None,
) -> dict[str, Any]:
    """Components (CPU, in ``dtype`` or the file's) of an SGM-layout SDXL file."""
    unet_w, vae_w = convert_unet_vae(sd, arch.unet, arch.vae, file)
    try:
        with torch.device("meta"):
            unet = UNet2DConditionModel.from_config(arch.unet)
            vae = AutoencoderKL.from_config(arch.vae)
            bigg = CLIPTextModelWithProjection(CLIPTextConfig(**arch.text_encoder_2))
            clip_l = (
                CLIPTextModel(CLIPTextConfig(**arch.text_encoder))
                if arch.text_encoder is not None
                else None
            )
    except (ValueError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{file}: unknown architecture (config {e})") from e
    _assign(unet, unet_w, "U-Net", file, dtype)
    _assign(vae, vae_w, "VAE", file, dtype)
    bigg_w = sfu.convert_open_clip_checkpoint(bigg, sd, prefix=arch.bigg_prefix)
    _assign(bigg, _fit_keys(bigg_w, bigg), "OpenCLIP bigG text encoder", file, dtype)
    shipped = CONFIGS_DIR / ("sdxl-refiner" if arch.refiner else "sdxl-base")
    tok_g = _tokenizer(shipped / "tokenizer_2", BIGG_PAD)
    out: dict[str, Any] = {
        "unet": unet,
        "vae": vae,
        "scheduler_config": scheduler_config(arch.scheduler),
        "family": "sdxl",
        "zeros_for_missing_negative": arch.force_zeros_for_empty_prompt,
    }
    if clip_l is None:  # refiner: bigG is the only (first) encoder
        return {**out, "text_encoder": bigg, "tokenizer": tok_g}
    _assign(clip_l, _fit_keys(_clip_l_weights(sd), clip_l), "CLIP-L text encoder", file, dtype)
    return {
        **out,
        "text_encoder": clip_l,
        "tokenizer": _tokenizer(shipped / "tokenizer", None),
        "text_encoder_2": bigg,
        "tokenizer_2": tok_g,
    }


def _tokenizer(folder: Path, default_pad: str | None) -> Any:
    """A saved tokenizer if the folder holds one, else the shipped vocabulary with the
    folder's (or the default) pad token."""
    if (folder / "tokenizer.json").exists() or (folder / "vocab.json").exists():
        tok = CLIPTokenizer.from_pretrained(folder, local_files_only=True)
        if tok.model_max_length > MODEL_MAX_LENGTH:
            tok.model_max_length = MODEL_MAX_LENGTH
        return tok
    pad = default_pad
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        value = json.loads(cfg.read_text()).get("pad_token")
        pad = value if isinstance(value, str) else pad
    return load_clip_tokenizer(None if pad == "<|endoftext|>" else pad)


def build_sdxl_from_diffusers_folder(path: Path, allow_pickle: bool, file: str) -> dict[str, Any]:
    """Components of an SDXL diffusers folder (base or refiner), offline."""
    safe = None if allow_pickle else True
    opts = {"local_files_only": True, "use_safetensors": safe, "low_cpu_mem_usage": False}
    index = json.loads((path / "model_index.json").read_text())
    has_clip_l = bool((index.get("text_encoder") or [None])[0])
    try:
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", **opts)
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae", **opts)
        te_opts = {"local_files_only": True, "use_safetensors": safe}
        bigg = CLIPTextModelWithProjection.from_pretrained(path / "text_encoder_2", **te_opts)
        clip_l = (
            CLIPTextModel.from_pretrained(path / "text_encoder", **te_opts) if has_clip_l else None
        )
    except (OSError, ValueError, RuntimeError) as e:
        hint = "" if allow_pickle else " (only .safetensors weights are read without opt-in)"
        raise CheckpointError(f"{file}: cannot load the diffusers folder{hint}: {e}") from e
    sched_file = path / "scheduler" / "scheduler_config.json"
    sched = json.loads(sched_file.read_text()) if sched_file.exists() else {}
    out: dict[str, Any] = {
        "unet": unet,
        "vae": vae,
        "scheduler_config": scheduler_config(dict(sched)),
        "family": "sdxl",
        "zeros_for_missing_negative": bool(index.get("force_zeros_for_empty_prompt", True)),
    }
    tok_g = _tokenizer(path / "tokenizer_2", BIGG_PAD)
    if clip_l is None:
        return {**out, "text_encoder": bigg, "tokenizer": tok_g}
    return {
        **out,
        "text_encoder": clip_l,
        "tokenizer": _tokenizer(path / "tokenizer", None),
        "text_encoder_2": bigg,
        "tokenizer_2": tok_g,
    }
