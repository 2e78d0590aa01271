"""Reading checkpoint files safely: format from the bytes, pickle only by opt-in.

A file's format is decided by its first bytes, never its extension (a pickle renamed to
``.safetensors`` is still a pickle). Safetensors headers are validated by the official
``safetensors`` parser; pickles go through ``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

import json
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from graph.workspace import NotARegularFile, open_regular, require_regular_file

Format = Literal["safetensors", "torch_zip", "pickle"]

MAX_HEADER = 100_000_000  # the reference parser's limit
SKIPPED_PREFIXES = ("model_ema.",)
READ_THREADS = 2
# files from this size are memory-mapped instead of read (`_map_tensors`)
MAP_MIN_BYTES = 1 << 30


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded: missing, corrupt, unsafe or of an unknown
    architecture. The message names the file and what is wrong."""


@dataclass(frozen=True)
class FileIdentity:
    """What makes a loaded model stale: the resolved path, its size and modification time."""

    path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        """For a folder (diffusers format): total size and newest mtime of its files."""
        path = Path(path).resolve()
        st = path.stat()
        if not path.is_dir():
            require_regular_file(path)
            return cls(str(path), st.st_size, st.st_mtime_ns)
        size, mtime = 0, st.st_mtime_ns
        for root, _dirs, files in os.walk(path):
            for f in files:
                fs = require_regular_file(Path(root) / f).stat()
                size += fs.st_size
                mtime = max(mtime, fs.st_mtime_ns)
        return cls(str(path), size, mtime)

    def token(self) -> str:
        return f"{self.size}:{self.mtime_ns}"


def sniff_format(path: Path) -> Format:
    """The container format from the first bytes; CheckpointError if none fits."""
    name = Path(path).name
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(9)
    except NotARegularFile as e:
        raise CheckpointError(str(e)) from e
    if head[:4] == b"PK\x03\x04":
        return "torch_zip"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"  # protocol 2..5 opcode, what torch's legacy format starts with
    if len(head) == 9 and head[8:9] == b"{":
        (n,) = struct.unpack("<Q", head[:8])
        if n > MAX_HEADER:
            raise CheckpointError(f"{name}: safetensors header too large ({n} bytes)")
        if 8 + n > size:
            raise CheckpointError(
                f"{name}: truncated safetensors file (header says {n} bytes, file has {size})"
            )
        return "safetensors"
    if size < 9:
        raise CheckpointError(f"{name}: file too small to be a checkpoint ({size} bytes)")
    raise CheckpointError(
        f"{name}: not a checkpoint (neither safetensors nor a torch file; first bytes "
        f"{head[:8].hex()})"
    )


SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def read_safetensors(
    path: Path, dtype: torch.dtype | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors (floats cast to ``dtype`` when given) and metadata.

    The safetensors parser validates the header (offsets, sizes, dtypes). Files from
    MAP_MIN_BYTES on are memory-mapped (tensors already in ``dtype`` are views of the map,
    the rest are read and cast); smaller ones are read tensor by tensor with plain reads and
    cast at once, so the peak memory is the result plus one tensor (an fp16 SD-1.5 file
    loaded as fp32 peaked at 1.6x the weights with the whole dict kept, see the README)."""
    from safetensors import SafetensorError, safe_open

    name = Path(path).name
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            # EMA copies of the U-Net (LDM training files) are never used: not read
            keys = [k for k in f.keys() if not k.startswith(SKIPPED_PREFIXES)]  # noqa: SIM118
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        entries = {k: header[k] for k in keys}
        if Path(path).stat().st_size >= MAP_MIN_BYTES:
            tensors = _map_tensors(path, 8 + n, entries, dtype)
        else:
            tensors = _read_tensors(path, 8 + n, entries, dtype)
    except (SafetensorError, OSError, RuntimeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{name}: corrupt safetensors file ({e})") from e
    return tensors, meta


def _map_tensors(
    path: Path, base: int, entries: dict[str, dict[str, Any]], dtype: torch.dtype | None
) -> dict[str, torch.Tensor]:
    """Tensors of a large file as views of one private, read-only-used memory map (as
    safetensors and diffusers do): no copy, so a multi-GB model is ready in about a second
    and its pages are the page cache's. Tensors that need a cast, or whose offset does not
    suit their dtype, are read (copied) as usual. The views keep the map alive; see
    `is_mapped`."""
    size = Path(path).stat().st_size
    whole = torch.empty(0, dtype=torch.uint8).set_(
        torch.UntypedStorage.from_file(str(path), shared=False, nbytes=size)
    )
    out: dict[str, torch.Tensor] = {}
    copied: dict[str, dict[str, Any]] = {}
    for k, entry in entries.items():
        stored = SAFETENSORS_DTYPES.get(entry["dtype"])
        if stored is None:
            raise ValueError(f"unsupported tensor dtype {entry['dtype']}")
        begin, end = entry["data_offsets"]
        size_of = torch.empty(0, dtype=stored).element_size()
        casts = dtype is not None and stored.is_floating_point and stored != dtype
        if casts or (base + begin) % size_of or not 0 <= begin <= end <= size - base:
            copied[k] = entry
            continue
        t = whole[base + begin : base + end].view(stored).reshape(entry["shape"])
        t._sdgraph_mapped = True  # type: ignore[attr-defined]  # see is_mapped
        out[k] = t
    out.update(_read_tensors(path, base, copied, dtype) if copied else {})
    return {k: out[k] for k in entries}


def is_mapped(t: torch.Tensor) -> bool:
    """Whether ``t`` is a view of a memory-mapped checkpoint (`_map_tensors`): such views
    stay where they are, aligned or not (copying them would undo the map)."""
    return bool(getattr(t, "_sdgraph_mapped", False))


def _read_tensors(
    path: Path, base: int, entries: dict[str, dict[str, Any]], dtype: torch.dtype | None
) -> dict[str, torch.Tensor]:
    """Every entry, read by READ_THREADS threads with a file handle each (copying pages
    into fresh memory is fault-bound: two cores read a large file ~1.7x faster than one),
    returned in the header's order."""
    names = sorted(entries, key=lambda k: entries[k]["data_offsets"][0])
    workers = max(1, min(READ_THREADS, len(names), os.cpu_count() or 1))

    def read_share(share: list[str]) -> dict[str, torch.Tensor]:
        with open(path, "rb") as fh:
            return {k: _read_tensor(fh, base, entries[k], dtype) for k in share}

    shares = [names[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(workers, thread_name_prefix="read-weights") as pool:
        read = {k: t for part in pool.map(read_share, shares) for k, t in part.items()}
    return {k: read[k] for k in entries}


def _read_tensor(
    fh: Any, base: int, entry: dict[str, Any], dtype: torch.dtype | None
) -> torch.Tensor:
    """One tensor of a validated safetensors file, read into fresh (aligned) memory."""
    stored = SAFETENSORS_DTYPES.get(entry["dtype"])
    if stored is None:
        raise ValueError(f"unsupported tensor dtype {entry['dtype']}")
    begin, end = entry["data_offsets"]
    raw = torch.empty(end - begin, dtype=torch.uint8)
    fh.seek(base + begin)
    if end > begin and fh.readinto(raw.numpy()) != end - begin:
        raise ValueError("truncated tensor data")
    t = raw.view(stored).reshape(entry["shape"])
    if dtype is not None and t.is_floating_point() and t.dtype != dtype:
        return t.to(dtype)
    return t


def read_pickle(path: Path, allow_pickle: bool) -> dict[str, Any]:
    """A torch pickle, only with ``allow_pickle``, and then with ``weights_only=True``."""
    name = Path(path).name
    if not allow_pickle:
        raise CheckpointError(
            f"{name}: pickle checkpoints can run code when loaded and are refused; convert it "
            "to .safetensors, or opt in explicitly (allow_pickle / --allow-pickle), which "
            "loads it with torch.load(weights_only=True)"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad pickles
        raise CheckpointError(f"{name}: cannot be read as a torch checkpoint ({e})") from e
    return obj  # type: ignore[no-any-return]


def _unwrap(obj: Any, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    extra: dict[str, Any] = {}
    while isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        for key, value in obj.items():  # global_step, and string metadata such as hints
            if key != "state_dict" and isinstance(key, str) and isinstance(value, (int, str)):
                extra[key] = value
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{name}: holds a {type(obj).__name__}, not a state dict")
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{name}: contains no tensors")
    return tensors, extra


def read_state_dict(
    path: Path, allow_pickle: bool, dtype: torch.dtype | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any], Format]:
    """(tensors, metadata, format) of a single-file checkpoint, safetensors floats already
    in ``dtype`` when given. Metadata holds the safetensors ``__metadata__`` strings, and
    ``global_step`` for pickles that carry one."""
    path = Path(path)
    fmt = sniff_format(path)
    if fmt == "safetensors":
        tensors, meta = read_safetensors(path, dtype)
        if not tensors:
            raise CheckpointError(f"{path.name}: contains no tensors")
        return tensors, dict(meta), fmt
    tensors, extra = _unwrap(read_pickle(path, allow_pickle), path.name)
    return tensors, extra, fmt


def parse_json_meta(meta: dict[str, Any], key: str) -> dict[str, Any]:
    """A JSON object stored as a metadata string, or {} when absent or malformed."""
    raw = meta.get(key)
    if not isinstance(raw, str):
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
