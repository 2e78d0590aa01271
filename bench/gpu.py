"""GPU checks, prepared for a CUDA machine (run through bench/gpu.sh, one call).

    python bench/gpu.py [--budget 420] [--steps 20] [--only sd15|sdxl] [--rows KIND,...]
                        [--json PATH] [--dry-run] [--smoke]

Rows, most important first (``--dry-run`` prints the plan with its time estimates):
- ``baseline`` per model (SD-1.5 architecture at 512x512, SDXL base architecture at
  1024x1024; random weights, fp16, euler, 20 steps, cfg 7.5): the engine's first run (load
  + image) and seed-only rerun against diffusers' pipeline (bench/pipeline.py's worker),
  it/s of the Sample node, peak VRAM, and the copies between the device and the host
  during a seed-only rerun (cached loader and text encodings stay on the GPU: only the
  image, and the noise made on the CPU for diffusers' seeds, cross).
- options, each switched on alone against the baseline: ``sdpa:flash|efficient|math|cudnn``
  (torch.nn.attention.sdpa_kernel around the run), ``channels_last`` (U-Net and VAE),
  ``compile:default`` and ``compile:reduce-overhead`` (the CompileModel node; the second
  adds CUDA graphs): first run (compiles), seed-only rerun, it/s, peak VRAM, the rerun's
  time relative to the baseline rerun, and the picture's difference from the option off.
A row starts only when its estimate fits what is left of ``--budget`` seconds; the JSON
(``--json``, else $OUT/gpu.json when $OUT is set, else bench/out/gpu.json) is rewritten
after every row, and a watchdog stops the process ``GRACE`` seconds after the budget.
Without CUDA it prints "no CUDA: skipped" and exits 0; ``--smoke`` instead runs the same
rows on the CPU with builtin/tiny-random at 64x64 (what the test suite checks).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SKIPPED = "no CUDA: skipped"
GRACE = 45  # seconds past the budget before the watchdog stops the process
CUDA_ONLY = ("sdpa:flash", "sdpa:efficient", "sdpa:cudnn", "compile:reduce-overhead")
OPTIONS = (
    "sdpa:flash",
    "sdpa:efficient",
    "sdpa:math",
    "channels_last",
    "compile:default",
    "compile:reduce-overhead",
    "sdpa:cudnn",
)


@dataclass(frozen=True)
class Case:
    label: str
    name: str  # checkpoint file under models/checkpoints (or a built-in name)
    builder: str | None  # function in bench.pipeline that writes it (None: built in)
    size: int
    sdxl: bool
    # estimates in seconds on an H100/H200-class GPU before anything was measured:
    # building the file, the baseline row, one image (replaced by the measured rerun),
    # compiling the U-Net
    build_s: float
    baseline_s: float
    image_s: float
    compile_s: float


SD15 = Case("sd15", "sd15-random-fp16.safetensors", "build_full_checkpoint", 512, False,
            40, 45, 1.5, 100)  # fmt: skip
SDXL = Case("sdxl", "sdxl-base-random-bf16.safetensors", "build_sdxl_checkpoint", 1024, True,
            90, 100, 5.0, 200)  # fmt: skip
TINY = Case("tiny", "builtin/tiny-random", None, 64, False, 0, 30, 1.0, 300)
CASES = (SD15, SDXL)

# (model, row) in order of importance: both baselines before the slow compile rows
ORDER: tuple[tuple[str, str], ...] = (
    ("sd15", "baseline"),
    ("sd15", "sdpa:flash"),
    ("sd15", "sdpa:efficient"),
    ("sd15", "sdpa:math"),
    ("sd15", "channels_last"),
    ("sdxl", "baseline"),
    ("sd15", "compile:default"),
    ("sdxl", "sdpa:flash"),
    ("sdxl", "sdpa:efficient"),
    ("sdxl", "sdpa:math"),
    ("sdxl", "channels_last"),
    ("sd15", "compile:reduce-overhead"),
    ("sdxl", "compile:default"),
    ("sdxl", "compile:reduce-overhead"),
    ("sd15", "sdpa:cudnn"),
    ("sdxl", "sdpa:cudnn"),
)


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def plan(
    only: str | None, builders: set[str], kinds: list[str] | None = None, smoke: bool = False
) -> tuple[list[tuple[Case, str]], list[str]]:
    """The (case, row) pairs to run in order, and a note per model this branch cannot
    build. ``kinds`` keeps rows whose name is in it or starts with one of them + ":"
    (``sdpa`` keeps every SDPA row)."""
    cases = {c.label: c for c in ((TINY,) if smoke else CASES)}
    order = [("tiny", row) for _, row in ORDER if _ == "sd15"] if smoke else list(ORDER)
    notes, out = [], []
    for label, case in cases.items():
        if case.builder is not None and case.builder not in builders:
            notes.append(f"{label}: skipped (bench/pipeline.py has no {case.builder})")
    for label, row in order:
        case = cases[label]
        if only and label != only and not smoke:
            continue
        if case.builder is not None and case.builder not in builders:
            continue
        if kinds and not any(row == k or row.startswith(k + ":") for k in kinds):
            continue
        out.append((case, row))
    return out, notes


def estimate(case: Case, row: str, built: bool, image_s: float | None) -> float:
    """Seconds a row is expected to take; ``image_s``: the measured baseline rerun."""
    if row == "baseline":
        return case.baseline_s + (0 if built else case.build_s)
    one = image_s if image_s is not None else case.image_s
    compile_s = case.compile_s * (1.5 if row == "compile:reduce-overhead" else 1.0)
    return 3 * one + (compile_s if row.startswith("compile:") else 5.0)


class Budget:
    """Seconds left of the run's budget; a row starts only when its estimate fits."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.clock, self.start = seconds, clock, clock()

    def left(self) -> float:
        return self.seconds - (self.clock() - self.start)

    def fits(self, needed: float) -> bool:
        return needed <= self.left()


