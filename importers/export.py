"""Our workflow -> ComfyUI API format, for the node types both engines have.

Node ids are kept (ComfyUI accepts any string id in the API format); prompt chains fold
into ComfyUI's text encoders (`export_text`). Node modes are applied first (graph/modes.py:
bypassed nodes rewired out, muted ones and what only they feed left out), and primitive
nodes (Seed, Int, ...) become the values they feed, as the API format has them. Anything
else without a ComfyUI equivalent refuses the export, naming each node.
"""

from __future__ import annotations

from typing import Any

from graph.modes import apply_modes
from graph.registry import Registry
from graph.validate import Problem
from graph.workflow import Workflow, as_link
from importers.comfy_nodes import META_KEY, SAMPLERS
from importers.errors import ImportRefused
from importers.export_text import encode_text, folded_nodes, size_conditioning

# our type -> (ComfyUI class, {our input: ComfyUI input}, [our outputs in ComfyUI's order])
SIMPLE: dict[str, tuple[str, dict[str, str], list[str]]] = {
    "LoadCheckpoint": ("CheckpointLoaderSimple", {"name": "ckpt_name"}, ["model", "clip", "vae"]),
    "EmptyLatent": (
        "EmptyLatentImage",
        {"width": "width", "height": "height", "batch_size": "batch_size"},
        ["latent"],
    ),
    "Sample": (
        "KSampler",
        {
            "model": "model",
            "positive": "positive",
            "negative": "negative",
            "latent": "latent_image",
            "seed": "seed",
            "steps": "steps",
            "cfg": "cfg",
            "sampler": "sampler_name",
            "schedule": "scheduler",
            "denoise": "denoise",
        },
        ["latent"],
    ),
    "VAEDecode": ("VAEDecode", {"vae": "vae", "latent": "samples"}, ["image"]),
    "VAEEncode": ("VAEEncode", {"vae": "vae", "image": "pixels"}, ["latent"]),
    "LoadImage": ("LoadImage", {"file": "image"}, ["image"]),
    "SaveImage": ("SaveImage", {"image": "images", "filename_prefix": "filename_prefix"}, []),
    "PreviewImage": ("PreviewImage", {"image": "images"}, []),
    "EncodeText": ("CLIPTextEncode", {"clip": "clip"}, ["conditioning"]),
    "LoadLoRA": (
        "LoraLoader",
        {
            "model": "model",
            "clip": "clip",
            "name": "lora_name",
            "strength_model": "strength_model",
            "strength_clip": "strength_clip",
        },
        ["model", "clip"],
    ),
    "LoadLoRAModel": (
        "LoraLoaderModelOnly",
        {"model": "model", "name": "lora_name", "strength_model": "strength_model"},
        ["model"],
    ),
    "LoadVAE": ("VAELoader", {"name": "vae_name"}, ["vae"]),
    "ClipSkip": ("CLIPSetLastLayer", {"clip": "clip"}, ["clip"]),
    "LatentUpscale": (
        "LatentUpscale",
        {
            "latent": "samples",
            "upscale_method": "upscale_method",
            "width": "width",
            "height": "height",
            "crop": "crop",
        },
        ["latent"],
    ),
    "LatentUpscaleBy": (
        "LatentUpscaleBy",
        {"latent": "samples", "upscale_method": "upscale_method", "scale_by": "scale_by"},
        ["latent"],
    ),
    "ImageScale": (
        "ImageScale",
        {
            "image": "image",
            "upscale_method": "upscale_method",
            "width": "width",
            "height": "height",
            "crop": "crop",
        },
        ["image"],
    ),
    # the class and widgets depend on the values (export_text.size_conditioning)
    "SizeConditioning": ("CLIPTextEncodeSDXL", {}, ["conditioning"]),
}
TO_COMFY_SAMPLER = {ours: comfy for comfy, ours in SAMPLERS.items()}


