"""Progress previews: a small JPEG data URL that fits in a websocket message."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image


def preview_data_url(preview: Any, max_side: int = 256, quality: int = 80) -> str | None:
    """Encode a PIL image (or an HxWx3 uint8 array) as ``data:image/jpeg;base64,...``."""
    if preview is None:
        return None
    if not isinstance(preview, Image.Image):
        try:
            preview = Image.fromarray(preview)
        except Exception:
            return None
    image = preview.convert("RGB")
    if max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
