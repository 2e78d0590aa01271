"""Write the trained demo model as the built-in single-file checkpoint "builtin/shapes-demo".

    python -m demo.export [--out data/demo-train] [--dtype fp16]

LDM single-file layout (nodes.sd.ldm_export), EMA weights, with a JSON sidecar recording the
file's sha256 and how it was trained.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch

from demo.evaluate import load_trained
from demo.models import (
    SCHEDULER_CONFIG,
    UNET_CONFIG,
    VAE_CONFIG,
    build_inference_scheduler,
    n_params,
    text_config,
)
from demo.trainutil import DEFAULT_OUT
from nodes.sd.checkpoints import BUILTIN_MODELS_DIR
from nodes.sd.ldm_export import save_single_file

NAME = "shapes-demo"
WEIGHTS = BUILTIN_MODELS_DIR / f"{NAME}.safetensors"
RECORD = BUILTIN_MODELS_DIR / f"{NAME}.json"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export(
    out: Path, seed: int = 0, dtype: torch.dtype = torch.float16, dest: Path = BUILTIN_MODELS_DIR
) -> dict:
    """Write <dest>/shapes-demo.safetensors and its .json record; returns the record."""
    weights, record_path = dest / WEIGHTS.name, dest / RECORD.name
    unet, te, vae = load_trained(out, seed)
    save_single_file(weights, unet, vae, te, scheduler=build_inference_scheduler(), dtype=dtype)
    vae_state = torch.load(out / "vae.pt", map_location="cpu", weights_only=False)
    unet_state = torch.load(out / "unet.pt", map_location="cpu", weights_only=False)
    dec = out / "decoder.pt"
    dec_state = torch.load(dec, weights_only=False) if dec.exists() else {"step": 0}
    record = {
        "file": weights.name,
        "checkpoint": f"builtin/{NAME}",
        "sha256": sha256_of(weights),
        "bytes": weights.stat().st_size,
        "dtype": str(dtype).removeprefix("torch."),
        "training": {
            "seed": seed,
            "vae_steps": int(vae_state["step"]),
            "unet_steps": int(unet_state["step"]),
            "decoder_finetune_steps": int(dec_state["step"]),
            "decoder_discriminator": "adversary" in dec_state,
            "aux_text_heads": "aux" in unet_state,
            "weights": "EMA of U-Net and text encoder",
            "schedule": {
                k: SCHEDULER_CONFIG[k]
                for k in ("prediction_type", "rescale_betas_zero_snr", "timestep_spacing")
            },
            "command": "python -m demo.train vae|latents|unet|decoder (docs/demo-model.md)",
        },
        "params": {
            "unet": n_params(unet),
            "vae": n_params(vae),
            "text_encoder": n_params(te),
        },
        "architecture": {
            "unet": {k: list(v) if isinstance(v, tuple) else v for k, v in UNET_CONFIG.items()},
            "vae": {k: list(v) if isinstance(v, tuple) else v for k, v in VAE_CONFIG.items()},
            "text_encoder": {
                k: getattr(text_config(), k)
                for k in ("hidden_size", "intermediate_size", "num_hidden_layers")
            },
        },
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["fp16", "fp32"], default="fp16")
    a = p.parse_args(argv)
    dtype = torch.float16 if a.dtype == "fp16" else torch.float32
    print(json.dumps(export(a.out, a.seed, dtype), indent=2))


if __name__ == "__main__":
    main()
