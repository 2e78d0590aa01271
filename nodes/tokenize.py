"""Tokenize: a prompt (with weighting syntax) -> 77-token windows."""

from __future__ import annotations

from typing import Any

from graph.node import Node, Widget
from nodes.sd import embeddings
from nodes.sd.handles import ClipHandle
from nodes.sd.prompt_weights import MAX_PROMPT_CHARS, tokenize_prompt
from nodes.types import Clip, Tokens


class Tokenize(Node):
    """Split a prompt into CLIP tokens (77-token windows, weights from (word:1.3) syntax,
    textual-inversion embeddings from models/embeddings/ as embedding:NAME, embedding:NAME:1.2)."""

    CATEGORY = "conditioning"
    OUTPUTS = {"tokens": Tokens}
    clip: Clip
    text: str = Widget("", multiline=True, max_length=MAX_PROMPT_CHARS)

    def run(self, ctx: Any, clip: ClipHandle, text: str) -> dict[str, Any]:
        vectors_of = None
        if embeddings.referenced(text):  # embedding:NAME (textual inversion)
            vectors_of = embeddings.vectors_for(ctx.workspace, clip.text_encoder)
        return {"tokens": tokenize_prompt(clip.tokenizer, text, vectors_of=vectors_of)}

    @classmethod
    def check_values(cls, values: dict[str, Any], choices: Any) -> list[tuple[str, str, str]]:
        return embeddings.problems("text", str(values.get("text", "")), choices)

    @classmethod
    def fingerprint(cls, workspace: Any, inputs: dict[str, Any]) -> str | None:
        """The embedding files the prompt names: replacing one re-tokenizes."""
        return embeddings.fingerprint(workspace, str(inputs.get("text", "")))
