"""Prior preservation for the demo LoRA by distillation.

A LoRA trained on ground truth alone drifts on what it should leave alone: the shipped
brick LoRA (ground-truth loss on half bricks, half ordinary scenes) drew 78% of ordinary
shapes right against the base model's 90%. With ``--prior distill`` every sample whose
caption does not name the new word (an ordinary scene, or any scene whose caption was
dropped for guidance) gets the frozen base model's own prediction as its target, for the
same noisy latent, timestep and caption: the adapters then learn to change nothing but
the new word, and the target carries no sampling noise (a ground-truth v-target does),
so any drift shows up directly in the loss.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from demo.lora import LoraSet

PRIORS = ("data", "distill")  # ground-truth targets everywhere / the base model's on priors


def prior_rows(shows_word: torch.Tensor, dropped: torch.Tensor) -> torch.Tensor:
    """Rows of a batch whose caption does not name the new word: ordinary scenes, and
    every scene whose caption was dropped (the unconditional branch must stay the base
    model's, or guidance changes every prompt)."""
    return ~shows_word | dropped


def distill_teacher(
    unet, te, lora: LoraSet, ids: torch.Tensor, rows: torch.Tensor, weight: float = 1.0
) -> Callable:
    """A `teacher` for demo.train_unet.unet_loss: the rows' targets become the base
    model's prediction (the adapters at strength 0, no gradient), weighted by `weight`."""

    def teacher(noisy: torch.Tensor, t: torch.Tensor, target: torch.Tensor):
        scale = torch.where(rows, torch.tensor(weight), torch.tensor(1.0))
        if not rows.any():
            return target, scale
        lora.set_strength(0.0)
        try:
            with torch.no_grad():
                text = te(ids[rows]).last_hidden_state
                base = unet(noisy[rows], t[rows], encoder_hidden_states=text).sample
        finally:
            lora.set_strength(1.0)
        target = target.clone()
        target[rows] = base
        return target, scale

    return teacher
