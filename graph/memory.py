"""Memory sizes, the model-memory flags, and recognising out-of-memory errors.

No torch here: torch's OOM errors are recognised by type name and message, so the engine
can release memory and fail only the job whatever device ran out."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

ACCELERATORS = ("cuda", "mps", "xpu")
RAM_SHARE = 0.75  # default RAM budget: this share of the machine's (or cgroup's) memory
_UNITS = {"": 1024**3, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(?:([KMGT])(?:I?B)?|(B))?", re.IGNORECASE)


# -- sizes and flags --------------------------------------------------------------------
def physical_memory() -> int | None:
    """The machine's RAM, or the cgroup's limit when lower (containers)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return int(total)


def default_ram_budget() -> int:
    total = physical_memory()
    return int(total * RAM_SHARE) if total else 8 * 1024**3


def parse_size(text: str) -> int:
    """Bytes from ``"8"`` (GiB), ``"512M"``, ``"1.5G"``, ``"2GiB"``, ``"100000B"``."""
    m = _SIZE.fullmatch(str(text).strip())
    if m is None:
        raise ValueError(f"{text!r}: expected a size like 8 (GiB), 512M, 1.5G or 100000B")
    unit = (m.group(2) or m.group(3) or "").upper()
    return int(float(m.group(1)) * _UNITS[unit])


def memory_budgets(model_memory: str | None, gpu_memory: list[str]) -> dict[str, int]:
    """Budgets from the command line: ``--model-memory SIZE`` (RAM) and repeatable
    ``--gpu-memory SIZE`` (every accelerator) or ``--gpu-memory DEVICE=SIZE``."""
    budgets: dict[str, int] = {}
    if model_memory:
        budgets["cpu"] = parse_size(model_memory)
    for item in gpu_memory:
        device, sep, size = item.rpartition("=")
        if sep and not device:
            raise ValueError(f"{item!r}: expected SIZE or DEVICE=SIZE (e.g. cuda:1=10G)")
        for name in [device] if sep else ACCELERATORS:
            budgets[name] = parse_size(size)
    return budgets


def add_memory_options(parser: Any) -> None:
    """The model-memory flags of run.py and server.py."""
    parser.add_argument(
        "--model-memory",
        metavar="SIZE",
        help="RAM for loaded models, e.g. 12G (default: 75%% of the machine's memory)",
    )
    parser.add_argument(
        "--gpu-memory",
        action="append",
        default=[],
        metavar="[DEVICE=]SIZE",
        help="memory for models on each accelerator, or on one (cuda:1=10G); repeatable "
        "(default: the device's free memory at first use minus a reserve)",
    )


# -- out of memory ----------------------------------------------------------------------
OOM_TYPES = frozenset({"MemoryError", "OutOfMemoryError"})  # Python; torch (cuda and generic)
OOM_MESSAGES = (
    "can't allocate memory",  # torch CPU: "DefaultCPUAllocator: can't allocate memory: ..."
    "out of memory",  # CUDA/MPS errors raised as plain RuntimeError
)
OUT_OF_MEMORY = {
    "code": "out_of_memory",
    "hint": "out of memory: cached outputs and the models this job did not use were "
    "released; run it again, or lower the size or batch, or set --model-memory / "
    "--gpu-memory lower to keep fewer models loaded",
}


def is_out_of_memory(exc: BaseException) -> bool:
    """An allocation failure on any device: Python's MemoryError, torch's
    OutOfMemoryError, or a RuntimeError saying so (torch's CPU allocator); also when a
    node wrapped one (``raise ... from``)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, MemoryError) or type(current).__name__ in OOM_TYPES:
            return True
        if isinstance(current, RuntimeError) and any(
            m in str(current).lower() for m in OOM_MESSAGES
        ):
            return True
        current, seen = current.__cause__, seen + 1
    return False
