"""Where the VAE's tiles lie, and how much overlap each one needs.

A tile is a core (the part of the image it is responsible for; the cores cover the image
exactly once) plus a margin on every side that is not an image border. A convolution at a
tile's cut edge sees zeros instead of the neighbour's pixels, and that wrong value travels
inward one kernel radius per convolution (GroupNorm, SiLU and nearest upsampling are
pointwise and do not spread it). At every GroupNorm `nodes.sd.vae_lockstep` copies each
margin afresh from the neighbours' cores, so the margin only has to be as wide as the reach
between two GroupNorms (about 2 latent pixels for the decoder, 16 image pixels for the
encoder); with the statistics shared over all cores each core comes out as the untiled
network computes it, and the stitched image has no seams to blend away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

Box = tuple[int, int, int, int]  # top, bottom, left, right (end exclusive)


@dataclass(frozen=True)
class Tile:
    """A padded tile (``crop``) and its ``core``, both in the tiled stage's input units."""

    crop: Box
    core: Box

    def within(self, box: Box, height: int, width: int) -> Box:
        """``box`` (input units) inside a feature map of this tile that is ``height`` x
        ``width`` (the crop rescaled: larger after upsampling, smaller after downsampling)."""
        top, bottom, left, right = self.crop
        sy, sx = height / (bottom - top), width / (right - left)
        bt, bb, bl, br = box
        return (
            round((bt - top) * sy),
            round((bb - top) * sy),
            round((bl - left) * sx),
            round((br - left) * sx),
        )

    def core_within(self, height: int, width: int) -> Box:
        """The core inside a feature map of this tile that is ``height`` x ``width``."""
        return self.within(self.core, height, width)


def overlap(a: Box, b: Box) -> Box | None:
    """The intersection of two boxes, or None."""
    top, bottom = max(a[0], b[0]), min(a[1], b[1])
    left, right = max(a[2], b[2]), min(a[3], b[3])
    return (top, bottom, left, right) if top < bottom and left < right else None


def _spans(size: int, core: int, margin: int, align: int) -> list[tuple[int, int, int, int]]:
    """Split ``size`` into near-equal cores of at most ``core`` (multiples of ``align``),
    each widened by ``margin`` inside the image: (crop_lo, crop_hi, core_lo, core_hi)."""
    units, step = size // align, max(1, core // align)
    count = math.ceil(units / step)
    cuts = [round(i * units / count) * align for i in range(count + 1)]
    return [
        (max(0, lo - margin), min(size, hi + margin), lo, hi)
        for lo, hi in zip(cuts, cuts[1:], strict=False)
    ]


def tile_grid(height: int, width: int, core: int, margin: int, align: int = 1) -> list[Tile]:
    """Row-major tiles over a ``height`` x ``width`` map (both multiples of ``align``)."""
    margin = math.ceil(margin / align) * align
    rows, cols = _spans(height, core, margin, align), _spans(width, core, margin, align)
    return [
        Tile(crop=(t, b, l, r), core=(ct, cb, cl, cr))
        for t, b, ct, cb in rows
        for l, r, cl, cr in cols  # noqa: E741
    ]


def reach_between_norms(part: nn.Module) -> float:
    """How far, in ``part``'s input pixels, a wrong value can travel inward between two
    GroupNorms (where `nodes.sd.vae_lockstep` refreshes every tile's margin from its
    neighbours): the largest sum of convolution reaches along a stretch of layers, walked
    in ``part``'s order, with no GroupNorm in it. A stride-1 convolution reaches half its
    kernel, a strided one its whole kernel and then coarsens the pixels; an upsampler makes
    them finer (nearest upsampling itself spreads nothing, in input pixels)."""
    from diffusers.models.upsampling import Upsample2D

    pixel, run, most = 1.0, 0.0, 0.0  # input pixels per pixel at this point of the walk
    for m in part.modules():
        if isinstance(m, nn.GroupNorm):
            run = 0.0
        elif isinstance(m, Upsample2D):
            pixel /= 2
        elif isinstance(m, nn.Conv2d):
            extent = (m.kernel_size[0] - 1) * m.dilation[0]
            run += (extent if m.stride[0] > 1 else extent // 2) * pixel
            pixel *= m.stride[0]
        most = max(most, run)
    return most


def crop(x: torch.Tensor, box: Box) -> torch.Tensor:
    """``x[..., top:bottom, left:right]``."""
    top, bottom, left, right = box
    return x[..., top:bottom, left:right]
