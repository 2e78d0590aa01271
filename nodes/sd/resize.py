"""Resizing latents and images as ComfyUI's LatentUpscale, LatentUpscaleBy and ImageScale do.

ComfyUI's methods nearest-exact, bilinear, area and bicubic are plain
``torch.nn.functional.interpolate`` calls with torch's defaults (align_corners off), so
using the same call gives the same numbers. Its center crop trims the longer side to the
target's aspect before scaling (the margins rounded half to even, as Python's round does).
``lanczos`` goes through PIL on 8-bit pixels, as ComfyUI does. ``bislerp`` (latents only) is
our own spherical interpolation between each output point's two bilinear neighbours per
axis: the idea of ComfyUI's, not its exact numbers.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch.nn import functional

from graph.cost import Cost, CostInputs

INTERPOLATE = ("nearest-exact", "bilinear", "area", "bicubic")
# the choices of the nodes' inputs (ComfyUI's lists)
LatentMethod = Literal["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]
ImageMethod = Literal["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
Crop = Literal["disabled", "center"]


def keep_aspect(width: int, height: int, old_w: int, old_h: int, least: int) -> tuple[int, int]:
    """ComfyUI's reading of a 0 side: derived from the other one and the input's aspect,
    and neither side below ``least``."""
    if width == 0:
        height = max(least, height)
        return max(least, round(old_w * height / old_h)), height
    if height == 0:
        width = max(least, width)
        return width, max(least, round(old_h * width / old_w))
    return max(least, width), max(least, height)


def sized_cost(inputs: CostInputs, output: str, least: int) -> Cost:
    """Cost of a node making a width x height picture (0: keep the input's aspect). A link
    carries pixels only, so a side derived from the aspect is counted as a square, and a
    batch as one picture."""
    width, height = inputs.values["width"], inputs.values["height"]
    if width == 0 and height == 0:
        return Cost()  # the input passes through unchanged
    side = max(width, height, least)
    w, h = keep_aspect(width, height, side, side, least)
    field = "width" if width >= height else "height"
    return Cost(pixels=w * h, outputs={output: w * h}, pixels_field=field)


def center_crop(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """[..., H, W] trimmed on its longer side (relative to width:height) to that aspect."""
    old_h, old_w = samples.shape[-2:]
    old_aspect, new_aspect = old_w / old_h, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
    return samples[..., y : old_h - y, x : old_w - x]


def resize(samples: torch.Tensor, width: int, height: int, method: str, crop: str) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, height, width] by ``method`` after an optional center crop."""
    if crop == "center":
        samples = center_crop(samples, width, height)
    if method == "bislerp":
        return bislerp(samples, width, height)
    if method == "lanczos":
        return lanczos(samples, width, height)
    if method not in INTERPOLATE:
        raise ValueError(f"unknown upscale method {method!r}")
    return functional.interpolate(samples, size=(height, width), mode=method)


def lanczos(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """PIL's Lanczos filter on each picture as 8-bit RGB (0..1 in and out)."""
    out = []
    for picture in samples:
        hwc = (picture.movedim(0, -1).float().cpu().numpy() * 255.0).clip(0, 255)
        img = Image.fromarray(hwc.astype(np.uint8)).resize(
            (width, height), Image.Resampling.LANCZOS
        )
        out.append(torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).movedim(-1, 0))
    return torch.stack(out).to(samples.device, samples.dtype)


def _neighbours(old: int, new: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """For each of ``new`` output points: its two source indices and the weight of the
    second, at the positions bilinear interpolation (half-pixel centres) samples."""
    pos = (torch.arange(new, device=device, dtype=torch.float32) + 0.5) * (old / new) - 0.5
    pos = pos.clamp(0, old - 1)
    first = pos.floor().long()
    second = (first + 1).clamp(max=old - 1)
    return first, second, pos - first


def _slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, dim: int) -> torch.Tensor:
    """Rotate a's direction toward b's by t along the great circle; the length is the
    linear mix of both lengths. Parallel or opposite vectors mix linearly."""
    na, nb = a.norm(dim=dim, keepdim=True), b.norm(dim=dim, keepdim=True)
    ua = a / na.clamp(min=1e-12)
    ub = b / nb.clamp(min=1e-12)
    dot = (ua * ub).sum(dim=dim, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(dot)
    sin = torch.sin(omega)
    safe = sin.abs() > 1e-4
    sin = torch.where(safe, sin, torch.ones_like(sin))
    turned = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / sin
    turned = turned * (na * (1 - t) + nb * t)
    return torch.where(safe, turned, a * (1 - t) + b * t)


def bislerp(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Separable spherical interpolation of the channel vectors: across, then down."""
    x = samples.float()
    i, j, t = _neighbours(x.shape[-1], width, x.device)
    x = _slerp(x[..., i], x[..., j], t.view(1, 1, 1, -1), dim=1)
    i, j, t = _neighbours(x.shape[-2], height, x.device)
    x = _slerp(x[..., i, :], x[..., j, :], t.view(1, 1, -1, 1), dim=1)
    return x.to(samples.dtype)
