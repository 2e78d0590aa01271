"""LoadVAE: a VAE from models/vae/ in place of the checkpoint's own."""

from __future__ import annotations

from typing import Any, Literal

from graph.node import Choice, Node
from nodes.sd.addon_files import addon_fingerprint
from nodes.sd.vae_files import load_vae
from nodes.types import Vae


class LoadVAE(Node):
    """Load a VAE from models/vae/ to use in place of the checkpoint's own.

    Single files in the original layout or diffusers folders. family sets the latent
    scaling (sd1 0.18215, sdxl 0.13025); auto reads it from a diffusers config, else sd1."""

    CATEGORY = "loaders"
    OUTPUTS = {"vae": Vae}
    name: str = Choice("vae")
    family: Literal["auto", "sd1", "sdxl"] = "auto"
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"

    def run(self, ctx: Any, name: str, family: str, dtype: str, device: str) -> dict[str, Any]:
        return {"vae": load_vae(ctx.workspace, ctx.resources, name, family, dtype, device)}

    @classmethod
    def fingerprint(cls, workspace: Any, inputs: dict[str, Any]) -> str | None:
        return addon_fingerprint(workspace, "vae", str(inputs.get("name", "")))
