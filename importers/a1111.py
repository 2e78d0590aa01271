"""A1111/Forge ``parameters`` text (PNG chunk) -> our txt2img (or img2img) workflow.

Layout: the prompt, an optional ``Negative prompt: ...`` (both may span lines), then one
line ``Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1,
Size: 512x512, Model hash: <10 hex>, Model: name, ...``. LoRA tags, clip skip and the hires
fix become nodes, embeddings of ``TI hashes`` our ``embedding:NAME`` (`a1111_extras`);
settings we cannot reproduce (image-space upscalers, hypernetworks, unknown samplers) refuse
the import, naming each one.
"""

from __future__ import annotations

import json
import re
from typing import Any

from graph.validate import Problem
from importers.a1111_extras import (
    HIRES_HANDLED,
    add_loras,
    embedding_refs,
    hires_pass,
    lora_hashes,
    name_embeddings,
    parse_extras,
    ti_hashes,
)
from importers.errors import ImportRefused

# A1111's own pattern for the settings line (modules/infotext_utils.py)
PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
SAMPLERS = {
    "Euler": "euler",
    "Euler a": "euler_ancestral",
    "Heun": "heun",
    "DPM2": "dpm_2",
    "DPM2 a": "dpm_2_ancestral",
    "LMS": "lms",
    "DPM++ 2M": "dpmpp_2m",
    "DPM++ 2M SDE": "dpmpp_2m_sde",
    "DDIM": "ddim",
    "UniPC": "unipc",
}
SCHEDULES = {
    "Automatic": "normal",
    "Uniform": "normal",
    "Karras": "karras",
    "Exponential": "exponential",
}
IGNORED = {
    "Version",
    "Model",
    "Model hash",
    "VAE hash",
    "VAE",
    "ENSD",
    "Eta",
    "RNG",
    "Token merging ratio",
    "Emphasis",
    "Schedule type",
    "Sampler",
    "Steps",
    "CFG scale",
    "Seed",
    "Size",
    "Denoising strength",
    "Clip skip",
    "Module 1",
    "Lora hashes",
    "TI hashes",
    *HIRES_HANDLED,
}


def looks_like_parameters(text: str) -> bool:
    return any(line.startswith("Steps: ") for line in text.splitlines())


def parse_parameters(text: str) -> tuple[str, str, dict[str, str]]:
    """(prompt, negative prompt, settings) of a parameters text."""
    lines = text.strip().splitlines()
    settings_at = max(i for i, line in enumerate(lines) if line.startswith("Steps: "))
    prompt: list[str] = []
    negative: list[str] = []
    target = prompt
    for line in lines[:settings_at]:
        if line.startswith("Negative prompt:"):
            target = negative
            line = line.removeprefix("Negative prompt:").lstrip()
        target.append(line)
    settings: dict[str, str] = {}
    for key, value in PARAM.findall(lines[settings_at]):
        value = value.strip()
        if value.startswith('"') and value.endswith('"'):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = value[1:-1]
        settings[key.strip()] = value
    return "\n".join(prompt).strip(), "\n".join(negative).strip(), settings


def _number(settings: dict[str, str], key: str, kind: type, problems: list[Problem]) -> Any:
    try:
        return kind(settings[key])
    except (KeyError, ValueError):
        problems.append(Problem(None, key, "bad_format", f"{key}: missing or not a number"))
        return None


