"""The tables bench/pipeline.py prints, and the PSNR it reports between dtypes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def psnr(a: Path, b: Path) -> float:
    """PSNR (dB) of two 8-bit images of one size."""
    import numpy as np
    from PIL import Image

    x = np.asarray(Image.open(a).convert("RGB"), dtype=np.float64)
    y = np.asarray(Image.open(b).convert("RGB"), dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(
        "| model | size | steps | device/dtype | engine first | pipeline first | ratio "
        "| engine seed-only | pipeline seed-only | ratio | PSNR vs first dtype |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        pipe_first = f"{r['pipeline_first']:.3f} s" if "pipeline_first" in r else "-"
        pipe_rerun = f"{r['pipeline_rerun']:.3f} s" if "pipeline_rerun" in r else "-"
        print(
            f"| {r['model']} | {r['size']} | {r['steps']} | {r['device']}/{r['dtype']} "
            f"| {r['engine_first']:.3f} s | {pipe_first} | {r.get('first_ratio', '-')}x "
            f"| {r['engine_rerun']:.3f} s | {pipe_rerun} | {r.get('rerun_ratio', '-')}x "
            f"| {r.get('psnr_db', '-')} |"
        )
    print()
    print(
        "| model | dtype | weights | engine RSS before load | engine load peak | engine steady "
        "| load peak - before, / weights | pipeline load peak | engine job peak "
        "| pipeline job peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        grown = r["engine_load_peak_gib"] - r["engine_load_base_gib"]
        print(
            f"| {r['model']} | {r['dtype']} | {r['engine_weights_gib']:.2f} GiB "
            f"| {r['engine_load_base_gib']:.2f} GiB | {r['engine_load_peak_gib']:.2f} GiB "
            f"| {r['engine_steady_gib']:.2f} GiB | {grown / r['engine_weights_gib']:.2f}x "
            f"| {_gib(r.get('pipeline_load_peak_gib'))} | {_gib(r.get('engine_job_peak_gib'))} "
            f"| {_gib(r.get('pipeline_job_peak_gib'))} |"
        )


def _gib(value: float | None) -> str:
    return f"{value:.2f} GiB" if value else "-"
