"""What A1111/Forge adds around a plain txt2img: LoRA tags, clip skip and the hires fix.

- ``<lora:NAME:W>`` (also ``<lora:NAME:TE:UNET>``, ``te=``/``unet=``, and ``<lyco:...>``) in
  the prompt: a LoadLoRA per tag, chained in prompt order; the tags leave the prompt text.
  A1111's ``Lora hashes`` field gives each file's short hash (kohya's sha256 of a
  .safetensors file's tensor data, first 12 hex digits), recorded in the workflow's
  ``models`` section so `model_index` finds the file under any name.
- ``Clip skip: N`` (N > 1): a ClipSkip after the LoRAs.
- The hires fix: the first pass's latent scaled by ``Hires upscale`` (or to ``Hires resize``)
  with one of A1111's latent upscalers, then a second Sample at ``Denoising strength`` for
  ``Hires steps`` (0: the first pass's steps). Image-space upscalers (ESRGAN, ...) are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from graph.validate import Problem

NETWORK_TAG = re.compile(r"<(lora|lyco|hypernet):([^>]*)>")
# A1111's latent upscalers (modules/shared_items.py latent_upscale_modes) -> our methods
LATENT_UPSCALERS = {
    "Latent": "bilinear",
    "Latent (bicubic)": "bicubic",
    "Latent (nearest-exact)": "nearest-exact",
}
HIRES_HANDLED = {
    "Hires upscale",
    "Hires resize",
    "Hires steps",
    "Hires upscaler",
    "Hires sampler",
    "Hires schedule type",
    "Hires CFG Scale",
}
HIRES_REFUSED = ("Hires prompt", "Hires negative prompt", "Hires checkpoint")


@dataclass
class Lora:
    name: str
    strength_model: float
    strength_clip: float


@dataclass
class Extras:
    """The parts found in one parameters text, and the prompts without their tags."""

    prompt: str
    negative: str
    loras: list[Lora] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def refuse(self, key: str, what: str) -> None:
        self.problems.append(Problem(None, key, "no_equivalent", f"{key}: {what}"))


def _strengths(args: list[str]) -> tuple[float, float] | None:
    """(unet, text encoder) multipliers of a tag's arguments: positional te[:unet] or
    named te=/unet=; unet defaults to te, te to 1."""
    named = dict(a.split("=", 1) for a in args if "=" in a)
    positional = [a for a in args if "=" not in a]
    try:
        te = float(named.get("te", positional[0] if positional else 1.0))
        unet = float(named.get("unet", positional[1] if len(positional) > 1 else te))
    except ValueError:
        return None
    return unet, te


def _without_tags(text: str) -> str:
    """The prompt as A1111 encodes it: the tags cut out (the text around them stays, as
    A1111 leaves it), with the space a tag leaves before a comma or at a line end tidied."""
    if not NETWORK_TAG.search(text):
        return text
    text = NETWORK_TAG.sub("", text)
    text = re.sub(r"[ \t]+,", ",", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return "\n".join(line.strip() for line in text.splitlines()).strip()


def parse_extras(prompt: str, negative: str) -> Extras:
    out = Extras(_without_tags(prompt), _without_tags(negative))
    for m in NETWORK_TAG.finditer(prompt):
        kind, (name, *args) = m.group(1), m.group(2).split(":")
        if kind == "hypernet":
            out.refuse("prompt", f"hypernetwork {name!r} has no equivalent")
            continue
        strengths = _strengths(args)
        if strengths is None:
            out.refuse("prompt", f"{m.group(0)}: the weights are not numbers")
            continue
        out.loras.append(Lora(name.strip(), *strengths))
    if NETWORK_TAG.search(negative):
        out.refuse("Negative prompt", "LoRA tags in the negative prompt have no equivalent")
    return out


def lora_hashes(text: str | None) -> dict[str, str]:
    """``"name: hash, name2: hash2"`` -> {name: lowercase hash}."""
    out = {}
    for part in (text or "").split(","):
        name, _, short = part.rpartition(":")
        if name.strip() and re.fullmatch(r"[0-9a-fA-F]{8,64}", short.strip()):
            out[name.strip()] = short.strip().lower()
    return out


def ti_hashes(text: str | None) -> dict[str, str]:
    """``"name: hash, ..."`` -> {name: AutoV2 hash} (A1111's embedding hash is the file's
    sha256, of which it writes 12 hex digits; AutoV2 is the first 10)."""
    return {name: short[:10] for name, short in lora_hashes(text).items() if len(short) >= 10}


def name_embeddings(text: str, names: dict[str, str]) -> str:
    """A1111 names an embedding by its bare name in the prompt; ours says embedding:NAME."""
    for name in names:
        text = re.sub(rf"(?<![\w:]){re.escape(name)}(?![\w])", f"embedding:{name}", text)
    return text


def embedding_refs(nodes: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """models entries (by AutoV2 hash) for the embeddings each Tokenize's prompt names."""
    refs = {}
    for nid, node in nodes.items():
        if node["type"] != "Tokenize":
            continue
        for name, short in names.items():
            if f"embedding:{name}" in node["inputs"]["text"]:
                refs[f"{nid}.text:{name}"] = {"kind": "embeddings", "name": name, "autov2": short}
    return refs


