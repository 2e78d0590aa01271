"""The image size (pixels, square) a checkpoint was trained at, so the canvas can start new
latents there: SD 1.x 512, SD 2.x 512-base 512 / 768-v 768, SDXL 1024, our own exports
(the demo and test models) what their hints say. Read from the safetensors header and at
most one small tensor (the SD 2.x v-prediction probe), or a diffusers folder's configs:
no model is loaded and nothing is unpickled."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from graph.workspace import open_regular
from model_index.family import read_safetensors

FAMILY_SIZE = {"sd1": 512, "sdxl": 1024, "sdxl-refiner": 1024}
VAE_DOWN = re.compile(r"^first_stage_model\.encoder\.down\.(\d+)\.")
# ComfyUI's SD 2.x test (as nodes/sd/checkpoint_arch.py): this bias's std is above 0.09 in
# v-prediction (768) models and below it in epsilon (512-base) ones.
V_PROBE = "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias"
V_STD = 0.09
SD2_BASE_GLOBAL_STEP = 875000
DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64}


def _metadata(header: dict[str, Any]) -> dict[str, Any]:
    meta = header.get("__metadata__")
    out = dict(meta) if isinstance(meta, dict) else {}
    try:
        hints = json.loads(out.get("sdgraph.hints", "{}"))
    except (TypeError, ValueError):
        hints = {}
    out["hints"] = hints if isinstance(hints, dict) else {}
    return out


def _probe_std(path: Path, entry: Any, data_start: int) -> float | None:
    """The standard deviation of one small tensor, read by its offsets."""
    if not isinstance(entry, dict):
        return None
    begin, end = (entry.get("data_offsets") or [0, 0])[:2]
    dtype = entry.get("dtype")
    if dtype not in (*DTYPES, "BF16") or not 0 < end - begin <= 1 << 20:
        return None
    try:
        with open_regular(path) as f:
            f.seek(data_start + begin)
            raw = f.read(end - begin)
    except OSError:
        return None
    if dtype == "BF16":  # the high half of a float32
        values = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
    else:
        values = np.frombuffer(raw, DTYPES[dtype])
    return float(values.astype(np.float64).std()) if values.size else None


def _sd2_is_v(path: Path, header: dict[str, Any], meta: dict[str, Any], start: int) -> bool:
    """The rule of nodes/sd/checkpoint_arch.py's _sd2_prediction, without torch."""
    sched = meta["hints"].get("scheduler")
    if isinstance(sched, dict) and sched.get("prediction_type") in ("epsilon", "v_prediction"):
        return bool(sched["prediction_type"] == "v_prediction")
    spec = str(meta.get("modelspec.prediction_type", "")).lower()
    if spec in ("epsilon", "v", "v_prediction"):
        return spec != "epsilon"
    if str(meta.get("modelspec.architecture", "")).endswith("-v"):
        return True
    if "global_step" in meta:
        return str(meta["global_step"]) != str(SD2_BASE_GLOBAL_STEP)
    std = _probe_std(path, header.get(V_PROBE), start)
    return std is None or std > V_STD  # diffusers' default for "v2" is v-prediction


def _from_file(family: str, path: Path) -> int | None:
    read = read_safetensors(path)
    if read is None:
        return None
    header, start = read
    meta = _metadata(header)
    resolution = re.match(r"^(\d+)x(\d+)$", str(meta.get("modelspec.resolution", "")))
    if resolution:
        return int(resolution.group(1))
    unet = meta["hints"].get("unet")
    downs = {int(m.group(1)) for k in header if (m := VAE_DOWN.match(k))}
    sample = unet.get("sample_size") if isinstance(unet, dict) else None
    if isinstance(sample, int) and not isinstance(sample, bool) and sample > 0 and downs:
        return sample * 2 ** max(downs)  # our exports: the U-Net's size x the VAE's factor
    if family == "sd2":
        return 768 if _sd2_is_v(path, header, meta, start) else 512
    return FAMILY_SIZE.get(family)


def _from_folder(path: Path) -> int | None:
    """A diffusers folder: the U-Net's sample size times the VAE's downscale factor."""
    try:
        unet = json.loads((path / "unet" / "config.json").read_text())
        vae = json.loads((path / "vae" / "config.json").read_text())
        return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def native_size(family: str | None, path: Path) -> int | None:
    """Pixels per side the checkpoint at ``path`` (file or diffusers folder) was trained at;
    None when unknown (not a checkpoint, an unreadable file)."""
    if path.is_dir():
        return _from_folder(path)
    if family is None or family == "unknown":
        return None
    return _from_file(family, path)
