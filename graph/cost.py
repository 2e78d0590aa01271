"""What running a node costs, as the node itself declares it.

Budgets used to match input names (``width``, ``steps``) one node at a time, so a
renamed input escaped and sizes that arrive over links (a loaded image, a latent
from the previous sampler) were never counted. Instead a node states its cost from
its validated inputs with ``Node.cost(inputs)``, and `graph.budget` carries the
pixels each output holds along the links, so a sampler fed by any chain knows the
size it works on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cost:
    """One node's cost. ``pixels`` are image pixels (width x height x batch) the node
    makes or works on, ``steps`` the denoising steps it runs over them; the fields
    name the inputs to blame when a budget is exceeded. ``outputs`` gives the pixels
    each output carries; None carries the largest linked input's pixels to every
    output (right for nodes that keep the size, such as samplers and VAE coders)."""

    pixels: int = 0
    steps: int = 0
    outputs: Mapping[str, int] | None = None
    pixels_field: str | None = None
    steps_field: str | None = None

    @property
    def work(self) -> int:
        """Pixel-steps: what sampling compute grows with."""
        return self.pixels * self.steps


@dataclass(frozen=True)
class CostInputs:
    """What a node's cost is computed from."""

    values: Mapping[str, Any]  # validated literal inputs, defaults included
    pixels: Mapping[str, int] = field(default_factory=dict)  # carried by each linked input
    workspace: Any = None  # the run's folders (to size an input file); None when unknown

    def linked_pixels(self, *names: str) -> int:
        """The largest pixel count among the named linked inputs (all when none named)."""
        chosen = names or tuple(self.pixels)
        return max((self.pixels.get(n, 0) for n in chosen), default=0)
