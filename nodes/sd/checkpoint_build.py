"""Turning checkpoint files into diffusers/transformers components.

Single files: diffusers' own LDM converters (`single_file_utils`) map the keys; models are
created on the meta device and take the file's tensors directly (no random init of
hundreds of millions of weights), with strict key checks so a wrong architecture fails.
Diffusers folders: ``from_pretrained(local_files_only=True)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import diffusers
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders import single_file_utils as sfu
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from nodes.sd.checkpoint_arch import Architecture
from nodes.sd.checkpoint_files import CheckpointError, is_mapped
from nodes.sd.tokenizer import MODEL_MAX_LENGTH, load_clip_tokenizer


def scheduler_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """A complete scheduler config (defaults filled in by the named diffusers class)."""
    name = cfg.get("_class_name", "PNDMScheduler")
    cls = getattr(diffusers, str(name), None)
    if cls is None or not hasattr(cls, "from_config"):
        name, cls = "PNDMScheduler", diffusers.PNDMScheduler
    full = dict(cls.from_config({k: v for k, v in cfg.items() if not k.startswith("_")}).config)
    return {"_class_name": name, **{k: v for k, v in full.items() if not k.startswith("_")}}


def _aligned(t: torch.Tensor) -> bool:
    return t.is_contiguous() and t.data_ptr() % 64 == 0


def _prepare(t: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """Cast floats to ``dtype`` (one copy), else make sure the tensor is aligned: tensors
    read from a file can sit at unaligned addresses (views into the file's buffer), and
    CPU kernels then take other code paths whose results differ in the last bits."""
    if dtype is not None and t.is_floating_point() and t.dtype != dtype:
        return t.to(dtype)
    return t if _aligned(t) or is_mapped(t) else t.clone()


def _assign(
    model: torch.nn.Module,
    weights: dict[str, torch.Tensor],
    what: str,
    file: str,
    dtype: torch.dtype | None = None,
) -> None:
    """Load ``weights`` into a meta-device model, refusing missing or extra keys."""
    expected = set(model.state_dict())
    missing = sorted(expected - set(weights))
    extra = sorted(set(weights) - expected)
    if missing or extra:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}"
        n = len(missing) or len(extra)
        raise CheckpointError(f"{file}: unknown architecture ({what}: {n} keys {detail})")
    weights = {k: _prepare(v, dtype) for k, v in weights.items()}
    try:
        model.load_state_dict(weights, strict=True, assign=True)
    except RuntimeError as e:
        raise CheckpointError(f"{file}: unknown architecture ({what}: {e})") from e
    for mod in model.modules():  # non-persistent buffers are not in any file
        pos = mod._buffers.get("position_ids")
        if pos is not None and pos.is_meta:
            n = pos.shape[-1]
            mod.register_buffer("position_ids", torch.arange(n).expand((1, -1)), persistent=False)
    left = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if left:
        raise CheckpointError(f"{file}: {what} weights not found in the file: {left[:3]}")


def _text_weights(sd: dict[str, torch.Tensor], arch: Architecture, model: Any) -> dict:
    if arch.text_kind == "open_clip":
        prefix = "cond_stage_model.model."
        conv = sfu.convert_open_clip_checkpoint(model, sd, prefix=prefix)
    else:
        conv = sfu.convert_ldm_clip_checkpoint(sd)
    wants_prefix = any(k.startswith("text_model.") for k in model.state_dict())
    out = {}
    for k, v in conv.items():
        if k.endswith("position_ids") or k in ("text_projection.weight", "logit_scale"):
            continue  # CLIPTextModel has no projection; position ids are rebuilt
        k = k if wants_prefix else k.removeprefix("text_model.")
        out[k] = v
    return out


def convert_unet_vae(
    sd: dict[str, torch.Tensor], unet: dict[str, Any], vae: dict[str, Any], file: str
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """U-Net and VAE weights in diffusers' names (diffusers' LDM converters)."""
    try:
        return sfu.convert_ldm_unet_checkpoint(sd, unet), sfu.convert_ldm_vae_checkpoint(sd, vae)
    except (KeyError, IndexError, AttributeError, RuntimeError) as e:
        raise CheckpointError(f"{file}: unknown architecture (cannot map keys: {e!r})") from e


def build_from_ldm(
    sd: dict[str, torch.Tensor],
    arch: Architecture,
    file: str,
    dtype: torch.dtype | None = None,
) -> dict[str, Any]:
    """unet, vae, text_encoder (CPU; in ``dtype``, or the file's when None), tokenizer,
    scheduler_config."""
    unet_w, vae_w = convert_unet_vae(sd, arch.unet, arch.vae, file)
    try:
        with torch.device("meta"):
            unet = UNet2DConditionModel.from_config(arch.unet)
            vae = AutoencoderKL.from_config(arch.vae)
            text = CLIPTextModel(CLIPTextConfig(**arch.text_encoder))
    except (ValueError, TypeError, RuntimeError) as e:  # e.g. channels vs group norm
        raise CheckpointError(f"{file}: unknown architecture (config {e})") from e
    _assign(unet, unet_w, "U-Net", file, dtype)
    _assign(vae, vae_w, "VAE", file, dtype)
    _assign(text, _text_weights(sd, arch, text), "text encoder", file, dtype)
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text,
        "tokenizer": load_clip_tokenizer(),
        "scheduler_config": scheduler_config(arch.scheduler),
    }


def build_from_diffusers_folder(path: Path, allow_pickle: bool, file: str) -> dict[str, Any]:
    """Components of a diffusers model folder, offline. Pickle weights (.bin) are only
    read with ``allow_pickle``, and then by the libraries' ``weights_only`` loaders."""
    safe = None if allow_pickle else True
    # low_cpu_mem_usage needs accelerate, which the project does not install
    opts = {"local_files_only": True, "use_safetensors": safe, "low_cpu_mem_usage": False}
    try:
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", **opts)
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae", **opts)
        text = CLIPTextModel.from_pretrained(
            path / "text_encoder", local_files_only=True, use_safetensors=safe
        )
    except (OSError, ValueError, RuntimeError) as e:
        hint = "" if allow_pickle else " (only .safetensors weights are read without opt-in)"
        raise CheckpointError(f"{file}: cannot load the diffusers folder{hint}: {e}") from e
    tok_dir = path / "tokenizer"
    tokenizer = (
        CLIPTokenizer.from_pretrained(tok_dir, local_files_only=True)
        if (tok_dir / "tokenizer.json").exists() or (tok_dir / "vocab.json").exists()
        else load_clip_tokenizer()
    )
    if tokenizer.model_max_length > MODEL_MAX_LENGTH:
        tokenizer.model_max_length = MODEL_MAX_LENGTH
    sched_file = path / "scheduler" / "scheduler_config.json"
    sched = json.loads(sched_file.read_text()) if sched_file.exists() else {}
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text,
        "tokenizer": tokenizer,
        "scheduler_config": scheduler_config(dict(sched)),
    }
