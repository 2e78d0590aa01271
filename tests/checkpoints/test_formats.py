"""Checkpoint loading of good files: listing, every format loads faithfully, dtype and
device choice, sharing through the resources cache, and the LoadCheckpoint node in the engine.

Bad files and pickle safety are in test_bad_files.py; architecture detection and
LDM round trips in test_roundtrip.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

from graph import Engine, Node, Registry, Resources, RunContext, Workspace
from graph.workflow import parse_workflow
from nodes.load_checkpoint import LoadCheckpoint
from nodes.sd import checkpoints as ckpts
from nodes.sd.checkpoints import list_checkpoints, load_checkpoint
from nodes.sd.handles import ClipHandle, ModelHandle, VaeHandle
from nodes.types import Clip, Model, Vae
from tests.sd_fixtures import (
    checkpoints_dir,
    load_by_name,
    same_weights,
    tiny_components,
    write_tiny_single_file,
)


@pytest.fixture
def ws(models: Path, tmp_path: Path) -> Workspace:
    return Workspace.at(tmp_path / "data", models).ensure()


# --- listing ----------------------------------------------------------------------------


def test_list_checkpoints(ws: Workspace) -> None:
    names = list_checkpoints(ws)
    assert names[0] == "builtin/tiny-random"
    assert names[-4:] == [
        "half/tiny16.safetensors",
        "tiny-diffusers",
        "tiny.ckpt",
        "tiny.safetensors",
    ]
    assert not any("unet" in n or n.endswith((".txt", ".hidden.safetensors")) for n in names)


def test_list_builtin_models_folder(ws: Workspace, tmp_path: Path, monkeypatch: Any) -> None:
    shipped_dir = tmp_path / "builtin_models"
    write_tiny_single_file(shipped_dir / "demo.safetensors", seed=1)
    monkeypatch.setattr(ckpts, "BUILTIN_MODELS_DIR", shipped_dir)
    assert list_checkpoints(ws)[:2] == ["builtin/tiny-random", "builtin/demo"]
    model, _, _ = load_by_name(ws, "builtin/demo")
    assert same_weights(model.unet, tiny_components(1)["unet"])


# --- fidelity ---------------------------------------------------------------------------


def test_single_file_loads_bit_identical(ws: Workspace, parts: dict[str, Any]) -> None:
    model, clip, vae = load_by_name(ws, "tiny.safetensors", dtype="fp32", device="cpu")
    assert same_weights(model.unet, parts["unet"])
    assert same_weights(vae.vae, parts["vae"])
    assert same_weights(clip.text_encoder, parts["text_encoder"])
    # the hints restore what shapes cannot tell: the configs equal the originals
    assert clip.text_encoder.config.num_attention_heads == 4
    assert model.unet.config.attention_head_dim == parts["unet"].config.attention_head_dim
    assert model.unet.config.sample_size == 8 and vae.vae.config.sample_size == 64
    assert model.scheduler_config["_class_name"] == "PNDMScheduler"
    assert model.prediction_type == "epsilon" and model.vae_scale_factor == 8
    assert clip.tokenizer("a photo of a cat").input_ids[-1] == 49407


def test_single_file_outputs_match_the_source_model(ws: Workspace, parts: dict[str, Any]) -> None:
    model, clip, _ = load_by_name(ws, "tiny.safetensors", dtype="fp32", device="cpu")
    ids = clip.tokenizer("a red circle", padding="max_length", return_tensors="pt").input_ids
    with torch.no_grad():
        a = clip.text_encoder(ids).last_hidden_state
        b = parts["text_encoder"](ids).last_hidden_state
        assert torch.equal(a, b)
        x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
        assert torch.equal(model.unet(x, 10, a).sample, parts["unet"](x, 10, b).sample)


def test_a_mapped_single_file_loads_the_same_model(
    ws: Workspace, parts: dict[str, Any], monkeypatch: Any
) -> None:
    """Large files are memory-mapped (checkpoint_files.MAP_MIN_BYTES): the same weights,
    left as views of the map, and the same U-Net output (to float rounding: views keep
    their file offsets, which changes some CPU kernels' vector paths)."""
    from nodes.sd import checkpoint_files

    monkeypatch.setattr(checkpoint_files, "MAP_MIN_BYTES", 0)
    model, clip, vae = load_by_name(ws, "tiny.safetensors", dtype="fp32", device="cpu")
    assert same_weights(model.unet, parts["unet"]) and same_weights(vae.vae, parts["vae"])
    assert same_weights(clip.text_encoder, parts["text_encoder"])
    file_size = (ws.models_dir / "checkpoints" / "tiny.safetensors").stat().st_size
    mapped = [p.untyped_storage().nbytes() == file_size for p in model.unet.parameters()]
    assert sum(mapped) > len(mapped) // 2  # views of the whole file's map: not copied
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    c = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = model.unet(x, 10, c).sample, parts["unet"](x, 10, c).sample
    assert torch.allclose(a, b, rtol=0, atol=1e-5), (a - b).abs().max()


def test_diffusers_folder_loads(ws: Workspace, parts: dict[str, Any]) -> None:
    model, clip, vae = load_by_name(ws, "tiny-diffusers", device="cpu")
    assert same_weights(model.unet, parts["unet"]) and same_weights(vae.vae, parts["vae"])
    assert same_weights(clip.text_encoder, parts["text_encoder"])
    assert clip.tokenizer.model_max_length == 77
    assert model.scheduler_config["_class_name"] == "PNDMScheduler"


def test_fp16_file_loads_as_fp32(ws: Workspace, parts: dict[str, Any]) -> None:
    model, clip, vae = load_by_name(ws, "half/tiny16.safetensors", dtype="fp32", device="cpu")
    assert model.dtype == torch.float32 and model.unet.dtype == torch.float32
    assert vae.vae.dtype == torch.float32 and clip.text_encoder.dtype == torch.float32
    w = model.unet.conv_in.weight
    assert torch.equal(w, parts["unet"].conv_in.weight.half().float())
    assert not torch.equal(w, parts["unet"].conv_in.weight)  # really went through fp16


def test_dtype_override(ws: Workspace) -> None:
    model, clip, vae = load_by_name(ws, "builtin/tiny-random", dtype="bf16", device="cpu")
    assert model.unet.dtype == clip.text_encoder.dtype == vae.vae.dtype == torch.bfloat16
    assert "bfloat16" in model.identity


def test_auto_device_and_dtype() -> None:
    dev = ckpts.resolve_device("auto")
    if torch.cuda.is_available():
        assert dev.type == "cuda"
    else:
        assert dev.type in ("cpu", "mps")
        with pytest.raises(ValueError, match="cuda"):
            ckpts.resolve_device("cuda")
    assert ckpts.resolve_device("cpu") == torch.device("cpu")
    native = ckpts.cpu_has_native_bf16()
    cpu_auto = torch.bfloat16 if native else torch.float32
    assert ckpts.resolve_dtype("auto", torch.device("cpu")) == cpu_auto
    assert ckpts.resolve_dtype("auto", torch.device("cuda")) == torch.float16
    assert ckpts.resolve_dtype("fp16", torch.device("cpu")) == torch.float16


def test_builtin_is_the_seeded_tiny_model(ws: Workspace) -> None:
    model, clip, vae = load_by_name(ws, "builtin/tiny-random", device="cpu")
    ref = tiny_components(0)
    assert same_weights(model.unet, ref["unet"]) and same_weights(vae.vae, ref["vae"])
    assert same_weights(clip.text_encoder, ref["text_encoder"])
    assert clip.text_encoder.config.vocab_size == 49408
    assert vae.vae.config.latent_channels == 4 and model.vae_scale_factor == 8


# --- sharing ----------------------------------------------------------------------------


def test_loaded_once_and_shared(ws: Workspace, tmp_path: Path) -> None:
    res = Resources()
    ck = checkpoints_dir(ws.models_dir)
    write_tiny_single_file(ck / "shared.safetensors", seed=5)
    try:
        first = load_checkpoint(ws, res, "shared.safetensors", "fp32", "cpu")
        again = load_checkpoint(ws, res, "shared.safetensors", "fp32", "cpu")
        assert all(a is b for a, b in zip(first, again, strict=True))
        assert first[0].identity == first[1].identity == first[2].identity
        assert "shared.safetensors" in first[0].identity and "float32" in first[0].identity
        fp_before = LoadCheckpoint.fingerprint(ws, {"name": "shared.safetensors"})
        st = (ck / "shared.safetensors").stat()
        os.utime(ck / "shared.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        fresh = load_checkpoint(ws, res, "shared.safetensors", "fp32", "cpu")
        assert fresh[0] is not first[0] and fresh[0].identity != first[0].identity
        # the cache fingerprint is the content hash: a touched file keeps cached outputs
        assert LoadCheckpoint.fingerprint(ws, {"name": "shared.safetensors"}) == fp_before
        assert len(res.keys()) == 1  # the stale entry was dropped
        bf16 = load_checkpoint(ws, res, "shared.safetensors", "bf16", "cpu")
        assert bf16[0] is not fresh[0] and len(res.keys()) == 2
        write_tiny_single_file(ck / "shared.safetensors", seed=6)  # other bytes: other key
        assert LoadCheckpoint.fingerprint(ws, {"name": "shared.safetensors"}) != fp_before
    finally:
        (ck / "shared.safetensors").unlink()


# --- through the engine -----------------------------------------------------------------


class _Describe(Node):
    """Test output node: what a LoadCheckpoint produced."""

    OUTPUT_NODE = True
    model: Model
    clip: Clip
    vae: Vae

    def run(self, ctx: RunContext, model: Any, clip: Any, vae: Any) -> dict[str, Any]:
        seen.append((model, clip, vae))
        return {}


seen: list[tuple[Any, Any, Any]] = []


def test_load_checkpoint_node_in_the_engine(ws: Workspace) -> None:
    registry = Registry.from_classes([LoadCheckpoint, _Describe])
    registry.add_module(ckpts)  # the "checkpoints" choice source
    engine = Engine(registry, ws)
    link = {"node": "ckpt", "output": "model"}
    flow = {
        "version": 1,
        "nodes": {
            "ckpt": {"type": "LoadCheckpoint", "inputs": {"name": "tiny.safetensors"}},
            "out": {
                "type": "_Describe",
                "inputs": {
                    "model": link,
                    "clip": {**link, "output": "clip"},
                    "vae": {**link, "output": "vae"},
                },
            },
        },
    }
    seen.clear()
    result = engine.run(parse_workflow(flow))
    assert result.status == "ok", result.error
    model, clip, vae = seen[-1]
    assert isinstance(model, ModelHandle) and isinstance(clip, ClipHandle)
    assert isinstance(vae, VaeHandle) and model.identity.startswith("tiny.safetensors|")
    spec = registry.nodes["LoadCheckpoint"]
    assert spec.category == "loaders" and spec.inputs["name"].choice_source == "checkpoints"
    assert spec.inputs["name"].default == "builtin/tiny-random"

    flow["nodes"]["ckpt"]["inputs"]["name"] = "missing.safetensors"
    checked = engine.check(parse_workflow(flow))
    assert not checked.ok  # not one of the listed choices

    bad = checkpoints_dir(ws.models_dir) / "broken.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    try:
        flow["nodes"]["ckpt"]["inputs"]["name"] = "broken.safetensors"
        result = engine.run(parse_workflow(flow))
        assert result.status == "error"
        assert result.error["node_id"] == "ckpt" and "broken.safetensors" in result.error["message"]
        flow["nodes"]["ckpt"]["inputs"]["name"] = "builtin/tiny-random"
        assert engine.run(parse_workflow(flow)).status == "ok"  # the process stays usable
    finally:
        bad.unlink()
