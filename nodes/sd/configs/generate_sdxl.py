"""Writes the SDXL configs-only folders (run from the repo root):
`python nodes/sd/configs/generate_sdxl.py`.

Numbers are the published stabilityai/stable-diffusion-xl-base-1.0 and -refiner-1.0
configs. Parameter counts are printed (base U-Net 2,567,463,684, as published; refiner
U-Net 2,259,526,660; CLIP-L text 123,060,480; OpenCLIP bigG text with projection
694,659,840; VAE 83,653,863).
The tokenizer folders hold only ``tokenizer_config.json`` (the settings diffusers' SDXL
repos use); the vocabulary is the shared CLIP BPE file (`nodes/sd/tokenizer.py`).
"""

import json
import shutil
from pathlib import Path

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
from generate import CLIP_L
from generate import VAE as SD_VAE
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

ROOT = Path("nodes/sd/configs")
SCHED = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    interpolation_type="linear",
    num_train_timesteps=1000,
    prediction_type="epsilon",
    sample_max_value=1.0,
    set_alpha_to_one=False,
    skip_prk_steps=True,
    steps_offset=1,
    timestep_spacing="leading",
    use_karras_sigmas=False,
)
BASE_UNET = dict(
    act_fn="silu",
    addition_embed_type="text_time",
    addition_embed_type_num_heads=64,
    addition_time_embed_dim=256,
    attention_head_dim=[5, 10, 20],
    block_out_channels=[320, 640, 1280],
    cross_attention_dim=2048,
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    downsample_padding=1,
    flip_sin_to_cos=True,
    freq_shift=0,
    in_channels=4,
    layers_per_block=2,
    mid_block_scale_factor=1,
    norm_eps=1e-5,
    norm_num_groups=32,
    out_channels=4,
    projection_class_embeddings_input_dim=2816,
    sample_size=128,
    transformer_layers_per_block=[1, 2, 10],
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    use_linear_projection=True,
)
REFINER_UNET = {
    **BASE_UNET,
    "attention_head_dim": [6, 12, 24, 24],
    "block_out_channels": [384, 768, 1536, 1536],
    "cross_attention_dim": 1280,
    "down_block_types": [
        "DownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "projection_class_embeddings_input_dim": 2560,
    "transformer_layers_per_block": 4,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
}
# the SD VAE and CLIP-L of generate.py (same directory: run as a script)
VAE = {**SD_VAE, "force_upcast": True, "sample_size": 1024, "scaling_factor": 0.13025}
OPENCLIP_BIGG = {
    **CLIP_L,
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "hidden_act": "gelu",
    "projection_dim": 1280,
}
TOKENIZER = {
    "tokenizer_class": "CLIPTokenizer",
    "model_max_length": 77,
    "bos_token": "<|startoftext|>",
    "eos_token": "<|endoftext|>",
    "unk_token": "<|endoftext|>",
    "pad_token": "<|endoftext|>",
    "do_lower_case": True,
}
TOKENIZER_2 = {**TOKENIZER, "pad_token": "!"}  # OpenCLIP pads with "!" (id 0)


def write(name: str, unet: dict, encoders: dict[str, tuple[type, dict]], index: dict) -> None:
    d = ROOT / name
    shutil.rmtree(d, ignore_errors=True)
    with torch.device("meta"):
        u = UNet2DConditionModel.from_config(unet)
        v = AutoencoderKL.from_config(VAE)
    u.save_config(d / "unet")
    v.save_config(d / "vae")
    counts = [sum(p.numel() for p in u.parameters()), sum(p.numel() for p in v.parameters())]
    for sub, (cls, cfg) in encoders.items():
        tc = CLIPTextConfig(**cfg)
        tc.architectures = [cls.__name__]
        tc.save_pretrained(d / sub)
        with torch.device("meta"):
            counts.append(sum(p.numel() for p in cls(tc).parameters()))
        tok = TOKENIZER if sub == "text_encoder" else TOKENIZER_2
        tok_dir = d / sub.replace("text_encoder", "tokenizer")
        tok_dir.mkdir(parents=True)
        (tok_dir / "tokenizer_config.json").write_text(json.dumps(tok, indent=2) + "\n")
    EulerDiscreteScheduler.from_config(SCHED).save_config(d / "scheduler")
    idx = {"_diffusers_version": "0.42.1", **index}
    (d / "model_index.json").write_text(json.dumps(idx, indent=2, sort_keys=True) + "\n")
    print(name, counts)


def main() -> None:
    """Write the SDXL base and refiner configs-only folders."""
    write(
        "sdxl-base",
        BASE_UNET,
        {
            "text_encoder": (CLIPTextModel, CLIP_L),
            "text_encoder_2": (CLIPTextModelWithProjection, OPENCLIP_BIGG),
        },
        {
            "_class_name": "StableDiffusionXLPipeline",
            "force_zeros_for_empty_prompt": True,
            "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
    )
    write(
        "sdxl-refiner",
        REFINER_UNET,
        {"text_encoder_2": (CLIPTextModelWithProjection, OPENCLIP_BIGG)},
        {
            "_class_name": "StableDiffusionXLImg2ImgPipeline",
            "force_zeros_for_empty_prompt": False,
            "requires_aesthetics_score": True,
            "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            "text_encoder": [None, None],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer": [None, None],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
    )


if __name__ == "__main__":
    main()
