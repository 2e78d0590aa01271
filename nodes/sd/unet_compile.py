"""``torch.compile`` of a model's U-Net, opt-in through the CompileModel node.

Compiling is lazy: torch.compile wraps the module at once and compiles on the first
call (the first Sample pays it), keyed by torch on input shapes, so a second image of
the same size reuses the compiled code. The wrapper must therefore outlive one job: it
is held in the engine's model store next to its U-Net, keyed by the U-Net's own store
key, the mode and the backend. A seed-only rerun finds it there (or gets the cached
handle that points at it) and does not compile again; another mode is another entry.

The wrapper shares the U-Net's weights (0 bytes of its own in the store) but keeps the
module alive, so it must never outlive its U-Net's store entry: reading it touches
(and pins, inside a job) the U-Net first, a wrapper whose U-Net was evicted and loaded
again is compiled anew, and after any eviction the wrappers of U-Nets no longer held
are dropped (`drop_orphans`, a store release hook).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace
from typing import Any

import torch

from graph.models import ComponentRef, ModelStore, resolve
from nodes.sd.handles import ModelHandle
from nodes.sd.model_store import device_name

COMPILE_TAG = "sd.compiled"
# torch.compile's modes; "reduce-overhead" adds CUDA graphs on CUDA (fixed shapes)
MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# inductor: generated kernels (C++ on the CPU, Triton on CUDA); cudagraphs: CUDA graphs
# of the eager kernels only (CUDA models); aot_eager: traced like the others but run with
# torch's own kernels (no speed-up; checks that a model compiles, in seconds)
BACKENDS = ("inductor", "cudagraphs", "aot_eager")


class CompileError(RuntimeError):
    """The model cannot be compiled as asked on this machine."""


def cpp_compiler() -> str | None:
    """The C++ compiler inductor would use for CPU kernels, or None when there is none."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        return str(get_cpp_compiler())
    except Exception:  # noqa: BLE001 - torch raises its own types when none is found
        return None


def check_can_compile(device: torch.device, backend: str) -> None:
    """Refuse, with what to do instead, a compile that would fail at the first call."""
    if backend not in BACKENDS:
        raise CompileError(f"unknown backend {backend!r} (one of {', '.join(BACKENDS)})")
    if backend == "cudagraphs" and device.type != "cuda":
        raise CompileError(
            f"backend 'cudagraphs' needs a model on a CUDA device (this one is on "
            f"{device.type}); use backend 'inductor'"
        )
    if backend == "inductor" and device.type == "cpu" and cpp_compiler() is None:
        raise CompileError(
            "torch.compile's inductor backend needs a C++ compiler for CPU models and none "
            "was found (g++); install one (e.g. apt-get install g++) or remove this node"
        )


def _compile(unet: Any, mode: str, backend: str) -> Any:
    if backend == "inductor":
        return torch.compile(unet, backend=backend, mode=mode)
    return torch.compile(unet, backend=backend)  # the modes are inductor's


def base_module(module: Any) -> Any:
    """The module a compiled wrapper (torch's OptimizedModule) runs; else ``module``."""
    inner = module.__dict__.get("_modules", {}).get("_orig_mod") if module is not None else None
    return module if inner is None else inner


def _is_compiled_key(key: Hashable) -> bool:
    return isinstance(key, tuple) and len(key) == 4 and key[0] == COMPILE_TAG


def drop_orphans(store: ModelStore) -> None:
    """Forget compiled wrappers whose U-Net the store no longer holds (they would keep
    an evicted U-Net's memory alive)."""
    store.drop(lambda key: _is_compiled_key(key) and key[1] not in store)


class _DropOrphans:
    """`drop_orphans` as a store release hook, equal per store (added once)."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store

    def __call__(self) -> None:
        drop_orphans(self.store)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _DropOrphans) and other.store is self.store

    def __hash__(self) -> int:
        return id(self.store)


class CompiledRef(ComponentRef):
    """A store reference to a compiled U-Net that reads its U-Net first: the U-Net stays
    pinned while a job uses the wrapper, and a wrapper around an older copy of the
    U-Net (evicted, loaded again) is replaced."""

    __slots__ = ("base",)

    def __init__(self, store: ModelStore, key: Hashable, base: ComponentRef, loader: Any):
        super().__init__(store, key, loader)
        self.base = base

    def get(self) -> Any:
        unet = self.base.get()
        wrapper = super().get()
        if base_module(wrapper) is not unet:
            self.store.drop(lambda key: key == self.key)
            wrapper = super().get()
        return wrapper


def compiled_model(model: ModelHandle, mode: str, backend: str) -> ModelHandle:
    """A handle like ``model`` whose U-Net runs through torch.compile. Its LoRAs, and the
    identity other caches key on, are kept: compiling does not change the function."""
    if mode not in MODES:
        raise CompileError(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
    if mode != "default" and backend != "inductor":
        raise CompileError(f"mode {mode!r} is the inductor backend's; use mode 'default'")
    check_can_compile(model.device, backend)
    base = model.unet_ref
    if isinstance(base, CompiledRef):  # compiling a compiled model: the new settings win
        base = base.base
    if not isinstance(base, ComponentRef):  # a handle around a module (tests, scripts)
        return replace(model, unet_ref=_compile(base_module(resolve(base)), mode, backend))
    store = base.store
    key = (COMPILE_TAG, base.key, mode, backend)

    def loader() -> None:
        unet = base.get()
        store.put(
            key,
            _compile(unet, mode, backend),
            0,  # shares the U-Net's weights
            device_name(model.device),
            f"{model.identity.split('|')[0]}:unet compiled ({mode}, {backend})",
            kind="compiled-unet",
            mode=mode,
            backend=backend,
        )

    store.add_release_hook(_DropOrphans(store))
    ref = CompiledRef(store, key, base, loader)
    ref.get()  # in the store now (compiling itself waits for the first call)
    return replace(model, unet_ref=ref)


def compile_count() -> int:
    """Graphs torch.compile has compiled in this process (dynamo's own counter): a rerun
    that reuses the compiled code leaves it unchanged."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])
