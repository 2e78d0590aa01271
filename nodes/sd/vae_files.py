"""Standalone VAEs (``models/vae/``): single files in the original layout (bare
``encoder.*``/``decoder.*`` keys as vae-ft-mse ships them, or a whole checkpoint's
``first_stage_model.*``) and diffusers folders (``config.json`` + weights). Placed in the
model store like a checkpoint's VAE, so it is shared, budgeted and reloaded on use."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import AutoencoderKL
from diffusers.loaders import single_file_utils as sfu

from graph.context import Resources
from graph.models import ComponentRef, ModelStore
from nodes.sd.addon_files import AddonError, AddonFile, read_addon, resolve_addon
from nodes.sd.checkpoint_arch import infer_vae
from nodes.sd.checkpoint_build import _assign
from nodes.sd.checkpoints import resolve_device, resolve_dtype
from nodes.sd.handles import VaeHandle
from nodes.sd.ldm_export import VAE_PREFIX
from nodes.sd.model_store import place

CACHE_TAG = "sd.vae"
SCALING = {"sd1": 0.18215, "sdxl": 0.13025}  # not in the weights: the family says it
_VAE_PARTS = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")


def _from_single_file(file: AddonFile, workspace: Any) -> AutoencoderKL:
    tensors, _meta = read_addon(file, workspace)
    if not any(k.startswith(VAE_PREFIX) for k in tensors):
        tensors = {VAE_PREFIX + k: v for k, v in tensors.items() if k.startswith(_VAE_PARTS)}
    config = infer_vae(tensors, file.name)
    try:
        weights = sfu.convert_ldm_vae_checkpoint(tensors, config)
        with torch.device("meta"):
            vae = AutoencoderKL.from_config(config)
    except (KeyError, IndexError, ValueError, RuntimeError) as e:
        raise AddonError(f"{file.label}: not a VAE in the original layout ({e!r})") from e
    _assign(vae, weights, "VAE", file.name)
    return vae


def _from_folder(file: AddonFile, workspace: Any) -> AutoencoderKL:
    safe = None if getattr(workspace, "allow_pickle", False) else True
    try:
        return AutoencoderKL.from_pretrained(
            file.path, local_files_only=True, use_safetensors=safe, low_cpu_mem_usage=False
        )
    except (OSError, ValueError, RuntimeError) as e:
        raise AddonError(f"{file.label}: cannot load the diffusers VAE folder: {e}") from e


def load_vae(
    workspace: Any, resources: Resources, name: str, family: str, dtype: str, device: str
) -> VaeHandle:
    """The VAE behind ``name`` as a handle; AddonError naming the file when unusable."""
    store: ModelStore = resources.models
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    file = resolve_addon(workspace, "vae", name, folders_ok=True)
    ident = file.identity
    key = (CACHE_TAG, ident.path, ident.size, ident.mtime_ns, str(dt), str(dev))

    def loader() -> None:
        if file.identity != ident:
            raise AddonError(f"{file.label}: the file changed since it was loaded; run again")
        vae = (
            _from_folder(file, workspace)
            if file.path.is_dir()
            else _from_single_file(file, workspace)
        )
        label = f"vae:{name}:{str(dt).removeprefix('torch.')}"
        place(store, key, vae, dev, dt, label, component="vae")

    ref = ComponentRef(store, key, loader)
    config = dict(ref.get().config)
    if family == "auto":
        scaling = float(config.get("scaling_factor") or SCALING["sd1"])
    else:
        scaling = SCALING[family]
    identity = f"vae:{name}|{ident.token()}|{str(dt).removeprefix('torch.')}|{dev}"
    return VaeHandle(ref, dev, dt, identity, scaling_factor=scaling)
