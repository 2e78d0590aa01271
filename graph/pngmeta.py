"""Read the text chunks of a PNG (where SaveImage embeds the workflow).

The chunk list is walked here rather than through Pillow: Pillow decodes every
frame of an animated PNG to collect text that follows the frames, and refuses
text chunks over 1 MB, so a large workflow SaveImage wrote could not be read
back. Here no pixel is decoded, and the bounds are explicit: the number of
chunks walked and the size of the decompressed text.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Collection, Iterator

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_CHUNKS = 100_000  # a 32 MB file of 64 KB IDAT chunks has ~500; frames add 2 each
MAX_TEXT_BYTES = 64 * 1024 * 1024  # decompressed text, all chunks together
_TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")


class PngTextError(ValueError):
    """Not a PNG, or its text chunks are malformed or over the bounds."""


def _chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, start, end) of each chunk up to IEND, without reading their data; a
    truncated file ends the walk."""
    if not data.startswith(SIGNATURE):
        raise PngTextError("not a PNG file")
    pos = len(SIGNATURE)
    for _ in range(MAX_CHUNKS):
        if pos + 8 > len(data):
            return
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            return
        yield kind, pos, end
        if kind == b"IEND":
            return
        pos = end
    raise PngTextError(f"more than {MAX_CHUNKS} chunks")


def read_png_text(
    data: bytes,
    keys: Collection[str] | None = None,
    max_bytes: int = MAX_TEXT_BYTES,
) -> dict[str, str]:
    """The tEXt/zTXt/iTXt chunks of a PNG as a dict ({} when there are none); only
    ``keys`` when given. Raises `PngTextError` past ``max_bytes`` of text."""
    found: dict[str, str] = {}
    budget = max_bytes
    for kind, start, end in _chunks(data):
        if kind not in _TEXT_TYPES:
            continue
        body = data[start + 8 : end - 4]
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(kind + body) != crc:
            raise PngTextError(f"{kind.decode()} chunk with a bad checksum")
        key, sep, rest = body.partition(b"\0")
        name = key.decode("latin-1")
        if sep and (keys is None or name in keys):
            text = _decode(kind, rest, budget)
            budget -= len(text)
            found[name] = text
    return found


def without_text(data: bytes) -> bytes:
    """The PNG with its text chunks left out, for an image library that would refuse
    (or spend memory on) text we read ourselves; other data is returned as is."""
    if not data.startswith(SIGNATURE):
        return data
    spans = [(start, end) for kind, start, end in _chunks(data) if kind in _TEXT_TYPES]
    if not spans:
        return data
    parts, pos = [], 0
    for start, end in spans:
        parts.append(data[pos:start])
        pos = end
    parts.append(data[pos:])
    return b"".join(parts)


def _decode(kind: bytes, rest: bytes, budget: int) -> str:
    if kind == b"tEXt":
        raw = rest
    elif kind == b"zTXt":
        raw = _inflate(rest[1:], budget)
    else:  # iTXt: flag, method, language \0, translated keyword \0, text
        if len(rest) < 2:
            raise PngTextError("iTXt chunk too short")
        compressed = rest[0] == 1
        parts = rest[2:].split(b"\0", 2)
        if len(parts) != 3:
            raise PngTextError("malformed iTXt chunk")
        raw = _inflate(parts[2], budget) if compressed else parts[2]
        if len(raw) > budget:
            raise PngTextError(f"the text chunks hold more than {budget} bytes")
        return raw.decode("utf-8", "replace")
    if len(raw) > budget:
        raise PngTextError(f"the text chunks hold more than {budget} bytes")
    return raw.decode("latin-1")


def _inflate(data: bytes, budget: int) -> bytes:
    """Decompress at most ``budget`` bytes (a small chunk cannot expand without bound)."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, max(budget, 0) + 1)
    except zlib.error as exc:
        raise PngTextError(f"compressed text chunk: {exc}") from None
    if len(out) > budget:
        raise PngTextError(f"the text chunks hold more than {budget} bytes")
    return out
