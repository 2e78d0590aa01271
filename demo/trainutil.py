"""Shared training plumbing: resumable checkpoints, learning-rate schedule, logging."""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import torch

DEFAULT_OUT = Path("data/demo-train")


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """Write then rename, so an interrupted save never leaves a broken checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_if_exists(path: Path) -> dict[str, Any] | None:
    return torch.load(path, map_location="cpu", weights_only=False) if path.exists() else None


def resume(path: Path, model: Any, opt: Any, log: Any, what: str) -> dict[str, Any]:
    """Load a {"model", "opt", "step", ...} checkpoint into model and optimizer when it
    exists; the whole checkpoint for any further parts ({} for a fresh start, step 0)."""
    state = load_if_exists(path)
    if state is None:
        return {}
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    log(f"resumed {what} at step {state['step']}")
    return state


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to 5% of peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def step_generator(seed: int, step: int, salt: int) -> torch.Generator:
    """Per-step RNG: a resumed run draws exactly the noise an uninterrupted one would."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step * 7919 + salt)


class Logger:
    """Prints and appends to a log file with elapsed wall time."""

    def __init__(self, path: Path | None):
        self.path = path
        self.t0 = time.time()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')} +{time.time() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(line + "\n")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB for images in [-1, 1]."""
    mse = ((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2).pow(2).mean().item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


class Ema:
    """Exponential moving average of parameters (with the usual warm-up of the decay)."""

    def __init__(self, modules: list[torch.nn.Module], decay: float):
        self.decay = decay
        self.shadow = [[p.detach().clone() for p in m.parameters()] for m in modules]
        self.updates = 0

    @torch.no_grad()
    def update(self, modules: list[torch.nn.Module]) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for shadow, m in zip(self.shadow, modules, strict=True):
            for s, p in zip(shadow, m.parameters(), strict=True):
                s.lerp_(p.detach(), 1 - d)

    @torch.no_grad()
    def copy_to(self, modules: list[torch.nn.Module]) -> None:
        for shadow, m in zip(self.shadow, modules, strict=True):
            for s, p in zip(shadow, m.parameters(), strict=True):
                p.copy_(s)

    def state_dict(self) -> dict[str, Any]:
        return {"shadow": self.shadow, "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.shadow, self.updates, self.decay = state["shadow"], state["updates"], state["decay"]


class StopFlag:
    """Set by SIGTERM/SIGINT so a run can save its checkpoint before exiting; `close()`
    puts the previous handlers back."""

    def __init__(self) -> None:
        self.stop = False
        self._old = {sig: signal.signal(sig, self._set) for sig in (signal.SIGTERM, signal.SIGINT)}

    def _set(self, *_: object) -> None:
        self.stop = True

    def close(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
