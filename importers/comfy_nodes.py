"""ComfyUI's core nodes, one converter each, onto this engine's nodes.

A converter reads one ComfyUI node (API form: literal inputs and ``[source_id, output_index]``
links) and returns our node(s) plus what each of its outputs becomes. What has no equivalent
is recorded on the node (``ComfyNode.refuse``), so one import lists every problem at once.
The UI format's widget order for the same nodes is in ``comfy_widgets``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# ComfyUI sampler/scheduler names -> ours (None: no equivalent)
SAMPLERS = {
    "euler": "euler",
    "euler_ancestral": "euler_ancestral",
    "heun": "heun",
    "dpm_2": "dpm_2",
    "dpm_2_ancestral": "dpm_2_ancestral",
    "lms": "lms",
    "dpmpp_2m": "dpmpp_2m",
    "dpmpp_2m_sde": "dpmpp_2m_sde",
    "ddim": "ddim",
    "uni_pc": "unipc",
}
SCHEDULES = ("normal", "karras", "exponential", "simple", "sgm_uniform", "ddim_uniform", "beta")
# samplers our Sample runs with convention "comfyui" (ComfyUI's sigmas, noise and timesteps:
# nodes/sd/comfy_sampling.py); the others run on diffusers' own schedules, which differ
COMFY_CONVENTION = ("euler", "euler_ancestral", "dpmpp_2m", "ddim")
DIFFUSERS_SCHEDULES = ("normal", "karras", "exponential")

# our settings ComfyUI's nodes lack, kept in a node's _meta by our export
META_KEY = "sdgraph_inputs"


@dataclass(frozen=True)
class ComfyRef:
    """A link in ComfyUI terms, resolved to one of ours once every node is converted."""

    node: str
    index: int


@dataclass
class ComfyNode:
    """One ComfyUI node being converted, with the problems found on it."""

    id: str
    class_type: str
    inputs: dict[str, Any]
    problems: list[tuple[str | None, str]] = field(default_factory=list)

    def refuse(self, message: str, name: str | None = None) -> None:
        self.problems.append((name, message))

    def value(self, name: str) -> Any:
        """A literal input (links to primitives are already inlined)."""
        if name not in self.inputs:
            self.refuse(f"input {name} is missing", name)
            return None
        v = self.inputs[name]
        if is_link(v):
            self.refuse(f"input {name} is linked to a node that is not a primitive value", name)
            return None
        return v

    def link(self, name: str) -> ComfyRef | None:
        v = self.inputs.get(name)
        if not is_link(v):
            self.refuse(f"input {name} is not connected", name)
            return None
        return ComfyRef(str(v[0]), int(v[1]))


def is_link(v: Any) -> bool:
    return (
        isinstance(v, list)
        and len(v) == 2
        and isinstance(v[0], (str, int))
        and isinstance(v[1], int)
        and not isinstance(v[1], bool)
    )


# What one ComfyUI output becomes: our (node, output), a pass-through ComfyRef, or a reason
# it has no equivalent.
Output = tuple[str, str] | ComfyRef | str
Converted = tuple[dict[str, dict[str, Any]], list[Output]]


@dataclass
class Context:
    """Shared by the converters of one import: id allocation and notes for the user."""

    taken: set[str]
    warnings: list[str] = field(default_factory=list)

    def new_id(self, base: str) -> str:
        candidate, n = base, 2
        while candidate in self.taken:
            candidate, n = f"{base}_{n}", n + 1
        self.taken.add(candidate)
        return candidate


def _sampler_settings(n: ComfyNode, ctx: Context, seed_name: str) -> dict[str, Any]:
    sampler = n.value("sampler_name")
    schedule = n.value("scheduler")
    convention = "comfyui" if sampler in COMFY_CONVENTION else "diffusers"
    if sampler is not None and sampler not in SAMPLERS:
        n.refuse(f"sampler {sampler!r} has no equivalent (ours: {', '.join(SAMPLERS)})", "sampler")
    elif schedule is not None and schedule not in SCHEDULES:
        n.refuse(
            f"scheduler {schedule!r} has no equivalent (ours: {', '.join(SCHEDULES)})", "scheduler"
        )
    elif convention == "diffusers" and sampler is not None:
        if schedule not in DIFFUSERS_SCHEDULES:
            n.refuse(
                f"scheduler {schedule!r} with sampler {sampler!r} has no equivalent (ComfyUI's "
                f"schedules run here with {', '.join(COMFY_CONVENTION)})",
                "scheduler",
            )
        ctx.warnings.append(
            f"node {n.id}: sampler {sampler} runs on diffusers' {schedule} schedule here, not "
            f"ComfyUI's; the picture will differ from ComfyUI's"
        )
    return {
        "seed": n.value(seed_name),
        "steps": n.value("steps"),
        "cfg": n.value("cfg"),
        "sampler": SAMPLERS.get(sampler, sampler),
        "schedule": schedule,
        "convention": convention,
    }


def _ksampler(n: ComfyNode, ctx: Context) -> Converted:
    inputs = {
        "model": n.link("model"),
        "positive": n.link("positive"),
        "negative": n.link("negative"),
        "latent": n.link("latent_image"),
        **_sampler_settings(n, ctx, "seed"),
        "denoise": n.value("denoise"),
    }
    return {n.id: {"type": "Sample", "inputs": inputs}}, [(n.id, "latent")]


def _ksampler_advanced(n: ComfyNode, ctx: Context) -> Converted:
    steps = n.value("steps")
    checks = [
        ("add_noise", "enable", "sampling without added noise"),
        ("start_at_step", 0, "starting at a later step"),
        ("return_with_leftover_noise", "disable", "returning leftover noise"),
    ]
    for name, wanted, what in checks:
        got = n.value(name)
        if got is not None and got != wanted:
            n.refuse(f"{what} ({name} {got!r}) has no equivalent", name)
    end = n.value("end_at_step")
    if isinstance(end, int) and isinstance(steps, int) and end < steps:
        n.refuse(f"stopping early (end_at_step {end} < steps {steps}) has no equivalent", "end")
    inputs = {
        "model": n.link("model"),
        "positive": n.link("positive"),
        "negative": n.link("negative"),
        "latent": n.link("latent_image"),
        **_sampler_settings(n, ctx, "noise_seed"),
        "denoise": 1.0,
    }
    return {n.id: {"type": "Sample", "inputs": inputs}}, [(n.id, "latent")]


def _checkpoint(n: ComfyNode, ctx: Context) -> Converted:
    node = {"type": "LoadCheckpoint", "inputs": {"name": n.value("ckpt_name")}}
    return {n.id: node}, [(n.id, "model"), (n.id, "clip"), (n.id, "vae")]


def _text_encode(n: ComfyNode, ctx: Context) -> Converted:
    """One CLIPTextEncode is our Tokenize -> EncodeText pair."""
    text, clip = n.value("text"), n.link("clip")  # embedding:NAME is our syntax too
    tokens = ctx.new_id(f"{n.id}_tokens")
    return {
        tokens: {"type": "Tokenize", "inputs": {"clip": clip, "text": text}},
        n.id: {
            "type": "EncodeText",
            "inputs": {"clip": clip, "tokens": {"node": tokens, "output": "tokens"}},
        },
    }, [(n.id, "conditioning")]


def _encode_chain(
    n: ComfyNode, ctx: Context, text: Any, text_2: Any, sizes: dict[str, Any]
) -> Converted:
    """Tokenize -> EncodeText -> SizeConditioning, the last keeping the ComfyUI id."""
    clip = n.link("clip")
    tokens, encode = ctx.new_id(f"{n.id}_tokens"), ctx.new_id(f"{n.id}_encode")
    return {
        tokens: {"type": "Tokenize", "inputs": {"clip": clip, "text": text, "text_2": text_2}},
        encode: {
            "type": "EncodeText",
            "inputs": {"clip": clip, "tokens": {"node": tokens, "output": "tokens"}},
        },
        n.id: {
            "type": "SizeConditioning",
            "inputs": {"conditioning": {"node": encode, "output": "conditioning"}, **sizes},
        },
    }, [(n.id, "conditioning")]


def _text_encode_sdxl(n: ComfyNode, ctx: Context) -> Converted:
    """text_l is CLIP-L's prompt (our text, diffusers' prompt), text_g OpenCLIP bigG's
    (our text_2, diffusers' prompt_2); the same text twice needs no text_2."""
    text_l, text_g = n.value("text_l"), n.value("text_g")
    sizes = {
        ours: n.value(theirs)
        for ours, theirs in (
            ("original_width", "width"),
            ("original_height", "height"),
            ("crop_left", "crop_w"),
            ("crop_top", "crop_h"),
            ("target_width", "target_width"),
            ("target_height", "target_height"),
        )
    }
    return _encode_chain(n, ctx, text_l, "" if text_g == text_l else text_g, sizes)


def _text_encode_sdxl_refiner(n: ComfyNode, ctx: Context) -> Converted:
    """The refiner's one encoder (bigG) reads text; width/height are the original size."""
    sizes = {
        "aesthetic_score": n.value("ascore"),
        "original_width": n.value("width"),
        "original_height": n.value("height"),
    }
    return _encode_chain(n, ctx, n.value("text"), "", sizes)


def _clip_set_last_layer(n: ComfyNode, ctx: Context) -> Converted:
    """stop_at_clip_layer -1 is the plain CLIP; -n is our ClipSkip(skip=n) (A1111's numbers)."""
    layer, clip = n.value("stop_at_clip_layer"), n.link("clip")
    if layer == -1:
        return {}, [clip or "no clip"]
    if not isinstance(layer, int) or isinstance(layer, bool) or not -24 <= layer <= -2:
        n.refuse(
            f"stop_at_clip_layer {layer} is not a layer from the end (-1..-24)",
            "stop_at_clip_layer",
        )
        return {}, ["no clip"]
    return {n.id: {"type": "ClipSkip", "inputs": {"clip": clip, "skip": -layer}}}, [(n.id, "clip")]


def _lora_loader(n: ComfyNode, ctx: Context) -> Converted:
    inputs = {
        "model": n.link("model"),
        "clip": n.link("clip"),
        "name": n.value("lora_name"),
        "strength_model": n.value("strength_model"),
        "strength_clip": n.value("strength_clip"),
    }
    return {n.id: {"type": "LoadLoRA", "inputs": inputs}}, [(n.id, "model"), (n.id, "clip")]


def _lora_loader_model_only(n: ComfyNode, ctx: Context) -> Converted:
    inputs = {
        "model": n.link("model"),
        "name": n.value("lora_name"),
        "strength_model": n.value("strength_model"),
    }
    return {n.id: {"type": "LoadLoRAModel", "inputs": inputs}}, [(n.id, "model")]


def _vae_loader(n: ComfyNode, ctx: Context) -> Converted:
    return {n.id: {"type": "LoadVAE", "inputs": {"name": n.value("vae_name")}}}, [(n.id, "vae")]


def _empty_latent(n: ComfyNode, ctx: Context) -> Converted:
    inputs = {k: n.value(k) for k in ("width", "height", "batch_size")}
    return {n.id: {"type": "EmptyLatent", "inputs": inputs}}, [(n.id, "latent")]


def _resize(our_type: str, source: str, target: str, names: tuple[str, ...]) -> Any:
    """A converter for ComfyUI's resize nodes: the same inputs under the same names."""

    def convert(n: ComfyNode, ctx: Context) -> Converted:
        inputs = {target: n.link(source), **{k: n.value(k) for k in names}}
        return {n.id: {"type": our_type, "inputs": inputs}}, [(n.id, target)]

    return convert


def _vae_decode(n: ComfyNode, ctx: Context) -> Converted:
    inputs = {"vae": n.link("vae"), "latent": n.link("samples")}
    return {n.id: {"type": "VAEDecode", "inputs": inputs}}, [(n.id, "image")]


def _vae_encode(n: ComfyNode, ctx: Context) -> Converted:
    inputs = {"vae": n.link("vae"), "image": n.link("pixels")}
    return {n.id: {"type": "VAEEncode", "inputs": inputs}}, [(n.id, "latent")]


def _load_image(n: ComfyNode, ctx: Context) -> Converted:
    name = n.value("image")
    if isinstance(name, str) and name.endswith(" [input]"):
        name = name.removesuffix(" [input]")
    node = {"type": "LoadImage", "inputs": {"file": name}}
    return {n.id: node}, [(n.id, "image"), "the MASK output (alpha channel) has no equivalent"]


def _save_image(n: ComfyNode, ctx: Context) -> Converted:
    inputs = {"image": n.link("images"), "filename_prefix": n.value("filename_prefix")}
    return {n.id: {"type": "SaveImage", "inputs": inputs}}, []


def _preview_image(n: ComfyNode, ctx: Context) -> Converted:
    return {n.id: {"type": "PreviewImage", "inputs": {"image": n.link("images")}}}, []


CONVERTERS: dict[str, Callable[[ComfyNode, Context], Converted]] = {
    "CheckpointLoaderSimple": _checkpoint,
    "CLIPTextEncode": _text_encode,
    "CLIPSetLastLayer": _clip_set_last_layer,
    "CLIPTextEncodeSDXL": _text_encode_sdxl,
    "CLIPTextEncodeSDXLRefiner": _text_encode_sdxl_refiner,
    "LoraLoader": _lora_loader,
    "LoraLoaderModelOnly": _lora_loader_model_only,
    "VAELoader": _vae_loader,
    "EmptyLatentImage": _empty_latent,
    "KSampler": _ksampler,
    "KSamplerAdvanced": _ksampler_advanced,
    "VAEDecode": _vae_decode,
    "VAEEncode": _vae_encode,
    "LoadImage": _load_image,
    "SaveImage": _save_image,
    "PreviewImage": _preview_image,
    "LatentUpscale": _resize(
        "LatentUpscale", "samples", "latent", ("upscale_method", "width", "height", "crop")
    ),
    "LatentUpscaleBy": _resize(
        "LatentUpscaleBy", "samples", "latent", ("upscale_method", "scale_by")
    ),
    "ImageScale": _resize(
        "ImageScale", "image", "image", ("upscale_method", "width", "height", "crop")
    ),
}

# Core nodes we know but cannot map yet: what the user is told.
NO_EQUIVALENT: dict[str, str] = {}
