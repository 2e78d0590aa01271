"""LoadCheckpoint: a checkpoint name -> MODEL, CLIP and VAE handles (shared, loaded once)."""

from __future__ import annotations

from typing import Any, Literal

from graph.node import Choice, Node
from model_index import index_for
from nodes.sd.checkpoints import (
    BUILTIN_TINY,
    CheckpointError,
    checkpoint_fingerprint,
    load_checkpoint,
    resolve_checkpoint,
)
from nodes.types import Clip, Model, Vae


class LoadCheckpoint(Node):
    """Load a Stable Diffusion checkpoint (built-in, single file or diffusers folder)."""

    CATEGORY = "loaders"
    OUTPUTS = {"model": Model, "clip": Clip, "vae": Vae}
    name: str = Choice("checkpoints", default=BUILTIN_TINY)
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"

    def run(self, ctx: Any, name: str, dtype: str, device: str) -> dict[str, Any]:
        model, clip, vae = load_checkpoint(ctx.workspace, ctx.resources, name, dtype, device)
        return {"model": model, "clip": clip, "vae": vae}

    @classmethod
    def fingerprint(cls, workspace: Any, inputs: dict[str, Any]) -> str | None:
        """The file's content hash (memoized by the model index): a replaced file, or a
        copy with the same size and mtime but other bytes, invalidates cached outputs."""
        name = str(inputs.get("name", BUILTIN_TINY))
        try:
            res = resolve_checkpoint(workspace, name)
        except CheckpointError:
            return "unresolved"
        if res.kind == "file" and res.path is not None and not res.trusted:
            return "sha256:" + index_for(workspace).sha256(res.path)
        return checkpoint_fingerprint(workspace, name)
