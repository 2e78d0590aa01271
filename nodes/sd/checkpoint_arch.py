"""Which architecture a single-file (LDM layout) checkpoint has, from its keys and shapes.

Full-size SD 1.x / 2.x files get the shipped configs (`nodes/sd/configs/`); any other
file with the SD-1.x *structure* (a tiny test model, the trained demo model) gets a config
inferred from its tensor shapes. What shapes cannot tell (attention head counts, group
norm size, activation, scheduler) comes from the ``sdgraph.hints`` metadata that
`nodes.sd.ldm_export.save_single_file` writes, or SD-1.x conventions when absent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from nodes.sd.checkpoint_files import CheckpointError
from nodes.sd.ldm_export import CLIP_PREFIX, OPEN_CLIP_PREFIX, UNET_PREFIX, VAE_PREFIX

CONFIGS_DIR = Path(__file__).parent / "configs"
TextKind = Literal["clip", "open_clip"]

# ComfyUI's SD2 v-prediction test (comfy/model_detection.py): in v-prediction models this
# norm's bias has a standard deviation above 0.09; in epsilon (512-base) models it is lower.
_V_PRED_PROBE = UNET_PREFIX + "output_blocks.11.1.transformer_blocks.0.norm1.bias"
_V_PRED_STD = 0.09
_SD2_BASE_GLOBAL_STEP = 875000  # diffusers' rule for .ckpt files that carry it


@dataclass(frozen=True)
class Architecture:
    """Everything needed to build the diffusers components of a single-file checkpoint."""

    name: str  # "sd15" | "sd2-512" | "sd2-768" | "sd1-structure"
    unet: dict[str, Any]
    vae: dict[str, Any]
    text_encoder: dict[str, Any]
    scheduler: dict[str, Any]
    text_kind: TextKind

    @property
    def prediction_type(self) -> str:
        return str(self.scheduler.get("prediction_type", "epsilon"))


def _load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def shipped(name: str) -> Architecture:
    """The configs of a folder under `nodes/sd/configs/`."""
    d = CONFIGS_DIR / name
    te = _load_json(d / "text_encoder" / "config.json")
    kind: TextKind = "open_clip" if name.startswith("sd2") else "clip"
    return Architecture(
        name=name,
        unet=_load_json(d / "unet" / "config.json"),
        vae=_load_json(d / "vae" / "config.json"),
        text_encoder=te,
        scheduler=_load_json(d / "scheduler" / "scheduler_config.json"),
        text_kind=kind,
    )


def _indices(keys: list[str], pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := rx.match(k))})


def _shape(sd: dict[str, torch.Tensor], key: str, file: str) -> tuple[int, ...]:
    if key not in sd:
        raise CheckpointError(f"{file}: unknown architecture (no {key!r})")
    return tuple(sd[key].shape)


def infer_unet(sd: dict[str, torch.Tensor], file: str) -> dict[str, Any]:
    """U-Net config from ``model.diffusion_model.*`` shapes (SD-1.x/2.x block layout)."""
    p = UNET_PREFIX
    keys = [k[len(p) :] for k in sd if k.startswith(p)]
    c0, in_ch = _shape(sd, p + "input_blocks.0.0.weight", file)[:2]
    out_ch = _shape(sd, p + "out.2.weight", file)[0]
    n_in = len(_indices(keys, r"input_blocks\.(\d+)\."))
    ops = _indices(keys, r"input_blocks\.(\d+)\.0\.op\.weight")
    per = ops[0] - 1 if ops else n_in - 1
    if per < 1 or n_in != (len(ops) + 1) * (per + 1):
        raise CheckpointError(f"{file}: unknown architecture (U-Net blocks do not form levels)")
    levels = len(ops) + 1
    channels, down, up, cross, linear = [], [], [], None, None
    for i in range(levels):
        first = 1 + i * (per + 1)
        channels.append(_shape(sd, f"{p}input_blocks.{first}.0.out_layers.3.weight", file)[0])
        attn = f"{p}input_blocks.{first}.1.transformer_blocks.0.attn2.to_k.weight"
        down.append("CrossAttnDownBlock2D" if attn in sd else "DownBlock2D")
        if attn in sd:
            cross = sd[attn].shape[1]
            linear = sd[f"{p}input_blocks.{first}.1.proj_in.weight"].ndim == 2
    for i in range(levels):
        attn = f"{p}output_blocks.{i * (per + 1)}.1.transformer_blocks.0.attn2.to_k.weight"
        up.append("CrossAttnUpBlock2D" if attn in sd else "UpBlock2D")
    if cross is None:
        raise CheckpointError(f"{file}: unknown architecture (U-Net without cross-attention)")
    tblocks = _indices(keys, r"input_blocks\.1\.1\.transformer_blocks\.(\d+)\.")
    cfg: dict[str, Any] = {
        "in_channels": in_ch,
        "out_channels": out_ch,
        "block_out_channels": channels,
        "layers_per_block": per,
        "down_block_types": down,
        "up_block_types": up,
        "cross_attention_dim": cross,
        "use_linear_projection": bool(linear),
        # SD-1.x: 8 heads; SD-2.x (linear projections): heads of 64 channels
        "attention_head_dim": [max(1, c // 64) for c in channels] if linear else 8,
        "norm_num_groups": 32,
        "sample_size": 64,
    }
    if len(tblocks) > 1:
        cfg["transformer_layers_per_block"] = len(tblocks)
    return cfg


def infer_vae(sd: dict[str, torch.Tensor], file: str) -> dict[str, Any]:
    """AutoencoderKL config from ``first_stage_model.*`` shapes."""
    p = VAE_PREFIX
    keys = [k[len(p) :] for k in sd if k.startswith(p)]
    levels = _indices(keys, r"encoder\.down\.(\d+)\.")
    if not levels:
        raise CheckpointError(f"{file}: unknown architecture (no VAE encoder blocks)")
    per = len(_indices(keys, r"encoder\.down\.0\.block\.(\d+)\."))
    channels = [_shape(sd, f"{p}encoder.down.{i}.block.0.conv2.weight", file)[0] for i in levels]
    latent = _shape(sd, p + "post_quant_conv.weight", file)[0]
    return {
        "in_channels": _shape(sd, p + "encoder.conv_in.weight", file)[1],
        "out_channels": _shape(sd, p + "decoder.conv_out.weight", file)[0],
        "block_out_channels": channels,
        "down_block_types": ["DownEncoderBlock2D"] * len(levels),
        "up_block_types": ["UpDecoderBlock2D"] * len(levels),
        "layers_per_block": per,
        "latent_channels": latent,
        "norm_num_groups": 32,
        "sample_size": 512,
        "scaling_factor": 0.18215,
    }


def infer_clip(sd: dict[str, torch.Tensor], file: str, prefix: str = CLIP_PREFIX) -> dict[str, Any]:
    """CLIPTextConfig values from ``<prefix>text_model.*`` shapes (prefix: SD 1.x's
    ``cond_stage_model.transformer.`` or SDXL's ``conditioner.embedders.0.transformer.``)."""
    p = prefix + "text_model."
    vocab, hidden = _shape(sd, p + "embeddings.token_embedding.weight", file)
    positions = _shape(sd, p + "embeddings.position_embedding.weight", file)[0]
    keys = [k[len(p) :] for k in sd if k.startswith(p)]
    layers = len(_indices(keys, r"encoder\.layers\.(\d+)\."))
    inter = _shape(sd, p + "encoder.layers.0.mlp.fc1.weight", file)[0]
    return {
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": max(1, hidden // 64),
        "max_position_embeddings": positions,
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
        "projection_dim": hidden,
        "bos_token_id": 49406,
        "eos_token_id": 49407,
        "pad_token_id": 49407,
    }


_HINTABLE = {
    "unet": {"attention_head_dim": (int, list), "norm_num_groups": int, "sample_size": int},
    "vae": {"norm_num_groups": int, "sample_size": int, "scaling_factor": (int, float)},
    "text_encoder_2": {
        "num_attention_heads": int,
        "hidden_act": str,
        "layer_norm_eps": float,
    },
    "text_encoder": {
        "num_attention_heads": int,
        "hidden_act": str,
        "projection_dim": int,
        "layer_norm_eps": float,
        "bos_token_id": int,
        "eos_token_id": int,
        "pad_token_id": int,
    },
}


def apply_hints(cfg: dict[str, Any], part: str, hints: dict[str, Any]) -> dict[str, Any]:
    """Only values shapes cannot tell, each type-checked: hints never change sizes."""
    given = hints.get(part)
    if not isinstance(given, dict):
        return cfg
    out = dict(cfg)
    for key, types in _HINTABLE[part].items():
        value = given.get(key)
        if isinstance(value, types) and not isinstance(value, bool):
            out[key] = value
    return out


_SCHEDULERS = ("PNDMScheduler", "DDIMScheduler", "EulerDiscreteScheduler", "DDPMScheduler")


def scheduler_from_hints(hints: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    s = hints.get("scheduler")
    if not isinstance(s, dict) or s.get("_class_name") not in _SCHEDULERS:
        return default
    ok = (str, int, float, bool, type(None))
    return {k: v for k, v in s.items() if isinstance(k, str) and isinstance(v, ok)}


def shape_signature(a: Architecture) -> tuple[Any, ...]:
    u, v, t = a.unet, a.vae, a.text_encoder
    return (
        tuple(u["block_out_channels"]),
        u["layers_per_block"],
        u["cross_attention_dim"],
        bool(u.get("use_linear_projection", False)),
        tuple(u["down_block_types"]),
        tuple(v["block_out_channels"]),
        v["layers_per_block"],
        t["hidden_size"],
    )


def _sd2_prediction(sd: dict[str, torch.Tensor], meta: dict[str, Any]) -> str:
    """epsilon (SD 2.x 512-base) or v_prediction (SD 2.x 768): explicit metadata first
    (our hints, ModelSpec ``modelspec.prediction_type``), then diffusers' ``global_step``
    rule for .ckpt files, then ComfyUI's weight-statistics test."""
    sched = meta.get("hints", {}).get("scheduler")
    if isinstance(sched, dict) and sched.get("prediction_type") in ("epsilon", "v_prediction"):
        return str(sched["prediction_type"])
    spec = str(meta.get("modelspec.prediction_type", "")).lower()
    if spec in ("epsilon", "v", "v_prediction"):
        return "epsilon" if spec == "epsilon" else "v_prediction"
    if str(meta.get("modelspec.architecture", "")).endswith("-v"):  # stable-diffusion-v2-768-v
        return "v_prediction"
    if "global_step" in meta:
        return "epsilon" if meta["global_step"] == _SD2_BASE_GLOBAL_STEP else "v_prediction"
    probe = sd.get(_V_PRED_PROBE)
    if probe is not None and probe.is_floating_point() and probe.device.type != "meta":
        return (
            "v_prediction" if float(probe.float().std(unbiased=False)) > _V_PRED_STD else "epsilon"
        )
    return "v_prediction"  # diffusers' default for "v2" (stable-diffusion-2-1)


def detect(sd: dict[str, torch.Tensor], meta: dict[str, Any], file: str) -> Architecture:
    """The architecture of an LDM-layout state dict; CheckpointError when unsupported.

    ``meta``: file metadata; ``meta["hints"]`` is the parsed ``sdgraph.hints`` object."""
    if any(k.startswith(("conditioner.embedders.", UNET_PREFIX + "label_emb")) for k in sd):
        raise CheckpointError(f"{file}: SDXL (SGM) keys: load it with nodes.sd.sdxl_arch")
    if not any(k.startswith(UNET_PREFIX) for k in sd):
        raise CheckpointError(
            f"{file}: unknown architecture (no 'model.diffusion_model.*' U-Net weights; "
            "not an SD 1.x/2.x single-file checkpoint)"
        )
    if not any(k.startswith(VAE_PREFIX) for k in sd):
        raise CheckpointError(f"{file}: no 'first_stage_model.*' VAE weights in the checkpoint")
    hints = meta.get("hints", {})
    unet = infer_unet(sd, file)
    vae = infer_vae(sd, file)
    if any(k.startswith(OPEN_CLIP_PREFIX) for k in sd):
        sd2 = shipped("sd2-512")
        width = _shape(sd, OPEN_CLIP_PREFIX + "token_embedding.weight", file)[1]
        probe = Architecture("probe", unet, vae, {"hidden_size": width}, {}, "open_clip")
        if shape_signature(probe) != shape_signature(sd2):
            raise CheckpointError(
                f"{file}: unknown architecture (OpenCLIP text encoder, but not the SD 2.x shapes)"
            )
        return shipped("sd2-768" if _sd2_prediction(sd, meta) == "v_prediction" else "sd2-512")
    if not any(k.startswith(CLIP_PREFIX) for k in sd):
        raise CheckpointError(
            f"{file}: no text encoder weights ('cond_stage_model.transformer.*' or "
            "'cond_stage_model.model.*')"
        )
    text = infer_clip(sd, file)
    inferred = Architecture("sd1-structure", unet, vae, text, {}, "clip")
    sd15 = shipped("sd15")
    base = sd15 if shape_signature(inferred) == shape_signature(sd15) else inferred
    return Architecture(
        name=base.name,
        unet=apply_hints(base.unet, "unet", hints),
        vae=apply_hints(base.vae, "vae", hints),
        text_encoder=apply_hints(base.text_encoder, "text_encoder", hints),
        scheduler=scheduler_from_hints(hints, sd15.scheduler),
        text_kind="clip",
    )
