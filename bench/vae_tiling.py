"""Tiled vs untiled VAE decode and encode: fidelity (PSNR), seams, time and peak memory.

    python bench/vae_tiling.py [--arch sd15|tiny] [--size 1024] [--tile 512] [--threads N]
                               [--only decode|encode] [--diffusers] [--json OUT]

A VAE with seeded random weights (SD-1.5's architecture from nodes/sd/configs, or the
built-in tiny one); decode a seeded random latent of ``size`` x ``size`` pixels and encode a
smooth seeded image of that size, each untiled and in tiles (`nodes.sd.vae_tiled`; cores of
``tile`` pixels), every pass in a fresh process so its peak RSS is its own. Prints, per
pass: seconds, peak RSS and the rise over the process before the pass (the activations);
then PSNR tiled vs untiled (decode on 0..1 pixels; encode on latents, peak = their range),
and the seam figure: the largest error in the two pixel rows/columns either side of every
tile cut against the largest error elsewhere. ``--diffusers`` adds diffusers' own blended
``tiled_decode`` with the same tile size, for comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PASSES = ("decode", "decode-tiled", "encode", "encode-tiled")


def rss_kib(field: str) -> int:
    """VmRSS / VmHWM of this process in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def build_vae(arch: str) -> Any:
    import torch
    from diffusers import AutoencoderKL

    from nodes.sd.builtin import TINY_VAE_CONFIG
    from nodes.sd.checkpoint_arch import shipped

    config = TINY_VAE_CONFIG if arch == "tiny" else shipped(arch).vae
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return AutoencoderKL.from_config(config).eval().requires_grad_(False)


def inputs(size: int) -> tuple[Any, Any]:
    """A seeded latent, and a smooth seeded image in -1..1 (low-frequency noise)."""
    import torch

    g = torch.Generator().manual_seed(0)
    latent = torch.randn(1, 4, size // 8, size // 8, generator=g)
    coarse = torch.randn(1, 3, size // 32, size // 32, generator=g)
    image = torch.tanh(torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic"))
    return latent, image


def worker(args: argparse.Namespace) -> None:
    """One pass in this process; its output tensor goes to ``args.out``."""
    import torch

    from nodes.sd.vae_tiled import tiled_decode, tiled_encode

    torch.set_num_threads(args.threads)
    vae = build_vae(args.arch)
    latent, image = inputs(args.size)
    kind = args.worker
    with torch.no_grad():
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # restart the high-water mark
        base = rss_kib("VmRSS")
        start = time.perf_counter()
        if kind == "decode":
            out = vae.decode(latent).sample
        elif kind == "decode-tiled":
            out = tiled_decode(vae, latent, args.tile // 8)
        elif kind == "decode-diffusers":
            vae.enable_tiling()
            vae.tile_sample_min_size, vae.tile_latent_min_size = args.tile, args.tile // 8
            out = vae.decode(latent).sample
        elif kind == "encode":
            out = vae.encode(image).latent_dist.mode()
        else:
            out = tiled_encode(vae, image, args.tile)[:, : vae.config.latent_channels]
        seconds = time.perf_counter() - start
        peak = rss_kib("VmHWM")
    torch.save(out, args.out)
    print(json.dumps({"seconds": seconds, "peak_kib": peak, "rise_kib": peak - base}))


def run_pass(args: argparse.Namespace, kind: str, out: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", kind, "--out", str(out)]
    cmd += ["--arch", args.arch, "--size", str(args.size), "--tile", str(args.tile)]
    cmd += ["--threads", str(args.threads)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def psnr(a: Any, b: Any, peak: float) -> float:
    import math

    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


def seam_figures(tiled: Any, untiled: Any, cuts: list[int]) -> tuple[float, float]:
    """Largest |error| within two pixels of a tile cut (rows or columns), and elsewhere."""
    err = (tiled.double() - untiled.double()).abs().amax(dim=(0, 1))
    near = err.new_zeros(err.shape, dtype=bool)
    for c in cuts:
        near[max(0, c - 2) : c + 2, :] = True
        near[:, max(0, c - 2) : c + 2] = True
    elsewhere = err[~near].max().item() if (~near).any() else 0.0
    return (err[near].max().item() if near.any() else 0.0), elsewhere


def cuts_of(size: int, tile: int, align: int, scale: float) -> list[int]:
    """Where the tile cores meet, in output pixels."""
    from nodes.sd.vae_tile_grid import tile_grid

    tiles = tile_grid(size, size, tile, 0, align)
    return sorted({round(t.core[0] * scale) for t in tiles} - {0})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="sd15", help="sd15 (from nodes/sd/configs) or tiny")
    p.add_argument("--size", type=int, default=1024, help="image side in pixels")
    p.add_argument("--tile", type=int, default=512, help="tile core in pixels")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--only", choices=("decode", "encode"), help="only these passes")
    p.add_argument("--diffusers", action="store_true", help="also diffusers' tiled_decode")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    import torch

    kinds = [k for k in PASSES if args.only is None or k.startswith(args.only)]
    kinds += ["decode-diffusers"] if args.diffusers else []
    rows: dict[str, Any] = {"arch": args.arch, "size": args.size, "tile": args.tile}
    rows["threads"] = args.threads
    with tempfile.TemporaryDirectory() as tmp:
        outs = {}
        for kind in kinds:
            rows[kind] = run_pass(args, kind, Path(tmp) / f"{kind}.pt")
            outs[kind] = torch.load(Path(tmp) / f"{kind}.pt", weights_only=True)
            r = rows[kind]
            print(
                f"{kind:17s} {r['seconds']:8.1f} s   peak RSS {r['peak_kib'] / 2**20:6.2f} GiB"
                f"   rise {r['rise_kib'] / 2**20:6.2f} GiB",
                flush=True,
            )
    dec_cuts = cuts_of(args.size // 8, args.tile // 8, 1, 8)
    pixels = {k: (v / 2 + 0.5).clamp(0, 1) for k, v in outs.items() if k.startswith("decode")}
    for kind in [k for k in pixels if k != "decode"]:
        near, far = seam_figures(pixels[kind], pixels["decode"], dec_cuts)
        rows[kind] |= {"psnr_db": psnr(pixels[kind], pixels["decode"], 1.0)}
        rows[kind] |= {"seam_max": near, "elsewhere_max": far}
    if "encode-tiled" in outs:
        ref = outs["encode"]
        enc_cuts = cuts_of(args.size, args.tile, 8, 1 / 8)
        near, far = seam_figures(outs["encode-tiled"], ref, enc_cuts)
        peak = (ref.max() - ref.min()).item()
        rows["encode-tiled"] |= {"psnr_db": psnr(outs["encode-tiled"], ref, peak)}
        rows["encode-tiled"] |= {"seam_max": near, "elsewhere_max": far}
    for kind in [k for k in kinds if "psnr_db" in rows[k]]:
        r = rows[kind]
        print(
            f"{kind:17s} PSNR vs untiled {r['psnr_db']:6.1f} dB   max error near tile cuts "
            f"{r['seam_max']:.2e}, elsewhere {r['elsewhere_max']:.2e}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
