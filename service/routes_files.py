"""Image files: confined downloads and content-checked uploads."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from PIL import Image, UnidentifiedImageError

from graph import jsondoc
from graph.pngmeta import PngTextError, read_png_text, without_text
from graph.workflow import WorkflowFormatError
from graph.workspace import PathOutsideFolder, is_regular_file
from importers.a1111 import looks_like_parameters
from importers.sniff import import_png_text
from service.errors import ApiError
from service.state import services

routes = web.RouteTableDef()
KINDS = ("output", "input", "temp")
UPLOAD_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
INLINE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
}


@routes.get("/api/files/{kind}/{name:.+}")
async def get_file(request: web.Request) -> web.StreamResponse:
    kind, name = request.match_info["kind"], request.match_info["name"]
    if kind not in KINDS:
        raise ApiError(404, "not_found", f"file kind must be one of {', '.join(KINDS)}")
    try:
        path = services(request).engine.workspace.file(kind, name)
    except PathOutsideFolder as exc:
        raise ApiError(400, "bad_path", str(exc)) from None
    if not path.is_file():
        raise ApiError(404, "not_found", f"no {kind} file {name!r}")
    response = web.FileResponse(path)
    mime = INLINE_TYPES.get(path.suffix.lower())
    if mime is None:  # never render anything but images inline (stored XSS)
        response.content_type = "application/octet-stream"
        response.headers["Content-Disposition"] = "attachment"
    else:
        response.content_type = mime
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "no-cache"
    return response


async def _read_part(request: web.Request, limit: int) -> tuple[bytes, str | None]:
    """The ``file`` field of a multipart form; every part read before it counts
    towards ``limit`` too (a chunked body has no Content-Length to check first)."""
    too_large = ApiError(413, "body_too_large", f"uploads are limited to {limit} bytes")
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise too_large
    if not request.content_type.startswith("multipart/"):
        raise ApiError(400, "bad_upload", "send multipart/form-data with a 'file' field")
    total = 0
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "bad_upload", "nested multipart forms are not accepted")
            wanted = part.name == "file"
            data = bytearray()
            while chunk := await part.read_chunk(1 << 16):
                total += len(chunk)
                if total > limit:
                    raise too_large
                if wanted:
                    data += chunk
            if wanted:
                return bytes(data), part.filename
    except (ValueError, AssertionError) as exc:  # aiohttp's reader on a malformed form
        raise ApiError(400, "bad_upload", f"the form cannot be read: {exc}") from None
    raise ApiError(400, "bad_upload", "the form has no 'file' field")


def inspect_image(data: bytes, max_pixels: int) -> tuple[str, int, int]:
    """(format, width, height) of an allowed, fully decodable image; raises ApiError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(without_text(data))) as im:  # text is read apart
                fmt, (w, h) = im.format or "", im.size
                if fmt not in UPLOAD_FORMATS:
                    raise ApiError(
                        415,
                        "unsupported_media_type",
                        f"{fmt or 'this'} images are not accepted; send PNG, JPEG or WebP",
                    )
                if w * h > max_pixels:
                    raise ApiError(
                        400, "image_too_large", f"{w}x{h} is over the limit of {max_pixels} pixels"
                    )
                im.load()  # decode now: truncated or corrupt files are refused here
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiError(400, "image_too_large", "the image declares too many pixels") from None
    except UnidentifiedImageError:
        raise ApiError(
            415, "unsupported_media_type", "not an image; send PNG, JPEG or WebP"
        ) from None
    except Exception as exc:
        raise ApiError(400, "invalid_image", f"the image cannot be decoded: {exc}") from None
    return fmt, w, h


def embedded_workflow(
    data: bytes, limit: int, known_types: set[str] | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """The workflow a PNG carries (ours, ComfyUI's or A1111's; parsed as data, never run),
    or an error message."""
    try:
        chunks = read_png_text(data, keys=("workflow", "prompt", "parameters"), max_bytes=limit)
    except PngTextError as exc:
        return None, f"the embedded workflow cannot be read: {exc}"
    if not {"workflow", "prompt"} & chunks.keys() and not looks_like_parameters(
        chunks.get("parameters", "")
    ):
        return None, None
    try:
        result = import_png_text(chunks, known_types)
    except (WorkflowFormatError, jsondoc.DocumentTooComplex) as exc:
        return None, f"the embedded workflow is not valid: {exc}"
    return result.workflow.model_dump(mode="json", exclude_none=True), None


@dataclass(frozen=True)
class Upload:
    """What an uploaded file turned out to be."""

    format: str
    width: int
    height: int
    workflow: dict[str, Any] | None
    workflow_error: str | None


def examine_upload(
    data: bytes, max_pixels: int, max_workflow_bytes: int, known_types: set[str] | None = None
) -> Upload:
    """Check the image and read its workflow: CPU work, run in a worker thread so
    the event loop keeps answering while a large upload is parsed."""
    fmt, w, h = inspect_image(data, max_pixels)
    workflow, error = (
        embedded_workflow(data, max_workflow_bytes, known_types) if fmt == "PNG" else (None, None)
    )
    return Upload(fmt, w, h, workflow, error)


def store_upload(folder: Path, data: bytes, suffix: str) -> str:
    """Write under a name chosen from the content (the client's name is never a path)."""
    name = hashlib.sha256(data).hexdigest()[:24] + suffix
    target = folder / name
    if not is_regular_file(target):  # missing, or a FIFO/device planted under this name
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    return name


@routes.post("/api/files/input")
async def upload(request: web.Request) -> web.Response:
    svc = services(request)
    cfg = svc.config
    data, original = await _read_part(request, cfg.max_upload_bytes)
    known = set(svc.engine.registry.nodes)
    found = await asyncio.to_thread(
        examine_upload, data, cfg.max_upload_pixels, cfg.max_body_bytes, known
    )
    keep = request.query.get("store", "true").lower() not in ("0", "false", "no")
    name = None
    if keep:
        folder = svc.engine.workspace.folder("input")
        folder.mkdir(parents=True, exist_ok=True)
        name = await asyncio.to_thread(store_upload, folder, data, UPLOAD_FORMATS[found.format])
    return web.json_response(
        {
            "name": name,
            "url": None if name is None else f"/api/files/input/{name}",
            "format": found.format.lower(),
            "width": found.width,
            "height": found.height,
            "original_name": original,
            "workflow": found.workflow,
            "workflow_error": found.workflow_error,
        }
    )
