"""Socket types of the Stable Diffusion nodes and what their values hold.

Payload conventions (what a link of each type carries at run time):
- MODEL: `nodes.sd.handles.ModelHandle` (U-Net, scheduler config, prediction type)
- CLIP: `nodes.sd.handles.ClipHandle` (tokenizer + text encoder)
- VAE: `nodes.sd.handles.VaeHandle`
- TOKENS: `nodes.sd.handles.TokenWindows` (ids and per-token weights, 77-token windows;
  ``second``: the same for an SDXL CLIP's second tokenizer)
- CONDITIONING: `nodes.sd.handles.Conditioning` (embeddings [1, 77*k, dim]; SDXL adds the
  pooled embedding and optional size conditioning)
- LATENT: `nodes.sd.handles.LatentBatch` (samples [B, C, h, w] scaled by the VAE's scaling,
  on the device that made them; an EmptyLatent's is marked blank and gets the model's
  channels at sampling)
- IMAGE: torch float tensor [B, H, W, 3] in 0..1, on the CPU
"""

from __future__ import annotations

from graph.types import SocketType


class Model(SocketType):
    name = "MODEL"
    color = "#b39ddb"


class Clip(SocketType):
    name = "CLIP"
    color = "#ffd54f"


class Vae(SocketType):
    name = "VAE"
    color = "#ef9a9a"


class Tokens(SocketType):
    name = "TOKENS"
    color = "#80cbc4"


class Conditioning(SocketType):
    name = "CONDITIONING"
    color = "#ffab91"


class Latent(SocketType):
    name = "LATENT"
    color = "#f48fb1"


class Image(SocketType):
    name = "IMAGE"
    color = "#90caf9"
