"""Read the text chunks of a PNG (where SaveImage embeds the workflow)."""

from __future__ import annotations

import io

from PIL import Image


def read_png_text(data: bytes) -> dict[str, str]:
    """The tEXt/iTXt/zTXt chunks of a PNG as a dict; {} when there are none."""
    with Image.open(io.BytesIO(data)) as im:
        text = getattr(im, "text", None) or {}
        return {str(k): str(v) for k, v in text.items()}
