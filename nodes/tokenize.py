"""Tokenize: a prompt (with weighting syntax) -> 77-token windows."""

from __future__ import annotations

from functools import partial
from typing import Any

from graph.node import Node, Widget
from nodes.sd import embeddings
from nodes.sd.handles import ClipHandle
from nodes.sd.prompt_weights import MAX_PROMPT_CHARS
from nodes.sd.sdxl_text import tokenize_for
from nodes.types import Clip, Tokens


class Tokenize(Node):
    """Split a prompt into CLIP tokens (77-token windows, weights from (word:1.3) syntax,
    textual-inversion embeddings from models/embeddings/ as embedding:NAME, embedding:NAME:1.2).

    ``text_2`` is the prompt for a CLIP's second text encoder (SDXL base: OpenCLIP bigG,
    diffusers' ``prompt_2``, ComfyUI's ``text_g``); empty sends ``text`` to both."""

    CATEGORY = "conditioning"
    OUTPUTS = {"tokens": Tokens}
    clip: Clip
    text: str = Widget("", multiline=True, max_length=MAX_PROMPT_CHARS)
    text_2: str = Widget("", max_length=MAX_PROMPT_CHARS)  # one line: rarely used

    def run(self, ctx: Any, clip: ClipHandle, text: str, text_2: str) -> dict[str, Any]:
        vectors_for = None
        if embeddings.referenced(text) or embeddings.referenced(text_2):  # embedding:NAME
            vectors_for = partial(embeddings.vectors_for, ctx.workspace)
        return {"tokens": tokenize_for(clip, text, text_2, vectors_for)}

    @classmethod
    def check(cls, values: dict[str, Any], choices: Any) -> list[tuple[str, str, str]]:
        return [
            *embeddings.problems("text", str(values.get("text", "")), choices),
            *embeddings.problems("text_2", str(values.get("text_2", "")), choices),
        ]

    @classmethod
    def models_in_text(cls, values: dict[str, Any]) -> list[tuple[str, str, str]]:
        """(input, models kind, name) of each embedding the prompts name, so saved files
        record them by content hash (`model_index.resolve`)."""
        return [
            (field, "embeddings", name)
            for field in ("text", "text_2")
            for name in embeddings.referenced(str(values.get(field) or ""))
        ]

    @classmethod
    def rename_in_text(cls, value: str, old: str, new: str) -> str:
        """The prompt with embedding ``old`` named ``new`` (a local file of the same content)."""
        return embeddings.rename(value, old, new)

    @classmethod
    def fingerprint(cls, workspace: Any, inputs: dict[str, Any]) -> str | None:
        """The embedding files the prompts name: replacing one re-tokenizes."""
        text = f"{inputs.get('text', '')} {inputs.get('text_2', '')}"
        return embeddings.fingerprint(workspace, text)
