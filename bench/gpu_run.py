"""Running bench/gpu.py's planned rows in order, within the budget (imports torch)."""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

import torch

import bench.pipeline as bp
from bench.gpu import CUDA_ONLY, Budget, Case, Report, baseline_row, estimate, option_row
from bench.gpu_measure import EngineBench, measure_option, pipeline_times, warm_up

MODELS = bp.OUT / "models"


def checkpoint_ready(case: Case) -> bool:
    return case.builder is None or (MODELS / "checkpoints" / case.name).is_file()


def build(case: Case, device: str) -> None:
    """Write the case's random checkpoint (bench/pipeline.py's builder). On CUDA the
    random initialisation runs on the GPU (minutes on the CPU for SDXL); should that
    fail, it is built on the CPU as bench/pipeline.py does."""
    if checkpoint_ready(case):
        return
    path = MODELS / "checkpoints" / case.name
    builder = getattr(bp, str(case.builder))
    print(f"building {path} (once, on {device}) ...", flush=True)
    t0 = time.perf_counter()
    try:
        with torch.device(device):
            builder(path)
    except Exception as exc:  # noqa: BLE001 - the CPU build below is the reference path
        if device == "cpu":
            raise
        print(f"building on {device} failed ({_message(exc)}); building on the CPU", flush=True)
        path.unlink(missing_ok=True)
        free_device_memory()
        builder(path)
    print(f"built in {time.perf_counter() - t0:.1f} s", flush=True)


def free_device_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_baseline(case: Case, bench: EngineBench, steps: int) -> dict[str, Any]:
    """Engine first run, the pipeline's first run and rerun, engine seed-only rerun (in
    that order: neither side's first run finds the other's kernels warm), then a counted
    rerun."""
    first = bench.run(bench.doc(1))
    pipe, pipe_error = None, None
    try:
        pipe = pipeline_times(case, MODELS, bench.device, steps, bench.dtype)
    except Exception as exc:  # noqa: BLE001 - the engine's figures still count
        pipe_error = _message(exc)
    free_device_memory()
    rerun = bench.run(bench.doc(2))
    copies = bench.counted_run(bench.doc(3))
    row = baseline_row(case, steps, {"first": first, "rerun": rerun}, pipe, copies)
    if pipe_error:
        row["pipeline_error"] = pipe_error
    return row


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def skip_reason(
    case: Case, row: str, device: str, baselines: dict[str, dict[str, Any]]
) -> str | None:
    if row == "baseline":
        return None
    if device != "cuda" and row in CUDA_ONLY:
        return "needs CUDA"
    if case.label not in baselines:
        return "needs this model's baseline row"
    return None


def run_rows(
    todo: list[tuple[Case, str]],
    args: argparse.Namespace,
    device: str,
    budget: Budget,
    report: Report,
) -> None:
    """Each row in order: skipped (with why) when it cannot run or its estimate does not
    fit the budget left; an error is reported on its row and the next one runs."""
    benches: dict[str, EngineBench] = {}
    baselines: dict[str, dict[str, Any]] = {}
    warm_up(device)
    for case, row in todo:
        head = {"model": case.label, "row": row}
        reason = skip_reason(case, row, device, baselines)
        image_s = baselines.get(case.label, {}).get("engine_rerun_s")
        needed = estimate(case, row, checkpoint_ready(case), image_s)
        if reason is None and not budget.fits(needed):
            reason = f"budget: needs ~{needed:.0f} s, {budget.left():.0f} s left"
        if reason is not None:
            report.add({**head, "skipped": reason})
            continue
        report.running = f"{case.label} {row}"
        report.write()
        t0 = time.perf_counter()
        try:
            if row == "baseline":
                build(case, device)
                benches[case.label] = bench = EngineBench(case, MODELS, device, args.steps)
                out = run_baseline(case, bench, args.steps)
                baselines[case.label] = out
            else:
                seed = 100 + 10 * len(report.rows)
                measured = measure_option(benches[case.label], row, seed)
                out = option_row(case, row, args.steps, measured, baselines[case.label])
        except Exception as exc:  # noqa: BLE001 - one row failing must not end the run
            out = {**head, "error": _message(exc)}
            free_device_memory()
        out["row_s"] = round(time.perf_counter() - t0, 1)
        report.running = None
        report.add(out)
    for bench in benches.values():
        bench.close()
