"""Helpers of the hardening tests (issue 11): odd documents and PNGs, log checks."""

from __future__ import annotations

import io
import logging
import struct
import zlib

import pytest
from PIL import Image, PngImagePlugin

HUGE = "9" * 5000  # beyond Python's 4300-digit int/str conversion limit


def nested(depth: int) -> dict:
    """A JSON object nested ``depth`` objects deep."""
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"child": value}
    return value


def assert_nothing_unhandled(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage()[:200] for r in bad]


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png_with_workflow(text: str, size: tuple[int, int] = (8, 8)) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("workflow", text, zip=True)
    buf = io.BytesIO()
    Image.new("RGB", size).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def animated_png(frames: int, size: tuple[int, int] = (64, 64), trailing_text: str = "") -> bytes:
    """An APNG of ``frames`` frames; ``trailing_text`` goes in a zTXt ``workflow`` chunk
    after the last frame (where reading it with Pillow decodes every frame first)."""
    images = [Image.new("RGB", size, (i % 256, 0, 0)) for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, format="PNG", save_all=True, append_images=images[1:], duration=40)
    data = buf.getvalue()
    if trailing_text:
        body = b"workflow\0\0" + zlib.compress(trailing_text.encode())
        iend = data.rindex(b"IEND") - 4
        data = data[:iend] + png_chunk(b"zTXt", body) + data[iend:]
    return data