def baseline_row(
    case: Case, steps: int, engine: dict[str, Any], pipe: dict[str, Any] | None, copies: Any
) -> dict[str, Any]:
    """The baseline row from the engine's runs (``first``/``rerun`` `Run`s), the pipeline's
    times (or None) and the counted rerun's copies."""
    first, rerun = engine["first"], engine["rerun"]
    row: dict[str, Any] = {
        "model": case.label,
        "row": "baseline",
        "size": case.size,
        "steps": steps,
        "engine_first_s": round(first.seconds, 3),
        "engine_rerun_s": round(rerun.seconds, 3),
        "it_per_s": _round(rerun.it_per_s(steps), 2),
        "peak_vram_first_gib": _round(first.peak_gib, 2),
        "peak_vram_rerun_gib": _round(rerun.peak_gib, 2),
        "rerun_executed": rerun.executed,
    }
    if pipe is not None:
        row["pipeline_first_s"] = round(pipe["first"], 3)
        row["pipeline_rerun_s"] = round(pipe["rerun"], 3)
        row["pipeline_peak_vram_gib"] = _round(pipe.get("peak_gib"), 2)
        row["first_ratio"] = round(first.seconds / pipe["first"], 3)
        row["rerun_ratio"] = round(rerun.seconds / pipe["rerun"], 3)
    if copies is not None:
        row["rerun_copies"] = copies
    return row


