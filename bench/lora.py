"""What applying a LoRA per call costs (nodes/sd/lora_patch.py): time to merge and to
restore, and the extra memory while merged, on a U-Net and text encoder.

    python bench/lora.py [--full] [--rank 32] [--repeat 5] [--threads N]
                         [--device cpu|cuda] [--dtype fp32|fp16]

A kohya LoRA with LoCon convolutions (every attention, projection, feed-forward, resnet
conv and time-embedding layer, alpha = rank / 2) is parsed against the model and applied
with `patched()` (the mechanism sampling and text encoding use), ``--repeat`` times:
- apply: merged copies of the touched layers computed and swapped in (median);
- restore: the original tensors swapped back (median);
- cached rerun: the same LoRAs again, their merged layers kept in the model store (the
  engine does this): swap in and out only (median);
- extra memory: bytes of the merged copies (= the touched layers' size), also as a share
  of the module, held in the model store while cached (evicted under its budget); on cuda
  also the measured peak allocation above the model's.
For scale, one U-Net call at the model's latent size (batch 2 = one CFG step) is timed.
"tiny" = builtin/tiny-random; ``--full`` = SD-1.5 architecture with random weights.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from nodes.sd.lora_keys import module_aliases, parse_lora  # noqa: E402
from nodes.sd.lora_patch import LoraPatch, merged_weights, patched, swapped  # noqa: E402
from tests.lora_fixtures import kohya_lora  # noqa: E402
from tests.sd_fixtures import full_size_components, tiny_components  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    component: str, module: Any, lora: dict, repeat: int, device: torch.device
) -> dict[str, Any]:
    parsed = parse_lora(lora, {}, {component: module_aliases(component, module)})
    patch = (LoraPatch(parsed, 1.0, component),)
    touched = sum(module.get_submodule(n).weight.nbytes for n in parsed.layers[component])
    total = sum(p.nbytes for p in module.parameters())
    applies, restores = [], []
    peak = None
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        sync(device)
        t0 = time.perf_counter()
        with patched(module, patch):
            sync(device)
            t1 = time.perf_counter()
        sync(device)
        t2 = time.perf_counter()
        applies.append(t1 - t0)
        restores.append(t2 - t1)
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device) - base
    merged = merged_weights(module, patch)  # what the model store keeps for reruns
    swaps = []
    for _ in range(repeat):
        sync(device)
        t0 = time.perf_counter()
        with swapped(module, merged):
            pass
        sync(device)
        swaps.append(time.perf_counter() - t0)
    return {
        "cached_s": statistics.median(swaps),
        "layers": parsed.count,
        "lora_mb": parsed.nbytes / 2**20,
        "apply_s": statistics.median(applies),
        "restore_s": statistics.median(restores),
        "extra_mb": touched / 2**20,
        "share": touched / total,
        "peak_extra_mb": None if peak is None else peak / 2**20,
    }


def unet_call_seconds(unet: Any, size: int, device: torch.device, dtype: torch.dtype) -> float:
    c = unet.config
    x = torch.randn(2, c.in_channels, size, size, device=device, dtype=dtype)
    ctx = torch.randn(2, 77, c.cross_attention_dim, device=device, dtype=dtype)
    times = []
    with torch.no_grad():
        for _ in range(3):
            sync(device)
            t0 = time.perf_counter()
            unet(x, 500, encoder_hidden_states=ctx)
            sync(device)
            times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--full", action="store_true", help="SD-1.5 architecture (random weights)")
    p.add_argument("--rank", type=int, default=32)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "fp16"])
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    dtype = torch.float16 if a.dtype == "fp16" else torch.float32
    comps = full_size_components("sd15") if a.full else tiny_components(0)
    lora = kohya_lora(comps, rank=a.rank, alpha=a.rank / 2, size=0.01)
    for name in ("unet", "text_encoder"):
        comps[name] = comps[name].to(device, dtype).eval().requires_grad_(False)
    model = "SD-1.5 architecture" if a.full else "builtin/tiny-random"
    print(f"{model}, {device} {a.dtype}, kohya LoRA rank {a.rank} with LoCon, {a.repeat} runs")
    for name in ("unet", "text_encoder"):
        r = measure(name, comps[name], lora, a.repeat, device)
        peak = "" if r["peak_extra_mb"] is None else f", peak +{r['peak_extra_mb']:.1f} MB"
        print(
            f"  {name:12s} {r['layers']:4d} layers, LoRA {r['lora_mb']:.1f} MB: apply "
            f"{r['apply_s'] * 1000:.1f} ms, restore {r['restore_s'] * 1000:.2f} ms, cached "
            f"rerun (swap in and out) {r['cached_s'] * 1000:.2f} ms, extra "
            f"{r['extra_mb']:.1f} MB while merged ({r['share']:.0%} of the module){peak}"
        )
    size = 64 if a.full else 8
    t = unet_call_seconds(comps["unet"], size, device, dtype)
    print(f"  for scale: one U-Net call, batch 2 at {size * 8}px: {t * 1000:.1f} ms")


if __name__ == "__main__":
    main()