def convert_parameters(text: str) -> tuple[dict[str, Any], list[str]]:
    """(our workflow document, warnings); ImportRefused naming each setting we lack."""
    prompt, negative, s = parse_parameters(text)
    problems: list[Problem] = []
    warnings: list[str] = []

    def refuse(key: str, what: str) -> None:
        problems.append(Problem(None, key, "no_equivalent", f"{key}: {what}"))

    sampler_text = s.get("Sampler", "Euler")
    schedule_text = s.get("Schedule type")
    if schedule_text is None and sampler_text.endswith(" Karras"):  # before A1111 1.9
        sampler_text, schedule_text = sampler_text.removesuffix(" Karras"), "Karras"
    if schedule_text is None and sampler_text.endswith(" Exponential"):
        sampler_text, schedule_text = sampler_text.removesuffix(" Exponential"), "Exponential"
    sampler = SAMPLERS.get(sampler_text)
    if sampler is None:
        refuse("Sampler", f"{sampler_text!r} has no equivalent (ours: {', '.join(SAMPLERS)})")
    schedule = SCHEDULES.get(schedule_text or "Automatic")
    if schedule is None:
        refuse("Schedule type", f"{schedule_text!r} has no equivalent")
    extras = parse_extras(prompt, negative)
    prompt, negative = extras.prompt, extras.negative
    clip_skip = s.get("Clip skip", "1").strip()
    if not re.fullmatch(r"\d{1,2}", clip_skip) or int(clip_skip) > 24:
        refuse("Clip skip", f"clip skip {clip_skip} is not a layer count (1..24)")
        clip_skip = "1"
    embeddings = ti_hashes(s.get("TI hashes"))
    prompt, negative = name_embeddings(prompt, embeddings), name_embeddings(negative, embeddings)
    steps = _number(s, "Steps", int, problems)
    cfg = _number(s, "CFG scale", float, problems)
    seed = _number(s, "Seed", int, problems)
    size = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", s.get("Size", ""))
    if size is None:
        problems.append(Problem(None, "Size", "bad_format", "Size: missing or not WxH"))
    denoise = _number(s, "Denoising strength", float, []) if "Denoising strength" in s else None
    ignored = sorted(k for k in s if k not in IGNORED)
    if ignored:
        warnings.append("ignored settings: " + ", ".join(ignored))
    warnings.append("A1111 draws its noise differently; the picture will not match A1111's")
    name, short = s.get("Model"), s.get("Model hash")
    model = name or ""  # the models section's AutoV2 hash finds the file (model_index)
    width, height = (int(size.group(1)), int(size.group(2))) if size else (0, 0)
    sample_inputs: dict[str, Any] = {
        "model": {"node": "checkpoint", "output": "model"},
        "positive": {"node": "positive", "output": "conditioning"},
        "negative": {"node": "negative", "output": "conditioning"},
        "latent": {"node": "latent", "output": "latent"},
        "seed": seed,
        "steps": steps,
        "cfg": cfg,
        "sampler": sampler,
        "schedule": schedule,
        "denoise": 1.0,
    }
    nodes: dict[str, Any] = {"checkpoint": {"type": "LoadCheckpoint", "inputs": {"name": model}}}
    models: dict[str, Any] = {}
    sample_inputs["model"], clip = add_loras(
        nodes, models, extras.loras, lora_hashes(s.get("Lora hashes"))
    )
    if int(clip_skip) > 1:
        nodes["clip_skip"] = {"type": "ClipSkip", "inputs": {"clip": clip, "skip": int(clip_skip)}}
        clip = {"node": "clip_skip", "output": "clip"}
    nodes |= {
        "positive_tokens": {"type": "Tokenize", "inputs": {"clip": clip, "text": prompt}},
        "positive": {
            "type": "EncodeText",
            "inputs": {"clip": clip, "tokens": {"node": "positive_tokens", "output": "tokens"}},
        },
        "negative_tokens": {"type": "Tokenize", "inputs": {"clip": clip, "text": negative}},
        "negative": {
            "type": "EncodeText",
            "inputs": {"clip": clip, "tokens": {"node": "negative_tokens", "output": "tokens"}},
        },
        "latent": {
            "type": "EmptyLatent",
            "inputs": {"width": width, "height": height, "batch_size": 1},
        },
        "sample": {"type": "Sample", "inputs": sample_inputs},
        "decode": {
            "type": "VAEDecode",
            "inputs": {
                "vae": {"node": "checkpoint", "output": "vae"},
                "latent": {"node": "sample", "output": "latent"},
            },
        },
        "save": {
            "type": "SaveImage",
            "inputs": {"image": {"node": "decode", "output": "image"}, "filename_prefix": "a1111"},
        },
    }
    hires = hires_pass(s, extras, sample_inputs, (width, height), SAMPLERS, SCHEDULES)
    if problems or extras.problems:
        raise ImportRefused("A1111", problems + extras.problems)
    if hires is not None:  # txt2img + hires fix: Denoising strength is the second pass's
        nodes |= hires
        nodes["decode"]["inputs"]["latent"] = {"node": "hires", "output": "latent"}
    elif denoise is not None and denoise < 1.0:
        # img2img: the source picture is not in the file; the user picks it in LoadImage
        nodes["source"] = {"type": "LoadImage", "inputs": {"file": ""}}
        nodes["latent"] = {
            "type": "VAEEncode",
            "inputs": {
                "vae": {"node": "checkpoint", "output": "vae"},
                "image": {"node": "source", "output": "image"},
            },
        }
        sample_inputs["denoise"] = denoise
        warnings.append("img2img: choose the source picture in LoadImage (the file has none)")
    models |= embedding_refs(nodes, embeddings)
    if short and re.fullmatch(r"[0-9a-fA-F]{10}", short):
        models["checkpoint.name"] = {"kind": "checkpoints", "name": model, "autov2": short.lower()}
    doc: dict[str, Any] = {"version": 1, "nodes": nodes}
    if models:
        doc["models"] = models
    return doc, warnings
