"""Shared helpers for tests and benches that need Stable Diffusion models on disk.

Everything is built from seeded random weights (`nodes.sd.builtin`), never downloaded.
Models are written under ``<models_dir>/checkpoints/`` so `load_checkpoint` finds them by
name. Stable interface: other test files import these functions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from nodes.sd.builtin import build_tiny_components  # noqa: E402
from nodes.sd.ldm_export import save_single_file  # noqa: E402

if TYPE_CHECKING:
    from graph import Workspace
    from nodes.sd.handles import ClipHandle, ModelHandle, VaeHandle


def tiny_components(seed: int = 0) -> dict[str, Any]:
    """unet, vae, text_encoder, tokenizer, scheduler of the built-in tiny model."""
    return build_tiny_components(seed)


def tiny_pipeline(seed: int = 0, components: dict[str, Any] | None = None) -> Any:
    """A diffusers StableDiffusionPipeline over the tiny components (no safety checker)."""
    from diffusers import StableDiffusionPipeline

    c = components if components is not None else build_tiny_components(seed)
    return StableDiffusionPipeline(
        **c, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )


def checkpoints_dir(models_dir: Path) -> Path:
    """``<models_dir>/checkpoints``, created."""
    d = Path(models_dir) / "checkpoints"
    d.mkdir(parents=True, exist_ok=True)
    return d


def write_tiny_diffusers_folder(
    path: Path, seed: int = 0, components: dict[str, Any] | None = None
) -> Path:
    """Save the tiny model as a diffusers folder (model_index.json, safetensors weights)."""
    pipe = tiny_pipeline(seed, components)
    path = Path(path)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def write_tiny_single_file(
    path: Path,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    components: dict[str, Any] | None = None,
) -> Path:
    """Save the tiny model as one LDM-layout ``.safetensors`` file (optionally cast)."""
    c = components if components is not None else build_tiny_components(seed)
    return save_single_file(
        Path(path), c["unet"], c["vae"], c["text_encoder"], c["scheduler"], dtype=dtype
    )


def write_tiny_pickle(path: Path, seed: int = 0, components: dict[str, Any] | None = None) -> Path:
    """Save the tiny model as a ``.ckpt`` the way LDM training does (torch zip pickle,
    ``{"state_dict": ..., "global_step": ...}``), plus the hints string next to it."""
    import json

    from nodes.sd.ldm_export import HINTS_KEY, hints, to_ldm_state_dict

    c = components if components is not None else build_tiny_components(seed)
    sd = to_ldm_state_dict(c["unet"], c["vae"], c["text_encoder"])
    sd = {k: v.detach().clone().contiguous() for k, v in sd.items()}
    meta = json.dumps(hints(c["unet"], c["vae"], c["text_encoder"], c["scheduler"]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": sd, "global_step": 1, HINTS_KEY: meta}, path)
    return path


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Bit-identical parameters and persistent buffers, same names, same dtypes."""
    sa, sb = a.state_dict(), b.state_dict()
    sa = {k.removeprefix("text_model."): v for k, v in sa.items() if "position_ids" not in k}
    sb = {k.removeprefix("text_model."): v for k, v in sb.items() if "position_ids" not in k}
    if sa.keys() != sb.keys():
        return False
    return all(sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]) for k in sa)


def full_size_components(arch: str = "sd15", seed: int = 0) -> dict[str, Any]:
    """A full-size architecture (``sd15``, ``sd2-512``, ``sd2-768`` from `nodes/sd/configs/`)
    with seeded random weights: about 10 s and 4 GiB of RAM for SD 1.5 on a CPU."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from nodes.sd.checkpoint_arch import shipped
    from nodes.sd.checkpoint_build import scheduler_config
    from nodes.sd.tokenizer import load_clip_tokenizer

    a = shipped(arch)
    out: dict[str, Any] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out["unet"] = UNet2DConditionModel.from_config(a.unet).eval()
        out["vae"] = AutoencoderKL.from_config(a.vae).eval()
        out["text_encoder"] = CLIPTextModel(CLIPTextConfig(**a.text_encoder)).eval()
    out["tokenizer"] = load_clip_tokenizer()
    cfg = scheduler_config(a.scheduler)
    import diffusers

    out["scheduler"] = getattr(diffusers, cfg["_class_name"]).from_config(cfg)
    return out


def write_full_size_single_file(
    path: Path, arch: str = "sd15", seed: int = 0, dtype: torch.dtype | None = torch.float16
) -> Path:
    """A full-size random checkpoint in the LDM layout (SD 1.5 in fp16: about 2 GiB)."""
    c = full_size_components(arch, seed)
    text_format = "open_clip" if arch.startswith("sd2") else "clip"
    return save_single_file(
        Path(path),
        c["unet"],
        c["vae"],
        c["text_encoder"],
        c["scheduler"],
        dtype=dtype,
        text_format=text_format,
    )


def write_every_format(models_dir: Path, components: dict[str, Any]) -> Path:
    """A models folder holding the tiny model in every supported format (fp32 and fp16
    single files, a diffusers folder, a pickle ``.ckpt``), plus two files a listing skips."""
    ck = checkpoints_dir(models_dir)
    write_tiny_single_file(ck / "tiny.safetensors", components=components)
    half = ck / "half/tiny16.safetensors"
    write_tiny_single_file(half, components=components, dtype=torch.float16)
    write_tiny_diffusers_folder(ck / "tiny-diffusers", components=components)
    write_tiny_pickle(ck / "tiny.ckpt", components=components)
    (ck / "notes.txt").write_text("not a model")
    (ck / ".hidden.safetensors").write_bytes(b"x")
    return Path(models_dir)


def load_by_name(ws: Workspace, name: str, **kw: Any) -> tuple[ModelHandle, ClipHandle, VaeHandle]:
    """`load_checkpoint` with fresh resources: (ModelHandle, ClipHandle, VaeHandle); fp32
    unless told (``auto`` is bf16 on CPUs with native bf16, and parity tests need fp32)."""
    from graph import Resources
    from nodes.sd.checkpoints import load_checkpoint

    kw.setdefault("dtype", "fp32")
    return load_checkpoint(ws, Resources(), name, **kw)


def load_error(ws: Workspace, name: str) -> str:
    """The message of the `CheckpointError` (a ValueError) loading `name` must raise."""
    import pytest

    from nodes.sd.checkpoints import CheckpointError

    with pytest.raises(CheckpointError) as info:
        load_by_name(ws, name, device="cpu")
    assert isinstance(info.value, ValueError)
    return str(info.value)
