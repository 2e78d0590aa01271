"""SizeConditioning: SDXL's micro-conditioning on a conditioning (sizes, crop, aesthetic)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from graph.node import Node, Widget
from nodes.sd.handles import Conditioning
from nodes.sd.sdxl_conditioning import SizeConditioning as Sizes
from nodes.types import Conditioning as ConditioningType


class SizeConditioning(Node):
    """Set SDXL's size conditioning (ComfyUI's CLIPTextEncodeSDXL / ...Refiner fields,
    diffusers' original_size, crops_coords_top_left, target_size, aesthetic_score).

    0 keeps the default: sizes = the latent's size in pixels; aesthetic score 6.0 on the
    positive side, 2.5 on the negative (refiner only; the base uses the target size).
    Without this node an SDXL conditioning uses these defaults. SD 1.x/2.x ignore it."""

    CATEGORY = "conditioning"
    OUTPUTS = {"conditioning": ConditioningType}
    conditioning: ConditioningType
    original_width: int = Widget(0, ge=0, le=16384)
    original_height: int = Widget(0, ge=0, le=16384)
    crop_left: int = Widget(0, ge=0, le=16384)
    crop_top: int = Widget(0, ge=0, le=16384)
    target_width: int = Widget(0, ge=0, le=16384)
    target_height: int = Widget(0, ge=0, le=16384)
    aesthetic_score: float = Widget(0.0, ge=0.0, le=20.0, step=0.1)

    @classmethod
    def check(cls, inputs: dict[str, Any], choices: Any) -> list[tuple[str, str, str]]:
        return [
            (w, "invalid_combination", f"set both {w} and {h}, or neither (0: the latent's size)")
            for w, h in (("original_width", "original_height"), ("target_width", "target_height"))
            if (inputs[w] == 0) != (inputs[h] == 0)
        ]

    def run(
        self,
        ctx: Any,
        conditioning: Conditioning,
        original_width: int,
        original_height: int,
        crop_left: int,
        crop_top: int,
        target_width: int,
        target_height: int,
        aesthetic_score: float,
    ) -> dict[str, Any]:
        sizes = Sizes(
            original=(original_height, original_width)
            if original_width and original_height
            else None,
            crop=(crop_top, crop_left),
            target=(target_height, target_width) if target_width and target_height else None,
            aesthetic=aesthetic_score or None,
        )
        return {"conditioning": replace(conditioning, sizes=sizes)}
