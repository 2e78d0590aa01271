"""What the shipped demo LoRA teaches the demo model, judged by demo.judge.

    python bench/demo_lora.py [--prompts 100] [--strengths 1 0.5] [--threads 1] [--json OUT]

The LoRA goes through LoadLoRA's own functions (`nodes.sd.lora`: the file is resolved,
parsed against the model and applied as per-call patches), then the txt2img node
functions of bench/demo_quality.py (dpmpp_2m, 20 steps, cfg 2). Two prompt sets, both
held out (attribute combinations and seeds never trained on): prompts naming the new
shape "brick", and ordinary prompts of the base model. Per attribute, base model vs the
LoRA at each strength; strength 0 is also checked for identical image bytes.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.demo_quality import Pipeline, fmt_row, held_out, to_uint8, write_json  # noqa: E402
from demo import scenes  # noqa: E402
from demo.judge import ATTRIBUTES, accuracy  # noqa: E402
from demo.train_lora import NAME, held_out_bricks  # noqa: E402
from nodes.sd.handles import LatentBatch  # noqa: E402
from nodes.sd.lora import load_lora, with_lora  # noqa: E402
from nodes.vae_decode import decode  # noqa: E402
from nodes.vae_encode import encode  # noqa: E402

LORA = f"builtin/{NAME}"


def with_strength(base: Pipeline, name: str, strength: float) -> Pipeline:
    """The same pipeline with the LoRA on model and CLIP (LoadLoRA's run)."""
    ws, store = base.workspace, base.resources.models
    ref, parsed = load_lora(ws, store, name, base.model, base.clip)
    pipe = copy.copy(base)
    pipe.model, pipe.clip = with_lora(base.model, base.clip, ref, parsed, name, strength, strength)
    pipe._cond = {}
    return pipe


def images(pipe: Pipeline, scene_list) -> np.ndarray:
    return np.stack([pipe.txt2img(s.caption, seed=i) for i, s in enumerate(scene_list)])


def vae_ceiling(pipe: Pipeline, scene_list) -> dict[str, float]:
    """The judge on VAE reconstructions of ground-truth bricks: what a frozen decoder can
    show at best."""
    x = torch.from_numpy(np.stack([scenes.render(s) for s in scene_list])).float() / 255
    rec = decode(pipe.vae, LatentBatch(encode(pipe.vae, x)))
    return accuracy(np.stack([to_uint8(b) for b in rec]), scene_list)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--lora", default=LORA)
    p.add_argument("--prompts", type=int, default=100, help="held-out prompts per set")
    p.add_argument("--strengths", type=float, nargs="+", default=[1.0, 0.5])
    p.add_argument("--identical", type=int, default=20, help="prompts compared at strength 0")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    base = Pipeline()
    sets = {"brick": held_out_bricks(a.prompts), "ordinary": held_out(a.prompts)}
    gt = np.stack([scenes.render(s) for s in sets["brick"]])
    report: dict = {
        "lora": a.lora,
        "prompts": a.prompts,
        "judge_on_ground_truth_bricks": accuracy(gt, sets["brick"]),
        "judge_on_vae_reconstructed_bricks": vae_ceiling(base, sets["brick"]),
        "rows": {},
    }
    base_images = {k: images(base, v) for k, v in sets.items()}
    for k, v in sets.items():
        report["rows"][f"{k} prompts, base model"] = accuracy(base_images[k], v)
    for s in a.strengths:
        pipe = with_strength(base, a.lora, s)
        for k, v in sets.items():
            report["rows"][f"{k} prompts, LoRA {s:g}"] = accuracy(images(pipe, v), v)
    zero = with_strength(base, a.lora, 0.0)
    n = min(a.identical, a.prompts)
    same = [
        np.array_equal(zero.txt2img(s.caption, seed=i), base_images["brick"][i])
        for i, s in enumerate(sets["brick"][:n])
    ]
    report["strength_0_identical"] = f"{sum(same)}/{n}"
    report["load_average"] = os.getloadavg()
    print_report(report)
    write_json(a.json, report)
    return report


def print_report(r: dict) -> None:
    print(f"LoRA {r['lora']}, {r['prompts']} held-out prompts per set, dpmpp_2m 20 steps cfg 2")
    print(f"strength 0: images byte-identical to the base model's: {r['strength_0_identical']}")
    print("| setting | " + " | ".join((*ATTRIBUTES, "all")) + " |")
    print("|---" * (len(ATTRIBUTES) + 2) + "|")
    print(fmt_row("judge on ground-truth bricks", r["judge_on_ground_truth_bricks"]))
    print(fmt_row("judge on VAE-reconstructed bricks", r["judge_on_vae_reconstructed_bricks"]))
    for name, acc in r["rows"].items():
        print(fmt_row(name, acc))


if __name__ == "__main__":
    main()
