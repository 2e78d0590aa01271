"""The measurements behind bench/gpu.py's rows, in this process: one engine per model,
diffusers' pipeline through bench/pipeline.py's worker, and the options (channels_last,
SDPA backends, torch.compile through the CompileModel node) switched on one at a time.

Every timed run ends with a device synchronisation; peak VRAM is
``torch.cuda.max_memory_allocated`` since the last reset (None on the CPU)."""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import bench.pipeline as bp
from bench.gpu_copies import CopyCounter, count_memcpy

ROOT = Path(__file__).resolve().parents[1]
SDPA_BACKENDS = {
    "flash": "FLASH_ATTENTION",
    "efficient": "EFFICIENT_ATTENTION",
    "math": "MATH",
    "cudnn": "CUDNN_ATTENTION",
}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None


def warm_up(device: str) -> None:
    """Start the device (context, cuBLAS, cuDNN) and read the CLIP vocabulary (memoised)
    before anything is timed, so neither side's first run pays for it."""
    from nodes.sd.tokenizer import load_clip_tokenizer

    load_clip_tokenizer()
    load_clip_tokenizer("!")
    x = torch.randn(2, 4, 64, 64, device=device, dtype=torch.float16 if device == "cuda" else None)
    conv = torch.nn.Conv2d(4, 4, 3, padding=1).to(device, x.dtype)
    with torch.no_grad():
        (conv(x) @ x.transpose(-1, -2)).sum().item()
    sync(device)


def workflow_doc(
    name: str, sdxl: bool, size: int, steps: int, seed: int, device: str, dtype: str
) -> dict[str, Any]:
    """The txt2img workflow bench/pipeline.py times (same prompt, sampler, cfg)."""
    file = "sdxl_txt2img.json" if sdxl else "txt2img.json"
    doc = json.loads((ROOT / "workflows" / file).read_text())
    nodes = doc["nodes"]
    nodes["checkpoint"]["inputs"].update({"name": name, "device": device, "dtype": dtype})
    nodes["positive_tokens"]["inputs"]["text"] = bp.PROMPT
    nodes["negative_tokens"]["inputs"]["text"] = bp.NEGATIVE
    nodes["latent"]["inputs"].update({"width": size, "height": size, "batch_size": 1})
    sample = {"seed": seed, "steps": steps, "cfg": bp.CFG, "sampler": "euler", "denoise": 1.0}
    nodes["sample"]["inputs"].update({**sample, "schedule": "normal"})
    return doc


def with_compile(doc: dict[str, Any], mode: str, backend: str = "inductor") -> dict[str, Any]:
    """``doc`` with a CompileModel node between the checkpoint's model and its users."""
    doc = json.loads(json.dumps(doc))
    source = {"node": "checkpoint", "output": "model"}
    for node in doc["nodes"].values():
        for key, value in node["inputs"].items():
            if value == source:
                node["inputs"][key] = {"node": "compile", "output": "model"}
    compile_inputs = {"model": source, "mode": mode, "backend": backend}
    doc["nodes"]["compile"] = {"type": "CompileModel", "inputs": compile_inputs}
    return doc


class EngineRunFailed(RuntimeError):
    """A workflow run ended with an error (the row reports it)."""


