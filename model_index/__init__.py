"""Model files by content: the hash index and the resolution of workflow references.

Torch-free: it reads file bytes and safetensors headers only."""

from model_index.index import KINDS, ModelFile, ModelIndex, index_for
from model_index.resolve import complete_models, model_inputs, record_models, resolve_models

__all__ = [
    "KINDS",
    "ModelFile",
    "ModelIndex",
    "complete_models",
    "index_for",
    "model_inputs",
    "record_models",
    "resolve_models",
]
