"""Checkpoint loading: formats, fidelity, sharing, architecture detection and bad files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from graph import Engine, Node, Registry, Resources, RunContext, Workspace
from graph.workflow import parse_workflow
from nodes.load_checkpoint import LoadCheckpoint
from nodes.sd import checkpoints as ckpts
from nodes.sd.checkpoint_arch import detect, shipped
from nodes.sd.checkpoints import CheckpointError, list_checkpoints, load_checkpoint
from nodes.sd.handles import ClipHandle, ModelHandle, VaeHandle
from nodes.sd.ldm_export import to_ldm_state_dict
from nodes.types import Clip, Model, Vae
from tests.sd_fixtures import (
    checkpoints_dir,
    same_weights,
    tiny_components,
    write_tiny_diffusers_folder,
    write_tiny_pickle,
    write_tiny_single_file,
)

SEED = 3


@pytest.fixture(scope="module")
def parts() -> dict[str, Any]:
    return tiny_components(SEED)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, parts: dict[str, Any]) -> Path:
    """A models folder holding the tiny model in every supported format."""
    root = tmp_path_factory.mktemp("models")
    ck = checkpoints_dir(root)
    write_tiny_single_file(ck / "tiny.safetensors", components=parts)
    write_tiny_single_file(ck / "half/tiny16.safetensors", components=parts, dtype=torch.float16)
    write_tiny_diffusers_folder(ck / "tiny-diffusers", components=parts)
    write_tiny_pickle(ck / "tiny.ckpt", components=parts)
    (ck / "notes.txt").write_text("not a model")
    (ck / ".hidden.safetensors").write_bytes(b"x")
    return root


@pytest.fixture
def ws(models: Path, tmp_path: Path) -> Workspace:
    return Workspace.at(tmp_path / "data", models).ensure()


def _load(ws: Workspace, name: str, **kw: Any) -> tuple[ModelHandle, ClipHandle, VaeHandle]:
    return load_checkpoint(ws, Resources(), name, **kw)


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
    model, _, _ = _load(ws, "builtin/demo")
    assert same_weights(model.unet, tiny_components(1)["unet"])


# --- fidelity ---------------------------------------------------------------------------


def test_single_file_loads_bit_identical(ws: Workspace, parts: dict[str, Any]) -> None:
    model, clip, vae = _load(ws, "tiny.safetensors", dtype="fp32", device="cpu")
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
    model, clip, _ = _load(ws, "tiny.safetensors", dtype="fp32", device="cpu")
    ids = clip.tokenizer("a red circle", padding="max_length", return_tensors="pt").input_ids
    with torch.no_grad():
        a = clip.text_encoder(ids).last_hidden_state
        b = parts["text_encoder"](ids).last_hidden_state
        assert torch.equal(a, b)
        x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
        assert torch.equal(model.unet(x, 10, a).sample, parts["unet"](x, 10, b).sample)


def test_diffusers_folder_loads(ws: Workspace, parts: dict[str, Any]) -> None:
    model, clip, vae = _load(ws, "tiny-diffusers", device="cpu")
    assert same_weights(model.unet, parts["unet"]) and same_weights(vae.vae, parts["vae"])
    assert same_weights(clip.text_encoder, parts["text_encoder"])
    assert clip.tokenizer.model_max_length == 77
    assert model.scheduler_config["_class_name"] == "PNDMScheduler"


def test_fp16_file_loads_as_fp32(ws: Workspace, parts: dict[str, Any]) -> None:
    model, clip, vae = _load(ws, "half/tiny16.safetensors", dtype="fp32", device="cpu")
    assert model.dtype == torch.float32 and model.unet.dtype == torch.float32
    assert vae.vae.dtype == torch.float32 and clip.text_encoder.dtype == torch.float32
    w = model.unet.conv_in.weight
    assert torch.equal(w, parts["unet"].conv_in.weight.half().float())
    assert not torch.equal(w, parts["unet"].conv_in.weight)  # really went through fp16


def test_dtype_override(ws: Workspace) -> None:
    model, clip, vae = _load(ws, "builtin/tiny-random", dtype="bf16", device="cpu")
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
    assert ckpts.resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert ckpts.resolve_dtype("auto", torch.device("cuda")) == torch.float16
    assert ckpts.resolve_dtype("fp16", torch.device("cpu")) == torch.float16


def test_builtin_is_the_seeded_tiny_model(ws: Workspace) -> None:
    model, clip, vae = _load(ws, "builtin/tiny-random", device="cpu")
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
        assert LoadCheckpoint.fingerprint(ws, {"name": "shared.safetensors"}) != fp_before
        assert len(res.keys()) == 1  # the stale entry was dropped
        bf16 = load_checkpoint(ws, res, "shared.safetensors", "bf16", "cpu")
        assert bf16[0] is not fresh[0] and len(res.keys()) == 2
    finally:
        (ck / "shared.safetensors").unlink()


# --- bad files --------------------------------------------------------------------------


def _error(ws: Workspace, name: str) -> str:
    with pytest.raises(CheckpointError) as info:
        _load(ws, name, device="cpu")
    assert isinstance(info.value, ValueError)
    return str(info.value)


@pytest.fixture
def bad_ws(tmp_path: Path) -> Workspace:
    return Workspace.at(tmp_path / "data", tmp_path / "models").ensure()


def test_missing_file(bad_ws: Workspace) -> None:
    msg = _error(bad_ws, "nope.safetensors")
    assert "nope.safetensors" in msg and "no such checkpoint" in msg


def test_truncated_safetensors(bad_ws: Workspace, models: Path) -> None:
    data = (models / "checkpoints" / "tiny.safetensors").read_bytes()
    ck = checkpoints_dir(bad_ws.models_dir)
    (ck / "cut.safetensors").write_bytes(data[: len(data) // 2])
    msg = _error(bad_ws, "cut.safetensors")
    assert "cut.safetensors" in msg and "safetensors" in msg
    (ck / "head.safetensors").write_bytes(data[:100])  # header itself cut
    msg = _error(bad_ws, "head.safetensors")
    assert "head.safetensors" in msg and "truncated" in msg


def test_random_bytes(bad_ws: Workspace) -> None:
    ck = checkpoints_dir(bad_ws.models_dir)
    (ck / "noise.safetensors").write_bytes(os.urandom(4096))
    msg = _error(bad_ws, "noise.safetensors")
    assert "noise.safetensors" in msg and "not a checkpoint" in msg
    (ck / "empty.ckpt").write_bytes(b"")
    assert "empty.ckpt" in _error(bad_ws, "empty.ckpt")


def test_pickle_refused_by_default_whatever_the_extension(bad_ws: Workspace, models: Path) -> None:
    ck = checkpoints_dir(bad_ws.models_dir)
    data = (models / "checkpoints" / "tiny.ckpt").read_bytes()
    for name in ("model.ckpt", "disguised.SAFETENSORS", "weights.bin"):
        (ck / name).write_bytes(data)
        msg = _error(bad_ws, name)
        assert name in msg and "pickle" in msg and "safetensors" in msg


def test_legacy_pickle_refused(bad_ws: Workspace) -> None:
    ck = checkpoints_dir(bad_ws.models_dir)
    torch.save({"a": torch.zeros(2)}, ck / "old.pt", _use_new_zipfile_serialization=False)
    assert "pickle" in _error(bad_ws, "old.pt")


def test_pickle_opt_in_loads_with_weights_only(
    models: Path, tmp_path: Path, parts: dict[str, Any]
) -> None:
    ws = Workspace.at(tmp_path / "data", models, allow_pickle=True).ensure()
    model, clip, vae = _load(ws, "tiny.ckpt", device="cpu")
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
        msg = _error(ws, name)
        assert name in msg
    assert not marker.exists()


def test_unknown_architecture(bad_ws: Workspace) -> None:
    ck = checkpoints_dir(bad_ws.models_dir)
    save_file({"encoder.layer.0.weight": torch.zeros(4, 4)}, str(ck / "bert.safetensors"))
    msg = _error(bad_ws, "bert.safetensors")
    assert "bert.safetensors" in msg and "unknown architecture" in msg
    sdxl = {
        "model.diffusion_model.label_emb.0.0.weight": torch.zeros(2, 2),
        "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": torch.zeros(2),
    }
    save_file(sdxl, str(ck / "xl.safetensors"))
    assert "SDXL" in _error(bad_ws, "xl.safetensors")


def test_missing_component_is_unknown_architecture(bad_ws: Workspace, parts: dict) -> None:
    ck = checkpoints_dir(bad_ws.models_dir)
    sd = to_ldm_state_dict(parts["unet"], parts["vae"], parts["text_encoder"])
    dropped = {k: v.contiguous() for k, v in sd.items() if "middle_block.1." not in k}
    save_file(dropped, str(ck / "holes.safetensors"))
    msg = _error(bad_ws, "holes.safetensors")
    assert "holes.safetensors" in msg and "U-Net" in msg


@pytest.mark.parametrize("name", ["../escape.safetensors", "/etc/passwd", "a/../../x.ckpt", ""])
def test_names_confined_to_the_folder(bad_ws: Workspace, name: str) -> None:
    with pytest.raises(CheckpointError):
        _load(bad_ws, name)


def test_symlink_out_of_the_folder(bad_ws: Workspace, models: Path, tmp_path: Path) -> None:
    ck = checkpoints_dir(bad_ws.models_dir)
    (ck / "link.safetensors").symlink_to(models / "checkpoints" / "tiny.safetensors")
    assert "link.safetensors" not in list_checkpoints(bad_ws)
    assert "outside" in _error(bad_ws, "link.safetensors")


# --- architecture detection on full-size shapes (meta tensors: no memory, no time) ---------


def _full_size_ldm(arch: str, text_format: str) -> dict[str, torch.Tensor]:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    a = shipped(arch)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(a.unet)
        vae = AutoencoderKL.from_config(a.vae)
        text = CLIPTextModel(CLIPTextConfig(**a.text_encoder))
    return to_ldm_state_dict(unet, vae, text, text_format)


def test_shipped_configs_are_the_real_architectures() -> None:
    sd = _full_size_ldm("sd15", "clip")
    unet = {k: v for k, v in sd.items() if k.startswith("model.diffusion_model.")}
    assert sum(v.numel() for v in unet.values()) == 859_520_964
    assert len(sd) == 1130  # real SD-1.5 files: 1131 keys, one of them position_ids
    sd2 = _full_size_ldm("sd2-512", "open_clip")
    unet2 = {k: v for k, v in sd2.items() if k.startswith("model.diffusion_model.")}
    assert sum(v.numel() for v in unet2.values()) == 865_910_724


def test_detects_sd15() -> None:
    arch = detect(_full_size_ldm("sd15", "clip"), {}, "x.safetensors")
    assert arch.name == "sd15" and arch.prediction_type == "epsilon"
    assert arch.text_encoder["hidden_size"] == 768 and arch.unet["cross_attention_dim"] == 768


def test_detects_sd2_512_and_768() -> None:
    sd = _full_size_ldm("sd2-768", "open_clip")
    probe = "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias"
    sd[probe] = torch.full((320,), 0.01)
    sd[probe][::2] = -0.3  # std 0.155 -> v-prediction (ComfyUI's test)
    arch = detect(sd, {}, "v.safetensors")
    assert arch.name == "sd2-768" and arch.prediction_type == "v_prediction"
    assert arch.unet["cross_attention_dim"] == 1024 and arch.text_kind == "open_clip"
    sd[probe] = torch.full((320,), 0.01)  # std 0 -> epsilon (512-base)
    arch = detect(sd, {}, "b.safetensors")
    assert arch.name == "sd2-512" and arch.prediction_type == "epsilon"
    assert detect(sd, {"modelspec.prediction_type": "v"}, "m").name == "sd2-768"
    assert detect(sd, {"global_step": 875000}, "c.ckpt").name == "sd2-512"


def test_detects_smaller_sd1_structure_without_hints(parts: dict[str, Any]) -> None:
    sd = to_ldm_state_dict(parts["unet"], parts["vae"], parts["text_encoder"])
    arch = detect(sd, {}, "tiny")
    assert arch.name == "sd1-structure"
    assert arch.unet["block_out_channels"] == [32, 64] and arch.unet["layers_per_block"] == 1
    assert arch.unet["down_block_types"] == ["CrossAttnDownBlock2D", "DownBlock2D"]
    assert arch.unet["up_block_types"] == ["UpBlock2D", "CrossAttnUpBlock2D"]
    assert arch.unet["cross_attention_dim"] == 32
    assert arch.vae["block_out_channels"] == [32, 32, 64, 64] and arch.vae["latent_channels"] == 4
    assert arch.text_encoder["hidden_size"] == 32 and arch.text_encoder["num_hidden_layers"] == 2
    assert arch.text_encoder["intermediate_size"] == 37


def test_file_without_hints_loads_by_sd1_conventions(tmp_path: Path) -> None:
    """A small SD-1.x-structure file with no metadata (as any external tool would write
    it): the config comes from shapes plus SD-1 conventions (8 U-Net heads, 64-wide CLIP
    heads, 32 groups), so a model that follows them is rebuilt exactly."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from nodes.sd.builtin import TINY_TEXT_CONFIG, TINY_UNET_CONFIG

    c = tiny_components(0)
    torch.manual_seed(2)
    c["unet"] = UNet2DConditionModel(**{**TINY_UNET_CONFIG, "cross_attention_dim": 64})
    text_cfg = {**TINY_TEXT_CONFIG, "hidden_size": 64, "num_attention_heads": 1}
    c["text_encoder"] = CLIPTextModel(CLIPTextConfig(**text_cfg)).eval()
    sd = to_ldm_state_dict(c["unet"], c["vae"], c["text_encoder"])
    ws = Workspace.at(tmp_path / "data", tmp_path / "models").ensure()
    f = checkpoints_dir(ws.models_dir) / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(f))
    model, clip, vae = _load(ws, "plain.safetensors", dtype="fp32", device="cpu")
    assert same_weights(model.unet, c["unet"]) and same_weights(vae.vae, c["vae"])
    assert same_weights(clip.text_encoder, c["text_encoder"])
    assert model.scheduler_config["_class_name"] == "PNDMScheduler"  # SD-1.5's
    ids = clip.tokenizer("a cat", padding="max_length", return_tensors="pt").input_ids
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        emb = clip.text_encoder(ids).last_hidden_state
        assert torch.equal(emb, c["text_encoder"](ids).last_hidden_state)
        assert torch.equal(model.unet(x, 500, emb).sample, c["unet"](x, 500, emb).sample)


