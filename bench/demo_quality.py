"""How well the built-in demo model follows prompts, judged by demo.judge.

    python bench/demo_quality.py [--prompts 100] [--threads 2] [--dtype fp32|bf16|auto]
                                 [--quick] [--json OUT]

Everything runs through the project's own code path: LoadCheckpoint's loader, the
Tokenize / EncodeText / Sample / InvertLatent / VAE node functions. Prompts are held-out
scenes (attribute combinations and seeds never used in training). Reports:
judge accuracy on ground truth; VAE reconstruction PSNR; adherence per attribute for
euler, euler_ancestral, ddim and dpmpp_2m at 5, 10, 20 and 50 steps; the DDIM inversion
round trip (image -> noise -> image) PSNR; seconds per 64x64 image.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo import scenes  # noqa: E402
from demo.judge import ATTRIBUTES, accuracy  # noqa: E402
from graph.context import Resources  # noqa: E402
from graph.workspace import Workspace  # noqa: E402
from nodes.encode_text import encode_windows  # noqa: E402
from nodes.sd.checkpoints import load_checkpoint  # noqa: E402
from nodes.sd.handles import Conditioning, LatentBatch  # noqa: E402
from nodes.sd.prompt_weights import tokenize_prompt  # noqa: E402
from nodes.sd.sampling import SampleSettings, invert, sample  # noqa: E402
from nodes.vae_decode import decode  # noqa: E402
from nodes.vae_encode import encode  # noqa: E402

CHECKPOINT = "builtin/shapes-demo"
SAMPLERS = ("euler", "euler_ancestral", "ddim", "dpmpp_2m")
STEPS = (5, 10, 20, 50)
DEFAULT_CFG = 2.0
CFG_SWEEP = (1.0, 1.5, 2.0, 3.0, 4.0, 7.5)
NEGATIVE = ""


class Pipeline:
    """The node functions of the txt2img workflow, for one loaded checkpoint."""

    def __init__(self, name: str = CHECKPOINT, file: Path | None = None, dtype: str = "fp32"):
        """``file``: bench a checkpoint file instead (copied into a temporary models folder)."""
        tmp = Path(tempfile.mkdtemp(prefix="demo-bench-"))
        ws = Workspace.at(tmp, tmp / "models")
        if file is not None:
            (tmp / "models" / "checkpoints").mkdir(parents=True)
            shutil.copy(file, tmp / "models" / "checkpoints" / file.name)
            name = file.name
        self.workspace, self.resources = ws, Resources()  # bench/demo_lora.py loads LoRAs
        self.model, self.clip, self.vae = load_checkpoint(ws, self.resources, name, dtype, "cpu")
        self._cond: dict[str, Conditioning] = {}

    def cond(self, text: str) -> Conditioning:
        if text not in self._cond:
            tokens = tokenize_prompt(self.clip.tokenizer, text)
            self._cond[text] = Conditioning(encode_windows(self.clip, tokens), text=text)
        return self._cond[text]

    def txt2img(
        self,
        prompt: str,
        seed: int,
        steps: int = 20,
        sampler: str = "dpmpp_2m",
        cfg: float = DEFAULT_CFG,
    ) -> np.ndarray:
        """uint8 [64, 64, 3]."""
        settings = SampleSettings(seed, steps, cfg, sampler, "normal")
        empty = LatentBatch(torch.zeros(1, 4, 8, 8))
        lat = sample(self.model, self.cond(prompt), self.cond(NEGATIVE), empty, settings)
        return to_uint8(decode(self.vae, LatentBatch(lat.float().cpu()))[0])


def to_uint8(image: torch.Tensor) -> np.ndarray:
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def psnr_u8(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(255.0**2 / max(mse, 1e-9))


def held_out(n: int) -> list[scenes.Scene]:
    return [scenes.scene_for(i, "eval") for i in range(n)]


def adherence(pipe: Pipeline, scene_list, **kw) -> dict[str, float]:
    images = np.stack([pipe.txt2img(s.caption, seed=i, **kw) for i, s in enumerate(scene_list)])
    return accuracy(images, scene_list)


def vae_round_trip(pipe: Pipeline, n: int) -> tuple[float, dict[str, float]]:
    """Reconstruction PSNR of n held-out scenes, and the judge on the reconstructions: the
    ceiling the decoder sets for generated pictures."""
    images, scene_list = scenes.batch(range(n), "eval")
    x = torch.from_numpy(images).float() / 255
    rec = decode(pipe.vae, LatentBatch(encode(pipe.vae, x)))
    pixels = np.stack([to_uint8(b) for b in rec])
    mean_psnr = statistics.mean(psnr_u8(a, b) for a, b in zip(images, pixels, strict=True))
    return mean_psnr, accuracy(pixels, scene_list)


def blurred(images: np.ndarray, sigma: float) -> np.ndarray:
    """Ground truth with soft edges: the judge should not need pixel-sharp pictures."""
    out = [ndimage.gaussian_filter(im.astype(np.float64), (sigma, sigma, 0)) for im in images]
    return np.clip(np.stack(out), 0, 255).round().astype(np.uint8)


def inversion_psnr(pipe: Pipeline, n: int, steps: int = 50) -> tuple[float, float]:
    """(image -> DDIM noise -> DDIM image PSNR, same for the VAE alone) over n scenes, cfg 1."""
    out, vae_only = [], []
    images, scene_list = scenes.batch(range(n), "eval")
    for img, sc in zip(images, scene_list, strict=True):
        x = torch.from_numpy(img[None]).float() / 255
        lat = LatentBatch(encode(pipe.vae, x))
        cond = pipe.cond(sc.caption)
        noise = invert(pipe.model, cond, None, lat, steps, 1.0)
        settings = SampleSettings(0, steps, 1.0, "ddim", "normal")
        back = sample(pipe.model, cond, None, noise, settings)
        out.append(psnr_u8(img, to_uint8(decode(pipe.vae, LatentBatch(back.float()))[0])))
        vae_only.append(psnr_u8(img, to_uint8(decode(pipe.vae, lat)[0])))
    return statistics.mean(out), statistics.mean(vae_only)


def seconds_per_image(pipe: Pipeline, repeats: int = 15) -> float:
    """Median wall time of the whole txt2img path (tokenize, encode both prompts, 20 steps
    dpmpp_2m with cfg, decode), prompt caches cleared each time; after one warm-up image
    (first-call setup, as a running server has already paid it)."""
    pipe.txt2img("a large blue square on a white background, centre", seed=0)
    times = []
    for i in range(repeats):
        pipe._cond.clear()
        t = time.perf_counter()
        pipe.txt2img("a small red circle on a blue background, top left", seed=i)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def fmt_row(name: str, acc: dict[str, float]) -> str:
    cells = " | ".join(f"{100 * acc[k]:.0f}%" for k in (*ATTRIBUTES, "all"))
    return f"| {name} | {cells} |"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoint", default=CHECKPOINT)
    p.add_argument("--file", type=Path, default=None, help="a checkpoint file to bench instead")
    p.add_argument("--prompts", type=int, default=100, help="held-out prompts per setting")
    p.add_argument("--table-prompts", type=int, default=None, help="prompts per table cell")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cfg", type=float, default=DEFAULT_CFG)
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16", "auto"])
    p.add_argument("--quick", action="store_true", help="skip the sampler x steps table")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    pipe = Pipeline(a.checkpoint, a.file, a.dtype)
    report: dict = {
        "checkpoint": str(a.file or a.checkpoint),
        "prompts": a.prompts,
        "cfg": a.cfg,
        "dtype": str(pipe.model.dtype).removeprefix("torch."),
    }
    gt_images, gt_scenes = scenes.batch(range(2000), "eval")
    report["judge_on_ground_truth"] = accuracy(gt_images, gt_scenes)
    report["judge_on_blurred_ground_truth"] = accuracy(blurred(gt_images, 1.0), gt_scenes)
    for n in (1, 2):
        torch.set_num_threads(n)
        report[f"seconds_per_image_{n}_threads"] = seconds_per_image(pipe)
    torch.set_num_threads(a.threads)
    report["seconds_per_image"] = min(
        report["seconds_per_image_1_threads"], report["seconds_per_image_2_threads"]
    )
    report["load_average"] = os.getloadavg()
    report["vae_psnr_db"], report["judge_on_vae_reconstructions"] = vae_round_trip(pipe, 300)
    scene_list = held_out(a.prompts)
    report["main"] = adherence(pipe, scene_list, steps=20, sampler="dpmpp_2m", cfg=a.cfg)
    report["cfg_sweep"] = {
        str(c): adherence(pipe, scene_list[: max(20, a.prompts // 2)], cfg=c)
        for c in CFG_SWEEP
        if c != a.cfg
    }
    ddim_rt, vae_rt = inversion_psnr(pipe, 10)
    report["ddim_inversion_psnr_db"] = ddim_rt
    report["ddim_inversion_vae_only_psnr_db"] = vae_rt
    if not a.quick:
        cell = held_out(a.table_prompts or a.prompts)
        report["table"] = {
            f"{s}@{n}": adherence(pipe, cell, steps=n, sampler=s, cfg=a.cfg)
            for s in SAMPLERS
            for n in STEPS
        }
    print_report(report)
    write_json(a.json, report)
    return report


def write_json(path: Path | None, report: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2))


def print_report(r: dict) -> None:
    head = "| setting | " + " | ".join((*ATTRIBUTES, "all")) + " |"
    sep = "|---" * (len(ATTRIBUTES) + 2) + "|"
    print(
        f"checkpoint {r['checkpoint']} ({r.get('dtype', 'float32')}), {r['prompts']} held-out "
        f"prompts, cfg {r['cfg']}"
    )
    print(
        "seconds per 64x64 image (20 steps dpmpp_2m, cfg; tokenize to decode): "
        f"{r['seconds_per_image_1_threads']:.3f} (1 thread), "
        f"{r['seconds_per_image_2_threads']:.3f} (2 threads); load average "
        + ", ".join(f"{x:.2f}" for x in r["load_average"])
    )
    print(f"VAE reconstruction PSNR (300 held-out scenes): {r['vae_psnr_db']:.2f} dB")
    print(
        f"DDIM inversion round trip PSNR: {r['ddim_inversion_psnr_db']:.2f} dB "
        f"(VAE alone {r['ddim_inversion_vae_only_psnr_db']:.2f} dB)"
    )
    print(head, sep, sep="\n")
    print(fmt_row("judge on ground truth", r["judge_on_ground_truth"]))
    print(fmt_row("judge on ground truth blurred (sigma 1 px)", r["judge_on_blurred_ground_truth"]))
    print(fmt_row("judge on VAE reconstructions", r["judge_on_vae_reconstructions"]))
    print(fmt_row("dpmpp_2m, 20 steps", r["main"]))
    for c, acc in r["cfg_sweep"].items():
        print(fmt_row(f"dpmpp_2m, 20 steps, cfg {c}", acc))
    for k, acc in r.get("table", {}).items():
        s, n = k.split("@")
        print(fmt_row(f"{s}, {n} steps", acc))


if __name__ == "__main__":
    main()
