"""Tokenize: a prompt (with weighting syntax) -> 77-token windows."""

from __future__ import annotations

from typing import Any

from graph.node import Node, Widget
from nodes.sd.handles import ClipHandle
from nodes.sd.prompt_weights import MAX_PROMPT_CHARS
from nodes.sd.sdxl_text import tokenize_for
from nodes.types import Clip, Tokens


class Tokenize(Node):
    """Split a prompt into CLIP tokens (77-token windows, weights from (word:1.3) syntax).

    ``text_2`` is the prompt for a CLIP's second text encoder (SDXL base: OpenCLIP bigG,
    diffusers' ``prompt_2``, ComfyUI's ``text_g``); empty sends ``text`` to both."""

    CATEGORY = "conditioning"
    OUTPUTS = {"tokens": Tokens}
    clip: Clip
    text: str = Widget("", multiline=True, max_length=MAX_PROMPT_CHARS)
    text_2: str = Widget("", max_length=MAX_PROMPT_CHARS)  # one line: rarely used

    def run(self, ctx: Any, clip: ClipHandle, text: str, text_2: str) -> dict[str, Any]:
        return {"tokens": tokenize_for(clip, text, text_2)}