def add_loras(
    nodes: dict[str, Any], models: dict[str, Any], loras: list[Lora], hashes: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """LoadLoRA nodes chained from the checkpoint; (model link, clip link) at the end."""
    model = {"node": "checkpoint", "output": "model"}
    clip = {"node": "checkpoint", "output": "clip"}
    for i, lora in enumerate(loras, start=1):
        nid = f"lora{i}"
        file = lora.name if "." in lora.name.rsplit("/", 1)[-1] else f"{lora.name}.safetensors"
        nodes[nid] = {
            "type": "LoadLoRA",
            "inputs": {
                "model": model,
                "clip": clip,
                "name": file,
                "strength_model": lora.strength_model,
                "strength_clip": lora.strength_clip,
            },
        }
        # by hash where A1111 gave one, else by name (model_index: any folder, any extension)
        ref = {"kind": "loras", "name": file, "addnet": hashes.get(lora.name)}
        models[f"{nid}.name"] = {k: v for k, v in ref.items() if v}
        model, clip = {"node": nid, "output": "model"}, {"node": nid, "output": "clip"}
    return model, clip


def hires_pass(
    s: dict[str, str],
    extras: Extras,
    first: dict[str, Any],
    size: tuple[int, int],
    samplers: dict[str, str],
    schedules: dict[str, str],
) -> dict[str, Any] | None:
    """{"upscale": node, "hires": node} for the hires fix, or None without one."""
    if not any(k.startswith("Hires") for k in s):
        return None
    for key in HIRES_REFUSED:
        if s.get(key, "").strip():
            extras.refuse(key, "a separate hires-pass prompt or checkpoint has no equivalent")
    upscaler = s.get("Hires upscaler", "Latent")
    method = LATENT_UPSCALERS.get(upscaler)
    if method is None:
        kind = "latent upscaler" if upscaler.startswith("Latent") else "image upscaler"
        extras.refuse(
            "Hires upscaler",
            f"the {kind} {upscaler!r} has no equivalent (ours: {', '.join(LATENT_UPSCALERS)}); "
            "image-space upscalers such as ESRGAN are not supported",
        )
    latent = {"node": "sample", "output": "latent"}
    resize = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", s.get("Hires resize", ""))
    if resize and int(resize.group(1)) and int(resize.group(2)):
        w, h = int(resize.group(1)), int(resize.group(2))
        upscale = {
            "type": "LatentUpscale",
            "inputs": {"latent": latent, "upscale_method": method, "width": w, "height": h},
        }
    else:
        try:
            scale = float(s.get("Hires upscale", "2"))
        except ValueError:
            extras.refuse("Hires upscale", "not a number")
            scale = 2.0
        # A1111 scales the pixel size (int(width * scale)); in whole latent cells of 8 px
        upscale = {
            "type": "LatentUpscale",
            "inputs": {
                "latent": latent,
                "upscale_method": method,
                "width": int(size[0] * scale),
                "height": int(size[1] * scale),
            },
        }
        if int(size[0] * scale) % 8 == 0 and int(size[1] * scale) % 8 == 0:
            by = {"latent": latent, "upscale_method": method, "scale_by": scale}
            upscale = {"type": "LatentUpscaleBy", "inputs": by}
    second = dict(first, latent={"node": "upscale", "output": "latent"})
    second["denoise"] = _float(s, "Denoising strength", 0.7, extras)
    steps = int(_float(s, "Hires steps", 0, extras))
    if steps > 0:
        second["steps"] = steps
    if "Hires CFG Scale" in s:
        second["cfg"] = _float(s, "Hires CFG Scale", first["cfg"], extras)
    sampler = s.get("Hires sampler")
    if sampler and sampler != "Use same sampler":
        if sampler not in samplers:
            extras.refuse("Hires sampler", f"{sampler!r} has no equivalent")
        second["sampler"] = samplers.get(sampler, first["sampler"])
    schedule = s.get("Hires schedule type")
    if schedule and schedule != "Use same scheduler":
        if schedule not in schedules:
            extras.refuse("Hires schedule type", f"{schedule!r} has no equivalent")
        second["schedule"] = schedules.get(schedule, first["schedule"])
    return {"upscale": upscale, "hires": {"type": "Sample", "inputs": second}}


def _float(s: dict[str, str], key: str, default: float, extras: Extras) -> float:
    try:
        return float(s.get(key, default))
    except ValueError:
        extras.refuse(key, "not a number")
        return default
