"""Safetensors files are read tensor by tensor and cast as they are read."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from nodes.sd.checkpoint_files import CheckpointError, read_safetensors


@pytest.fixture
def mixed(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    tensors = {
        "w": torch.randn(3, 5, generator=g).half(),
        "b16": torch.randn(7, generator=g).bfloat16(),
        "ids": torch.arange(6, dtype=torch.int64).reshape(2, 3),
        "empty": torch.zeros(0, 4, dtype=torch.float16),
        "scalar": torch.tensor(2.5, dtype=torch.float16),
        "flag": torch.tensor([True, False]),
        "model_ema.w": torch.ones(2, dtype=torch.float16),
    }
    path = tmp_path / "mixed.safetensors"
    save_file(tensors, str(path), metadata={"note": "x"})
    return path, tensors


def test_floats_are_cast_on_read_and_the_rest_kept(mixed) -> None:
    path, src = mixed
    got, meta = read_safetensors(path, torch.float32)
    assert meta == {"note": "x"} and "model_ema.w" not in got
    for key in ("w", "b16", "empty", "scalar"):
        assert got[key].dtype == torch.float32 and torch.equal(got[key], src[key].float())
        assert got[key].shape == src[key].shape
    assert torch.equal(got["ids"], src["ids"]) and torch.equal(got["flag"], src["flag"])
    assert all(t.data_ptr() % 64 == 0 for t in got.values() if t.numel())


def test_without_a_dtype_the_file_dtypes_stay(mixed) -> None:
    path, src = mixed
    got, _ = read_safetensors(path)
    for key in ("w", "b16", "ids", "empty", "scalar", "flag"):
        assert got[key].dtype == src[key].dtype and torch.equal(got[key], src[key])


def test_truncated_data_is_a_checkpoint_error(mixed) -> None:
    path, _ = mixed
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(CheckpointError, match="corrupt safetensors"):
        read_safetensors(path, torch.float32)


def test_large_files_are_mapped_views_and_casts_are_read(mixed, monkeypatch) -> None:
    """From MAP_MIN_BYTES on, tensors already in the wanted dtype are views of one map (no
    copy); the ones that need a cast are read as before; values are the same either way."""
    from nodes.sd import checkpoint_files as cf

    path, src = mixed
    monkeypatch.setattr(cf, "MAP_MIN_BYTES", 0)
    got, meta = read_safetensors(path, torch.float16)
    assert meta == {"note": "x"} and "model_ema.w" not in got
    assert cf.is_mapped(got["w"]) and cf.is_mapped(got["ids"]) and cf.is_mapped(got["flag"])
    assert not cf.is_mapped(got["b16"]) and got["b16"].dtype == torch.float16  # cast: read
    for key in ("w", "ids", "empty", "scalar", "flag"):
        assert got[key].dtype == src[key].dtype and torch.equal(got[key], src[key])
    assert torch.equal(got["b16"], src["b16"].half())
    monkeypatch.setattr(cf, "MAP_MIN_BYTES", 1 << 62)
    plain, _ = read_safetensors(path, torch.float16)
    assert not any(cf.is_mapped(t) for t in plain.values())
    assert all(torch.equal(plain[k], got[k]) for k in got)
