"""The torch side of the model store (graph/models.py): how many bytes a module holds,
which device it counts against, that device's default budget, and placing a module
into the store (room made first, so the old model leaves before the new one arrives)."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Hashable
from typing import Any

import torch

from graph.models import ComponentRef, ModelStore


def _glibc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _glibc()
GPU_RESERVE = 1024**3  # left free on an accelerator for activations, at least
GPU_RESERVE_SHARE = 0.1  # ... or this share of its memory when larger


def module_nbytes(module: Any) -> int:
    """Bytes of a module's parameters and buffers (each storage counted once)."""
    if isinstance(module, ComponentRef):
        return 0  # held by the store, which accounts for it
    seen: set[tuple[str, int]] = set()
    total = 0
    for t in [*module.parameters(), *module.buffers()]:
        ident = (str(t.device), t.untyped_storage().data_ptr())
        if ident[1] and ident in seen:
            continue
        seen.add(ident)
        total += t.numel() * t.element_size()
    return total


def cast_nbytes(module: Any, dtype: torch.dtype) -> int:
    """Bytes the module will hold once its floating tensors are cast to ``dtype``."""
    size = torch.tensor([], dtype=dtype).element_size()
    return sum(
        t.numel() * (size if t.is_floating_point() else t.element_size())
        for t in [*module.parameters(), *module.buffers()]
    )


def device_name(device: torch.device) -> str:
    """``cpu``, ``mps`` or ``cuda:N`` (an index-less cuda means the current device)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index}"
    return device.type if device.index is None else f"{device.type}:{device.index}"


def machine_budget(device: torch.device) -> int | None:
    """Default budget of an accelerator: its free memory now minus a reserve."""
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return max(0, free - max(GPU_RESERVE, int(total * GPU_RESERVE_SHARE)))
    if device.type == "mps":
        recommended = getattr(getattr(torch, "mps", None), "recommended_max_memory", None)
        return int(recommended() * 0.75) if callable(recommended) else None
    return None


def _return_freed_memory() -> None:
    """Give freed memory back: glibc keeps freed heap pages of medium-sized tensors for
    reuse (the process would not shrink after an eviction); accelerators keep a cache."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and torch.backends.mps.is_available():
        mps.empty_cache()


def memory_format(device: torch.device, dtype: torch.dtype) -> torch.memory_format | None:
    """channels_last where it measured faster: bf16 convolutions on the CPU (oneDNN's bf16
    kernels work on NHWC; on an AVX512-BF16 EPYC the SD-1.5 U-Net call went 3.9 -> 3.6 s
    and the 512x512 VAE decode 5.6 -> 4.0 s). Elsewhere None (the layout stays), so fp32
    stays bit-equal to diffusers' pipelines."""
    if device.type == "cpu" and dtype == torch.bfloat16:
        return torch.channels_last
    return None


def move(module: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """Move, cast and lay out (see `memory_format`). diffusers' ``ModelMixin.to`` warns on
    every dtype cast even when no module must stay in fp32; plain ``nn.Module.to`` is used
    when none must."""
    if getattr(module, "_keep_in_fp32_modules", None):
        module = module.to(device=device, dtype=dtype)
    else:
        module = torch.nn.Module.to(module, device=device, dtype=dtype)
    layout = memory_format(device, dtype)
    if layout is not None:
        _relayout(module, layout)
    return module


def _relayout(module: Any, layout: torch.memory_format) -> None:
    """4-d weights into ``layout`` one at a time, each old copy handed back to the system
    before the next is made (all at once, glibc's heap kept the old ones: load peak 1.5x
    the weights instead of 1.07x)."""
    for param in module.parameters():
        if param.dim() == 4 and not param.is_contiguous(memory_format=layout):
            param.data = param.data.contiguous(memory_format=layout)
            if _LIBC is not None:
                _LIBC.malloc_trim(0)


def place(
    store: ModelStore,
    key: Hashable,
    module: Any,
    device: torch.device,
    dtype: torch.dtype,
    label: str,
    **info: Any,
) -> Any:
    """Move ``module`` to ``device`` in ``dtype`` (eval, no grad) and hold it in the store."""
    name = device_name(device)
    store.add_release_hook(_return_freed_memory)
    if device.type != "cpu":
        store.set_default_budget(name, machine_budget(device))
    store.make_room(name, cast_nbytes(module, dtype))
    with torch.no_grad():
        module = move(module, device, dtype).eval().requires_grad_(False)
    dtype_name = str(dtype).removeprefix("torch.")
    return store.put(key, module, module_nbytes(module), name, label, dtype=dtype_name, **info)
