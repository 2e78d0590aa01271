"""Where the VAE's tiles lie, and how much overlap each one needs.

A tile is a core (the part of the image it is responsible for; the cores cover the image
exactly once) plus a margin on every side that is not an image border. The margin is the
network's reach: how far, in the tiled stage's input units, a wrong value at a tile's cut
edge can travel inward through the convolutions (GroupNorm, SiLU and nearest upsampling are
pointwise and do not spread it). With a margin at least that wide and the GroupNorm
statistics shared over all cores (`nodes.sd.vae_lockstep`), each core comes out as the
untiled network computes it, so the stitched image has no seams to blend away.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

Box = tuple[int, int, int, int]  # top, bottom, left, right (end exclusive)


@dataclass(frozen=True)
class Tile:
    """A padded tile (``crop``) and its ``core``, both in the tiled stage's input units."""

    crop: Box
    core: Box

    def core_within(self, height: int, width: int) -> Box:
        """The core inside a feature map of this tile that is ``height`` x ``width``
        (the crop rescaled: larger after upsampling, smaller after downsampling)."""
        top, bottom, left, right = self.crop
        sy, sx = height / (bottom - top), width / (right - left)
        ct, cb, cl, cr = self.core
        return (
            round((ct - top) * sy),
            round((cb - top) * sy),
            round((cl - left) * sx),
            round((cr - left) * sx),
        )


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


def _conv_reach(modules: Iterable[nn.Module]) -> int:
    """How far (in the convolutions' own pixels) an error spreads through these modules:
    half a kernel per stride-1 convolution, a whole kernel per strided one."""
    reach = 0
    for m in modules:
        if isinstance(m, nn.Conv2d):
            extent = (m.kernel_size[0] - 1) * m.dilation[0]
            reach += extent if m.stride[0] > 1 else extent // 2
    return reach


def decoder_reach(decoder: nn.Module) -> float:
    """Reach of a diffusers ``Decoder`` after its mid-block, in latent pixels."""
    scale, reach = 1, 0.0
    for block in decoder.up_blocks:
        reach += _conv_reach(block.resnets.modules()) / scale
        if block.upsamplers is not None:
            scale *= 2
            reach += _conv_reach(block.upsamplers.modules()) / scale
    return reach + _conv_reach([decoder.conv_out]) / scale


def encoder_reach(encoder: nn.Module) -> int:
    """Reach of a diffusers ``Encoder`` up to its mid-block, in image pixels."""
    scale, reach = 1, _conv_reach([encoder.conv_in])
    for block in encoder.down_blocks:
        reach += _conv_reach(block.resnets.modules()) * scale
        if block.downsamplers is not None:
            reach += _conv_reach(block.downsamplers.modules()) * scale
            scale *= 2
    return reach


def crop(x: torch.Tensor, box: Box) -> torch.Tensor:
    """``x[..., top:bottom, left:right]``."""
    top, bottom, left, right = box
    return x[..., top:bottom, left:right]
