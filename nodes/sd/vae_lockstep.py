"""Run one part of the VAE over many tiles with GroupNorm statistics shared by all tiles.

Each tile runs diffusers' own modules (ResnetBlock2D, Upsample2D, ...) unchanged, in a
thread of its own, but only one tile computes at a time: at every GroupNorm a tile hands
its input in and passes the turn to the next tile. The last one refreshes every tile's
margin from the neighbours' cores (in place, so the block's residual, the same tensor, is
refreshed too), takes each core's mean and variance and combines them (weighted by pixel
count); every tile then normalises with the statistics of the whole image. So the tiles
advance layer by layer together and each core is normalised exactly as in the untiled
pass; only one tile's temporaries exist at a time and the margins stay narrow. A thread
per tile is what lets an unmodified ``forward`` pause in the middle.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from nodes.sd.vae_tile_grid import Tile, crop, overlap

Stats = tuple[torch.Tensor, torch.Tensor, int]  # mean, variance [B, G] float64, pixels


def combine(parts: Sequence[Stats]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (biased) variance of the union from each part's mean, variance, count."""
    total = sum(n for _, _, n in parts)
    mean = sum(m * n for m, _, n in parts) / total
    var = sum((v + (m - mean) ** 2) * n for m, v, n in parts) / total
    return mean, var


class _Stopped(Exception):
    """Another tile failed; this one gives up quietly."""


class Lockstep:
    """Round-robin scheduler of tile threads that meet at every GroupNorm."""

    def __init__(self, tiles: Sequence[Tile], check: Callable[[], None] | None = None) -> None:
        self.tiles = tiles
        self.check = check  # e.g. the run's interruption check, called once per GroupNorm
        self._cond = threading.Condition()
        self._turn = 0
        self._error: BaseException | None = None
        self._local = threading.local()
        self._inputs: list[torch.Tensor] = []
        self._shared: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- the scheduler ---------------------------------------------------------------
    def _wait_for_turn(self, index: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._turn == index or self._error is not None)
            if self._error is not None:
                raise _Stopped

    def _pass_turn(self, index: int) -> None:
        with self._cond:
            self._turn = (index + 1) % len(self.tiles)
            self._cond.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = exc
            self._cond.notify_all()

    def run(self, fn: Callable[[torch.Tensor], torch.Tensor], inputs: Sequence[torch.Tensor]):
        """``fn`` over every tile's input, tile by tile in lockstep; the outputs in order."""
        outputs: list[torch.Tensor | None] = [None] * len(inputs)

        def work(index: int) -> None:
            self._local.index = index
            try:
                self._wait_for_turn(index)
                with torch.no_grad():  # grad mode is per thread
                    outputs[index] = fn(inputs[index])
                self._pass_turn(index)
            except _Stopped:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                self._fail(exc)

        threads = [
            threading.Thread(target=work, args=(i,), name=f"vae-tile-{i}", daemon=True)
            for i in range(len(inputs))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self._error is not None:
            raise self._error
        return outputs

    # -- the shared GroupNorm --------------------------------------------------------
    def group_norm(self, norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
        """``norm(x)`` for this thread's tile, with the statistics of all tiles' cores."""
        index = self._local.index
        b, c, h, w = x.shape
        g = norm.num_groups
        self._inputs.append(x)
        if index == len(self.tiles) - 1:
            if self.check is not None:
                self.check()
            self._refresh_margins(self._inputs)
            self._shared = combine([self._core_stats(i, t, g) for i, t in enumerate(self._inputs)])
            self._inputs = []
        self._pass_turn(index)
        self._wait_for_turn(index)
        mean, var = self._shared
        scale = torch.rsqrt(var + norm.eps).float()[..., None]
        y = (x.float().reshape(b, g, -1) - mean.float()[..., None]) * scale
        y = y.reshape(b, c, h, w).to(x.dtype)
        if norm.affine:
            y = y * norm.weight[None, :, None, None] + norm.bias[None, :, None, None]
        return y

    def _refresh_margins(self, inputs: Sequence[torch.Tensor]) -> None:
        """Copy into every tile's margin what the neighbours' cores hold there."""
        for i, (tile, x) in enumerate(zip(self.tiles, inputs, strict=True)):
            for j, (other, y) in enumerate(zip(self.tiles, inputs, strict=True)):
                shared = overlap(tile.crop, other.core) if i != j else None
                if shared is not None:
                    into = tile.within(shared, *x.shape[-2:])
                    crop(x, into).copy_(crop(y, other.within(shared, *y.shape[-2:])))

    def _core_stats(self, index: int, x: torch.Tensor, groups: int) -> Stats:
        core = crop(x, self.tiles[index].core_within(*x.shape[-2:])).float()
        var, mean = torch.var_mean(core.reshape(x.shape[0], groups, -1), dim=-1, correction=0)
        return mean.double(), var.double(), core[0, 0].numel()


class SharedGroupNorm(nn.Module):
    """Stands in for an ``nn.GroupNorm`` inside tile threads (same parameters)."""

    def __init__(self, norm: nn.GroupNorm, lockstep: Lockstep) -> None:
        super().__init__()
        self.norm = norm
        self.lockstep = lockstep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lockstep.group_norm(self.norm, x)


def with_shared_norms(module: nn.Module, lockstep: Lockstep) -> Any:
    """A copy of ``module`` (sharing its weights; the original is left untouched, other
    jobs may use it) whose GroupNorms share statistics through ``lockstep``."""
    memo: dict[int, Any] = {id(t): t for t in (*module.parameters(), *module.buffers())}
    clone = copy.deepcopy(module, memo)
    for name, child in list(clone.named_modules()):
        for key, sub in list(child.named_children()):
            if isinstance(sub, nn.GroupNorm):
                setattr(child, key, SharedGroupNorm(sub, lockstep))
        del name
    return clone
