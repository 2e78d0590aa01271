"""Which new attribute can a demo LoRA teach? The frozen VAE decides.

    python bench/demo_lora_candidates.py [--scenes 100] [--invert 24] [--threads 1]

A kohya LoRA changes the U-Net and text encoder only; every picture still comes out of
the shipped decoder. So each candidate is drawn as ground truth on held-out scenes, sent
through the demo VAE (encode, decode), and measured on what comes back: the share of
pixels off by more than 90 (sum of |RGB| differences), and whether the candidate's mark
survives (outline: share of outline pixels still dark; new colour: the judge with the
colour added to the palette; brick: the extended judge). ``--invert`` also optimises
latents directly against the decoder (Adam, 150 steps, from the encoder's latents) for
the outline and the new colour: if no latent decodes to the attribute, no U-Net can
produce it either.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.demo_quality import Pipeline, to_uint8  # noqa: E402
from demo import judge, scenes  # noqa: E402
from demo.scenes import PALETTE, SIZE, SUPERSAMPLE, scene_geometry, shape_polygon  # noqa: E402
from nodes.sd.handles import LatentBatch  # noqa: E402
from nodes.vae_decode import decode  # noqa: E402
from nodes.vae_encode import encode  # noqa: E402

OUTLINE = (20, 20, 20)
CYAN = (30, 200, 210)


def draw(sc: scenes.Scene, kind: str) -> np.ndarray:
    """A scene with the candidate attribute, drawn like scenes.render (4x, box filter)."""
    if kind in ("brick", "cyan"):
        return scenes.render(sc)
    s = SUPERSAMPLE
    img = Image.new("RGB", (SIZE * s, SIZE * s), PALETTE[sc.background])
    d = ImageDraw.Draw(img)
    cx, cy, side = scene_geometry(sc)
    col = PALETTE[sc.colour]
    x, y, h = cx * s, cy * s, side * s / 2
    if kind == "outlined":
        pts = [(px * s, py * s) for px, py in shape_polygon(sc.shape, cx, cy, side)]
        if sc.shape == "circle":
            d.ellipse([pts[0], pts[2]], fill=col, outline=OUTLINE, width=3 * s)
        else:
            d.polygon(pts, fill=col, outline=OUTLINE, width=3 * s)
    elif kind == "star":
        r = [h if k % 2 == 0 else 0.45 * h for k in range(10)]
        ang = [k * math.pi / 5 for k in range(10)]
        d.polygon(
            [(x + r[k] * math.sin(ang[k]), y - r[k] * math.cos(ang[k])) for k in range(10)],
            fill=col,
        )
    elif kind == "ring":
        d.ellipse([x - h, y - h, x + h, y + h], fill=col)
        d.ellipse([x - h / 2, y - h / 2, x + h / 2, y + h / 2], fill=PALETTE[sc.background])
    return np.asarray(img.resize((SIZE, SIZE), Image.Resampling.BOX))


def candidate_scenes(kind: str, n: int) -> list[scenes.Scene]:
    base = [scenes.scene_for(i, "eval") for i in range(3 * n)]
    if kind == "outlined":  # a dark outline cannot show on or around black
        base = [s for s in base if "black" not in (s.colour, s.background)]
    if kind == "cyan":
        base = [dataclasses.replace(s, colour="cyan") for s in base]
    if kind == "brick":
        base = [dataclasses.replace(s, shape="brick") for s in base]
    return base[:n]


def round_trip(pipe: Pipeline, images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(images).float() / 255
    return np.stack([to_uint8(b) for b in decode(pipe.vae, LatentBatch(encode(pipe.vae, x)))])


def invert(pipe: Pipeline, images: np.ndarray, steps: int = 150) -> np.ndarray:
    """Latents optimised so the frozen decoder reproduces ``images`` as well as it can."""
    vae = pipe.vae.vae.requires_grad_(False)
    x = torch.from_numpy(images).float().permute(0, 3, 1, 2) / 127.5 - 1
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mean
    z.requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.05)
    for _ in range(steps):
        loss = (vae.decode(z).sample - x).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = vae.decode(z).sample.clamp(-1, 1)
    return ((out + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def survives(kind: str, truth: np.ndarray, got: np.ndarray, scene_list) -> float:
    if kind == "outlined":
        ring = [(np.abs(t.astype(int) - OUTLINE).sum(2) < 30) for t in truth]
        return float(
            np.mean(
                [(g.astype(float).mean(2)[m] < 80).mean() for g, m in zip(got, ring, strict=True)]
            )
        )
    if kind in ("cyan", "brick"):
        return float(
            np.mean(
                [
                    judge.judge(g).colour == "cyan"
                    if kind == "cyan"
                    else judge.judge(g).shape == "brick"
                    for g in got
                ]
            )
        )
    return float("nan")  # star, ring: judged by eye and by the pixel error


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scenes", type=int, default=100)
    p.add_argument("--invert", type=int, default=0, help="scenes optimised against the decoder")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    pipe = Pipeline()
    PALETTE["cyan"] = CYAN  # for the judge's nearest-colour reading
    judge._NAMES[:] = list(PALETTE)
    judge._RGB = np.array([PALETTE[k] for k in judge._NAMES], dtype=np.float64)
    print(
        "| candidate | pixels off > 90 after VAE | attribute kept after VAE "
        "| after decoder inversion |"
    )
    print("|---|---|---|---|")
    for kind in ("outlined", "cyan", "star", "ring", "brick"):
        scene_list = candidate_scenes(kind, a.scenes)
        truth = np.stack([draw(s, kind) for s in scene_list])
        rec = round_trip(pipe, truth)
        off = float((np.abs(truth.astype(int) - rec).sum(3) > 90).mean())
        kept = survives(kind, truth, rec, scene_list)
        inv = "-"
        if a.invert and kind in ("outlined", "cyan"):
            k = a.invert
            inv = f"{100 * survives(kind, truth[:k], invert(pipe, truth[:k]), scene_list[:k]):.0f}%"
        print(f"| {kind} | {100 * off:.1f}% | {100 * kept:.0f}% | {inv} |")


if __name__ == "__main__":
    main()
