"""Seeded random full-size checkpoints for the benchmarks (SD-1.5 and SDXL architectures),
built from the project's offline config folders and written once under bench/out/."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_full_checkpoint(path: Path) -> Path:
    """A full-size SD-1.5-architecture model with seeded random weights, saved as an fp16
    single-file LDM checkpoint (about 2 GB, built once)."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from nodes.sd.ldm_export import save_single_file

    cfg = ROOT / "nodes" / "sd" / "configs" / "sd15"
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(cfg / "unet"))
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(cfg / "vae"))
    text = CLIPTextModel(CLIPTextConfig.from_pretrained(cfg / "text_encoder"))
    sched = PNDMScheduler.from_config(PNDMScheduler.load_config(cfg / "scheduler"))
    return save_single_file(path, unet, vae, text, sched, dtype=torch.float16)


def build_sdxl_checkpoint(path: Path) -> Path:
    """A full-size SDXL base with seeded random weights as a bf16 SGM single file (built
    and written in bf16: no fp32 copy of 3.5 billion weights on a shared machine)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from nodes.sd.sdxl_arch import shipped_sdxl
    from nodes.sd.sgm_export import save_sgm_file

    arch = shipped_sdxl("sdxl-base")
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)  # 7 GB of weights instead of 14
    try:
        unet = UNet2DConditionModel.from_config(arch.unet)
        vae = AutoencoderKL.from_config(arch.vae)
        te1 = CLIPTextModel(CLIPTextConfig(**arch.text_encoder))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig(**arch.text_encoder_2))
    finally:
        torch.set_default_dtype(torch.float32)
    return save_sgm_file(path, unet, vae, te1, te2, dtype=torch.bfloat16)
