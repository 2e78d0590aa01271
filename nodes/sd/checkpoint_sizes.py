"""Each checkpoint's native image size, for the canvas's new EmptyLatent nodes: the model
index knows user files (memoized with their family); built-ins and diffusers folders are
read here the same torch-free way (model_index.native_size)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from model_index import ModelFile
from model_index.family import detect_family
from model_index.native_size import native_size
from nodes.sd.builtin import NATIVE_SIZE
from nodes.sd.checkpoints import BUILTIN_TINY, CheckpointError, resolve_checkpoint


@functools.lru_cache(maxsize=64)
def _size_of(path: Path, mtime_ns: int) -> int | None:
    return native_size(None if path.is_dir() else detect_family("checkpoints", path), path)


def native_sizes(workspace: Any, names: Iterable[str], files: list[ModelFile]) -> dict[str, int]:
    """``{checkpoint name: pixels per side}`` for the names whose size is known."""
    indexed = {f.name: f.native_size for f in files if f.kind == "checkpoints"}
    out: dict[str, int] = {}
    for name in names:
        size = indexed.get(name)
        if size is None and name == BUILTIN_TINY:
            size = NATIVE_SIZE
        elif size is None and name not in indexed:
            try:
                path = resolve_checkpoint(workspace, name).path
                size = _size_of(path, path.stat().st_mtime_ns) if path else None
            except (CheckpointError, OSError):
                size = None
        if size:
            out[name] = size
    return out
