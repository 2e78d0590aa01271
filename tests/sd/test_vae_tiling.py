"""VAE tiling: auto tiles only when the image would not fit, on/off are explicit."""

from __future__ import annotations

import pytest
import torch

from graph import Resources, Workspace
from nodes.sd import vae_tiling
from nodes.sd.checkpoints import load_checkpoint
from nodes.sd.handles import LatentBatch
from nodes.vae_decode import decode
from nodes.vae_encode import encode

TILE = 64  # pixels (8 latent pixels): a 128x128 image is 3x3 overlapping tiles


@pytest.fixture(scope="module")
def vae(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("tiling")
    _, _, handle = load_checkpoint(
        Workspace.at(tmp, tmp / "models"), Resources(), "builtin/tiny-random", "fp32", "cpu"
    )
    handle.vae.tile_sample_min_size, handle.vae.tile_latent_min_size = TILE, TILE // 8
    return handle


def _latent() -> LatentBatch:
    g = torch.Generator().manual_seed(0)
    return LatentBatch(torch.randn(1, 4, 16, 16, generator=g))


def _count_decoder_calls(vae) -> tuple[list[int], object]:
    calls: list[int] = []
    hook = vae.vae.decoder.register_forward_hook(lambda m, i, o: calls.append(o.shape[-1]))
    return calls, hook


def test_auto_leaves_an_image_that_fits_untiled(vae) -> None:
    calls, hook = _count_decoder_calls(vae)
    try:
        auto = decode(vae, _latent(), "auto")
        off = decode(vae, _latent(), "off")
    finally:
        hook.remove()
    assert calls == [128, 128] and torch.equal(auto, off)


def test_on_and_auto_over_budget_decode_in_tiles(vae, monkeypatch: pytest.MonkeyPatch) -> None:
    off = decode(vae, _latent(), "off")
    calls, hook = _count_decoder_calls(vae)
    try:
        on = decode(vae, _latent(), "on")
        monkeypatch.setattr(vae_tiling, "free_bytes", lambda device: 1024)
        auto = decode(vae, _latent(), "auto")
    finally:
        hook.remove()
    assert calls == [TILE, TILE, 32] * 3 * 2  # 3x3 tiles per decode, the last row/column cut
    assert torch.equal(on, auto) and on.shape == off.shape
    assert torch.isfinite(on).all()


def test_tiled_encode_matches_the_untiled_shape(vae) -> None:
    image = decode(vae, _latent(), "off")
    tiled, untiled = encode(vae, image, "on"), encode(vae, image, "off")
    assert tiled.shape == untiled.shape == (1, 4, 16, 16)
    assert not torch.equal(tiled, untiled)  # really went through the tiles


def test_estimate_grows_with_the_image_and_bad_mode_is_refused(vae) -> None:
    small = vae_tiling.activation_bytes(vae.vae, 1, 512, 512, 4)
    assert vae_tiling.activation_bytes(vae.vae, 1, 1024, 1024, 4) == 4 * small
    assert vae_tiling.activation_bytes(vae.vae, 2, 512, 512, 4) == 2 * small
    with pytest.raises(ValueError, match="tiling must be one of"):
        vae_tiling.use_tiles("sometimes", vae.vae, 1, 512, 512, "cpu")


def test_free_memory_is_read() -> None:
    assert vae_tiling.free_bytes(torch.device("cpu")) > 0