def export_comfyui_api(
    workflow: Workflow, defaults: dict[str, dict[str, Any]], registry: Registry
) -> dict[str, Any]:
    """The ComfyUI API document; ``defaults`` gives each node type's literal defaults
    (ComfyUI wants every widget). ImportRefused when a node has no ComfyUI equivalent."""
    modes = apply_modes(workflow, registry)
    if modes.problems:
        raise ImportRefused("sdgraph", modes.problems, action="export to ComfyUI")
    nodes = _fold_constants(modes.workflow.nodes, registry)
    workflow = modes.workflow.model_copy(update={"nodes": nodes})  # what ComfyUI gets
    consumers: dict[str, list[str]] = {}
    for nid, entry in nodes.items():
        for v in entry.inputs.values():
            link = as_link(v)
            if link:
                consumers.setdefault(link[0], []).append(nid)
    problems: list[Problem] = []
    folded = folded_nodes(workflow, consumers)
    out: dict[str, Any] = {}
    for nid, entry in nodes.items():
        if nid in folded:
            continue
        if entry.type not in SIMPLE:
            problems.append(
                Problem(nid, None, "no_equivalent", f"{entry.type} has no ComfyUI equivalent")
            )
            continue
        cls, names, _ = SIMPLE[entry.type]
        values = {**defaults.get(entry.type, {}), **entry.inputs}
        inputs = {theirs: _value(nodes, values.get(ours)) for ours, theirs in names.items()}
        # settings ComfyUI's node lacks (Sample's convention, LoadCheckpoint's dtype) ride
        # in _meta, which ComfyUI ignores and our import reads back
        extra = {
            k: v
            for k, v in values.items()
            if k not in names and k != "tokens" and as_link(v) is None
        }
        if entry.type == "Sample":
            inputs["sampler_name"] = TO_COMFY_SAMPLER.get(values["sampler"], values["sampler"])
        if entry.type == "LoadImage":
            inputs["upload"] = "image"
        if entry.type == "ClipSkip":  # A1111's skip n = ComfyUI's layer -n
            inputs["stop_at_clip_layer"] = -int(extra.pop("skip"))
        found: list[tuple[str | None, str]] = []
        if entry.type == "EncodeText":
            inputs.update(encode_text(workflow, nid, folded, found))
        if entry.type == "SizeConditioning":
            cls, inputs = size_conditioning(workflow, nid, values, folded, found)
            inputs["clip"] = _value(nodes, inputs.get("clip"))
            extra = {}
        problems += [Problem(nid, f, "no_equivalent", m) for f, m in found]
        meta: dict[str, Any] = {"title": nid}
        if extra:
            meta[META_KEY] = extra
        out[nid] = {"inputs": inputs, "class_type": cls, "_meta": meta}
    if problems:
        raise ImportRefused("sdgraph", problems, action="export to ComfyUI")
    return out


def _value(nodes: dict[str, Any], value: Any) -> Any:
    link = as_link(value)
    if link is None:
        return value
    src, output = link
    entry = nodes.get(src)
    _, _, outputs = SIMPLE.get(entry.type if entry else "", ("", {}, []))
    index = outputs.index(output) if output in outputs else 0
    return [src, index]


def _fold_constants(nodes: dict[str, Any], registry: Registry) -> dict[str, Any]:
    """Links from primitive nodes replaced by their values; the primitives left out."""
    constants: dict[tuple[str, str], Any] = {}
    for nid, entry in nodes.items():
        spec = registry.nodes.get(entry.type)
        for output, name in (spec.constant_outputs if spec else {}).items():
            default = spec.inputs[name].default  # type: ignore[union-attr]
            constants[(nid, output)] = entry.inputs.get(name, default)
    if not constants:
        return nodes
    folded = {}
    for nid, entry in nodes.items():
        if any(key[0] == nid for key in constants):
            continue
        inputs = {
            name: constants.get(link, value) if (link := as_link(value)) else value
            for name, value in entry.inputs.items()
        }
        folded[nid] = entry.model_copy(update={"inputs": inputs})
    return folded