def option_row(
    case: Case, option: str, steps: int, measured: dict[str, Any], base: dict[str, Any]
) -> dict[str, Any]:
    """An option's row from `gpu_measure.measure_option`'s result and the baseline row."""
    first, rerun = measured["first"], measured["rerun"]
    return {
        "model": case.label,
        "row": option,
        "first_s": round(first.seconds, 3),
        "rerun_s": round(rerun.seconds, 3),
        "vs_baseline_rerun": round(rerun.seconds / base["engine_rerun_s"], 3),
        "it_per_s": _round(rerun.it_per_s(steps), 2),
        "baseline_it_per_s": base.get("it_per_s"),
        "peak_vram_gib": _round(rerun.peak_gib, 2),
        "max_diff_vs_off": measured.get("max_diff"),
        "psnr_vs_off_db": measured.get("psnr_db"),
    }


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """One line per row, for the end of the output (the JSON has every field)."""
    lines = []
    for r in rows:
        head = f"{r['model']:5} {r['row']:24}"
        if "skipped" in r or "error" in r:
            lines.append(f"{head} {'skipped: ' + r['skipped'] if 'skipped' in r else r['error']}")
        elif r["row"] == "baseline":
            pipe = (
                f" | pipeline {r['pipeline_first_s']} s / {r['pipeline_rerun_s']} s "
                f"(engine/pipeline {r['first_ratio']}x / {r['rerun_ratio']}x)"
                if "pipeline_rerun_s" in r
                else f" | pipeline: {r.get('pipeline_error', '-')}"
            )
            copies = r.get("rerun_copies") or {}
            lines.append(
                f"{head} engine first {r['engine_first_s']} s, rerun {r['engine_rerun_s']} s"
                f"{pipe} | {r['it_per_s']} it/s | peak VRAM {r['peak_vram_first_gib']} GiB"
                f" | rerun to host: {copies.get('to_host')} copies, "
                f"{copies.get('to_host_bytes')} bytes"
            )
        else:
            lines.append(
                f"{head} first {r['first_s']} s, rerun {r['rerun_s']} s "
                f"({r['vs_baseline_rerun']}x baseline) | {r['it_per_s']} it/s "
                f"(baseline {r['baseline_it_per_s']}) | peak VRAM {r['peak_vram_gib']} GiB "
                f"| max diff vs off {r['max_diff_vs_off']}"
            )
    return lines


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


class Report:
    """Rows as they come: printed at once and the whole JSON rewritten each time."""

    def __init__(self, path: Path | None, meta: dict[str, Any]) -> None:
        self.path, self.meta, self.rows = path, meta, []
        self.running: str | None = None

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        print(json.dumps(row), flush=True)
        self.write()

    def write(self) -> None:
        if self.path is None:
            return
        doc = {**self.meta, "running": self.running, "rows": self.rows}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2))
        tmp.replace(self.path)


def json_path(given: Path | None) -> Path:
    if given is not None:
        return given
    out = os.environ.get("OUT")
    return Path(out) / "gpu.json" if out else ROOT / "bench" / "out" / "gpu.json"


def start_watchdog(report: Report, seconds: float) -> threading.Timer:
    """Stop the process ``seconds`` from now, whatever runs, keeping the rows so far."""

    def stop() -> None:
        report.meta["stopped"] = f"budget exceeded while running {report.running}"
        report.write()
        print(report.meta["stopped"], flush=True)
        os._exit(3)

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    return timer


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget", type=float, default=420, help="seconds for all rows")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--only", choices=[c.label for c in CASES])
    p.add_argument("--rows", help="comma-separated: baseline, sdpa, sdpa:flash, compile, ...")
    p.add_argument("--json", type=Path, help="where the rows go (default $OUT/gpu.json)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    p.add_argument("--smoke", action="store_true", help="the rows on the CPU, tiny model")
    args = p.parse_args(argv)
    args.kinds = [k.strip() for k in args.rows.split(",") if k.strip()] if args.rows else None
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import bench.pipeline as bp

    builders = {name for name in dir(bp) if name.startswith("build_")}
    todo, notes = plan(args.only, builders, args.kinds, args.smoke)
    for note in notes:
        print(note)
    if args.dry_run:
        for case, row in todo:
            s = estimate(case, row, False, None)
            print(f"would run {case.label} {row} ({case.size}x{case.size}, fp16): ~{s:.0f} s")
        return 0
    device = "cuda" if cuda_available() else "cpu"
    if device == "cpu" and not args.smoke:
        print(SKIPPED)
        return 0
    from bench.gpu_run import run_rows  # torch and the engine: only when rows run

    report = Report(json_path(args.json), {"device": device, "budget_s": args.budget})
    start_watchdog(report, args.budget + GRACE)
    run_rows(todo, args, device, Budget(args.budget), report)
    print("\n".join(["", *summary(report.rows)]))
    print(f"done: {len(report.rows)} rows in {report.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
