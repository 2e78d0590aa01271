"""An auxiliary text-side loss: linear heads that read every caption attribute from the
text encoder's pooled output (not shipped; training only).

Why: in the first 1000 U-Net steps position words barely changed the text embeddings
(8x less than colour words) and the U-Net ignored them. Neither side gets a gradient to
use position until the other already does; the heads make the text encoder separate all
five attributes from the start, so the U-Net only has to learn where to put them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from demo import scenes

ATTRIBUTE_VALUES = (scenes.SHAPES, scenes.COLOURS, scenes.SIZES, scenes.POSITIONS, scenes.COLOURS)


class AttributeHeads(nn.Module):
    """One linear classifier per attribute, in Scene.combo order."""

    def __init__(self, hidden: int):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(hidden, len(v)) for v in ATTRIBUTE_VALUES)

    def loss(self, pooled: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the attributes the caption states (mask True)."""
        total = pooled.new_zeros(())
        for k, head in enumerate(self.heads):
            if mask[:, k].any():
                total = total + F.cross_entropy(head(pooled[mask[:, k]]), labels[mask[:, k], k])
        return total / len(self.heads)


def combo_labels(combos: list[tuple[str, ...]]) -> torch.Tensor:
    """[n, 5] attribute indices."""
    return torch.tensor(
        [[vals.index(c[k]) for k, vals in enumerate(ATTRIBUTE_VALUES)] for c in combos]
    )


def stated_mask(drop: torch.Tensor, variant: torch.Tensor) -> torch.Tensor:
    """Which attributes each caption states: none when dropped, no position in variant 1,
    no size in variant 2 (CaptionIds.VARIANTS)."""
    mask = (~drop)[:, None].repeat(1, 5)
    mask[variant == 1, 3] = False
    mask[variant == 2, 2] = False
    return mask