def bench_reseed(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the next seed (a run the engine has not cached)."""
    doc = json.loads(json.dumps(doc))
    doc["nodes"]["sample"]["inputs"]["seed"] += 1
    return doc


@dataclass
class Run:
    """One timed engine run: wall seconds, the Sample node's seconds, peak VRAM, image."""

    seconds: float
    sample_s: float
    peak_gib: float | None
    image: Path | None
    executed: list[str] = field(default_factory=list)

    def it_per_s(self, steps: int) -> float | None:
        return steps / self.sample_s if self.sample_s else None


class EngineBench:
    """One engine for one model on one device, run by workflow document."""

    def __init__(self, case: Any, models: Path, device: str, steps: int) -> None:
        from graph import Engine, Registry, Workspace

        self.case, self.device, self.steps = case, device, steps
        self.dtype = "fp16" if device == "cuda" else "fp32"  # fp32: the CPU smoke run
        self.tmp = Path(tempfile.mkdtemp(prefix=f"gpu-bench-{case.label}-"))
        ws = Workspace.at(self.tmp / "data", models_dir=models).ensure()
        self.engine = Engine(Registry.from_package("nodes"), ws)

    def doc(self, seed: int) -> dict[str, Any]:
        c = self.case
        return workflow_doc(c.name, c.sdxl, c.size, self.steps, seed, self.device, self.dtype)

    def run(self, doc: dict[str, Any]) -> Run:
        from graph.workflow import parse_workflow

        wf = parse_workflow(doc)
        reset_peak(self.device)
        t0 = time.perf_counter()
        result = self.engine.run(wf)
        sync(self.device)
        seconds = time.perf_counter() - t0
        if result.status != "ok":
            err = result.error or {}
            raise EngineRunFailed(f"in {err.get('node_id')}: {err.get('message')}")
        sample = result.nodes.get("sample")
        out = self.engine.workspace.folder("output")
        images = [out / f["name"] for f in result.files if f.get("kind") == "output"]
        executed = sorted(n for n, r in result.nodes.items() if r.status == "executed")
        return Run(
            seconds,
            sample.seconds if sample else 0.0,
            peak_gib(self.device),
            images[-1] if images else None,
            executed,
        )

    def counted_run(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A run under the copy counter and (on CUDA) the profiler: copies by direction.
        Should the profiler be refused (no CUPTI), the next seed runs without it."""
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU]
        if self.device == "cuda":
            activities.append(ProfilerActivity.CUDA)
        names: list[str] | None = None
        try:
            with profile(activities=activities) as prof, CopyCounter() as copies:
                run = self.run(doc)
            names = [e.name for e in prof.events()]
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, EngineRunFailed):
                raise
            with CopyCounter() as copies:
                run = self.run(bench_reseed(doc))
        return {
            "to_host": copies.to_host(self.device),
            "from_host": copies.from_host(self.device),
            "to_host_bytes": copies.bytes_to_host(self.device),
            "by_direction": copies.summary(),
            "memcpy_dtoh": None if names is None else count_memcpy(names, "DtoH"),
            "memcpy_htod": None if names is None else count_memcpy(names, "HtoD"),
            "executed": run.executed,
        }

    def handles(self) -> Any:
        """The loaded (model, clip, vae) the workflow uses (from the engine's cache)."""
        from nodes.sd.checkpoints import load_checkpoint

        ws, res = self.engine.workspace, self.engine.resources
        return load_checkpoint(ws, res, self.case.name, self.dtype, self.device)

    def close(self) -> None:
        self.engine.free_memory()


def pipeline_times(case: Any, models: Path, device: str, steps: int, dtype: str) -> dict[str, Any]:
    """diffusers' pipeline, first run (load + image) and seed-only rerun, in this process
    (bench/pipeline.py's worker), with the peak VRAM of both."""
    args = argparse.Namespace(
        name=case.name, models=str(models), device=device, dtype=dtype, steps=steps, size=case.size
    )
    reset_peak(device)
    default_dtype = torch.get_default_dtype()  # the SDXL worker changes it while loading
    try:
        with tempfile.TemporaryDirectory() as tmp:
            times = bp.pipeline_worker(args, Path(tmp))
    finally:
        torch.set_default_dtype(default_dtype)
    return {"first": times["first"], "rerun": times["rerun"], "peak_gib": peak_gib(device)}


@contextlib.contextmanager
def option_on(option: str, bench: EngineBench) -> Iterator[dict[str, Any]]:
    """Switch one option on for the block; yields the workflow changes it needs
    (``{"compile": mode}`` for the compile options, else nothing)."""
    kind, _, arg = option.partition(":")
    if kind == "sdpa":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel([getattr(SDPBackend, SDPA_BACKENDS[arg])]):
            yield {}
    elif kind == "channels_last":
        model, _, vae = bench.handles()
        modules = (model.unet, vae.vae)
        for m in modules:
            m.to(memory_format=torch.channels_last)
        try:
            yield {}
        finally:
            for m in modules:
                m.to(memory_format=torch.contiguous_format)
    elif kind == "compile":
        yield {"compile": arg}
    else:
        raise ValueError(f"unknown option {option!r}")


def image_difference(a: Path | None, b: Path | None) -> dict[str, Any]:
    """Largest pixel difference (0-255) and PSNR of two images of one size."""
    if a is None or b is None:
        return {}
    import numpy as np
    from PIL import Image

    x = np.asarray(Image.open(a).convert("RGB"), dtype=np.int16)
    y = np.asarray(Image.open(b).convert("RGB"), dtype=np.int16)
    return {"max_diff": int(np.abs(x - y).max()), "psnr_db": round(bp.psnr(a, b), 2)}


def measure_option(bench: EngineBench, option: str, seed: int) -> dict[str, Any]:
    """The option on: a first run (compiles, warms up) and a timed seed-only rerun; then
    the rerun's seed with the option off, to compare pictures."""
    with option_on(option, bench) as change:

        def doc(s: int) -> dict[str, Any]:
            d = bench.doc(s)
            return with_compile(d, change["compile"]) if "compile" in change else d

        first = bench.run(doc(seed))
        rerun = bench.run(doc(seed + 1))
    # the engine's cache does not know about process-wide switches (SDPA, memory format):
    # without clearing it, the same workflow and seed would only be served from the cache
    bench.engine.cache.clear()
    off = bench.run(bench.doc(seed + 1))
    return {"first": first, "rerun": rerun, **image_difference(rerun.image, off.image)}
