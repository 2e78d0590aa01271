"""diffusers -> original LDM ("single-file") state dicts.

diffusers only converts LDM -> diffusers (`diffusers.loaders.single_file_utils`). This is
the inverse, generic over the number of levels and ``layers_per_block``, so tiny models
and trained demo models can be shipped in the same layout as real SD checkpoints and
loaded back by diffusers' own converters with bit-identical weights.

Key layout (SD 1.x/2.x): ``model.diffusion_model.*`` (U-Net), ``first_stage_model.*`` (VAE),
``cond_stage_model.transformer.text_model.*`` (CLIP, SD 1.x) or ``cond_stage_model.model.*``
(OpenCLIP, SD 2.x).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."
OPEN_CLIP_PREFIX = "cond_stage_model.model."
HINTS_KEY = "sdgraph.hints"  # safetensors metadata: what shapes cannot tell (see hints())

_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_UNET_ADDED = {"add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}
_UNET_RESNET = [
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("time_emb_proj", "emb_layers.1"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("conv_shortcut", "skip_connection"),
]
_VAE_ATTN = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}


def _sub(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


def _resnet(src: dict[str, torch.Tensor], renames: list[tuple[str, str]]) -> dict:
    out = {}
    for k, v in src.items():
        head, _, param = k.rpartition(".")
        out[dict(renames).get(head, head) + "." + param] = v
    return out


def _put(out: dict, prefix: str, src: dict[str, torch.Tensor]) -> None:
    for k, v in src.items():
        out[prefix + k] = v


def unet_to_ldm(unet: Any) -> dict[str, torch.Tensor]:
    """UNet2DConditionModel (SD-1.x/2.x/XL structure) -> ``model.diffusion_model.*`` keys."""
    sd = unet.state_dict()
    cfg = unet.config
    n_levels, per = len(cfg.block_out_channels), cfg.layers_per_block
    out: dict[str, torch.Tensor] = {}
    for src, dst in _UNET_TOP.items():
        for p in ("weight", "bias"):
            out[f"{dst}.{p}"] = sd[f"{src}.{p}"]
    for src, dst in _UNET_ADDED.items():  # SDXL: size + pooled-text embedding
        for p in ("weight", "bias"):
            if f"{src}.{p}" in sd:
                out[f"{dst}.{p}"] = sd[f"{src}.{p}"]
    for i in range(n_levels):
        for j in range(per):
            idx = 1 + i * (per + 1) + j
            res = _sub(sd, f"down_blocks.{i}.resnets.{j}.")
            _put(out, f"input_blocks.{idx}.0.", _resnet(res, _UNET_RESNET))
            _put(out, f"input_blocks.{idx}.1.", _sub(sd, f"down_blocks.{i}.attentions.{j}."))
        down = _sub(sd, f"down_blocks.{i}.downsamplers.0.conv.")
        _put(out, f"input_blocks.{1 + i * (per + 1) + per}.0.op.", down)
    _put(out, "middle_block.0.", _resnet(_sub(sd, "mid_block.resnets.0."), _UNET_RESNET))
    _put(out, "middle_block.1.", _sub(sd, "mid_block.attentions.0."))
    _put(out, "middle_block.2.", _resnet(_sub(sd, "mid_block.resnets.1."), _UNET_RESNET))
    for i in range(n_levels):
        has_attn = False
        for j in range(per + 1):
            idx = i * (per + 1) + j
            res = _sub(sd, f"up_blocks.{i}.resnets.{j}.")
            _put(out, f"output_blocks.{idx}.0.", _resnet(res, _UNET_RESNET))
            attn = _sub(sd, f"up_blocks.{i}.attentions.{j}.")
            has_attn = bool(attn)
            _put(out, f"output_blocks.{idx}.1.", attn)
        up = _sub(sd, f"up_blocks.{i}.upsamplers.0.conv.")
        slot = 2 if has_attn else 1
        _put(out, f"output_blocks.{i * (per + 1) + per}.{slot}.conv.", up)
    missing = len(sd) - len(out)
    if missing:
        raise ValueError(f"U-Net has {missing} parameters outside the SD-1.x/2.x layout")
    return {UNET_PREFIX + k: v for k, v in out.items()}


def _vae_coder(sd: dict[str, torch.Tensor], part: str, n_levels: int) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    res_renames = [("conv_shortcut", "nin_shortcut")]
    top = (("conv_in", "conv_in"), ("conv_out", "conv_out"), ("conv_norm_out", "norm_out"))
    for p in ("weight", "bias"):
        for src, dst in top:
            out[f"{part}.{dst}.{p}"] = sd[f"{part}.{src}.{p}"]
    for i in range(n_levels):
        # the decoder's up_blocks run from the deepest level; LDM numbers levels by resolution
        ldm_i = i if part == "encoder" else n_levels - 1 - i
        kind, ldm_kind, sampler = (
            ("down_blocks", "down", "downsample")
            if part == "encoder"
            else ("up_blocks", "up", "upsample")
        )
        j = 0
        while res := _sub(sd, f"{part}.{kind}.{i}.resnets.{j}."):
            _put(out, f"{part}.{ldm_kind}.{ldm_i}.block.{j}.", _resnet(res, res_renames))
            j += 1
        samp = _sub(sd, f"{part}.{kind}.{i}.{sampler}rs.0.conv.")
        _put(out, f"{part}.{ldm_kind}.{ldm_i}.{sampler}.conv.", samp)
    for j in (0, 1):
        res = _sub(sd, f"{part}.mid_block.resnets.{j}.")
        _put(out, f"{part}.mid.block_{j + 1}.", _resnet(res, res_renames))
    for k, v in _sub(sd, f"{part}.mid_block.attentions.0.").items():
        head, _, param = k.rpartition(".")
        if param == "weight" and head != "group_norm":
            v = v.reshape(*v.shape, 1, 1)  # LDM uses 1x1 convolutions for attention
        out[f"{part}.mid.attn_1.{_VAE_ATTN[head]}.{param}"] = v
    return out


def vae_to_ldm(vae: Any) -> dict[str, torch.Tensor]:
    """AutoencoderKL -> ``first_stage_model.*`` keys."""
    sd = vae.state_dict()
    n_levels = len(vae.config.block_out_channels)
    out = {**_vae_coder(sd, "encoder", n_levels), **_vae_coder(sd, "decoder", n_levels)}
    for name in ("quant_conv", "post_quant_conv"):
        for p in ("weight", "bias"):
            if f"{name}.{p}" in sd:
                out[f"{name}.{p}"] = sd[f"{name}.{p}"]
    missing = len(sd) - len(out)
    if missing:
        raise ValueError(f"VAE has {missing} parameters outside the LDM layout")
    return {VAE_PREFIX + k: v for k, v in out.items()}


def _text_sd(text_encoder: Any) -> dict[str, torch.Tensor]:
    """Text model weights with the ``text_model.`` prefix whether or not transformers
    flattened the module (it did in 5.x); ``position_ids`` are not weights, and a
    projection (CLIPTextModelWithProjection) is not part of the text model."""
    sd = text_encoder.state_dict()
    out = {}
    for k, v in sd.items():
        if k.endswith("position_ids") or k.startswith("text_projection."):
            continue
        out[k if k.startswith("text_model.") else "text_model." + k] = v
    return out


def clip_to_ldm(text_encoder: Any, prefix: str = CLIP_PREFIX) -> dict[str, torch.Tensor]:
    """CLIPTextModel -> ``<prefix>text_model.*`` (SD 1.x: ``cond_stage_model.transformer.``)."""
    return {prefix + k: v for k, v in _text_sd(text_encoder).items()}


def open_clip_to_ldm(text_encoder: Any, prefix: str = OPEN_CLIP_PREFIX) -> dict[str, torch.Tensor]:
    """CLIPTextModel(WithProjection) -> OpenCLIP ``<prefix>*`` (SD 2.x:
    ``cond_stage_model.model.``; fused q/k/v; a projection becomes ``text_projection``,
    stored transposed as OpenCLIP does)."""
    full = text_encoder.state_dict()
    sd = _text_sd(text_encoder)
    out: dict[str, torch.Tensor] = {
        "token_embedding.weight": sd["text_model.embeddings.token_embedding.weight"],
        "positional_embedding": sd["text_model.embeddings.position_embedding.weight"],
        "ln_final.weight": sd["text_model.final_layer_norm.weight"],
        "ln_final.bias": sd["text_model.final_layer_norm.bias"],
    }
    n_layers = text_encoder.config.num_hidden_layers
    names = {
        "layer_norm1": "ln_1",
        "layer_norm2": "ln_2",
        "mlp.fc1": "mlp.c_fc",
        "mlp.fc2": "mlp.c_proj",
        "self_attn.out_proj": "attn.out_proj",
    }
    for i in range(n_layers):
        src = f"text_model.encoder.layers.{i}."
        dst = f"transformer.resblocks.{i}."
        for a, b in names.items():
            for p in ("weight", "bias"):
                out[f"{dst}{b}.{p}"] = sd[f"{src}{a}.{p}"]
        for p in ("weight", "bias"):
            qkv = [sd[f"{src}self_attn.{x}_proj.{p}"] for x in "qkv"]
            out[f"{dst}attn.in_proj_{p}"] = torch.cat(qkv, dim=0)
    if "text_projection.weight" in full:
        out["text_projection"] = full["text_projection.weight"].T.contiguous()
    return {prefix + k: v for k, v in out.items()}


def to_ldm_state_dict(
    unet: Any, vae: Any, text_encoder: Any, text_format: str = "clip"
) -> dict[str, torch.Tensor]:
    """The whole model in the original single-file layout.

    ``text_format``: "clip" (SD 1.x, the default) or "open_clip" (SD 2.x)."""
    text = clip_to_ldm(text_encoder) if text_format == "clip" else open_clip_to_ldm(text_encoder)
    return {**unet_to_ldm(unet), **vae_to_ldm(vae), **text}


def hints(unet: Any, vae: Any, text_encoder: Any, scheduler: Any = None) -> dict[str, Any]:
    """Config values that tensor shapes cannot tell (head counts, group norms, activation,
    sizes, scheduler), stored in the file so an inferred architecture is exact."""
    t = text_encoder.config
    out: dict[str, Any] = {
        **unet_vae_hints(unet, vae),
        "text_encoder": {
            "num_attention_heads": t.num_attention_heads,
            "hidden_act": t.hidden_act,
            "projection_dim": t.projection_dim,
            "layer_norm_eps": t.layer_norm_eps,
            "bos_token_id": t.bos_token_id,
            "eos_token_id": t.eos_token_id,
            "pad_token_id": t.pad_token_id,
        },
    }
    return {**out, **scheduler_hints(scheduler)}


def unet_vae_hints(unet: Any, vae: Any) -> dict[str, Any]:
    """The U-Net's and VAE's hints, shared by the LDM and SGM (SDXL) layouts."""
    u, v = unet.config, vae.config
    return {
        "unet": {
            "attention_head_dim": u.attention_head_dim,
            "norm_num_groups": u.norm_num_groups,
            "sample_size": u.sample_size,
        },
        "vae": {
            "norm_num_groups": v.norm_num_groups,
            "sample_size": v.sample_size,
            "scaling_factor": v.scaling_factor,
        },
    }


def scheduler_hints(scheduler: Any) -> dict[str, Any]:
    """``{"scheduler": its config with its class name}``, or nothing without one."""
    if scheduler is None:
        return {}
    cfg = {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}
    return {"scheduler": {"_class_name": type(scheduler).__name__, **cfg}}


def save_single_file(
    path: Path,
    unet: Any,
    vae: Any,
    text_encoder: Any,
    scheduler: Any = None,
    dtype: torch.dtype | None = None,
    text_format: str = "clip",
) -> Path:
    """Write a single-file ``.safetensors`` checkpoint (LDM layout, with `hints` as metadata)."""
    sd = to_ldm_state_dict(unet, vae, text_encoder, text_format)
    return write_checkpoint(path, sd, hints(unet, vae, text_encoder, scheduler), dtype)


def write_checkpoint(
    path: Path, sd: dict[str, torch.Tensor], hint: dict[str, Any], dtype: torch.dtype | None
) -> Path:
    """Save a state dict (optionally cast) as ``.safetensors`` with ``hint`` as metadata."""
    tensors = {
        k: (v.to(dtype) if dtype is not None else v).detach().cpu().contiguous()
        for k, v in sd.items()
    }
    meta = {HINTS_KEY: json.dumps(hint, sort_keys=True)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path
