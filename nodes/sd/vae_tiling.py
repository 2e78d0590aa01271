"""When to run the VAE in tiles (`nodes.sd.vae_tiled`; the tile size is the VAE config's
``tile_sample_min_size`` pixels, ``tile_latent_min_size`` latent pixels, as in diffusers).

"auto" tiles only when the whole image would not fit the memory budget (half of what
the device has free), "on" whenever the image is larger than one tile, "off" never.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch

Tiling = Literal["auto", "on", "off"]
TILING_CHOICES: tuple[str, ...] = ("auto", "on", "off")
BUDGET_FRACTION = 0.5  # of the free memory, for the VAE's activations
LIVE_TENSORS = 3  # feature maps alive at once in a decoder block (input, norm, output)


def free_bytes(device: torch.device) -> int:
    """Memory free for tensors on ``device``: CUDA's free memory, else MemAvailable."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62  # unknown: never tile on its own


def activation_bytes(vae: Any, batch: int, height: int, width: int, itemsize: int) -> int:
    """Estimated peak activations of one untiled pass over a ``height`` x ``width`` image:
    the largest feature map (channels times resolution, per decoder level) a few times."""
    channels = list(reversed(vae.config.block_out_channels))
    levels = len(channels)
    largest = 0
    for i, ch in enumerate(channels):
        scale = 2 ** (levels - 1 - i)
        wide = max(ch, channels[i - 1] if i else ch)  # the upsampled input of this level
        largest = max(largest, wide * (height // scale) * (width // scale))
    return LIVE_TENSORS * batch * largest * itemsize


def use_tiles(mode: str, vae: Any, batch: int, height: int, width: int, device: Any) -> bool:
    """Whether to tile an image of ``height`` x ``width`` pixels (see the module doc)."""
    if mode not in TILING_CHOICES:
        raise ValueError(f"tiling must be one of {', '.join(TILING_CHOICES)}, not {mode!r}")
    tile = int(vae.tile_sample_min_size)
    if mode == "off" or (height <= tile and width <= tile):
        return False
    if mode == "on":
        return True
    itemsize = torch.empty((), dtype=vae.dtype).element_size()
    need = activation_bytes(vae, batch, height, width, itemsize)
    return need > BUDGET_FRACTION * free_bytes(torch.device(device))
