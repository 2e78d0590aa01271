"""IMAGE tensors <-> PIL images, loading input files safely, writing numbered PNGs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin

from graph.listing import LISTINGS
from graph.workspace import Workspace, confined_path, is_regular_file, open_regular

MAX_INPUT_PIXELS = 4096 * 4096  # larger inputs are refused before decoding
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
COUNTER_DIGITS = 5  # at least; 100000 and beyond get more digits
PROBE_POWERS = 48  # numbers up to 2**48 are found without listing the folder


class ImageTooLarge(ValueError):
    """An input image with more pixels than allowed."""


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """[B, H, W, 3] float 0..1 -> 8-bit RGB images, rounded like diffusers' numpy_to_pil."""
    arr = images.detach().float().cpu().clamp(0, 1).numpy()
    arr = (arr * 255).round().astype(np.uint8)
    return [Image.fromarray(a, "RGB") for a in arr]


def from_pil(image: Image.Image) -> torch.Tensor:
    """An RGB PIL image -> [1, H, W, 3] float 0..1."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).unsqueeze(0)


def load_image(path: Path, max_pixels: int | None = None) -> torch.Tensor:
    """Read an image file as [1, H, W, 3]; the size is checked from the header before any
    pixel is decoded (no decompression bombs). EXIF orientation is applied; alpha is
    composited on white."""
    max_pixels = MAX_INPUT_PIXELS if max_pixels is None else max_pixels
    with open_regular(path) as fh, Image.open(fh) as im:
        w, h = im.size
        if w * h > max_pixels:
            raise ImageTooLarge(
                f"{path.name} is {w}x{h} = {w * h} pixels; the limit is {max_pixels} pixels"
            )
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(background, rgba)
        return from_pil(im.convert("RGB"))


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding pixels."""
    with open_regular(path) as fh, Image.open(fh) as im:
        return im.size


def list_images(folder: Path) -> list[str]:
    """Regular image files under ``folder`` (recursive, hidden entries skipped), as
    relative POSIX names, sorted; remembered while the folder's tree is unchanged."""
    return LISTINGS.get(("images", str(folder)), folder, lambda: _list_images(folder))


def _list_images(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    names = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in files:
            if f.startswith(".") or not f.lower().endswith(IMAGE_SUFFIXES):
                continue
            if not is_regular_file(Path(root, f)):
                continue  # FIFOs, devices, sockets: never offered, never read
            names.append(Path(root, f).relative_to(folder).as_posix())
    return sorted(names)


def _numbered(directory: Path, stem: str, counter: int) -> Path:
    return directory / f"{stem}_{counter:0{COUNTER_DIGITS}d}_.png"


def _counter_start(directory: Path, stem: str) -> int:
    """The number after the last of the run of numbered files already there, found
    with ~50 probes (each power of two, then bisecting after the highest one present)
    instead of listing a folder that may hold 100,000 files. Numbers below a run
    (older files deleted) may be reused; an existing file is never overwritten."""
    low = 0
    for power in range(PROBE_POWERS):
        if _numbered(directory, stem, 1 << power).exists():
            low = 1 << power
    if low == 0:
        return 1
    high = 2 * low  # absent: low is the highest power of two present
    while high - low > 1:
        mid = (low + high) // 2
        if _numbered(directory, stem, mid).exists():
            low = mid
        else:
            high = mid
    return high


def save_png(
    workspace: Workspace,
    kind: str,
    prefix: str,
    image: Image.Image,
    text: dict[str, str],
    compress_level: int = 4,
) -> Path:
    """Write ``<prefix>_NNNNN_.png`` in the ``kind`` folder, never overwriting: the next
    free counter is claimed with an exclusive create, so concurrent writers cannot
    collide. ``prefix`` may contain subfolders but cannot leave the folder."""
    folder = workspace.folder(kind)
    first = confined_path(folder, f"{prefix}_{1:0{COUNTER_DIGITS}d}_.png")
    directory, stem = first.parent, first.name[: -len("_00001_.png")]
    directory.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value, zip=len(value) > 1024)
    counter = _counter_start(directory, stem)
    while True:
        path = _numbered(directory, stem, counter)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # a concurrent writer took it
            counter += 1
            continue
        try:
            with os.fdopen(fd, "wb") as fh:
                image.save(fh, format="PNG", pnginfo=info, compress_level=compress_level)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path
