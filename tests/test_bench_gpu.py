"""bench/gpu.sh: what it does on a machine without CUDA, and its planning logic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import gpu  # noqa: E402


def test_plan_skips_models_this_branch_cannot_build() -> None:
    cases, notes = gpu.plan(None, {"build_full_checkpoint"})
    assert [c.label for c in cases] == ["sd15"] and cases[0].size == 512
    assert notes == ["sdxl: skipped (bench/pipeline.py has no build_sdxl_checkpoint)"]
    both, none = gpu.plan(None, {"build_full_checkpoint", "build_sdxl_checkpoint"})
    assert [(c.label, c.size) for c in both] == [("sd15", 512), ("sdxl", 1024)] and not none
    only, _ = gpu.plan("sdxl", {"build_full_checkpoint", "build_sdxl_checkpoint"})
    assert [c.label for c in only] == ["sdxl"]


def test_device_to_host_copies_are_counted() -> None:
    names = ["aten::mm", "Memcpy DtoH (Device -> Pageable)", "Memcpy HtoD", "cudaMemcpyAsync"]
    assert gpu.count_device_to_host(names) == 1


@pytest.mark.skipif(gpu.cuda_available(), reason="this machine has CUDA")
def test_the_script_says_skipped_without_cuda() -> None:
    out = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu.sh")], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == gpu.SKIPPED
