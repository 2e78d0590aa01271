"""LoadLoRA: a model and CLIP -> the same with a LoRA applied (chainable)."""

from __future__ import annotations

from typing import Any

from graph.node import Choice, Node, Widget
from nodes.sd.addon_files import addon_fingerprint
from nodes.sd.handles import ClipHandle, ModelHandle
from nodes.sd.lora import load_lora, unmatched_warning, with_lora
from nodes.types import Clip, Model


class LoadLoRA(Node):
    """Apply a LoRA from models/loras/ (kohya/A1111 or diffusers/PEFT) to a model and CLIP.

    The shared base model is never changed: the LoRA is merged only while this branch's
    sampling or text encoding runs. Changing only strength_model re-runs sampling, not
    text encoding."""

    CATEGORY = "loaders"
    OUTPUTS = {"model": Model, "clip": Clip}
    OUTPUT_INPUTS = {
        "model": ("model", "name", "strength_model"),
        "clip": ("clip", "name", "strength_clip"),
    }
    model: Model
    clip: Clip
    name: str = Choice("loras")
    strength_model: float = Widget(1.0, ge=-10.0, le=10.0, step=0.05)
    strength_clip: float = Widget(1.0, ge=-10.0, le=10.0, step=0.05)

    def run(
        self,
        ctx: Any,
        model: ModelHandle,
        clip: ClipHandle,
        name: str,
        strength_model: float,
        strength_clip: float,
    ) -> dict[str, Any]:
        ref, parsed = load_lora(ctx.workspace, ctx.resources.models, name, model, clip)
        warning = unmatched_warning(name, parsed)
        if warning:
            ctx.warn(warning)
        new_model, new_clip = with_lora(
            model, clip, ref, parsed, name, strength_model, strength_clip
        )
        return {"model": new_model, "clip": new_clip}

    @classmethod
    def fingerprint(cls, workspace: Any, inputs: dict[str, Any]) -> str | None:
        """The file's size and mtime: replacing the LoRA re-runs what it feeds."""
        return addon_fingerprint(workspace, "loras", str(inputs.get("name", "")))
