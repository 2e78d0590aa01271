"""Checkpoint architectures and LDM round trips: detection on full-size shapes, configs
rebuilt from shapes when a file has no hints, and the LDM export read back by our loader
and by diffusers' own."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from graph import Workspace
from nodes.sd.checkpoint_arch import detect, shipped
from nodes.sd.ldm_export import to_ldm_state_dict
from tests.sd_fixtures import (
    checkpoints_dir,
    load_by_name,
    load_error,
    same_weights,
    tiny_components,
    write_tiny_diffusers_folder,
    write_tiny_single_file,
)

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
    model, clip, vae = load_by_name(ws, "plain.safetensors", dtype="fp32", device="cpu")
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
    msg = load_error(ws, "odd.safetensors")
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
    model, _, vae_h = load_by_name(ws, "m.safetensors", device="cpu")
    assert same_weights(model.unet, c["unet"]) and same_weights(vae_h.vae, c["vae"])
