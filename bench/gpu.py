"""GPU checks, prepared for a CUDA machine (run through bench/gpu.sh).

    python bench/gpu.py [--steps 20] [--repeat 2] [--only sd15|sdxl] [--dry-run]

For each model it can build (SD-1.5 architecture at 512x512; SDXL at 1024x1024 where
this branch has an SDXL builder in bench/pipeline.py), with random weights, fp16:
- engine vs diffusers pipeline time (first run, seed-only rerun), through the same
  fresh-process workers as bench/pipeline.py (SD-1.5; SDXL engine only);
- sampler iterations per second, peak VRAM (torch.cuda.max_memory_allocated);
- device->host copies during the seed-only rerun, counted by the CUDA profiler: the
  cached loader and text encodings stay on the GPU, so only the final image (and any
  previews) may come back to the host.
On a machine without CUDA it prints "no CUDA: skipped" and exits 0; ``--dry-run``
prints the plan without running anything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SKIPPED = "no CUDA: skipped"


@dataclass(frozen=True)
class Case:
    label: str
    builder: str  # function name in bench.pipeline that writes the checkpoint
    file: str
    size: int
    pipeline: bool  # whether bench/pipeline.py has a diffusers side for it


CASES = (
    Case("sd15", "build_full_checkpoint", "sd15-random-fp16.safetensors", 512, True),
    Case("sdxl", "build_sdxl_checkpoint", "sdxl-random-fp16.safetensors", 1024, False),
)


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def plan(only: str | None, builders: set[str]) -> tuple[list[Case], list[str]]:
    """The cases to run and a note for each one this branch cannot build."""
    cases, notes = [], []
    for case in CASES:
        if only and case.label != only:
            continue
        if case.builder not in builders:
            notes.append(f"{case.label}: skipped (bench/pipeline.py has no {case.builder})")
            continue
        cases.append(case)
    return cases, notes


def count_device_to_host(event_names: list[str]) -> int:
    """Device->host copies among profiler event names (CUDA's "Memcpy DtoH ...")."""
    return sum(1 for name in event_names if "Memcpy DtoH" in name or "memcpy_dtoh" in name)


def profile_rerun(case: Case, models: Path, steps: int) -> dict[str, Any]:
    """In this process: one run to fill the cache, then the seed-only rerun under the
    profiler; VRAM peak, it/s of the Sample node and the rerun's device->host copies."""
    import tempfile

    import torch
    from torch.profiler import ProfilerActivity, profile

    from bench.pipeline import _workflow
    from graph import Engine, Registry, Workspace

    tmp = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    engine = Engine(Registry.from_package("nodes"), Workspace.at(tmp, models_dir=models).ensure())
    torch.cuda.reset_peak_memory_stats()
    first = engine.run(_workflow(case.file, case.size, steps, 1, "cuda", "fp16"))
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        rerun = engine.run(_workflow(case.file, case.size, steps, 2, "cuda", "fp16"))
        torch.cuda.synchronize()
    for result in (first, rerun):
        if result.status != "ok":
            raise SystemExit(f"{case.label}: engine run failed: {result.error}")
    names = [e.name for e in prof.events()]
    sample_s = rerun.nodes["sample"].seconds
    return {
        "peak_vram_gib": torch.cuda.max_memory_allocated() / 2**30,
        "it_per_s": steps / sample_s if sample_s else None,
        "rerun_dtoh_copies": count_device_to_host(names),
        "rerun_executed": sorted(n for n, r in rerun.nodes.items() if r.status == "executed"),
    }


def run_case(case: Case, args: argparse.Namespace) -> dict[str, Any]:
    import bench.pipeline as bp

    models = bp.OUT / "models"
    path = models / "checkpoints" / case.file
    if not path.is_file():
        print(f"building {path} (once) ...", flush=True)
        getattr(bp, case.builder)(path)
    cmd = [sys.executable, str(ROOT / "bench" / "pipeline.py"), "--device", "cuda"]
    cmd += ["--dtype", "fp16", "--steps", str(args.steps), "--repeat", str(args.repeat)]
    cmd += ["--only-full", "--full-size", str(case.size), "--json", str(bp.OUT / "gpu.json")]
    row: dict[str, Any] = {"model": case.label, "size": case.size}
    if case.pipeline:  # engine vs diffusers in fresh processes (bench/pipeline.py)
        subprocess.run(cmd, check=True, cwd=ROOT)
        row.update(json.loads((bp.OUT / "gpu.json").read_text())[0])
    row.update(profile_rerun(case, models, args.steps))
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--only", choices=[c.label for c in CASES])
    p.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    args = p.parse_args(argv)
    import bench.pipeline as bp

    cases, notes = plan(args.only, {name for name in dir(bp) if name.startswith("build_")})
    for note in notes:
        print(note)
    if args.dry_run:
        for case in cases:
            print(f"would run {case.label} at {case.size}x{case.size}, {args.steps} steps, fp16")
        return 0
    if not cuda_available():
        print(SKIPPED)
        return 0
    rows = [run_case(case, args) for case in cases]
    for r in rows:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
