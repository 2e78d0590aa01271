"""Workflow (through graph.Engine) vs diffusers' StableDiffusionPipeline: same model, size,
steps, sampler (euler), cfg, prompt and negative prompt.

    python bench/pipeline.py [--full | --only-full] [--sdxl | --only-sdxl] [--steps 10]
                             [--repeat 3] [--threads N] [--device cpu|cuda]
                             [--dtype fp32,bf16] [--engine-only]
                             [--json OUT]

Two measurements per side, each in a fresh process (so neither side inherits the other's
warm state), sides alternating, best of ``--repeat``:
- first run: load the model and make one image. Engine: ``Engine.run`` of the txt2img
  workflow from an empty engine whose model index has seen the file (its sha256, computed
  once per file per machine and memoized, is reported apart as ``hash_once_s``):
  LoadCheckpoint -> Tokenize/EncodeText x2 -> EmptyLatent -> Sample -> VAEDecode ->
  SaveImage. Pipeline: load + ``pipe(...)`` + saving the PNG
  (both sides end with the same PNG on disk). Imports and building the CLIP tokenizer
  from the shipped vocabulary (memoised per process) are not timed on either side.
- seed-only rerun: the same again with another seed, in the same process. The engine
  serves the loader, both text encodings and the empty latent from its cache.
Models: "tiny" = the built-in builtin/tiny-random at 64x64 (the pipeline builds the
same seeded components); "full" (``--full``) = a full-size SD-1.5 architecture with
random weights, written once as an fp16 single-file LDM checkpoint under bench/out/,
loaded by the engine's LoadCheckpoint and by ``StableDiffusionPipeline.from_single_file``
with the project's offline SD-1.5 config folder, at 256x256 (``--full-size``).
Memory (engine side): ``load peak`` is the process's peak RSS while LoadCheckpoint runs
(the kernel's high-water mark, reset just before), ``steady`` the RSS after the first
run, ``weights`` the bytes of the loaded parameters; ``job peak`` (both sides) the peak
RSS of the whole first run, load included.
Each ``--dtype`` (comma-separated) gives a row; a row after the first also reports the
PSNR of its engine image against the first row's (same seed).
``--sdxl``: also a full-size SDXL base architecture (`nodes/sd/configs/sdxl-base`) with
random weights, built once and written as a bf16 SGM single file under bench/out/ (about
7 GB), against ``StableDiffusionXLPipeline.from_single_file`` with the same config folder,
at ``--sdxl-size`` (256); pass a small ``--steps`` and ``--dtype bf16`` for it on a CPU.
Targets: first run <= 1.05x the pipeline; seed-only rerun faster than the pipeline.
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
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as run.py and server.py

from bench.pipeline_report import print_rows, psnr  # noqa: E402
from bench.random_checkpoints import (  # noqa: E402  (bench/gpu.py finds them here too)
    build_full_checkpoint,
    build_sdxl_checkpoint,
)

OUT = ROOT / "bench" / "out"
FULL_NAME = "sd15-random-fp16.safetensors"
SDXL_NAME = "sdxl-base-random-bf16.safetensors"
PROMPT = "a red circle on a blue background"
NEGATIVE = "blurry, low quality"
CFG = 7.5


# -- workers (run in their own process) -------------------------------------------------


def _workflow(name: str, size: int, steps: int, seed: int, device: str, dtype: str) -> Any:
    from graph.workflow import parse_workflow

    file = "sdxl_txt2img.json" if name == SDXL_NAME else "txt2img.json"
    doc = json.loads((ROOT / "workflows" / file).read_text())
    nodes = doc["nodes"]
    nodes["checkpoint"]["inputs"].update({"name": name, "device": device, "dtype": dtype})
    nodes["positive_tokens"]["inputs"]["text"] = PROMPT
    nodes["negative_tokens"]["inputs"]["text"] = NEGATIVE
    nodes["latent"]["inputs"].update({"width": size, "height": size, "batch_size": 1})
    nodes["sample"]["inputs"].update(
        {
            "seed": seed,
            "steps": steps,
            "cfg": CFG,
            "sampler": "euler",
            "schedule": "normal",
            "denoise": 1.0,
        }
    )
    return parse_workflow(doc)


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def rss_kib(field: str) -> int:
    """VmRSS / VmHWM of this process in KiB (0 where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss() -> None:
    """Restart the kernel's RSS high-water mark (Linux: write 5 to clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def engine_worker(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    from graph import Engine, Registry, Workspace
    from nodes.sd.checkpoints import load_checkpoint

    registry = Registry.from_package("nodes")  # imports: not timed
    models = Path(args.models) if args.models else tmp / "models"
    engine = Engine(registry, Workspace.at(tmp / "data", models_dir=models).ensure())
    times: dict[str, float] = {}
    file = models / "checkpoints" / args.name
    if file.is_file():  # the model index's hash: once per file per machine, not per run
        from model_index import index_for

        t0 = time.perf_counter()
        index_for(engine.workspace).sha256(file)
        times["hash_once_s"] = time.perf_counter() - t0
    for label, seed in (("first", 1), ("rerun", 2)):
        wf = _workflow(args.name, args.size, args.steps, seed, args.device, args.dtype)
        t0 = time.perf_counter()
        if label == "first":  # the loader's own peak: LoadCheckpoint, as the run calls it
            reset_peak_rss()
            base = rss_kib("VmRSS")
            handles = load_checkpoint(
                engine.workspace, engine.resources, args.name, args.dtype, args.device
            )
            times["load_peak_gib"] = rss_kib("VmHWM") / 2**20
            times["load_base_gib"] = base / 2**20
            times["weights_gib"] = handles_bytes(handles) / 2**30
        result = engine.run(wf)
        _sync(args.device)
        times[label] = time.perf_counter() - t0
        if result.status != "ok":
            raise SystemExit(f"engine run failed: {result.error}")
        if label == "first":
            times["steady_gib"] = rss_kib("VmRSS") / 2**20
            times["job_peak_gib"] = rss_kib("VmHWM") / 2**20  # load included
            out = engine.workspace.folder("output")
            if args.image_out:
                png = next(out.rglob("*.png"))
                Path(args.image_out).write_bytes(png.read_bytes())
    return times


def handles_bytes(handles: Any) -> int:
    """Bytes of every parameter and buffer of a loaded (model, clip, vae)."""
    model, clip, vae = handles
    modules = (model.unet, clip.text_encoder, vae.vae)
    tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
    return sum(t.numel() * t.element_size() for t in tensors)


def pipeline_worker(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    from nodes.sd.builtin import build_tiny_components
    from nodes.sd.tokenizer import load_clip_tokenizer

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(args.dtype, torch.float32)
    times = {}
    reset_peak_rss()
    t0 = time.perf_counter()
    if args.name == SDXL_NAME:
        from diffusers import StableDiffusionXLPipeline

        # without accelerate, from_single_file first builds randomly initialised modules in
        # the default dtype (fp32: 14 GB for SDXL); build them in the target dtype instead
        torch.set_default_dtype(dtype)
        pipe = StableDiffusionXLPipeline.from_single_file(
            str(Path(args.models) / "checkpoints" / args.name),
            config=str(ROOT / "nodes" / "sd" / "configs" / "sdxl-base"),
            tokenizer=load_clip_tokenizer(),
            tokenizer_2=load_clip_tokenizer("!"),
            local_files_only=True,
            torch_dtype=dtype,
            add_watermarker=False,
        )
        torch.set_default_dtype(torch.float32)
    elif args.name == "builtin/tiny-random":
        c = build_tiny_components(0)
        pipe = StableDiffusionPipeline(
            **c, safety_checker=None, feature_extractor=None, requires_safety_checker=False
        )
    else:
        pipe = StableDiffusionPipeline.from_single_file(
            str(Path(args.models) / "checkpoints" / args.name),
            config=str(ROOT / "nodes" / "sd" / "configs" / "sd15"),
            tokenizer=load_clip_tokenizer(),
            local_files_only=True,
            torch_dtype=dtype,
            safety_checker=None,
            requires_safety_checker=False,
        )
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe = pipe.to(args.device, dtype)
    times["load_peak_gib"] = rss_kib("VmHWM") / 2**20
    pipe.set_progress_bar_config(disable=True)
    for label, seed in (("first", 1), ("rerun", 2)):
        if label == "rerun":
            t0 = time.perf_counter()
        image = pipe(
            PROMPT,
            negative_prompt=NEGATIVE,
            num_inference_steps=args.steps,
            guidance_scale=CFG,
            height=args.size,
            width=args.size,
            generator=torch.Generator("cpu").manual_seed(seed),
        ).images[0]
        image.save(tmp / f"pipe_{seed}.png", compress_level=4)
        _sync(args.device)
        times[label] = time.perf_counter() - t0
        if label == "first":
            times["job_peak_gib"] = rss_kib("VmHWM") / 2**20  # load included
    return times


def worker(args: argparse.Namespace) -> None:
    import torch

    from nodes.sd.tokenizer import load_clip_tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    load_clip_tokenizer()  # process set-up on both sides (memoised vocabulary): not timed
    import resource

    with tempfile.TemporaryDirectory() as tmp:
        fn = engine_worker if args.worker == "engine" else pipeline_worker
        out = fn(args, Path(tmp))
        out["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)
        print(json.dumps(out))


# -- driver ---------------------------------------------------------------------------


def measure(
    side: str,
    name: str,
    size: int,
    models: Path | None,
    args: argparse.Namespace,
    dtype: str,
    image_out: Path | None = None,
) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", side, "--name", name, "--size", str(size)]
    cmd += ["--steps", str(args.steps), "--device", args.device, "--dtype", dtype]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if models is not None:
        cmd += ["--models", str(models)]
    if image_out is not None:
        cmd += ["--image-out", str(image_out)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(
    label: str,
    name: str,
    size: int,
    models: Path | None,
    args: argparse.Namespace,
    dtype: str,
) -> dict[str, Any]:
    sides = ("engine",) if args.engine_only else ("engine", "pipeline")
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    image = OUT / f"{label}-{dtype}-engine.png"
    for i in range(args.repeat):
        order = sides if i % 2 == 0 else sides[::-1]
        for side in order:
            png = image if side == "engine" and i == 0 else None
            runs[side].append(measure(side, name, size, models, args, dtype, png))
            print(f"  {label} {dtype} {side} #{i + 1}: {runs[side][-1]}", flush=True)
    best = {side: {k: min(r[k] for r in rs) for k in rs[0]} for side, rs in runs.items()}
    row: dict[str, Any] = {
        "model": label,
        "size": size,
        "steps": args.steps,
        "device": args.device,
        "dtype": dtype,
        "threads": args.threads,
        "image": str(image),
        **{f"{side}_{k}": round(v, 4) for side, d in best.items() for k, v in d.items()},
    }
    if "pipeline" in best:
        row["first_ratio"] = round(best["engine"]["first"] / best["pipeline"]["first"], 3)
        row["rerun_ratio"] = round(best["engine"]["rerun"] / best["pipeline"]["rerun"], 3)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--full", action="store_true", help="also the full-size SD-1.5 model")
    p.add_argument("--only-full", action="store_true", help="only the full-size model")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--tiny-size", type=int, default=64)
    p.add_argument("--full-size", type=int, default=256)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument(
        "--dtype", default="fp32", help="comma-separated: fp32, bf16, fp16 (one row each)"
    )
    p.add_argument("--sdxl", action="store_true", help="also a full-size SDXL base (random)")
    p.add_argument("--only-sdxl", action="store_true", help="only the SDXL base")
    p.add_argument("--sdxl-size", type=int, default=256)
    p.add_argument("--engine-only", action="store_true", help="skip the diffusers pipeline")
    p.add_argument("--json", type=Path, help="write the result rows here")
    # worker mode (internal)
    p.add_argument("--worker", choices=["engine", "pipeline"], help=argparse.SUPPRESS)
    p.add_argument("--name", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--models", help=argparse.SUPPRESS)
    p.add_argument("--image-out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    models_list: list[tuple[str, str, int, Path | None]] = []
    if not (args.only_full or args.only_sdxl):
        models_list.append(("tiny", "builtin/tiny-random", args.tiny_size, None))
    if args.full or args.only_full:
        models = OUT / "models"
        path = models / "checkpoints" / FULL_NAME
        if not path.is_file():
            print(f"building {path} (once) ...", flush=True)
            build_full_checkpoint(path)
        models_list.append(("sd15-random", FULL_NAME, args.full_size, models))
    if args.sdxl or args.only_sdxl:
        sdxl_models = OUT / "models"
        sdxl_path = sdxl_models / "checkpoints" / SDXL_NAME
        if not sdxl_path.is_file():
            print(f"building {sdxl_path} (once) ...", flush=True)
            build_sdxl_checkpoint(sdxl_path)
        models_list.append(("sdxl-base-random", SDXL_NAME, args.sdxl_size, sdxl_models))
    rows = []
    for label, name, size, models_dir in models_list:
        first: dict[str, Any] | None = None
        for dtype in args.dtype.split(","):
            row = compare(label, name, size, models_dir, args, dtype)
            if first is None:
                first = row
            else:
                row["psnr_db"] = round(psnr(Path(first["image"]), Path(row["image"])), 2)
            rows.append(row)
    print()
    print_rows(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
