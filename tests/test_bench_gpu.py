"""bench/gpu.sh: what it does without CUDA, and its CPU-side logic (plan, budget, rows,
copy counter); ``--smoke`` runs the real rows on the CPU with the tiny built-in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import gpu  # noqa: E402
from bench.gpu_copies import CopyCounter, copy_direction, count_memcpy  # noqa: E402
from bench.gpu_measure import Run, with_compile, workflow_doc  # noqa: E402

BOTH = {"build_full_checkpoint", "build_sdxl_checkpoint"}


def test_plan_puts_both_baselines_before_the_compile_rows_and_filters() -> None:
    todo, notes = gpu.plan(None, BOTH)
    rows = [(c.label, r) for c, r in todo]
    assert rows[0] == ("sd15", "baseline") and not notes
    assert rows.index(("sdxl", "baseline")) < rows.index(("sd15", "compile:default"))
    assert [r for r in rows if r[1] == "baseline"] == [("sd15", "baseline"), ("sdxl", "baseline")]
    assert {c.size for c, _ in todo} == {512, 1024}
    sdpa, _ = gpu.plan("sdxl", BOTH, ["baseline", "sdpa"])
    assert [(c.label, r) for c, r in sdpa] == [
        ("sdxl", "baseline"),
        ("sdxl", "sdpa:flash"),
        ("sdxl", "sdpa:efficient"),
        ("sdxl", "sdpa:math"),
        ("sdxl", "sdpa:cudnn"),
    ]
    one, notes = gpu.plan(None, {"build_full_checkpoint"}, ["compile:default"])
    assert [(c.label, r) for c, r in one] == [("sd15", "compile:default")]
    assert notes == ["sdxl: skipped (bench/pipeline.py has no build_sdxl_checkpoint)"]
    smoke, _ = gpu.plan(None, set(), ["baseline", "channels_last"], smoke=True)
    assert [(c.name, r) for c, r in smoke] == [
        ("builtin/tiny-random", "baseline"),
        ("builtin/tiny-random", "channels_last"),
    ]


def test_budget_and_estimates() -> None:
    now = [100.0]
    budget = gpu.Budget(60, clock=lambda: now[0])
    assert budget.fits(60) and not budget.fits(61)
    now[0] = 130.0
    assert budget.left() == 30 and not budget.fits(31)
    sd15 = gpu.SD15
    # building the file counts only when it is missing; measured image time replaces the guess
    assert gpu.estimate(sd15, "baseline", False, None) == sd15.baseline_s + sd15.build_s
    assert gpu.estimate(sd15, "baseline", True, None) == sd15.baseline_s
    assert gpu.estimate(sd15, "sdpa:math", True, 2.0) == 3 * 2.0 + 5.0
    assert gpu.estimate(sd15, "compile:default", True, 2.0) == 6.0 + sd15.compile_s
    assert gpu.estimate(sd15, "compile:reduce-overhead", True, 2.0) > gpu.estimate(
        sd15, "compile:default", True, 2.0
    )


def test_rows_are_built_from_the_runs() -> None:
    first = Run(10.0, 4.0, 3.5, None, ["checkpoint", "sample"])
    rerun = Run(2.0, 1.6, 2.25, None, ["decode", "sample", "save"])
    pipe = {"first": 12.5, "rerun": 2.5, "peak_gib": 3.0}
    base = gpu.baseline_row(gpu.SD15, 20, {"first": first, "rerun": rerun}, pipe, {"to_host": 1})
    assert base["first_ratio"] == 0.8 and base["rerun_ratio"] == 0.8
    assert base["it_per_s"] == 12.5 and base["peak_vram_rerun_gib"] == 2.25
    assert base["rerun_copies"] == {"to_host": 1} and base["size"] == 512
    assert "pipeline_first_s" not in gpu.baseline_row(
        gpu.SD15, 20, {"first": first, "rerun": rerun}, None, None
    )
    measured = {"first": Run(90.0, 88.0, 3.0, None), "rerun": Run(1.0, 0.8, 2.5, None)}
    measured["max_diff"], measured["psnr_db"] = 1, 48.1
    row = gpu.option_row(gpu.SD15, "compile:default", 20, measured, base)
    assert row["vs_baseline_rerun"] == 0.5 and row["it_per_s"] == 25.0
    assert row["baseline_it_per_s"] == 12.5 and row["max_diff_vs_off"] == 1
    lines = gpu.summary([base, row, {"model": "sdxl", "row": "baseline", "skipped": "budget"}])
    assert "engine/pipeline 0.8x / 0.8x" in lines[0] and "to host: 1 copies" in lines[0]
    assert "(0.5x baseline)" in lines[1] and lines[2].endswith("skipped: budget")


def test_the_compile_rows_put_compile_model_between_checkpoint_and_sampler() -> None:
    doc = workflow_doc("x.safetensors", True, 1024, 20, 1, "cuda", "fp16")
    assert doc["nodes"]["latent"]["inputs"]["width"] == 1024
    compiled = with_compile(doc, "reduce-overhead")
    assert compiled["nodes"]["compile"]["inputs"]["mode"] == "reduce-overhead"
    assert compiled["nodes"]["sample"]["inputs"]["model"] == {"node": "compile", "output": "model"}
    assert doc["nodes"]["sample"]["inputs"]["model"]["node"] == "checkpoint"  # a copy


def test_the_copy_counter_counts_copies_by_direction_on_cpu_tensors() -> None:
    x = torch.ones(4)
    with CopyCounter() as copies:
        x.to(torch.float64)  # a copy on the host
        x.sum().item()  # reading a value back
        torch.empty(4).copy_(x)
        x.to("meta")  # another device
        x + 1  # not a copy
    assert copies.by_direction == {("cpu", "cpu"): 3, ("cpu", "meta"): 1}
    assert copies.to_host("cpu") == 3 and copies.from_host("meta") == 1
    assert copies.bytes_to_host("cpu") == 16 + 4 + 16
    # the classification a CUDA machine relies on, without a CUDA tensor
    cuda = torch.device("cuda")
    assert copy_direction("_to_copy", (x,), {"device": cuda}) == ("cpu", "cuda")
    assert copy_direction("_copy_from", (x, torch.empty(4, device="meta")), {}) == (
        "cpu",
        "meta",
    )
    assert copy_direction("add", (x, x), {}) is None


def test_profiler_memcpy_events_are_counted() -> None:
    names = ["aten::mm", "Memcpy DtoH (Device -> Pageable)", "Memcpy HtoD (Pageable -> Device)"]
    assert count_memcpy(names, "DtoH") == 1 and count_memcpy(names, "HtoD") == 1


def test_arguments_and_the_json_path(monkeypatch, tmp_path: Path) -> None:
    args = gpu.parse_args(["--budget", "300", "--rows", "baseline, sdpa", "--only", "sd15"])
    assert (args.budget, args.kinds, args.only, args.steps) == (
        300,
        ["baseline", "sdpa"],
        "sd15",
        20,
    )
    monkeypatch.setenv("OUT", str(tmp_path))
    assert gpu.json_path(None) == tmp_path / "gpu.json"
    monkeypatch.delenv("OUT")
    assert gpu.json_path(None) == ROOT / "bench" / "out" / "gpu.json"


def _script(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = ["bash", str(ROOT / "bench" / "gpu.sh"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.mark.skipif(gpu.cuda_available(), reason="this machine has CUDA")
def test_the_script_says_skipped_without_cuda() -> None:
    out = _script()
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == gpu.SKIPPED
    plan = _script("--dry-run", "--only", "sdxl").stdout
    assert "would run sdxl baseline (1024x1024, fp16)" in plan


def test_rows_that_do_not_fit_the_budget_are_skipped_and_reported(tmp_path: Path) -> None:
    out = _script("--smoke", "--budget", "1", "--json", str(tmp_path / "g.json"))
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "g.json").read_text())
    reasons = {r["row"]: r["skipped"] for r in doc["rows"]}
    assert reasons["baseline"].startswith("budget: needs ~30 s")
    assert reasons["sdpa:math"] == "needs this model's baseline row"
    assert reasons["sdpa:flash"] == "needs CUDA" and doc["running"] is None


@pytest.mark.slow
@pytest.mark.skipif(gpu.cuda_available(), reason="the smoke run is the CPU path")
def test_smoke_run_measures_baseline_and_an_option_on_the_cpu(tmp_path: Path) -> None:
    rows = "baseline,channels_last"
    out = _script("--smoke", "--rows", rows, "--steps", "1", "--json", str(tmp_path / "g.json"))
    assert out.returncode == 0, out.stderr
    base, option = json.loads((tmp_path / "g.json").read_text())["rows"]
    assert base["rerun_executed"] == ["decode", "sample", "save"]
    assert base["pipeline_rerun_s"] > 0 and base["rerun_ratio"] > 0
    assert base["rerun_copies"]["executed"] == ["decode", "sample", "save"]
    assert option["row"] == "channels_last" and option["rerun_s"] > 0
    assert option["max_diff_vs_off"] <= 2  # same picture, other memory format