def test_group_norm_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    from diffusers import UNet2DConditionModel

    from nodes.sd.builtin import TINY_UNET_CONFIG

    c = tiny_components(0)
    odd = {**TINY_UNET_CONFIG, "block_out_channels": [24, 48], "norm_num_groups": 8}
    c["unet"] = UNet2DConditionModel(**odd)
    sd = to_ldm_state_dict(c["unet"], c["vae"], c["text_encoder"])
    ws = Workspace.at(tmp_path / "data", tmp_path / "models").ensure()
    save_file(
        {k: v.contiguous() for k, v in sd.items()},
        str(checkpoints_dir(ws.models_dir) / "odd.safetensors"),
    )
    msg = _error(ws, "odd.safetensors")
    assert "odd.safetensors" in msg and "unknown architecture" in msg


def test_open_clip_text_encoder_round_trip() -> None:
    """SD 2.x text weights (OpenCLIP layout, fused q/k/v, plus the projection and logit
    scale real files carry) come back bit-identical through diffusers' converter."""
    from transformers import CLIPTextConfig, CLIPTextModel

    from nodes.sd.builtin import TINY_TEXT_CONFIG
    from nodes.sd.checkpoint_arch import Architecture
    from nodes.sd.checkpoint_build import _assign, _text_weights
    from nodes.sd.ldm_export import open_clip_to_ldm

    cfg = CLIPTextConfig(**{**TINY_TEXT_CONFIG, "hidden_size": 64, "hidden_act": "gelu"})
    torch.manual_seed(4)
    source = CLIPTextModel(cfg).eval()
    sd = open_clip_to_ldm(source)
    assert "cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight" in sd
    sd["cond_stage_model.model.text_projection"] = torch.zeros(64, 64)
    sd["cond_stage_model.model.logit_scale"] = torch.tensor(4.6)
    arch = Architecture("sd2-test", {}, {}, cfg.to_dict(), {}, "open_clip")
    with torch.device("meta"):
        loaded = CLIPTextModel(cfg)
    _assign(loaded, _text_weights(sd, arch, loaded), "text encoder", "t")
    assert same_weights(loaded, source)


