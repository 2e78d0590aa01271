"""ClipSkip: encode prompts from an earlier layer of the text encoder."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from graph.node import Node, Widget
from nodes.sd.handles import ClipHandle
from nodes.types import Clip


class ClipSkip(Node):
    """Use the text encoder's output `skip` layers from the end (A1111 "Clip skip": 1 = last
    layer, 2 = penultimate, as anime-style SD 1.x models expect; diffusers clip_skip + 1;
    ComfyUI CLIPSetLastLayer -skip)."""

    CATEGORY = "conditioning"
    OUTPUTS = {"clip": Clip}
    clip: Clip
    skip: int = Widget(2, ge=1, le=24)

    def run(self, ctx: Any, clip: ClipHandle, skip: int) -> dict[str, Any]:
        return {"clip": replace(clip, skip=skip)}
