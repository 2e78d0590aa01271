"""Tiled VAE decode and encode for diffusers' ``AutoencoderKL`` that match the untiled ones.

Only the full-resolution part of each network is tiled: the decoder after its mid-block
(the up blocks and output layers) and the encoder up to its mid-block. The mid-block,
whose attention mixes every position with every other, runs untiled at latent
resolution, where it is smallest. Tiles carry a margin as wide as the tiled part's reach between two
GroupNorms (`nodes.sd.vae_tile_grid`), refreshed from the neighbours and with statistics
shared at every GroupNorm (`nodes.sd.vae_lockstep`), so the stitched cores equal the
untiled result up to float rounding: no blending.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from nodes.sd.vae_lockstep import Lockstep, with_shared_norms
from nodes.sd.vae_tile_grid import Tile, crop, reach_between_norms, tile_grid

Check = Callable[[], None] | None


def _run_tiles(
    part: torch.nn.Module,
    fn: Callable[[Any, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tiles: list[Tile],
    scale: float,
    out: torch.Tensor,
    check: Check,
) -> torch.Tensor:
    """``fn(part, tile)`` over every tile of ``x`` in lockstep; each output's core is
    written into ``out`` (``scale`` output pixels per input pixel)."""
    lockstep = Lockstep(tiles, check)
    shared = with_shared_norms(part, lockstep)
    pieces = [crop(x, t.crop).clone() for t in tiles]  # their margins are written to
    results = lockstep.run(lambda t: fn(shared, t), pieces)
    for tile, result in zip(tiles, results, strict=True):
        core = tile.core_within(*result.shape[-2:])
        top, bottom, left, right = (round(v * scale) for v in tile.core)
        out[..., top:bottom, left:right] = crop(result, core)
    return out


def _decoder_tail(decoder: Any, sample: torch.Tensor) -> torch.Tensor:
    """What ``Decoder.forward`` does after the mid-block (no latent embeds in a KL VAE)."""
    for up_block in decoder.up_blocks:
        sample = up_block(sample, None)
    return decoder.conv_out(decoder.conv_act(decoder.conv_norm_out(sample)))


def _encoder_head(encoder: Any, sample: torch.Tensor) -> torch.Tensor:
    """What ``Encoder.forward`` does before the mid-block."""
    sample = encoder.conv_in(sample)
    for down_block in encoder.down_blocks:
        sample = down_block(sample)
    return sample


def tiled_decode(vae: Any, z: torch.Tensor, tile: int, check: Check = None) -> torch.Tensor:
    """``vae.decode(z)`` with the up blocks in tiles of ``tile`` latent pixels (core)."""
    decoder = vae.decoder
    if vae.post_quant_conv is not None:
        z = vae.post_quant_conv(z)
    sample = decoder.mid_block(decoder.conv_in(z), None)
    b, _, h, w = sample.shape
    factor = 2 ** sum(block.upsamplers is not None for block in decoder.up_blocks)
    tail = torch.nn.ModuleDict(
        {
            "up_blocks": decoder.up_blocks,
            "conv_norm_out": decoder.conv_norm_out,
            "conv_act": decoder.conv_act,
            "conv_out": decoder.conv_out,
        }
    )
    tiles = tile_grid(h, w, tile, math.ceil(reach_between_norms(tail)))
    out = sample.new_empty(b, decoder.conv_out.out_channels, h * factor, w * factor)
    return _run_tiles(tail, _decoder_tail, sample, tiles, factor, out, check)


def tiled_encode(vae: Any, x: torch.Tensor, tile: int, check: Check = None) -> torch.Tensor:
    """The moments ``vae.encode(x)`` computes, with the down blocks in tiles of ``tile``
    image pixels (core; rounded to the VAE's factor)."""
    encoder = vae.encoder
    b, _, h, w = x.shape
    factor = 2 ** sum(block.downsamplers is not None for block in encoder.down_blocks)
    head = torch.nn.ModuleDict({"conv_in": encoder.conv_in, "down_blocks": encoder.down_blocks})
    tiles = tile_grid(h, w, tile, math.ceil(reach_between_norms(head)), align=factor)
    channels = encoder.down_blocks[-1].resnets[-1].out_channels
    out = x.new_empty(b, channels, h // factor, w // factor)
    sample = _run_tiles(head, _encoder_head, x, tiles, 1 / factor, out, check)
    sample = encoder.mid_block(sample)
    moments = encoder.conv_out(encoder.conv_act(encoder.conv_norm_out(sample)))
    return vae.quant_conv(moments) if vae.quant_conv is not None else moments
