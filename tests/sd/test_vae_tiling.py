"""VAE tiling: auto tiles only when the image would not fit, on/off are explicit, and the
tiled result matches the untiled one (shared GroupNorm statistics, margins = reach)."""

from __future__ import annotations

import pytest
import torch

from graph import Resources, Workspace
from nodes.sd import vae_tiled, vae_tiling
from nodes.sd.checkpoints import load_checkpoint
from nodes.sd.handles import LatentBatch
from nodes.sd.vae_lockstep import Lockstep, combine
from nodes.sd.vae_tile_grid import tile_grid
from nodes.vae_decode import decode
from nodes.vae_encode import encode

TILE = 64  # pixels (8 latent pixels): a 128x192 image is 2x3 tiles


@pytest.fixture(scope="module")
def vae(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("tiling")
    _, _, handle = load_checkpoint(
        Workspace.at(tmp, tmp / "models"), Resources(), "builtin/tiny-random", "fp32", "cpu"
    )
    handle.vae.tile_sample_min_size, handle.vae.tile_latent_min_size = TILE, TILE // 8
    return handle


def _latent(h: int = 16, w: int = 24) -> LatentBatch:
    g = torch.Generator().manual_seed(0)
    return LatentBatch(torch.randn(1, 4, h, w, generator=g))


def psnr(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0) -> float:
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(peak**2 / mse)).item()


def _seam_error(tiled: torch.Tensor, untiled: torch.Tensor, cuts: list[int]) -> float:
    """Largest difference in the pixel columns either side of the tile cuts ([B, H, W, 3])."""
    cols = [c + d for c in cuts for d in (-1, 0)]
    return (tiled[:, :, cols] - untiled[:, :, cols]).abs().max().item()


@pytest.fixture(scope="module")
def untiled(vae) -> torch.Tensor:
    return decode(vae, _latent(), "off")


def test_auto_leaves_an_image_that_fits_untiled(vae, untiled) -> None:
    calls: list[int] = []
    hook = vae.vae.decoder.register_forward_hook(lambda m, i, o: calls.append(o.shape[-1]))
    try:
        auto = decode(vae, _latent(), "auto")
    finally:
        hook.remove()
    assert calls == [192] and torch.equal(auto, untiled)


def test_tiled_decode_matches_the_untiled_one_without_seams(vae, untiled) -> None:
    widths: list[int] = []
    up = vae.vae.decoder.up_blocks[0]
    hook = up.register_forward_pre_hook(lambda m, args: widths.append(args[0].shape[-1]))
    try:
        tiled = decode(vae, _latent(), "on")
    finally:
        hook.remove()
    assert widths == [10, 12, 10] * 2  # 2x3 tiles: cores of 8 latent pixels, margins of 2
    assert tiled.shape == untiled.shape == (1, 128, 192, 3)
    assert psnr(tiled, untiled) >= 40  # measured: about 130 dB
    assert _seam_error(tiled, untiled, [64, 128]) < 1e-4


@pytest.mark.parametrize("without", ["margin", "refresh"])
def test_without_margins_or_their_refresh_the_seams_show(
    vae, untiled, monkeypatch, without
) -> None:
    if without == "margin":
        monkeypatch.setattr(vae_tiled, "reach_between_norms", lambda part: 0)
    else:  # margins of 2 latent pixels, never refreshed from the neighbours
        monkeypatch.setattr(Lockstep, "_refresh_margins", lambda self, inputs: None)
    tiled = decode(vae, _latent(), "on")
    assert psnr(tiled, untiled) < 60  # with both: about 130 dB
    assert _seam_error(tiled, untiled, [64, 128]) > 0.01


def test_auto_over_budget_decodes_in_tiles(vae, monkeypatch) -> None:
    on = decode(vae, _latent(8, 24), "on")
    monkeypatch.setattr(vae_tiling, "free_bytes", lambda device: 1024)
    auto = decode(vae, _latent(8, 24), "auto")
    assert torch.equal(on, auto)
    assert not torch.equal(on, decode(vae, _latent(8, 24), "off"))  # really went in tiles


def test_tiled_encode_matches_the_untiled_one(vae, untiled) -> None:
    tiled, plain = encode(vae, untiled, "on"), encode(vae, untiled, "off")
    assert tiled.shape == plain.shape == (1, 4, 16, 24)
    peak = (plain.max() - plain.min()).item()
    assert psnr(tiled, plain, peak) >= 40  # measured: about 130 dB
    assert not torch.equal(tiled, plain)  # really went through the tiles


def test_an_interrupted_tiled_decode_stops_every_tile(vae) -> None:
    def check() -> None:
        raise InterruptedError("cancelled")

    with pytest.raises(InterruptedError, match="cancelled"):
        decode(vae, _latent(), "on", check)
    assert isinstance(vae.vae.decoder.up_blocks[0].resnets[0].norm1, torch.nn.GroupNorm)


def test_tiles_cover_the_map_once_with_aligned_clipped_margins() -> None:
    tiles = tile_grid(40, 72, core=32, margin=10, align=8)
    seen = torch.zeros(40, 72, dtype=torch.int)
    for t in tiles:
        top, bottom, left, right = t.core
        seen[top:bottom, left:right] += 1
        assert all(v % 8 == 0 for v in (*t.core, *t.crop))
        assert t.crop[0] == max(0, top - 16) and t.crop[3] == min(72, right + 16)
    assert len(tiles) == 2 * 3 and torch.all(seen == 1)


def test_combined_statistics_are_those_of_the_whole() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 50, generator=g, dtype=torch.float64) * 3 + 1
    parts = []
    for piece in x.split([7, 30, 13], dim=-1):
        var, mean = torch.var_mean(piece, dim=-1, correction=0)
        parts.append((mean, var, piece.shape[-1]))
    var, mean = torch.var_mean(x, dim=-1, correction=0)
    got_mean, got_var = combine(parts)
    assert torch.allclose(got_mean, mean) and torch.allclose(got_var, var)


def test_estimate_grows_with_the_image_and_bad_mode_is_refused(vae) -> None:
    small = vae_tiling.activation_bytes(vae.vae, 1, 512, 512, 4)
    assert vae_tiling.activation_bytes(vae.vae, 1, 1024, 1024, 4) == 4 * small
    assert vae_tiling.activation_bytes(vae.vae, 2, 512, 512, 4) == 2 * small
    with pytest.raises(ValueError, match="tiling must be one of"):
        vae_tiling.use_tiles("sometimes", vae.vae, 1, 512, 512, "cpu")


def test_free_memory_is_read() -> None:
    assert vae_tiling.free_bytes(torch.device("cpu")) > 0
