"""ComfyUI's UI format: the names behind each core node's ``widgets_values``, in order,
and which nodes only hold a literal (primitives)."""

from __future__ import annotations

# UI format: the names behind widgets_values, in order. "control_after_generate" is the
# frontend's extra entry after a seed widget; "upload" is LoadImage's upload button.
CONTROL = "control_after_generate"
WIDGETS: dict[str, list[str]] = {
    "CheckpointLoaderSimple": ["ckpt_name"],
    "CLIPTextEncode": ["text"],
    "CLIPTextEncodeSDXL": [
        "width",
        "height",
        "crop_w",
        "crop_h",
        "target_width",
        "target_height",
        "text_g",
        "text_l",
    ],
    "CLIPTextEncodeSDXLRefiner": ["ascore", "width", "height", "text"],
    "CLIPSetLastLayer": ["stop_at_clip_layer"],
    "LoraLoader": ["lora_name", "strength_model", "strength_clip"],
    "LoraLoaderModelOnly": ["lora_name", "strength_model"],
    "VAELoader": ["vae_name"],
    "EmptyLatentImage": ["width", "height", "batch_size"],
    "KSampler": ["seed", CONTROL, "steps", "cfg", "sampler_name", "scheduler", "denoise"],
    "KSamplerAdvanced": [
        "add_noise",
        "noise_seed",
        CONTROL,
        "steps",
        "cfg",
        "sampler_name",
        "scheduler",
        "start_at_step",
        "end_at_step",
        "return_with_leftover_noise",
    ],
    "VAEDecode": [],
    "VAEEncode": [],
    "LoadImage": ["image", "upload"],
    "SaveImage": ["filename_prefix"],
    "PreviewImage": [],
    "LatentUpscale": ["upscale_method", "width", "height", "crop"],
    "LatentUpscaleBy": ["upscale_method", "scale_by"],
    "ImageScale": ["upscale_method", "width", "height", "crop"],
    "PrimitiveInt": ["value", CONTROL],
    "PrimitiveFloat": ["value"],
    "PrimitiveString": ["value"],
    "PrimitiveStringMultiline": ["value"],
    "PrimitiveBoolean": ["value"],
}
# API-format nodes that only hold a literal: links to them become that literal
PRIMITIVES = {
    "PrimitiveInt",
    "PrimitiveFloat",
    "PrimitiveString",
    "PrimitiveStringMultiline",
    "PrimitiveBoolean",
}
