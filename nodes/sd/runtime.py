"""Process settings for running the SD nodes; call `configure_process` before torch loads.

- Nothing is ever fetched from a model hub (HF_HUB_OFFLINE).
- OpenMP threads wait passively: with the default busy-wait, a second torch thread
  on a 2-core machine that is also doing other work made a 64x64 txt2img run take
  13 s instead of 0.3 s (measured on the development machine).
"""

from __future__ import annotations

import os


def configure_process(threads: int | None = None) -> None:
    """Set environment defaults (the user's own settings win) and the torch thread count."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if threads:
        import torch

        torch.set_num_threads(threads)
