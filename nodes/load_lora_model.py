"""LoadLoRAModel: a model -> the same with a LoRA applied to the U-Net only (chainable)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from graph.node import Choice, Node, Widget
from nodes.sd.addon_files import addon_fingerprint
from nodes.sd.handles import ModelHandle
from nodes.sd.lora import load_lora, unmatched_warning, with_lora
from nodes.types import Model

TEXT_ENCODER_KEYS = ("lora_te", "text_encoder")  # kohya and diffusers/PEFT prefixes


class LoadLoRAModel(Node):
    """Apply a LoRA from models/loras/ to the denoising model alone, leaving the text
    encoder as it is (ComfyUI's LoraLoaderModelOnly). The file's text-encoder layers are
    ignored; use LoadLoRA to apply them too."""

    CATEGORY = "loaders"
    OUTPUTS = {"model": Model}
    model: Model
    name: str = Choice("loras")
    strength_model: float = Widget(1.0, ge=-10.0, le=10.0, step=0.05)

    def run(self, ctx: Any, model: ModelHandle, name: str, strength_model: float) -> dict[str, Any]:
        ref, parsed = load_lora(ctx.workspace, ctx.resources.models, name, model, None)
        others = [k for k in parsed.unmatched if not k.startswith(TEXT_ENCODER_KEYS)]
        warning = unmatched_warning(name, replace(parsed, unmatched=others))
        if warning:
            ctx.warn(warning)
        new_model, _ = with_lora(model, None, ref, parsed, name, strength_model, 0.0)
        return {"model": new_model}

    @classmethod
    def fingerprint(cls, workspace: Any, inputs: dict[str, Any]) -> str | None:
        """The file's identity, as LoadLoRA's: replacing the LoRA re-runs what it feeds."""
        return addon_fingerprint(workspace, "loras", str(inputs.get("name", "")))
