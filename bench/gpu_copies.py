"""Counting tensor copies between devices while a block runs (bench/gpu.py).

`CopyCounter` is a TorchDispatchMode: it sees every aten op the block dispatches on the
calling thread and counts the ones that move data between devices, by (source device
type, destination device type). On a CUDA machine its ``("cuda", "cpu")`` count is the
device->host copies torch was asked for (``.cpu()``, ``.to("cpu")``, ``copy_`` into a
host tensor, and ``.item()``, which reads one value back); the CUDA profiler's
"Memcpy DtoH" events (`count_memcpy`) also catch the copies kernels make on their own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

HOST = "cpu"
SCALAR_READS = ("_local_scalar_dense",)  # .item(): one value back to the host


def _device_type(value: Any) -> str | None:
    if isinstance(value, torch.Tensor):
        return value.device.type
    if isinstance(value, torch.device):
        return value.type
    if isinstance(value, str):
        return torch.device(value).type
    return None


def copy_direction(op_name: str, args: tuple, kwargs: dict[str, Any]) -> tuple[str, str] | None:
    """(source, destination) device types of a copying aten op, or None for other ops.

    ``op_name`` is the overload packet's name (``_to_copy``, ``copy_``, ...)."""
    if op_name in SCALAR_READS and args and isinstance(args[0], torch.Tensor):
        return (args[0].device.type, HOST)
    if op_name == "_to_copy" and args and isinstance(args[0], torch.Tensor):
        dst = _device_type(kwargs.get("device"))
        return (args[0].device.type, dst or args[0].device.type)
    if op_name in ("copy_", "_copy_from", "_copy_from_and_resize") and len(args) >= 2:
        a, b = args[0], args[1]
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            # copy_(self=dst, src); _copy_from(self=src, dst)
            src, dst = (b, a) if op_name == "copy_" else (a, b)
            return (src.device.type, dst.device.type)
    return None


class CopyCounter(TorchDispatchMode):
    """Counts copies by (source, destination) device type while active."""

    def __init__(self) -> None:
        super().__init__()
        self.by_direction: Counter[tuple[str, str]] = Counter()
        self.bytes: Counter[tuple[str, str]] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None):
        kwargs = kwargs or {}
        direction = copy_direction(func.overloadpacket.__name__, args, kwargs)
        if direction is not None:
            self.by_direction[direction] += 1
            src = args[0] if func.overloadpacket.__name__ != "copy_" else args[1]
            self.bytes[direction] += int(src.numel() * src.element_size())
        return func(*args, **kwargs)

    def to_host(self, device_type: str = "cuda") -> int:
        """Copies from ``device_type`` to the host."""
        return self.by_direction[(device_type, HOST)]

    def from_host(self, device_type: str = "cuda") -> int:
        return self.by_direction[(HOST, device_type)]

    def bytes_to_host(self, device_type: str = "cuda") -> int:
        return self.bytes[(device_type, HOST)]

    def summary(self) -> dict[str, int]:
        return {f"{s}->{d}": n for (s, d), n in sorted(self.by_direction.items())}


def count_memcpy(event_names: Iterable[str], kind: str = "DtoH") -> int:
    """Copies of one kind among CUDA profiler event names ("Memcpy DtoH (Device ->
    Pageable)", "Memcpy HtoD ..."; ``kind`` DtoH or HtoD)."""
    return sum(1 for name in event_names if f"Memcpy {kind}" in name)
