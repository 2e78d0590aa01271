"""Loading a LoRA file for a model and CLIP: parsed once per (file, model), held in the
model store (within its budget, evicted like any model, read again on use), and added to
new handles as patches (`lora_patch`), never merged into the shared modules."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from graph.models import ComponentRef, ModelStore
from nodes.sd.addon_files import AddonError, read_addon, resolve_addon
from nodes.sd.handles import ClipHandle, ModelHandle
from nodes.sd.lora_keys import ParsedLora, module_aliases, parse_lora
from nodes.sd.lora_patch import LoraPatch
from nodes.sd.unet_compile import base_module

CACHE_TAG = "sd.lora"
SHOW_UNMATCHED = 5  # first unmatched key names shown in the warning


def _targets(model: ModelHandle, clip: ClipHandle | None) -> dict[str, Any]:
    if clip is None:  # the model alone (LoadLoRAModel): text-encoder keys stay unmatched
        return {"unet": base_module(model.unet)}
    out = {"unet": base_module(model.unet), "text_encoder": clip.text_encoder}
    second = getattr(clip, "text_encoder_2", None)
    if second is not None:
        out["text_encoder_2"] = second
    return out


def load_lora(
    workspace: Any,
    store: ModelStore,
    name: str,
    model: ModelHandle,
    clip: ClipHandle | None,
) -> tuple[ComponentRef, ParsedLora]:
    """The parsed LoRA (in the store) for this model and CLIP. AddonError naming the file
    when it cannot be read or nothing in it matches the model."""
    file = resolve_addon(workspace, "loras", name)
    ident = file.identity
    clip_id = clip.identity if clip is not None else None
    key = (CACHE_TAG, ident.path, ident.size, ident.mtime_ns, model.identity, clip_id)

    def loader() -> None:
        if file.identity != ident:
            raise AddonError(f"{file.label}: the file changed since it was loaded; run again")
        tensors, meta = read_addon(file, workspace)
        aliases = {c: module_aliases(c, m) for c, m in _targets(model, clip).items()}
        parsed = parse_lora(tensors, meta, aliases)
        if not parsed.count:
            raise AddonError(
                f"{file.label}: none of its {len(tensors)} keys match this model's layers "
                f"(first: {', '.join(sorted(tensors)[:SHOW_UNMATCHED])}); is it a LoRA for "
                "another model family?"
            )
        store.put(key, parsed, parsed.nbytes, "cpu", f"lora:{name}", kind="lora")

    ref = ComponentRef(store, key, loader)
    return ref, ref.get()


def unmatched_warning(name: str, parsed: ParsedLora) -> str | None:
    if not parsed.unmatched:
        return None
    first = ", ".join(parsed.unmatched[:SHOW_UNMATCHED])
    return (
        f"LoRA {name!r}: {len(parsed.unmatched)} keys match no layer of this model and were "
        f"ignored (first: {first})"
    )


def with_lora(
    model: ModelHandle,
    clip: ClipHandle | None,
    ref: ComponentRef,
    parsed: ParsedLora,
    name: str,
    strength_model: float,
    strength_clip: float,
) -> tuple[ModelHandle, ClipHandle | None]:
    """New handles that apply the LoRA (after any they already apply)."""
    unet = LoraPatch(ref, strength_model, "unet", name)
    text = tuple(
        LoraPatch(ref, strength_clip, c, name)
        for c in ("text_encoder", "text_encoder_2")
        if c in parsed.layers
    )
    new_model = replace(model, patches=(*model.patches, unet)) if "unet" in parsed.layers else model
    new_clip = replace(clip, patches=(*clip.patches, *text)) if text else clip
    return new_model, new_clip
