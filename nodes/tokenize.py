"""Tokenize: a prompt (with weighting syntax) -> 77-token windows."""

from __future__ import annotations

from typing import Any

from graph.node import Node, Widget
from nodes.sd.handles import ClipHandle
from nodes.sd.prompt_weights import MAX_PROMPT_CHARS, tokenize_prompt
from nodes.types import Clip, Tokens


class Tokenize(Node):
    """Split a prompt into CLIP tokens (77-token windows, weights from (word:1.3) syntax)."""

    CATEGORY = "conditioning"
    OUTPUTS = {"tokens": Tokens}
    clip: Clip
    text: str = Widget("", multiline=True, max_length=MAX_PROMPT_CHARS)

    def run(self, ctx: Any, clip: ClipHandle, text: str) -> dict[str, Any]:
        return {"tokens": tokenize_prompt(clip.tokenizer, text)}