def test_ldm_export_is_read_by_diffusers_own_loader(tmp_path: Path) -> None:
    """Another shape (3 levels, 2 layers per block) through diffusers' from_single_file."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from nodes.sd.builtin import TINY_UNET_CONFIG, TINY_VAE_CONFIG

    c = tiny_components(0)
    torch.manual_seed(1)
    c["unet"] = UNet2DConditionModel(
        **{
            **TINY_UNET_CONFIG,
            "layers_per_block": 2,
            "block_out_channels": [32, 64, 64],
            "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        }
    )
    c["vae"] = AutoencoderKL(**{**TINY_VAE_CONFIG, "layers_per_block": 2})
    folder = write_tiny_diffusers_folder(tmp_path / "ref", components=c)
    f = write_tiny_single_file(tmp_path / "m.safetensors", components=c)
    unet = UNet2DConditionModel.from_single_file(
        str(f), config=str(folder), subfolder="unet", local_files_only=True
    )
    vae = AutoencoderKL.from_single_file(
        str(f), config=str(folder), subfolder="vae", local_files_only=True
    )
    assert same_weights(unet, c["unet"]) and same_weights(vae, c["vae"])
    ws = Workspace.at(tmp_path / "data", tmp_path / "models").ensure()
    os.replace(f, checkpoints_dir(ws.models_dir) / "m.safetensors")
    model, _, vae_h = _load(ws, "m.safetensors", device="cpu")
    assert same_weights(model.unet, c["unet"]) and same_weights(vae_h.vae, c["vae"])


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
