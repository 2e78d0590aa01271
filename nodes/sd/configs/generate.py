"""Writes the configs-only folders (run from the repo root): `python nodes/sd/configs/generate.py`.

Numbers are the published SD-1.5, SD-2-base (512, epsilon) and SD-2.1 (768, v-prediction)
configs (offline-models.md section 3); parameter counts are checked against the real models
(UNet 859,520,964 / 865,910,724; VAE 83,653,863).
"""

import json
import shutil
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, PNDMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig

ROOT = Path("nodes/sd/configs")
SCHED = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    set_alpha_to_one=False,
    skip_prk_steps=True,
    steps_offset=1,
    clip_sample=False,
)
UNET = dict(
    act_fn="silu",
    attention_head_dim=8,
    block_out_channels=[320, 640, 1280, 1280],
    center_input_sample=False,
    cross_attention_dim=768,
    down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    downsample_padding=1,
    flip_sin_to_cos=True,
    freq_shift=0,
    in_channels=4,
    layers_per_block=2,
    mid_block_scale_factor=1,
    norm_eps=1e-5,
    norm_num_groups=32,
    out_channels=4,
    sample_size=64,
    up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
)
VAE = dict(
    act_fn="silu",
    block_out_channels=[128, 256, 512, 512],
    down_block_types=["DownEncoderBlock2D"] * 4,
    in_channels=3,
    latent_channels=4,
    layers_per_block=2,
    norm_num_groups=32,
    out_channels=3,
    sample_size=512,
    up_block_types=["UpDecoderBlock2D"] * 4,
    scaling_factor=0.18215,
)
CLIP_L = dict(
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    projection_dim=768,
    bos_token_id=0,
    eos_token_id=2,
    pad_token_id=1,
    initializer_factor=1.0,
    initializer_range=0.02,
    attention_dropout=0.0,
    dropout=0.0,
)
OPENCLIP_H = {
    **CLIP_L,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 23,
    "num_attention_heads": 16,
    "hidden_act": "gelu",
    "projection_dim": 512,
}
SD2_UNET = {
    **UNET,
    "attention_head_dim": [5, 10, 20, 20],
    "cross_attention_dim": 1024,
    "use_linear_projection": True,
}
ARCHS = {
    "sd15": (UNET, VAE, CLIP_L, PNDMScheduler, {**SCHED, "prediction_type": "epsilon"}),
    "sd2-512": (SD2_UNET, VAE, OPENCLIP_H, PNDMScheduler, {**SCHED, "prediction_type": "epsilon"}),
    "sd2-768": (
        {**SD2_UNET, "sample_size": 96},
        {**VAE, "sample_size": 768},
        OPENCLIP_H,
        DDIMScheduler,
        {**SCHED, "prediction_type": "v_prediction"},
    ),
}


def main() -> None:
    """Write every SD 1.x/2.x configs-only folder."""
    for name, (u, v, t, sched_cls, s) in ARCHS.items():
        d = ROOT / name
        shutil.rmtree(d, ignore_errors=True)
        with torch.device("meta"):
            unet = UNet2DConditionModel.from_config(u)
            vae = AutoencoderKL.from_config(v)
        unet.save_config(d / "unet")
        vae.save_config(d / "vae")
        tc = CLIPTextConfig(**t)
        tc.architectures = ["CLIPTextModel"]
        tc.save_pretrained(d / "text_encoder")
        sched_cls.from_config(s).save_config(d / "scheduler")
        idx = {
            "_class_name": "StableDiffusionPipeline",
            "_diffusers_version": "0.42.1",
            "feature_extractor": [None, None],
            "requires_safety_checker": False,
            "safety_checker": [None, None],
            "scheduler": ["diffusers", sched_cls.__name__],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        }
        (d / "model_index.json").write_text(json.dumps(idx, indent=2, sort_keys=True) + "\n")
        print(
            name,
            sum(p.numel() for p in unet.parameters()),
            sum(p.numel() for p in vae.parameters()),
        )


if __name__ == "__main__":
    main()
