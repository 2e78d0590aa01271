"""Applying LoRAs without changing the shared model.

The U-Net and text encoders in the model store are shared by every branch, job and
cached output, so a LoRA never changes them for good. A handle carries its LoRAs as
`LoraPatch` values; the functions that run a module (sampling, inversion, text encoding)
are wrapped with `applies_patches`, which for the duration of that one call swaps each
patched layer's weight tensor for ``W + sum(strength * scale * up @ down)`` and puts the
original tensor object back afterwards (also on errors and interrupts). Restoring swaps
pointers, so the base weights come back bit for bit; nothing is subtracted.

Cost: the patched layers' merged copies exist during the call (extra memory = the size
of the layers a LoRA touches, freed afterwards), and computing them takes one small
matmul per layer per call (`bench/lora.py` measures both). A lock per module makes a
patched call and any other call on the same module (patched or not) take turns.

The delta is computed as PEFT merges it (``fuse_lora``): LoRA weights in the layer's
dtype, float32 on a CPU for half types, ``(up @ down) * scale`` (1x1 convolutions as
matmuls, larger kernels as a convolution of the two), so fused diffusers and this give
the same weights.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.nn.functional as F  # noqa: N812

from graph.models import ComponentRef, resolve
from nodes.sd.lora_keys import LayerLora, ParsedLora
from nodes.sd.model_store import device_name
from nodes.sd.unet_compile import base_module

F_ = TypeVar("F_", bound=Callable[..., Any])
_locks: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


@dataclass(frozen=True)
class LoraPatch:
    """One LoRA at one strength on one component of a handle. ``lora`` is the parsed
    file (a `ParsedLora`) or a model-store reference to it."""

    lora: Any
    strength: float
    component: str  # "unet" | "text_encoder" | "text_encoder_2"
    name: str = ""

    def layers(self) -> dict[str, LayerLora]:
        parsed: ParsedLora = resolve(self.lora)
        return parsed.layers.get(self.component, {})


def module_lock(module: Any) -> threading.RLock:
    with _locks_guard:
        lock = _locks.get(module)
        if lock is None:
            lock = _locks[module] = threading.RLock()
        return lock


def layer_delta(layer: LayerLora, weight: torch.Tensor, strength: float) -> torch.Tensor:
    """``(up @ down) * scale * strength`` shaped like ``weight``, in its dtype (PEFT's
    get_delta_weight with fuse_lora's scale folded in the same order)."""
    dtype = weight.dtype
    down = layer.down.to(weight.device, dtype)
    up = layer.up.to(weight.device, dtype)
    if weight.device.type == "cpu" and dtype in (torch.float16, torch.bfloat16):
        down, up = down.float(), up.float()
    scale = layer.scale * strength
    if weight.ndim == 4 and weight.shape[2:] != (1, 1):
        delta = F.conv2d(down.transpose(0, 1), up).transpose(0, 1) * scale
    else:
        flat_up = up.reshape(up.shape[0], -1)
        flat_down = down.reshape(down.shape[0], -1)
        delta = (flat_up @ flat_down) * scale
    if delta.numel() != weight.numel():
        raise ValueError(
            f"a LoRA layer of shape {tuple(delta.shape)} does not fit a weight of shape "
            f"{tuple(weight.shape)}: the LoRA was made for another model"
        )
    return delta.reshape(weight.shape).to(dtype)


def merged_weights(module: Any, patches: tuple[LoraPatch, ...]) -> dict[str, torch.Tensor]:
    """Layer name -> ``W + delta_1 + delta_2 ...`` for the layers ``patches`` touch (the
    caller holds the module's lock, so W is the base weight)."""
    merged: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for patch in patches:
            if patch.strength == 0:
                continue
            for name, layer in patch.layers().items():
                weight = module.get_submodule(name).weight
                delta = layer_delta(layer, weight, patch.strength)
                if name in merged:
                    merged[name] += delta
                else:
                    merged[name] = weight.detach() + delta
    return merged


@contextmanager
def swapped(module: Any, merged: dict[str, torch.Tensor]) -> Iterator[Any]:
    """``module`` with the ``merged`` weight tensors in place for the block; the original
    tensor objects go back afterwards, whatever happens."""
    with module_lock(module):
        back: list[tuple[torch.Tensor, torch.Tensor]] = []
        try:
            for name, new in merged.items():
                weight = module.get_submodule(name).weight
                back.append((weight, weight.data))
                weight.data = new
            yield module
        finally:
            for weight, original in reversed(back):
                weight.data = original


@contextmanager
def patched(module: Any, patches: tuple[LoraPatch, ...]) -> Iterator[Any]:
    """``module`` with ``patches`` merged into its weights for the block, then restored."""
    with module_lock(module), swapped(module, merged_weights(module, patches)):
        yield module


COMPONENT_ATTRS = ("unet", "text_encoder", "text_encoder_2")
MERGED_TAG = "sd.lora.merged"


def _merged_for(handle: Any, attr: str, module: Any, mine: tuple[LoraPatch, ...]) -> dict:
    """The merged layers of ``mine`` on ``module``: kept in the model store (budgeted,
    evicted like a model, keyed by the base component and each LoRA with its strength) so
    a rerun with the same LoRAs swaps pointers instead of merging again."""
    active = tuple(p for p in mine if p.strength != 0)
    if not active:
        return {}
    base = getattr(handle, f"{attr}_ref", None)
    refs = [p.lora for p in active]
    if not isinstance(base, ComponentRef) or not all(isinstance(r, ComponentRef) for r in refs):
        return merged_weights(module, active)
    store = base.store
    loras = tuple((r.key, p.strength) for r, p in zip(refs, active, strict=True))
    key = (MERGED_TAG, base.key, loras)

    def loader() -> None:
        merged = merged_weights(module, active)
        nbytes = sum(int(t.nbytes) for t in merged.values())
        device = next(iter(merged.values())).device if merged else torch.device("cpu")
        names = "+".join(f"{p.name}:{p.strength:g}" for p in active)
        store.put(key, merged, nbytes, device_name(device), f"{attr}+{names}", kind="lora-merged")

    return store.acquire(key, loader)  # type: ignore[no-any-return]


@contextmanager
def patched_handle(handle: Any) -> Iterator[Any]:
    """Every module of a Model/Clip handle with that handle's LoRAs applied."""
    patches: tuple[LoraPatch, ...] = getattr(handle, "patches", ())
    with ExitStack() as stack:
        for attr in COMPONENT_ATTRS:
            # a compiled U-Net (CompileModel) runs the module it wraps: patch and lock that
            module = base_module(getattr(handle, attr, None))
            if module is None:
                continue
            stack.enter_context(module_lock(module))  # merge from, and swap into, base weights
            mine = tuple(p for p in patches if p.component == attr)
            stack.enter_context(swapped(module, _merged_for(handle, attr, module, mine)))
        yield handle


def applies_patches(fn: F_) -> F_:
    """Run ``fn(handle, ...)`` with the handle's LoRAs applied to its modules."""

    @functools.wraps(fn)
    def wrapper(handle: Any, *args: Any, **kwargs: Any) -> Any:
        with patched_handle(handle):
            return fn(handle, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
