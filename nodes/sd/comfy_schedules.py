"""ComfyUI's sigma schedules, computed as ComfyUI computes them, for its KSampler's picture.

ComfyUI keeps the model's discrete sigma table (float32, from float64 betas) and builds
each schedule from it in float32 torch ops, every value passing through a Python float,
with a final 0 appended. diffusers' own "karras"/"exponential" options and its linear
interpolation of sigma give slightly different lists (up to 1.3e-5 relative), and its
"normal" spacing is not ComfyUI's at all, so the lists are built here and handed to the
diffusers schedulers as explicit sigmas (``nodes/sd/comfy_sampling.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

COMFY_SCHEDULES = (
    "normal",
    "karras",
    "exponential",
    "simple",
    "sgm_uniform",
    "ddim_uniform",
    "beta",
)
# samplers that drop the penultimate sigma (ComfyUI's KSampler.DISCARD_PENULTIMATE_SIGMA_SAMPLERS)
DISCARD_PENULTIMATE = {"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"}


@dataclass(frozen=True)
class SigmaTable:
    """The model's discrete sigmas (ComfyUI's ``ModelSamplingDiscrete``)."""

    sigmas: torch.Tensor  # float32 [T]
    log_sigmas: torch.Tensor  # float32 [T]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SigmaTable:
        n = int(config.get("num_train_timesteps", 1000))
        start, end = float(config.get("beta_start", 0.00085)), float(config.get("beta_end", 0.012))
        kind = config.get("beta_schedule", "scaled_linear")
        if kind == "scaled_linear":
            betas = torch.linspace(start**0.5, end**0.5, n, dtype=torch.float64) ** 2
        elif kind == "linear":
            betas = torch.linspace(start, end, n, dtype=torch.float64)
        else:
            raise ValueError(f"ComfyUI schedules need linear betas; this model has {kind!r}")
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        if config.get("rescale_betas_zero_snr"):
            raise ValueError("ComfyUI schedules are not defined for zero-terminal-SNR models here")
        sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
        return cls(sigmas.float(), sigmas.log().float())

    @property
    def sigma_min(self) -> torch.Tensor:
        return self.sigmas[0]

    @property
    def sigma_max(self) -> torch.Tensor:
        return self.sigmas[-1]

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The nearest table index (what ComfyUI hands the U-Net, as a float)."""
        dists = sigma.log() - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """Sigma at a fractional index: log-linear between table entries."""
        t = torch.clamp(t.float(), min=0, max=len(self.sigmas) - 1)
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        return ((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]).exp()


def _normal(table: SigmaTable, steps: int, sgm: bool = False) -> list[float]:
    start, end = table.timestep(table.sigma_max), table.timestep(table.sigma_min)
    append_zero = True
    if sgm:
        ts = torch.linspace(start, end, steps + 1)[:-1]
    else:
        if math.isclose(float(table.sigma(end)), 0, abs_tol=1e-5):
            steps, append_zero = steps + 1, False
        ts = torch.linspace(start, end, steps)
    sigs = [float(table.sigma(t)) for t in ts]
    return sigs + [0.0] if append_zero else sigs


def _karras(table: SigmaTable, steps: int, rho: float = 7.0) -> list[float]:
    ramp = torch.linspace(0, 1, steps)
    lo, hi = float(table.sigma_min) ** (1 / rho), float(table.sigma_max) ** (1 / rho)
    return [float(s) for s in (hi + ramp * (lo - hi)) ** rho] + [0.0]


def _exponential(table: SigmaTable, steps: int) -> list[float]:
    lo, hi = float(table.sigma_min), float(table.sigma_max)
    return [float(s) for s in torch.linspace(math.log(hi), math.log(lo), steps).exp()] + [0.0]


def _simple(table: SigmaTable, steps: int) -> list[float]:
    ss = len(table.sigmas) / steps
    return [float(table.sigmas[-(1 + int(x * ss))]) for x in range(steps)] + [0.0]


def _ddim_uniform(table: SigmaTable, steps: int) -> list[float]:
    x = 1
    if math.isclose(float(table.sigmas[x]), 0, abs_tol=1e-5):
        steps, sigs = steps + 1, []
    else:
        sigs = [0.0]
    ss = max(len(table.sigmas) // steps, 1)
    while x < len(table.sigmas):
        sigs.append(float(table.sigmas[x]))
        x += ss
    return sigs[::-1]


def _beta(table: SigmaTable, steps: int, alpha: float = 0.6, beta: float = 0.6) -> list[float]:
    from scipy.stats import beta as beta_dist

    total = len(table.sigmas) - 1
    ts = 1 - np.linspace(0, 1, steps, endpoint=False)
    ts = np.rint(beta_dist.ppf(ts, alpha, beta) * total)
    sigs, last = [], -1.0
    for t in ts:
        if t != last:
            sigs.append(float(table.sigmas[int(t)]))
        last = t
    return sigs + [0.0]


SCHEDULES = {
    "normal": _normal,
    "karras": _karras,
    "exponential": _exponential,
    "simple": _simple,
    "sgm_uniform": lambda table, steps: _normal(table, steps, sgm=True),
    "ddim_uniform": _ddim_uniform,
    "beta": _beta,
}


def comfy_sigmas(
    table: SigmaTable, schedule: str, steps: int, denoise: float = 1.0, sampler: str = ""
) -> torch.Tensor:
    """KSampler's sigma list (float32, ending in 0) for steps x denoise."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown ComfyUI schedule {schedule!r}; one of {', '.join(SCHEDULES)}")
    discard = sampler in DISCARD_PENULTIMATE
    total = steps + 1 if discard else steps
    if denoise < 0.9999:
        if denoise <= 0:
            raise ValueError("denoise must be above 0")
        full = SCHEDULES[schedule](table, int(total / denoise))
        sigmas = torch.tensor(full, dtype=torch.float32)[-(total + 1) :]
    else:
        sigmas = torch.tensor(SCHEDULES[schedule](table, total), dtype=torch.float32)
    if discard:
        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    return sigmas
