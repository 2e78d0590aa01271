"""A patch discriminator for the decoder, as SD's own autoencoder was trained (taming-
transformers' hinge-loss PatchGAN with the adaptive weight): pixel losses alone make the
decoder draw the average of the shapes a latent might mean, a round blob, even though the
latents hold the shape (a small conv probe reads it from them 95% of the time). A critic
that has only ever seen crisp scenes pushes each blob back to a clean square, diamond or
triangle, while the reconstruction loss keeps it the right one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

ADAPTIVE_MAX = 1e4


class PatchDiscriminator(nn.Module):
    """Real/fake logits for overlapping ~34 px patches of a 64x64 picture."""

    def __init__(self, width: int = 32):
        super().__init__()

        def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, 4, stride, 1),
                nn.GroupNorm(8, cout),
                nn.LeakyReLU(0.2),
            ]

        self.net = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            *block(width, 2 * width, 2),
            *block(2 * width, 4 * width, 1),
            nn.Conv2d(4 * width, 1, 4, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Adversary:
    """The discriminator, its optimizer and the two hinge losses."""

    def __init__(self, seed: int, lr: float = 2e-4):
        torch.manual_seed(seed + 11)
        self.disc = PatchDiscriminator()
        self.opt = torch.optim.Adam(self.disc.parameters(), lr=lr, betas=(0.5, 0.9))

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -self.disc(fake).mean()

    def step(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        """One discriminator update (hinge loss); returns its loss."""
        loss = 0.5 * (
            F.relu(1.0 - self.disc(real)).mean() + F.relu(1.0 + self.disc(fake.detach())).mean()
        )
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.item())

    def state_dict(self) -> dict[str, Any]:
        return {"disc": self.disc.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.disc.load_state_dict(state["disc"])
        self.opt.load_state_dict(state["opt"])


def adaptive_weight(
    rec_loss: torch.Tensor, adv_loss: torch.Tensor, last_layer: torch.Tensor
) -> torch.Tensor:
    """Scale the adversarial term so its gradient at the decoder's last layer is as large as
    the reconstruction term's (taming-transformers' calculate_adaptive_weight)."""
    g_rec = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_adv = torch.autograd.grad(adv_loss, last_layer, retain_graph=True)[0]
    return (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0.0, ADAPTIVE_MAX).detach()
