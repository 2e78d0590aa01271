"""Process and per-job settings for running the SD nodes.

`configure_process` runs before torch loads:
- Nothing is ever fetched from a model hub (HF_HUB_OFFLINE).
- OpenMP threads wait passively: with the default busy-wait, a second torch thread
  on a 2-core machine that is also doing other work made a 64x64 txt2img run take
  13 s instead of 0.3 s (measured on the development machine).

`job_threads` is the per-job thread policy a worker wraps around each job: tiny latents
run on one thread (a second one only costs synchronisation: the 64x64 demo runs about
2x faster on 1 thread than on 2), large ones on every core the process may use.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# width * height * batch (image pixels) up to which one thread is faster; see the
# README's Performance section for the measurements behind it
SINGLE_THREAD_MAX_PIXELS = 2 * 64 * 64
CPUINFO = Path("/proc/cpuinfo")
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def configure_process() -> None:
    """Set environment defaults (the user's own settings win)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The x86 feature flags the kernel reports ({} where there is no /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 in hardware (AVX512-BF16 or AMX), read from the
    kernel's flags or torch's own CPU probe; emulated bf16 is slower than fp32."""
    if cpu_flags() & NATIVE_BF16_FLAGS:
        return True
    import torch

    probe = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(probe, name, lambda: False)()) for name in checks)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_for(pixels: int, cores: int | None = None) -> int:
    """The thread count for a job whose largest image has ``pixels`` (w * h * batch)."""
    cores = cores or usable_cores()
    return 1 if pixels <= SINGLE_THREAD_MAX_PIXELS else cores


def workflow_pixels(workflow: dict[str, Any]) -> int:
    """The largest width * height * batch_size among the workflow's literal inputs (0 when
    none names a size: the job then counts as large)."""
    largest = 0
    for node in (workflow.get("nodes") or {}).values():
        inputs = node.get("inputs") or {} if isinstance(node, dict) else {}
        w, h = inputs.get("width"), inputs.get("height")
        if isinstance(w, int) and isinstance(h, int):
            batch = inputs.get("batch_size", 1)
            largest = max(largest, w * h * (batch if isinstance(batch, int) else 1))
    return largest


def job_thread_count(workflow: dict[str, Any], override: int | None = None) -> int:
    """``override`` (--threads) when given, else the policy for the workflow's size."""
    if override:
        return override
    pixels = workflow_pixels(workflow)
    return threads_for(pixels) if pixels else usable_cores()


@contextlib.contextmanager
def job_threads(workflow: dict[str, Any], override: int | None = None) -> Iterator[int]:
    """Run one job with the policy's torch thread count, restored afterwards. OpenMP keeps
    the count per calling thread, so a worker thread sets its own jobs' count. Nothing
    happens in a process whose nodes never imported torch."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield 0
        return
    n = job_thread_count(workflow, override)
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
