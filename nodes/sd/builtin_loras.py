"""Shipped LoRAs: every ``builtin_models/loras/*.safetensors`` is the LoRA
``builtin/<stem>`` (listed before the files of ``models/loras/``), as shipped
checkpoints are ``builtin/<stem>``. Like those, they travel with the code, so workflows
name them without a content hash (model_index skips ``builtin/`` names)."""

from __future__ import annotations

from pathlib import Path

from nodes.sd.checkpoints import BUILTIN_MODELS_DIR, builtin_files

BUILTIN_LORAS_DIR = BUILTIN_MODELS_DIR / "loras"  # a subfolder: never listed as a checkpoint


def builtin_loras() -> dict[str, Path]:
    """{"builtin/<stem>": path} of the shipped LoRA files, sorted."""
    return builtin_files(BUILTIN_LORAS_DIR)
