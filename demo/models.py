"""The demo model's architecture: real SD-1.x components at a tiny size.

Channel counts are multiples of 32 (SD's GroupNorm uses 32 groups, which a single-file
loader cannot read from tensor shapes), U-Net attention uses SD-1's 8 heads, and the text
encoder's head size is CLIP's 64, so a loader that infers an SD-1.x config from shapes
rebuilds exactly this model.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from nodes.sd.tokenizer import BOS_ID, EOS_ID, VOCAB_SIZE

LATENT_SCALE = 0.18215  # SD-1's VAE scaling factor; the exported VAE is rescaled to fit it
TEXT_HIDDEN = 64

VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(32, 32, 64, 64),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=32,
    sample_size=64,
    scaling_factor=LATENT_SCALE,
)

UNET_CONFIG = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    # cross-attention only where the down path reaches 4x4 and in the middle block: each
    # attention stage removed cut a call (batch 2, one thread) by about a fifth; the way
    # up reads the prompt through the skip connections (docs/demo-model.md)
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("UpBlock2D", "UpBlock2D"),
    block_out_channels=(64, 128),
    layers_per_block=1,
    cross_attention_dim=TEXT_HIDDEN,
    attention_head_dim=8,
    norm_num_groups=32,
)

# SD-1.5's betas, rescaled to zero terminal SNR, with v-prediction and trailing timesteps
# (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed"; SD 2.x's
# v-prediction). With SD-1.5's own schedule the last training step still holds 7% of the
# signal: at 8x8 latents that leaks where the shape is, so an epsilon model learned to read
# position from the noise instead of the prompt (position stayed at chance). From pure noise
# at t=999 the prompt is the only source of the layout. The exported file carries this
# config, so every sampler uses it.
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="v_prediction",
    rescale_betas_zero_snr=True,
    timestep_spacing="trailing",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=0,
)


def text_config() -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=TEXT_HIDDEN,
        intermediate_size=4 * TEXT_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=TEXT_HIDDEN // 64,
        max_position_embeddings=77,
        projection_dim=TEXT_HIDDEN,
        hidden_act="quick_gelu",
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=EOS_ID,
    )


def build_vae(seed: int) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(**VAE_CONFIG)


def build_unet(seed: int) -> UNet2DConditionModel:
    torch.manual_seed(seed + 1)
    return UNet2DConditionModel(**UNET_CONFIG)


def build_text_encoder(seed: int) -> CLIPTextModel:
    torch.manual_seed(seed + 2)
    return CLIPTextModel(text_config())


def build_noise_scheduler() -> DDPMScheduler:
    """The training schedule (add_noise, get_velocity)."""
    return DDPMScheduler(**{k: v for k, v in SCHEDULER_CONFIG.items() if k != "set_alpha_to_one"})


def build_inference_scheduler() -> DDIMScheduler:
    """The schedule the exported checkpoint records (its ``sdgraph.hints``)."""
    return DDIMScheduler(**SCHEDULER_CONFIG)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
