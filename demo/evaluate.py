"""Loading trained components from the training folder and judging their pictures."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import torch

from demo import scenes
from demo.judge import accuracy
from demo.models import LATENT_SCALE, build_text_encoder, build_unet, build_vae
from demo.sampling import generate
from demo.trainutil import Ema


def load_vae(out: Path, seed: int = 0):
    """The folded VAE, with the fine-tuned decoder when there is one."""
    vae = build_vae(seed)
    path = out / "decoder.pt" if (out / "decoder.pt").exists() else out / "vae_final.pt"
    vae.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["model"])
    return vae.eval()


def load_trained(out: Path, seed: int = 0, use_ema: bool = True):
    """(unet, text_encoder, vae) from data/demo-train, EMA weights by default."""
    state = torch.load(out / "unet.pt", map_location="cpu", weights_only=False)
    unet, te = build_unet(seed), build_text_encoder(seed)
    unet.load_state_dict(state["unet"])
    te.load_state_dict(state["te"])
    if use_ema:
        ema = Ema([unet, te], 0.0)
        ema.load_state_dict(state["ema"])
        ema.copy_to([unet, te])
    return unet.eval(), te.eval(), load_vae(out, seed)


def held_out_scenes(n: int, seed: int = 0) -> list[scenes.Scene]:
    return [scenes.scene_for(i, "eval", seed) for i in range(n)]


def adherence(unet, te, vae, scene_list, **kw) -> dict[str, float]:
    images = generate(unet, te, vae, [s.caption for s in scene_list], LATENT_SCALE, **kw)
    return accuracy(images, scene_list)


def training_eval(out: Path, seed: int, n: int = 48) -> Callable:
    """A callback judging the EMA weights on n held-out prompts (dpmpp_2m, 20 steps)."""
    vae = load_vae(out, seed)
    scene_list = held_out_scenes(n, seed)

    def run(ema: Ema) -> dict[str, float]:
        unet, te = build_unet(seed), build_text_encoder(seed)
        ema_copy = copy.copy(ema)
        ema_copy.copy_to([unet, te])
        acc = adherence(unet.eval(), te.eval(), vae, scene_list, steps=20, seed=seed)
        return {k: round(v, 3) for k, v in acc.items()}

    return run
