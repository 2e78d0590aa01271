"""Workflow files from elsewhere: ComfyUI (API and UI JSON, PNGs) and A1111/Forge PNGs.

Torch-free, like ``graph/``. One entry point per input kind:
- ``import_document(data)``: a decoded JSON document in any format we read;
- ``import_bytes(raw)``: a file's bytes (JSON text or a PNG with text chunks);
- ``export_comfyui_api(workflow, defaults, registry)``: ours -> ComfyUI API format.
Each returns our ``Workflow`` plus the source format and warnings, or raises
``ImportRefused`` (a ``WorkflowFormatError``) listing every node that has no equivalent.
"""

from importers.errors import ImportRefused
from importers.export import export_comfyui_api
from importers.sniff import ImportResult, import_bytes, import_document, import_file

__all__ = [
    "ImportRefused",
    "ImportResult",
    "export_comfyui_api",
    "import_bytes",
    "import_document",
    "import_file",
]
