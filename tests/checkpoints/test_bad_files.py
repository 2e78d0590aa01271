"""Checkpoint loading of bad files: missing, truncated or random bytes, pickles (refused by
default, weights-only when allowed, never running code), unknown architectures, and names
or links that would leave the checkpoints folder."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from graph import Workspace
from nodes.sd.checkpoints import CheckpointError, list_checkpoints
from nodes.sd.ldm_export import to_ldm_state_dict
from tests.sd_fixtures import (
    checkpoints_dir,
    load_by_name,
    load_error,
    same_weights,
)


@pytest.fixture
def bad_ws(tmp_path: Path) -> Workspace:
    return Workspace.at(tmp_path / "data", tmp_path / "models").ensure()


def test_missing_file(bad_ws: Workspace) -> None:
    msg = load_error(bad_ws, "nope.safetensors")
    assert "nope.safetensors" in msg and "no such checkpoint" in msg


def test_truncated_safetensors(bad_ws: Workspace, models: Path) -> None:
    data = (models / "checkpoints" / "tiny.safetensors").read_bytes()
    ck = checkpoints_dir(bad_ws.models_dir)
    (ck / "cut.safetensors").write_bytes(data[: len(data) // 2])
    msg = load_error(bad_ws, "cut.safetensors")
    assert "cut.safetensors" in msg and "safetensors" in msg
    (ck / "head.safetensors").write_bytes(data[:100])  # header itself cut
    msg = load_error(bad_ws, "head.safetensors")
    assert "head.safetensors" in msg and "truncated" in msg


def test_random_bytes(bad_ws: Workspace) -> None:
    ck = checkpoints_dir(bad_ws.models_dir)
    (ck / "noise.safetensors").write_bytes(os.urandom(4096))
    msg = load_error(bad_ws, "noise.safetensors")
    assert "noise.safetensors" in msg and "not a checkpoint" in msg
    (ck / "empty.ckpt").write_bytes(b"")
    assert "empty.ckpt" in load_error(bad_ws, "empty.ckpt")


def test_pickle_refused_by_default_whatever_the_extension(bad_ws: Workspace, models: Path) -> None:
    ck = checkpoints_dir(bad_ws.models_dir)
    data = (models / "checkpoints" / "tiny.ckpt").read_bytes()
    for name in ("model.ckpt", "disguised.SAFETENSORS", "weights.bin"):
        (ck / name).write_bytes(data)
        msg = load_error(bad_ws, name)
        assert name in msg and "pickle" in msg and "safetensors" in msg


def test_legacy_pickle_refused(bad_ws: Workspace) -> None:
    ck = checkpoints_dir(bad_ws.models_dir)
    torch.save({"a": torch.zeros(2)}, ck / "old.pt", _use_new_zipfile_serialization=False)
    assert "pickle" in load_error(bad_ws, "old.pt")


def test_pickle_opt_in_loads_with_weights_only(
    models: Path, tmp_path: Path, parts: dict[str, Any]
) -> None:
    ws = Workspace.at(tmp_path / "data", models, allow_pickle=True).ensure()
    model, clip, vae = load_by_name(ws, "tiny.ckpt", device="cpu")
    assert same_weights(model.unet, parts["unet"]) and same_weights(vae.vae, parts["vae"])
    assert same_weights(clip.text_encoder, parts["text_encoder"])


class _Payload:
    """Unpickling this would run code: weights_only loading must refuse it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(self.marker),))


def test_pickle_with_code_refused_even_with_opt_in(tmp_path: Path) -> None:
    ws = Workspace.at(tmp_path / "data", tmp_path / "models", allow_pickle=True).ensure()
    ck = checkpoints_dir(ws.models_dir)
    marker = tmp_path / "pwned"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": _Payload(str(marker))}, ck / "evil.ckpt")
    with open(ck / "evil.pkl.pt", "wb") as f:  # a plain pickle, not even torch's format
        pickle.dump(_Payload(str(marker)), f, protocol=2)
    for name in ("evil.ckpt", "evil.pkl.pt"):
        msg = load_error(ws, name)
        assert name in msg
    assert not marker.exists()


def test_unknown_architecture(bad_ws: Workspace) -> None:
    ck = checkpoints_dir(bad_ws.models_dir)
    save_file({"encoder.layer.0.weight": torch.zeros(4, 4)}, str(ck / "bert.safetensors"))
    msg = load_error(bad_ws, "bert.safetensors")
    assert "bert.safetensors" in msg and "unknown architecture" in msg
    sdxl = {
        "model.diffusion_model.label_emb.0.0.weight": torch.zeros(2, 2),
        "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": torch.zeros(2),
    }
    save_file(sdxl, str(ck / "xl.safetensors"))
    assert "SDXL" in load_error(bad_ws, "xl.safetensors")


def test_missing_component_is_unknown_architecture(bad_ws: Workspace, parts: dict) -> None:
    ck = checkpoints_dir(bad_ws.models_dir)
    sd = to_ldm_state_dict(parts["unet"], parts["vae"], parts["text_encoder"])
    dropped = {k: v.contiguous() for k, v in sd.items() if "middle_block.1." not in k}
    save_file(dropped, str(ck / "holes.safetensors"))
    msg = load_error(bad_ws, "holes.safetensors")
    assert "holes.safetensors" in msg and "U-Net" in msg


@pytest.mark.parametrize("name", ["../escape.safetensors", "/etc/passwd", "a/../../x.ckpt", ""])
def test_names_confined_to_the_folder(bad_ws: Workspace, name: str) -> None:
    with pytest.raises(CheckpointError):
        load_by_name(bad_ws, name)


def test_symlink_out_of_the_folder(bad_ws: Workspace, models: Path, tmp_path: Path) -> None:
    ck = checkpoints_dir(bad_ws.models_dir)
    (ck / "link.safetensors").symlink_to(models / "checkpoints" / "tiny.safetensors")
    assert "link.safetensors" not in list_checkpoints(bad_ws)
    assert "outside" in load_error(bad_ws, "link.safetensors")
