"""Our prompt chains -> ComfyUI's text encoders, for the ComfyUI API export.

Tokenize -> EncodeText is CLIPTextEncode; Tokenize -> EncodeText -> SizeConditioning is
CLIPTextEncodeSDXL (CLIP-L reads text_l = our text, bigG reads text_g = our text_2) or,
with an aesthetic score, CLIPTextEncodeSDXLRefiner. The Tokenize (and the EncodeText
before a SizeConditioning) fold into the ComfyUI node; what ComfyUI cannot say (a prompt
from a link, a size left 0 for "the latent's size") refuses the export.
"""

from __future__ import annotations

from typing import Any

from graph.workflow import Workflow, as_link

Problems = list[tuple[str | None, str]]  # (our input, message) for the node being exported


def folded_nodes(workflow: Workflow, consumers: dict[str, list[str]]) -> set[str]:
    """Tokenize nodes feeding only EncodeText, and EncodeText nodes (from one of those)
    feeding only SizeConditioning: they become part of the ComfyUI node downstream."""
    nodes = workflow.nodes

    def only(nid: str, kind: str) -> bool:
        return bool(consumers.get(nid)) and all(nodes[c].type == kind for c in consumers[nid])

    tokens = {nid for nid, e in nodes.items() if e.type == "Tokenize" and only(nid, "EncodeText")}
    encoders = {
        nid
        for nid, e in nodes.items()
        if e.type == "EncodeText"
        and only(nid, "SizeConditioning")
        and (as_link(e.inputs.get("tokens")) or ("",))[0] in tokens
    }
    return tokens | encoders


def _prompts(workflow: Workflow, encode_id: str, folded: set[str]) -> tuple[str, str] | None:
    """(text, text_2) of the Tokenize feeding this EncodeText, when literal and folded."""
    tokens = as_link(workflow.nodes[encode_id].inputs.get("tokens"))
    if tokens is None or tokens[0] not in folded:
        return None
    source = workflow.nodes[tokens[0]].inputs
    text, text_2 = source.get("text", ""), source.get("text_2", "")
    if as_link(text) or as_link(text_2):
        return None
    return text, text_2


def encode_text(
    workflow: Workflow, nid: str, folded: set[str], problems: Problems
) -> dict[str, Any]:
    """CLIPTextEncode inputs (clip added by the caller) for an EncodeText."""
    prompts = _prompts(workflow, nid, folded)
    if prompts is None:
        problems.append(("tokens", "tokens must come from a Tokenize node with a literal text"))
        return {"text": None}
    text, text_2 = prompts
    if text_2 and text_2 != text:
        problems.append(
            (
                "tokens",
                "a second prompt (text_2) exports only through a SizeConditioning after "
                "EncodeText (ComfyUI's CLIPTextEncodeSDXL)",
            )
        )
    return {"text": text}


def size_conditioning(
    workflow: Workflow, nid: str, values: dict[str, Any], folded: set[str], problems: Problems
) -> tuple[str, dict[str, Any]]:
    """(ComfyUI class, inputs) for a SizeConditioning after a folded EncodeText."""
    source = as_link(workflow.nodes[nid].inputs.get("conditioning"))
    if source is None or source[0] not in folded:
        problems.append(("conditioning", "must come from an EncodeText fed by a Tokenize"))
        return "CLIPTextEncodeSDXL", {}
    encode = workflow.nodes[source[0]]
    clip = encode.inputs.get("clip")
    prompts = _prompts(workflow, source[0], folded) or ("", "")
    text, text_2 = prompts
    v = values
    if v["aesthetic_score"]:
        lost = [k for k in ("crop_left", "crop_top", "target_width", "target_height") if v[k]]
        for k in lost:
            problems.append((k, f"{k} with an aesthetic score (refiner) has no ComfyUI input"))
        if text_2 and text_2 != text:
            problems.append(("conditioning", "the refiner encodes one prompt (text_2 is set)"))
        _need_sizes(v, ("original_width", "original_height"), problems)
        inputs = {
            "ascore": v["aesthetic_score"],
            "width": v["original_width"],
            "height": v["original_height"],
            "text": text,
        }
        return "CLIPTextEncodeSDXLRefiner", {**inputs, "clip": clip}
    sizes = ("original_width", "original_height", "target_width", "target_height")
    _need_sizes(v, sizes, problems)
    inputs = {
        "width": v["original_width"],
        "height": v["original_height"],
        "crop_w": v["crop_left"],
        "crop_h": v["crop_top"],
        "target_width": v["target_width"],
        "target_height": v["target_height"],
        "text_g": text_2 or text,
        "text_l": text,
    }
    return "CLIPTextEncodeSDXL", {**inputs, "clip": clip}


def _need_sizes(values: dict[str, Any], names: tuple[str, ...], problems: Problems) -> None:
    for name in names:
        if not values[name]:
            problems.append(
                (name, f"{name} 0 (the latent's size) has no ComfyUI equivalent: set the size")
            )
